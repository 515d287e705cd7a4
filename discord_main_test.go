package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sepmbot/bot"
	"sepmbot/bot/discord"
	"sepmbot/bot/discord/discordtest"
	"sepmbot/rotation"
	"sepmbot/sepm"
	"sepmbot/sepm/sim"
	"sepmbot/store"
)

// Discord users of the end-to-end tests: alice operates, bob approves by user id,
// carol by her role, dave holds nothing.
const (
	dAlice, dBob, dCarol, dDave = "100000000000000100", "100000000000000200", "100000000000000300", "100000000000000400"
	dApproverRole               = "555000000000000555"
	dChannel                    = "900000000000000900"
)

type discordRun struct {
	t    *testing.T
	f    *discordtest.Fake
	site *sim.Site
	eng  *rotation.Engine
	w    *running
	d    *discord.Discord
	ids  atomic.Int64
	stop func()
	hook func(string)
}

func startDiscordRun(t *testing.T, mod ...func(*RunCmd, *chatDeps)) *discordRun {
	t.Helper()
	return startChatRun(t, nil, &strings.Builder{}, mod...)
}

// startChatRun starts `run` with Discord and whatever else mod adds (--chat, the
// console's input and output in and out, Slack), and waits until it runs.
func startChatRun(t *testing.T, in io.Reader, out io.Writer, mod ...func(*RunCmd, *chatDeps)) *discordRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	site, err := sim.Start(ctx, sim.Options{Listen: "127.0.0.1:0", Clients: 300, Servers: 1, Groups: 6, Heartbeat: time.Second,
		Versions: "14.3=80,14.2=10,12.1=10", OfflinePercent: 5, Seed: 1, User: "admin", Password: demoPassword, Failover: "loadbalance", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f := discordtest.New(nil)
	f.SetMember(dCarol, dApproverRole)
	f.SetMember(dBob)
	f.SetMember(dDave)
	db, err := store.Open(t.TempDir() + "/sepmbot.db")
	if err != nil {
		t.Fatal(err)
	}
	client, err := sepm.New(sepm.Config{URL: site.URL(), Username: "admin", Password: demoPassword, Fingerprints: []string{site.APIFingerprint()}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var servers []rotation.ServerRef
	for _, s := range site.Servers() {
		servers = append(servers, rotation.ServerRef{Name: s.Name, ClientAddr: s.ClientAddr})
	}
	tokenFile := t.TempDir() + "/token"
	if err := os.WriteFile(tokenFile, []byte("fake-token-SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := &RunCmd{
		Chat: []string{"discord"},
		BotFlags: BotFlags{SiteName: "site-a", Operators: []string{"discord:" + dAlice}, Approvers: []string{"discord:" + dBob, "discord-role:" + dApproverRole},
			Viewers: []string{"*"}, Approvals: 2, ApprovalTTL: time.Hour, PollInterval: 500 * time.Millisecond, CardInterval: time.Second},
		DiscordFlags: DiscordFlags{DiscordAuthFlags: DiscordAuthFlags{DiscordTokenFile: tokenFile, DiscordGuild: f.Guild}, DiscordChannel: []string{dChannel}, DiscordGateway: true, DiscordRegister: true},
	}
	run := &discordRun{t: t, f: f, site: site}
	started := make(chan struct{})
	done := make(chan error, 1)
	g := &Globals{Ctx: ctx, Log: slog.New(slog.DiscardHandler), In: in, Out: out}
	deps := chatDeps{
		HTTPClient: f.Client(),
		Started: func(w *running, d *discord.Discord) {
			run.eng, run.w, run.d = w.first(), w, d
			close(started)
		},
	}
	for _, m := range mod {
		m(cmd, &deps)
	}
	roles, err := cmd.roles()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- cmd.serve(ctx, g, roles, []siteSpec{{Name: "site-a", Client: client, APIAddr: hostOf(site.URL()), Servers: servers}}, db, deps)
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the bot did not start")
	}
	hook := simHook(site)
	run.hook = func(line string) {
		if _, err := hook(ctx, "sim "+line); err != nil {
			t.Errorf("!sim %s: %v", line, err)
		}
	}
	run.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		db.Close()
		site.Close()
		f.Close()
	}
	t.Cleanup(run.stop)
	return run
}

func (r *discordRun) id() string { return fmt.Sprint(1400000000000000000 + r.ids.Add(1)) }

func member(user string) map[string]any {
	roles := []string{}
	if user == dCarol {
		roles = []string{dApproverRole}
	}
	return map[string]any{"user": map[string]any{"id": user, "username": "u" + user}, "roles": roles}
}

// command sends /sepm <sub> with options as user and returns the interaction id.
func (r *discordRun) command(user, sub string, opts ...[2]string) string {
	id := r.id()
	var o []map[string]any
	for _, kv := range opts {
		o = append(o, map[string]any{"name": kv[0], "type": 3, "value": kv[1]})
	}
	r.f.Dispatch("INTERACTION_CREATE", map[string]any{
		"id": id, "application_id": r.f.AppID, "type": 2, "token": "tok-" + id, "version": 1, "guild_id": r.f.Guild, "channel_id": dChannel,
		"member": member(user), "data": map[string]any{"id": "1", "name": "sepm", "type": 1, "options": []map[string]any{{"name": sub, "type": 1, "options": o}}},
	})
	return id
}

// click builds a button click (send it with Dispatch, perhaps twice).
func (r *discordRun) click(user, message, customID string) map[string]any {
	id := r.id()
	return map[string]any{
		"id": id, "application_id": r.f.AppID, "type": 3, "token": "tok-" + id, "version": 1, "guild_id": r.f.Guild, "channel_id": dChannel,
		"member": member(user), "message": map[string]any{"id": message, "channel_id": dChannel},
		"data": map[string]any{"custom_id": customID, "component_type": 2},
	}
}

// until waits for cond on the engine's view of the newest rotation (the engine
// moves in real time against the simulator; the bound only catches a hang).
func (r *discordRun) until(what string, cond func(v rotation.View) bool) rotation.View {
	r.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		rots, _ := r.eng.List(context.Background())
		if len(rots) > 0 {
			v, err := r.eng.Get(context.Background(), rots[len(rots)-1].ID)
			if err == nil && cond(v) {
				return v
			}
		}
		// The engine's progress shows at the fake (a card edit, a post): wake on the
		// next call, or re-read after a second (a wait's deadline).
		var n int
		r.f.Snapshot(func(v discordtest.View) { n = len(v.Calls()) })
		r.f.Wait(time.Second, func(v discordtest.View) bool { return len(v.Calls()) != n })
	}
	r.t.Fatalf("timed out waiting for %s", what)
	return rotation.View{}
}

// callback returns the interaction response to id, waiting for it.
func (r *discordRun) callback(id string) discordtest.Callback {
	r.t.Helper()
	var cb discordtest.Callback
	if !r.f.Wait(10*time.Second, func(v discordtest.View) bool {
		for _, c := range v.Callbacks() {
			if c.InteractionID == id {
				cb = c
				return true
			}
		}
		return false
	}) {
		r.t.Fatalf("no answer to interaction %s", id)
	}
	return cb
}

func (r *discordRun) activeStep(v rotation.View) (rotation.PlanStep, bool) {
	s, st, ok := v.Rotation.Current()
	return s, ok && st.Status == rotation.StepActive && v.Rotation.Status == rotation.StatusRunning
}

// rotate starts R on site-a with the next certificate pinned, as alice.
func (r *discordRun) rotate() {
	var pins []string
	for _, s := range r.site.Servers() {
		pins = append(pins, s.Name+"="+s.NextFingerprint)
	}
	id := r.command(dAlice, "rotate", [2]string{"site", "site-a"}, [2]string{"new-cert-sha256", strings.Join(pins, " ")})
	if cb := r.callback(id); cb.Type != 5 {
		r.t.Errorf("rotate answered with type %d, want 5 (deferred: the sweep takes longer than 3 s)", cb.Type)
	}
}

// driveManual answers the manual steps (the HTTP copy of the lists, the certificate
// update) as the operator would, until the approval step or the end.
func (r *discordRun) driveUntilApproval() rotation.View {
	handled := map[string]bool{}
	return r.until("the approval request", func(v rotation.View) bool {
		step, ok := r.activeStep(v)
		if !ok {
			return false
		}
		switch step.Action {
		case rotation.ActHTTPCopy:
			if !handled[step.ID] {
				handled[step.ID] = true
				for _, m := range v.Rotation.Plan.Lists() {
					r.hook(fmt.Sprintf("copy-msl %q", m))
				}
				r.command(dAlice, "done", [2]string{"id", v.Rotation.ID}, [2]string{"step", step.ID})
			}
		case rotation.ActApproval:
			return v.Approval != nil && v.Approval.MessageRef != ""
		}
		return false
	})
}

func (r *discordRun) driveToEnd() rotation.View {
	handled := map[string]bool{}
	return r.until("the end of the rotation", func(v rotation.View) bool {
		if !v.Rotation.Active() {
			return true
		}
		step, ok := r.activeStep(v)
		if ok && step.Action == rotation.ActCert && !handled[step.ID] {
			handled[step.ID] = true
			r.hook("cert " + step.Server)
			r.command(dAlice, "done", [2]string{"id", v.Rotation.ID}, [2]string{"step", step.ID})
		}
		return false
	})
}

func jsonHas(raw json.RawMessage, s string) bool { return strings.Contains(string(raw), s) }

// threadReplies are the messages in the thread of message ref.
func threadReplies(v discordtest.View, ref string) []*discordtest.Message {
	var out []*discordtest.Message
	for _, m := range v.Messages() {
		if m.ChannelID == ref {
			out = append(out, m)
		}
	}
	return out
}

// Acceptance 2 (first run) and 4: a whole rotation through the fake gateway, with one
// approval by button and one by reaction; refusals change nothing and are told to the
// clicker ephemerally and to the reactor in one short thread reply; redeliveries act once.
func TestDiscordFullRotation(t *testing.T) {
	t.Parallel()
	r := startDiscordRun(t)
	// Discord's per-channel limits, tighter: card edits and posts get 429s with a
	// JSON retry_after when driven too fast; the card must still end up current.
	r.f.Limit("PATCH /channels/"+dChannel+"/messages/", 2, 3*time.Second)
	r.f.Limit("POST /channels/"+dChannel+"/messages", 3, 2*time.Second)
	r.f.Snapshot(func(v discordtest.View) {
		if !jsonHas(v.Commands(r.f.Guild), `"rotate"`) {
			t.Fatalf("/sepm not registered in the guild: %s", v.Commands(r.f.Guild))
		}
	})
	// A viewer command answers at once (ephemeral), from the allowed channel.
	if cb := r.callback(r.command(dDave, "list")); cb.Type != 5 && cb.Type != 4 {
		t.Fatalf("list answered %+v", cb)
	}
	// The help says how /sepm works on Discord.
	help := r.command(dDave, "help")
	if !r.f.Wait(10*time.Second, func(fv discordtest.View) bool {
		for _, c := range fv.Callbacks() {
			if c.InteractionID == help && jsonHas(c.Data, "complete with Tab") {
				return true
			}
		}
		for _, w := range fv.Webhooks() {
			if w.Token == "tok-"+help && jsonHas(w.Body, "complete with Tab") {
				return true
			}
		}
		return false
	}) {
		t.Error("/sepm help does not explain Discord's options")
	}
	r.rotate()
	v := r.driveUntilApproval()
	ref, ok := bot.ParseRef(v.Approval.MessageRef)
	if !ok || ref.Platform != "discord" || ref.Channel != dChannel {
		t.Fatalf("approval request ref %q", v.Approval.MessageRef)
	}
	reqID := v.Approval.ID

	// Approve asks what exactly is approved first (ephemeral), then the vote counts.
	ask := r.click(dBob, ref.ID, "ask-approve:"+reqID)
	r.f.Dispatch("INTERACTION_CREATE", ask)
	if cb := r.callback(ask["id"].(string)); cb.Type != 4 || !jsonHas(cb.Data, `"flags":64`) || !jsonHas(cb.Data, "secure communication off") ||
		!jsonHas(cb.Data, "approve-ok:"+reqID+":"+ref.ID) {
		t.Fatalf("approve click answered %+v %s", cb, cb.Data)
	}
	// The requester confirming an approval: told why in her ephemeral confirmation
	// (updated in place, its button gone); nothing counted.
	alice := r.click(dAlice, "888", "approve-ok:"+reqID+":"+ref.ID)
	r.f.Dispatch("INTERACTION_CREATE", alice)
	cb := r.callback(alice["id"].(string))
	if cb.Type != 7 || !jsonHas(cb.Data, "refused") || !jsonHas(cb.Data, `"components":[]`) {
		t.Fatalf("requester's click answered %+v %s", cb, cb.Data)
	}
	// A non-approver's ✅: one short thread reply naming them; nothing counted.
	r.f.React(dChannel, ref.ID, "✅", dDave)
	if !r.f.Wait(10*time.Second, func(fv discordtest.View) bool {
		for _, m := range threadReplies(fv, ref.ID) {
			if strings.Contains(m.Content, dDave) {
				return true
			}
		}
		return false
	}) {
		t.Fatal("the non-approver's reaction got no thread reply")
	}
	// A ✅ on the run card (no approval request) is nobody's vote and gets no answer.
	var card string
	r.f.Snapshot(func(fv discordtest.View) { card = fv.Messages()[0].ID })
	r.f.React(dChannel, card, "✅", dDave)
	// Bob approves by button; the click is delivered twice.
	bob := r.click(dBob, "889", "approve-ok:"+reqID+":"+ref.ID)
	r.f.Dispatch("INTERACTION_CREATE", bob)
	r.f.Dispatch("INTERACTION_CREATE", bob)
	r.callback(bob["id"].(string))
	v = r.until("bob's vote", func(v rotation.View) bool { return v.Approval != nil && len(v.Approval.Votes) == 1 })
	if v.Approval.Votes[0].User != "discord:"+dBob {
		t.Fatalf("votes %+v", v.Approval.Votes)
	}
	// Carol approves by reaction (her role makes her an approver); redelivered.
	r.f.React(dChannel, ref.ID, "✅", dCarol)
	r.f.React(dChannel, ref.ID, "✅", dCarol)
	v = r.driveToEnd()
	if v.Rotation.Status != rotation.StatusCompleted {
		t.Fatalf("rotation ended %s: %s", v.Rotation.Status, v.Rotation.LastError)
	}
	if fl := r.site.Fleet(); fl.Orphaned != 0 {
		t.Fatalf("%d clients orphaned", fl.Orphaned)
	}
	r.f.Snapshot(func(fv discordtest.View) {
		cbs := 0
		for _, c := range fv.Callbacks() {
			if c.InteractionID == bob["id"] {
				cbs++
			}
		}
		if cbs != 1 {
			t.Errorf("the redelivered click was answered %d times", cbs)
		}
		daveReplies := 0
		for _, m := range fv.Messages() {
			if strings.Contains(m.Content, dDave) {
				daveReplies++
				if m.ChannelID != ref.ID {
					t.Errorf("dave answered in %s, not the request's thread", m.ChannelID)
				}
			}
		}
		carolReplies := 0
		for _, m := range fv.Messages() {
			if strings.Contains(m.Content, dCarol) {
				carolReplies++
			}
		}
		if carolReplies > 1 {
			t.Errorf("the redelivered reaction was answered again (%d replies to carol)", carolReplies)
		}
		if daveReplies != 1 {
			t.Errorf("%d thread replies to the non-approver, want one", daveReplies)
		}
		req := fv.Message(ref.ID)
		if req == nil || req.Edits == 0 || !jsonHas(req.Components, `"disabled":true`) || jsonHas(req.Components, `"disabled":false`) {
			t.Errorf("decided request not shown with disabled buttons: %+v", req)
		}
		for _, m := range fv.Messages() {
			var am struct {
				Parse *[]string `json:"parse"`
			}
			if err := json.Unmarshal(m.AllowedMentions, &am); err != nil || am.Parse == nil || len(*am.Parse) != 0 {
				t.Errorf("message %s sent with allowed mentions %s", m.ID, m.AllowedMentions)
			}
			if strings.Contains(string(m.Embeds)+m.Content, "SECRET") {
				t.Error("the token reached chat")
			}
		}
	})
	a := v.Approval
	if a == nil || len(a.Votes) != 2 || a.Votes[1].User != "discord:"+dCarol {
		t.Fatalf("approval votes %+v", a)
	}
	// The card shows the end, although its edits were rate limited on the way.
	if !r.f.Wait(30*time.Second, func(fv discordtest.View) bool {
		return jsonHas(fv.Messages()[0].Embeds, "completed")
	}) {
		r.f.Snapshot(func(fv discordtest.View) { t.Fatalf("card never showed the end: %s", fv.Messages()[0].Embeds) })
	}
	r.f.Snapshot(func(fv discordtest.View) {
		if fv.Limited() == 0 {
			t.Error("no 429 on the way: the limits drove nothing")
		}
		var worst time.Duration
		for _, c := range fv.Callbacks() {
			worst = max(worst, c.Latency)
		}
		t.Logf("REST calls %d, of which 429: %d; card edits %d; interactions %d, slowest first answer %s (Discord allows 3s)",
			len(fv.Calls()), fv.Limited(), fv.Messages()[0].Edits, len(fv.Callbacks()), worst)
	})
}

// Acceptance 2 (second run): the second vote is a reaction made while the gateway is
// down; the fake withholds its event, and the reconcile after the re-identify counts it.
func TestDiscordVoteWhileGatewayDown(t *testing.T) {
	t.Parallel()
	r := startDiscordRun(t)
	r.rotate()
	v := r.driveUntilApproval()
	ref, _ := bot.ParseRef(v.Approval.MessageRef)
	bob := r.click(dBob, "889", "approve-ok:"+v.Approval.ID+":"+ref.ID)
	r.f.Dispatch("INTERACTION_CREATE", bob)
	r.until("bob's vote", func(v rotation.View) bool { return v.Approval != nil && len(v.Approval.Votes) == 1 })

	r.f.Hold()
	r.f.Kick()
	if !r.f.Wait(10*time.Second, func(fv discordtest.View) bool { return !fv.Connected() }) {
		t.Fatal("gateway still up")
	}
	if r.f.React(dChannel, ref.ID, "✅", dCarol) {
		t.Fatal("the event was delivered while the gateway was down")
	}
	r.f.Release()
	v = r.until("the reconciled vote", func(v rotation.View) bool {
		return v.Approval != nil && len(v.Approval.Votes) == 2
	})
	if v.Approval.Votes[1].User != "discord:"+dCarol {
		t.Fatalf("votes %+v", v.Approval.Votes)
	}
	r.f.Snapshot(func(fv discordtest.View) {
		if fv.Identifies() < 2 || fv.Resumes() < 1 {
			t.Errorf("identifies %d, resumes %d", fv.Identifies(), fv.Resumes())
		}
	})
	// Then the operator aborts; every touched target is restored, nobody orphaned.
	r.command(dAlice, "abort", [2]string{"id", v.Rotation.ID}, [2]string{"reason", "test over"})
	v = r.until("the abort", func(v rotation.View) bool { return !v.Rotation.Active() })
	if fl := r.site.Fleet(); fl.Orphaned != 0 {
		t.Fatalf("%d clients orphaned after the abort (%s)", fl.Orphaned, v.Rotation.Status)
	}
}

// HTTP interactions mode through the real wiring, gateway off: Discord's probes with
// bad signatures get 401, PING gets PONG, a signed command is accepted and answered
// through its callback.
func TestDiscordHTTPInteractionsMode(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	addr := make(chan string, 1)
	r := startDiscordRun(t, func(c *RunCmd, d *chatDeps) {
		c.DiscordGateway = false
		c.DiscordListen = "127.0.0.1:0"
		c.DiscordPublicKey = hex.EncodeToString(pub)
		d.Listening = func(a string) { addr <- a }
	})
	url := "http://" + <-addr + discord.InteractionsPath
	post := func(body string, key ed25519.PrivateKey, ts time.Time) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		stamp := fmt.Sprint(ts.Unix())
		req.Header.Set("X-Signature-Timestamp", stamp)
		req.Header.Set("X-Signature-Ed25519", hex.EncodeToString(ed25519.Sign(key, []byte(stamp+body))))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if resp := post(`{"id":"1","type":1}`, other, time.Now()); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", resp.StatusCode)
	}
	if resp := post(`{"id":"1","type":1}`, priv, time.Now().Add(-10*time.Minute)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("stale: %d", resp.StatusCode)
	}
	resp := post(`{"id":"1","type":1}`, priv, time.Now())
	pong, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(pong)) != `{"type":1}` {
		t.Fatalf("PING: %d %s", resp.StatusCode, pong)
	}
	cmd := fmt.Sprintf(`{"id":"1400000000000000999","application_id":%q,"type":2,"token":"tok","version":1,"guild_id":%q,"channel_id":%q,`+
		`"member":{"user":{"id":%q},"roles":[]},"data":{"id":"1","name":"sepm","type":1,"options":[{"name":"list","type":1}]}}`,
		r.f.AppID, r.f.Guild, dChannel, dDave)
	if resp := post(cmd, priv, time.Now()); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("command: %d", resp.StatusCode)
	}
	if cb := r.callback("1400000000000000999"); cb.Type != 4 && cb.Type != 5 {
		t.Fatalf("callback %+v", cb)
	}
	r.f.Snapshot(func(v discordtest.View) {
		if v.Identifies() != 0 {
			t.Error("the gateway connected although --discord-gateway=false")
		}
	})
}

// `sepmbot discord register` overwrites the guild's commands.
func TestDiscordRegisterCommand(t *testing.T) {
	f := discordtest.New(nil)
	defer f.Close()
	tokenFile := t.TempDir() + "/token"
	if err := os.WriteFile(tokenFile, []byte("fake-register-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := &DiscordRegisterCmd{DiscordAuthFlags: DiscordAuthFlags{DiscordTokenFile: tokenFile, DiscordGuild: f.Guild}, SiteName: "site-a,site-b", deps: chatDeps{HTTPClient: f.Client()}}
	if err := cmd.Run(&Globals{Ctx: context.Background(), Log: slog.New(slog.DiscardHandler), Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "registered /sepm in server "+f.Guild) {
		t.Fatalf("output %q", out.String())
	}
	f.Snapshot(func(v discordtest.View) {
		if !jsonHas(v.Commands(f.Guild), `"site-b"`) {
			t.Fatalf("commands %s", v.Commands(f.Guild))
		}
	})
}

// Deny through the button and its form: the reason reaches the approval record, the
// request shows its verdict with the buttons greyed, and nothing was disabled.
func TestDiscordDenyWithReason(t *testing.T) {
	t.Parallel()
	r := startDiscordRun(t)
	r.rotate()
	v := r.driveUntilApproval()
	ref, _ := bot.ParseRef(v.Approval.MessageRef)
	click := r.click(dCarol, ref.ID, "deny:"+v.Approval.ID)
	r.f.Dispatch("INTERACTION_CREATE", click)
	if cb := r.callback(click["id"].(string)); cb.Type != 9 || !jsonHas(cb.Data, "deny-reason:"+v.Approval.ID) {
		t.Fatalf("deny click answered %+v %s", cb, cb.Data)
	}
	id := r.id()
	r.f.Dispatch("INTERACTION_CREATE", map[string]any{
		"id": id, "application_id": r.f.AppID, "type": 5, "token": "tok-" + id, "version": 1, "guild_id": r.f.Guild, "channel_id": dChannel,
		"member": member(dCarol), "message": map[string]any{"id": ref.ID, "channel_id": dChannel},
		"data": map[string]any{"custom_id": "deny-reason:" + v.Approval.ID, "components": []map[string]any{{"type": 1, "components": []map[string]any{
			{"type": 4, "custom_id": "reason", "value": "change freeze until Monday"},
		}}}},
	})
	r.callback(id)
	v = r.until("the denial", func(v rotation.View) bool { return v.Approval != nil && v.Approval.DeniedBy != "" })
	if v.Approval.DeniedBy != "discord:"+dCarol || v.Approval.DenyReason != "change freeze until Monday" {
		t.Fatalf("denied by %q for %q", v.Approval.DeniedBy, v.Approval.DenyReason)
	}
	if !r.f.Wait(20*time.Second, func(fv discordtest.View) bool {
		m := fv.Message(ref.ID)
		return m != nil && jsonHas(m.Components, `"disabled":true`) && !jsonHas(m.Components, `"disabled":false`)
	}) {
		t.Error("the denied request still has live buttons")
	}
	if fl := r.site.Fleet(); fl.Orphaned != 0 {
		t.Fatalf("%d orphaned", fl.Orphaned)
	}
}
