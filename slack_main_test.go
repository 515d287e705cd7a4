package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sepmbot/bot"
	slackbot "sepmbot/bot/slack"
	"sepmbot/bot/slack/slackfake"
	"sepmbot/rotation"
	"sepmbot/sepm"
	"sepmbot/sepm/sim"
	"sepmbot/store"
)

// TestSlackFullRotation drives a whole rotation through the fake Slack, in Socket
// Mode and in HTTP mode, with the workspace's chat.update budget at Slack's 50 a
// minute and lowered to 10: /sepm rotate, one approval by reaction (in Socket Mode
// made while the bot is disconnected, counted after the reconnect) and one by the
// Approve button, the operator's `done`s, completion with nobody orphaned, and not
// one 429 or invalid_blocks from Slack over the whole run.
func TestSlackFullRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("a full rotation in real time")
	}
	for _, tc := range []struct {
		mode   string
		budget int
	}{{"socket", 50}, {"http", 50}, {"socket", 10}, {"http", 10}} {
		t.Run(fmt.Sprintf("%s-%d", tc.mode, tc.budget), func(t *testing.T) {
			t.Parallel()
			slackRotation(t, tc.mode == "http", tc.budget)
		})
	}
}

func slackRotation(t *testing.T, httpMode bool, budget int) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	site, err := sim.Start(ctx, sim.Options{Listen: "127.0.0.1:0", Clients: 60, Servers: 1, Groups: 4, Heartbeat: time.Second,
		Versions: "14.3=80,14.2=10,12.1=10", OfflinePercent: 5, Seed: 1, User: "admin", Password: "pw", Failover: "loadbalance", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	fake := slackfake.New(slackfake.Options{UpdateBudget: budget})
	defer fake.Close()
	for _, u := range []string{"UALICE", "UBOB", "UCAROL", "UDAVE"} {
		fake.AddUser(u, "", strings.ToLower(u[1:]))
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "sepmbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	client, err := sepm.New(sepm.Config{URL: site.URL(), Username: "admin", Password: "pw", Fingerprints: []string{site.APIFingerprint()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var servers []rotation.ServerRef
	for _, s := range site.Servers() {
		servers = append(servers, rotation.ServerRef{Name: s.Name, ClientAddr: s.ClientAddr})
	}
	flags := BotFlags{SiteName: "site-a", Operators: []string{"slack:UALICE"}, Approvers: []string{"slack:UALICE,slack:UBOB,slack:UCAROL"}, Viewers: []string{"*"},
		Approvals: 2, ApprovalTTL: time.Hour, PollInterval: 500 * time.Millisecond, CardInterval: time.Second, Channel: []string{"slack:C1"}}
	roles, err := flags.roles()
	if err != nil {
		t.Fatal(err)
	}
	o := fake.Options()
	cfg := slackbot.Config{BotToken: o.BotToken, APIURL: fake.APIURL(), Store: db, EditBudget: budget, CardInterval: flags.CardInterval, Log: log}
	if httpMode {
		cfg.Listen, cfg.SigningSecret = "127.0.0.1:0", "secret-for-the-test"
	} else {
		cfg.AppToken = o.AppToken
	}
	sl, err := slackbot.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	connected := fake.Connected()
	if err := sl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if httpMode {
		fake.SetHTTPTarget("http://"+sl.Addr(), cfg.SigningSecret)
	} else {
		<-connected
	}
	spec := siteSpec{Name: flags.SiteName, Client: client, APIAddr: hostOf(site.URL()), Servers: servers}
	w, err := startSites(ctx, &Globals{Ctx: ctx, Log: log}, flags, roles, []siteSpec{spec}, db, []chatOutlet{{Platform: sl, DefaultChannel: "C1"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { w.router.Serve(ctx, w.platform); close(served) }()
	defer func() {
		cancel()
		<-served
		w.wait()
		w.notifier.Close()
		sl.Wait()
	}()

	var pins []string
	for _, s := range site.Servers() {
		pins = append(pins, "--new-cert-sha256 "+s.Name+"="+s.NextFingerprint)
	}
	// Outside --slack-channel: refused with a reason, to the user only.
	if a, err := fake.Command("UALICE", "C2", "rotate site-a"); err != nil || !strings.Contains(a.Text, "only in C1") || !a.Ephemeral() {
		t.Fatalf("rotate in C2: %+v %v", a, err)
	}
	a, err := fake.Command("UALICE", "C1", "rotate site-a "+strings.Join(pins, " ")+" --straggler 3s")
	if err != nil || a.Status != 200 {
		t.Fatalf("rotate: %+v %v", a, err)
	}
	done := map[string]bool{}
	var id, requestTS string
	for {
		if ctx.Err() != nil {
			t.Fatalf("no result: rotation %s; ephemerals %+v", id, fake.Ephemerals(""))
		}
		time.Sleep(100 * time.Millisecond) // polling the engine, as a person watching the card would
		if id == "" {
			rots, _ := w.first().List(ctx)
			if len(rots) == 0 {
				continue
			}
			id = rots[len(rots)-1].ID
		}
		v, err := w.first().Get(ctx, id)
		if err != nil {
			continue
		}
		r := v.Rotation
		if !r.Active() {
			if r.Status != rotation.StatusCompleted {
				t.Fatalf("rotation ended %s: %s", r.Status, r.AbortReason)
			}
			break
		}
		step, st, ok := r.Current()
		if !ok || st.Status != rotation.StepActive || r.Status != rotation.StatusRunning || done[step.ID] {
			continue
		}
		switch step.Action {
		case rotation.ActHTTPCopy:
			for _, m := range r.Plan.Lists() {
				if _, err := site.CopyMSLAsHTTP(m, 0); err != nil {
					t.Fatal(err)
				}
			}
			slackSay(t, fake, "done "+id+" "+step.ID)
			done[step.ID] = true
		case rotation.ActCert:
			if _, err := site.UpdateCertificate(step.Server); err != nil {
				t.Fatal(err)
			}
			slackSay(t, fake, "done "+id+" "+step.ID)
			done[step.ID] = true
		case rotation.ActApproval:
			if v.Approval == nil || v.Approval.MessageRef == "" {
				continue
			}
			ref, ok := bot.ParseRef(v.Approval.MessageRef)
			if !ok || ref.Platform != "slack" || ref.Channel != "C1" {
				t.Fatalf("approval request ref %q", v.Approval.MessageRef)
			}
			requestTS = ref.ID
			done[step.ID] = true
			refusedVotes(t, ctx, fake, w.first(), id, ref.ID)
			if httpMode {
				if err := fake.React("UBOB", "C1", ref.ID, "white_check_mark"); err != nil {
					t.Fatal(err)
				}
			} else { // bob reacts while the bot is away
				fake.BlockConnections(true)
				fake.Disconnect()
				if err := fake.React("UBOB", "C1", ref.ID, "white_check_mark"); err != nil {
					t.Fatal(err)
				}
				back := fake.Connected()
				fake.BlockConnections(false)
				<-back
			}
			waitFor(t, ctx, func() bool {
				v, _ := w.first().Get(ctx, id)
				return v.Approval != nil && len(v.Approval.Approvers()) == 1
			}, "bob's reaction to count")
			if _, err := fake.Click("UCAROL", "C1", ref.ID, "approve"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if f := site.Fleet(); f.Orphaned != 0 {
		t.Fatalf("%d clients orphaned", f.Orphaned)
	}
	w.notifier.Close() // the last card edit
	if n := len(fake.Messages("C2")); n != 0 {
		t.Fatalf("%d messages in C2, where nothing was accepted", n)
	}
	if n := fake.RateLimited(); n != 0 {
		t.Fatalf("Slack answered %d requests with 429", n)
	}
	if r := fake.Refusals(); len(r) != 0 {
		t.Fatalf("Slack refused %v", r)
	}
	m, ok := fake.Message("C1", requestTS)
	if !ok || len(slackfake.Buttons(m.Blocks)) != 0 || !strings.Contains(slackfake.BlockText(m.Blocks), "approved") {
		t.Fatalf("the decided request still has live buttons or no verdict: %s", m.Blocks)
	}
	t.Logf("%s budget %d/min: %d chat.update, %d chat.postMessage, %d posts in C1", map[bool]string{true: "HTTP", false: "Socket Mode"}[httpMode],
		budget, fake.Calls("chat.update"), fake.Calls("chat.postMessage"), len(fake.Messages("C1")))
}

func slackSay(t *testing.T, fake *slackfake.Server, text string) {
	t.Helper()
	a, err := fake.Command("UALICE", "C1", text)
	if err != nil || a.Status != 200 {
		t.Fatalf("%s: %+v %v", text, a, err)
	}
}

func waitFor(t *testing.T, ctx context.Context, ok func() bool, what string) {
	t.Helper()
	for !ok() {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// refusedVotes: a reaction or a click from a non-approver (dave), from the
// requester (alice), and a vote on another message (bob on the card) change
// nothing, and each person gets an ephemeral reason. (The bot's own ✅ ❌ seeds
// reached the adapter as reaction_added events too, and counted for nothing.)
func refusedVotes(t *testing.T, ctx context.Context, fake *slackfake.Server, eng *rotation.Engine, id, requestTS string) {
	t.Helper()
	var card string
	for _, m := range fake.Messages("C1") {
		if m.ThreadTS == "" && m.TS != requestTS {
			card = m.TS
			break
		}
	}
	if card == "" {
		t.Fatal("no card in C1")
	}
	before := map[string]int{}
	for _, u := range []string{"UDAVE", "UALICE", "UBOB"} {
		before[u] = len(fake.Ephemerals(u))
	}
	if err := fake.React("UDAVE", "C1", requestTS, "white_check_mark"); err != nil {
		t.Fatal(err)
	}
	if _, err := fake.Click("UDAVE", "C1", requestTS, "approve"); err != nil {
		t.Fatal(err)
	}
	if _, err := fake.Click("UALICE", "C1", requestTS, "approve"); err != nil {
		t.Fatal(err)
	}
	if err := fake.React("UALICE", "C1", requestTS, "white_check_mark"); err != nil {
		t.Fatal(err)
	}
	if err := fake.React("UBOB", "C1", card, "white_check_mark"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, func() bool {
		return len(fake.Ephemerals("UDAVE")) >= before["UDAVE"]+2 && len(fake.Ephemerals("UALICE")) >= before["UALICE"]+2 &&
			len(fake.Ephemerals("UBOB")) >= before["UBOB"]+1
	}, "a reason for each refused vote")
	for _, u := range []string{"UDAVE", "UALICE", "UBOB"} {
		for _, e := range fake.Ephemerals(u)[before[u]:] {
			t.Logf("%s was told: %s", u, e.Text)
		}
	}
	v, err := eng.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(v.Approval.Approvers()); n != 0 {
		t.Fatalf("refused votes counted: %d approvals", n)
	}
	if err := fake.Unreact("UBOB", "C1", card, "white_check_mark"); err != nil {
		t.Fatal(err)
	}
}
