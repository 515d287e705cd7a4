package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"sepmbot/bot"
	"sepmbot/bot/discord/discordtest"
	"sepmbot/bot/slack/slackfake"
	"sepmbot/internal/testkit"
	"sepmbot/rotation"
	"sepmbot/sepm"
	"sepmbot/store"
)

// answered waits until the bot's answer to interaction id (its callback or a
// follow-up) holds want.
func (r *discordRun) answered(id, want string) bool {
	return r.f.Wait(20*time.Second, func(v discordtest.View) bool {
		for _, c := range v.Callbacks() {
			if c.InteractionID == id && jsonHas(c.Data, want) {
				return true
			}
		}
		for _, w := range v.Webhooks() {
			if w.Token == "tok-"+id && jsonHas(w.Body, want) {
				return true
			}
		}
		return false
	})
}

// discordMessagesIn counts the messages the bot posted in channel on Discord.
func (r *discordRun) discordMessagesIn(channel string) int {
	n := 0
	r.f.Snapshot(func(v discordtest.View) {
		for _, m := range v.Messages() {
			if m.ChannelID == channel {
				n++
			}
		}
	})
	return n
}

// sayOnSlack runs `/sepm text` as alice in C0SEPM.
func sayOnSlack(t *testing.T, sf *slackfake.Server, text string) {
	t.Helper()
	if a, err := sf.Command("UALICE", "C0SEPM", text); err != nil || a.Status != 200 {
		t.Fatalf("%s: %+v %v", text, a, err)
	}
}

// TestRunSlackAndDiscord: `run --chat slack,discord` serves both platforms behind
// one router. A rotation started on Slack lives there (card, approval request) and
// is driven to completion with nobody orphaned while Discord is connected too; on
// Discord, /sepm status answers with its card, an approver's /sepm approve is refused
// (the rotation lives on Slack), and a vote counts from Discord only for an account
// linked to a Slack one (--link), as that person, once.
func TestRunSlackAndDiscord(t *testing.T) {
	t.Parallel()
	sf := slackfake.New(slackfake.Options{})
	t.Cleanup(sf.Close)
	for _, u := range []string{"UALICE", "UBOB", "UCAROL"} {
		sf.AddUser(u, "", strings.ToLower(u[1:]))
	}
	o := sf.Options()
	connected := sf.Connected()
	out := &testkit.SyncBuffer{}
	r := startChatRun(t, nil, out, func(c *RunCmd, d *chatDeps) {
		c.Chat = []string{"slack", "discord"}
		c.SlackFlags = SlackFlags{SlackAPIURL: sf.APIURL(), SlackChannel: []string{"C0SEPM"}, SlackEditBudget: 50}
		c.Operators = append(c.Operators, "slack:UALICE")
		c.Approvers = append(c.Approvers, "slack:UBOB", "slack:UCAROL")
		c.Link = []string{"slack:UCAROL=discord:" + dCarol}
		secrets := map[string]string{"SLACK_BOT_TOKEN": o.BotToken, "SLACK_APP_TOKEN": o.AppToken}
		d.SlackSecret = func(name string) (string, error) { return secrets[name], nil }
	})
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		t.Fatal("the bot never connected to Slack's Socket Mode")
	}
	for _, banner := range []string{"on Slack (Socket Mode", "on Discord for site-a"} {
		if !strings.Contains(out.String(), banner) {
			t.Errorf("no %q banner in:\n%s", banner, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var pins []string
	for _, s := range r.site.Servers() {
		pins = append(pins, "--new-cert-sha256 "+s.Name+"="+s.NextFingerprint)
	}
	if a, err := sf.Command("UALICE", "C0SEPM", "rotate site-a "+strings.Join(pins, " ")+" --straggler 3s"); err != nil || a.Status != 200 {
		t.Fatalf("rotate on Slack: %+v %v", a, err)
	}
	done := map[string]bool{}
	var id string
	var v rotation.View
	for {
		if ctx.Err() != nil {
			t.Fatalf("rotation %s did not end; Slack ephemerals %+v", id, sf.Ephemerals(""))
		}
		time.Sleep(100 * time.Millisecond) // polling the engine, as a person watching the card would
		if id == "" {
			rots, _ := r.eng.List(ctx)
			if len(rots) == 0 {
				continue
			}
			id = rots[len(rots)-1].ID
		}
		var err error
		if v, err = r.eng.Get(ctx, id); err != nil {
			continue
		}
		rot := v.Rotation
		if !rot.Active() {
			break
		}
		step, ok := r.activeStep(v)
		if !ok || done[step.ID] {
			continue
		}
		switch step.Action {
		case rotation.ActHTTPCopy:
			for _, m := range rot.Plan.Lists() {
				if _, err := r.site.CopyMSLAsHTTP(m, 0); err != nil {
					t.Fatal(err)
				}
			}
			sayOnSlack(t, sf, "done "+id+" "+step.ID)
			done[step.ID] = true
		case rotation.ActCert:
			if _, err := r.site.UpdateCertificate(step.Server); err != nil {
				t.Fatal(err)
			}
			sayOnSlack(t, sf, "done "+id+" "+step.ID)
			done[step.ID] = true
		case rotation.ActApproval:
			if v.Approval == nil || v.Approval.MessageRef == "" {
				continue
			}
			done[step.ID] = true
			ref, ok := bot.ParseRef(v.Approval.MessageRef)
			if !ok || ref.Platform != "slack" || ref.Channel != "C0SEPM" {
				t.Fatalf("the approval request of a rotation started on Slack is at %q", v.Approval.MessageRef)
			}
			if n := r.discordMessagesIn(dChannel); n != 0 {
				t.Fatalf("%d messages on Discord about a rotation that lives on Slack", n)
			}
			// On Discord: status shows the card; an unlinked approver's vote is refused.
			if st := r.command(dDave, "status", [2]string{"id", id}); !r.answered(st, id) || !r.answered(st, "site-a") {
				t.Error("/sepm status on Discord does not show the Slack rotation's card")
			}
			if ap := r.command(dBob, "approve", [2]string{"id", id}); !r.answered(ap, "lives on slack") {
				t.Error("an approver on Discord was not told that the rotation lives on Slack")
			}
			if v, _ := r.eng.Get(ctx, id); len(v.Approval.Votes) != 0 {
				t.Fatalf("votes from Discord counted: %+v", v.Approval.Votes)
			}
			// On Slack: bob's reaction counts.
			if err := sf.React("UBOB", "C0SEPM", ref.ID, "white_check_mark"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, ctx, func() bool {
				v, _ := r.eng.Get(ctx, id)
				return v.Approval != nil && len(v.Approval.Votes) == 1
			}, "bob's reaction on Slack to count")
			// Carol's Discord account is linked to her Slack one: her vote counts, as her.
			if ap := r.command(dCarol, "approve", [2]string{"id", id}); !r.answered(ap, "approv") {
				t.Error("carol's linked vote from Discord got no answer")
			}
		}
	}
	if v.Rotation.Status != rotation.StatusCompleted {
		t.Fatalf("rotation ended %s: %s", v.Rotation.Status, v.Rotation.LastError)
	}
	if fl := r.site.Fleet(); fl.Orphaned != 0 {
		t.Fatalf("%d clients orphaned", fl.Orphaned)
	}
	var voters []string
	for _, vote := range v.Approval.Votes {
		voters = append(voters, vote.User)
	}
	if strings.Join(voters, " ") != "slack:UBOB slack:UCAROL" {
		t.Fatalf("votes counted from %v, want slack:UBOB and slack:UCAROL (carol through her link)", voters)
	}
	if n := r.discordMessagesIn(dChannel); n != 0 {
		t.Errorf("%d messages on Discord about a rotation that lives on Slack", n)
	}
	if n := sf.RateLimited(); n != 0 {
		t.Errorf("Slack answered %d requests with 429: the pacing let a call through too early", n)
	}
	// Both adapters count their own API calls in the one admin registry.
	fams, err := r.w.admin.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{}
	for _, fam := range fams {
		if fam.GetName() != "sepmbot_chat_api_calls_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			methods[l["platform"]+" "+l["method"]] = true
		}
	}
	var discordREST, slackAPI bool // the adapters' own methods are dotted
	for k := range methods {
		discordREST = discordREST || strings.HasPrefix(k, "discord ") && strings.Contains(k, ".")
		slackAPI = slackAPI || strings.HasPrefix(k, "slack ") && strings.Contains(k, ".")
	}
	if !discordREST || !slackAPI {
		t.Errorf("chat API calls counted: %v; want the API methods of both adapters (commands.overwrite, chat.update ...), not only the notifier's post/edit", methods)
	}
}

// TestRunConsoleAndDiscord: `run --chat console,discord`. A rotation started on
// Discord lives there and is driven to completion with nobody orphaned, approved by
// Discord's approvers, while the console is open: the console's approver is told
// that the rotation lives on Discord and nothing counts, /sepm status on the console
// shows its card, and nothing of it is posted on the console. Each platform's help
// says what that platform adds, not what the other does.
func TestRunConsoleAndDiscord(t *testing.T) {
	t.Parallel()
	in, typed := io.Pipe()
	out := &testkit.SyncBuffer{}
	r := startChatRun(t, in, out, func(c *RunCmd, d *chatDeps) {
		c.Chat = []string{"console", "discord"}
		c.ConsoleUser = "erin"
		c.Data = t.TempDir()
		c.Approvers = append(c.Approvers, "console:erin")
	})
	t.Cleanup(func() { typed.Close() }) // end of input, before the bot stops
	say := func(line string) int {
		at := len(out.String())
		if _, err := fmt.Fprintln(typed, line); err != nil {
			t.Fatal(err)
		}
		return at
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if !strings.Contains(out.String(), "on Discord for site-a") {
		t.Errorf("no Discord banner in:\n%s", out)
	}
	at := say("/sepm help")
	waitFor(t, ctx, func() bool { return strings.Contains(out.String()[at:], "On this console") }, "help on the console")
	if strings.Contains(out.String()[at:], "complete with Tab") {
		t.Errorf("the console's help explains Discord:\n%s", out.String()[at:])
	}
	r.rotate()
	v := r.driveUntilApproval()
	ref, ok := bot.ParseRef(v.Approval.MessageRef)
	if !ok || ref.Platform != "discord" || ref.Channel != dChannel {
		t.Fatalf("the approval request of a rotation started on Discord is at %q", v.Approval.MessageRef)
	}
	id := v.Rotation.ID
	at = say("/sepm approve " + id)
	waitFor(t, ctx, func() bool { return strings.Contains(out.String()[at:], "lives on discord") }, "the console's vote refused")
	at = say("/sepm status " + id)
	waitFor(t, ctx, func() bool { return strings.Contains(out.String()[at:], "site-a") }, "the card on the console")
	if v, _ := r.eng.Get(ctx, id); len(v.Approval.Votes) != 0 {
		t.Fatalf("a vote from the console counted: %+v", v.Approval.Votes)
	}
	bob := r.click(dBob, "889", "approve-ok:"+v.Approval.ID+":"+ref.ID)
	r.f.Dispatch("INTERACTION_CREATE", bob)
	r.until("bob's vote", func(v rotation.View) bool { return v.Approval != nil && len(v.Approval.Votes) == 1 })
	r.f.React(dChannel, ref.ID, "✅", dCarol)
	v = r.driveToEnd()
	if v.Rotation.Status != rotation.StatusCompleted {
		t.Fatalf("rotation ended %s: %s", v.Rotation.Status, v.Rotation.LastError)
	}
	if fl := r.site.Fleet(); fl.Orphaned != 0 {
		t.Fatalf("%d clients orphaned", fl.Orphaned)
	}
	if a := v.Approval; len(a.Votes) != 2 || a.Votes[0].User != "discord:"+dBob || a.Votes[1].User != "discord:"+dCarol {
		t.Fatalf("votes %+v", a.Votes)
	}
	if strings.Contains(out.String(), "approval requested") {
		t.Errorf("the console shows the thread of a rotation that lives on Discord:\n%s", out)
	}
}

// TestRunChatCombinations: --chat takes several platforms, comma-separated,
// repeated or from SEPMBOT_CHAT, Discord among them (it no longer has to run
// alone), and its help says where a rotation lives; a platform not known is refused.
func TestRunChatCombinations(t *testing.T) {
	parse := func(args ...string) (*CLI, error) {
		t.Helper()
		var cli CLI
		k, err := kong.New(&cli, kong.Name("sepmbot"), kong.Exit(func(int) { t.Fatal("exit") }))
		if err != nil {
			t.Fatal(err)
		}
		_, err = k.Parse(args)
		return &cli, err
	}
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--chat", "slack,discord"}, "", "slack discord"},
		{[]string{"--chat", "console,discord"}, "", "console discord"},
		{[]string{"--chat", "console", "--chat", "slack", "--chat", "discord"}, "", "console slack discord"},
		{nil, "discord,slack", "discord slack"},
	} {
		t.Setenv("SEPMBOT_CHAT", tc.env)
		if tc.env == "" {
			os.Unsetenv("SEPMBOT_CHAT")
		}
		cli, err := parse(append([]string{"run", "--data", t.TempDir()}, tc.args...)...)
		if err != nil {
			t.Fatalf("%v (SEPMBOT_CHAT=%q): %v", tc.args, tc.env, err)
		}
		if got := strings.Join(cli.Run.Chat, " "); got != tc.want {
			t.Errorf("%v (SEPMBOT_CHAT=%q): --chat %q, want %q", tc.args, tc.env, got, tc.want)
		}
	}
	if _, err := parse("run", "--data", t.TempDir(), "--chat", "slack,teams"); err == nil {
		t.Error("--chat teams accepted")
	}
	f, ok := reflect.TypeFor[RunCmd]().FieldByName("Chat")
	if help := f.Tag.Get("help"); !ok || strings.Contains(help, "alone") || !strings.Contains(help, "several at once") || !strings.Contains(help, "lives on the platform it was started from") {
		t.Errorf("--chat help: %q", help)
	}
}

// A revoked or wrong token stops `run` with an error (no hang, no retry loop), also
// when Slack is connected beside it: Slack is let go too.
func TestDiscordWrongTokenStops(t *testing.T) {
	for _, chat := range [][]string{{"discord"}, {"slack", "discord"}} {
		t.Run(strings.Join(chat, ","), func(t *testing.T) { discordWrongToken(t, chat) })
	}
}

func discordWrongToken(t *testing.T, chat []string) {
	f := discordtest.New(nil)
	defer f.Close()
	f.Token = "the-right-one"
	sf := slackfake.New(slackfake.Options{})
	defer sf.Close()
	tokenFile := t.TempDir() + "/token"
	if err := os.WriteFile(tokenFile, []byte("a-wrong-one"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.TempDir() + "/sepmbot.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	client, err := sepm.New(sepm.Config{URL: "https://127.0.0.1:1", Username: "admin", Password: "x", InsecureSkipVerify: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cmd := &RunCmd{
		Chat:         chat,
		BotFlags:     BotFlags{SiteName: "site-a", Approvers: []string{"discord:1", "discord:2"}, Approvals: 2, ApprovalTTL: time.Hour, PollInterval: time.Second, CardInterval: time.Second},
		SlackFlags:   SlackFlags{SlackAPIURL: sf.APIURL(), SlackEditBudget: 50},
		DiscordFlags: DiscordFlags{DiscordAuthFlags: DiscordAuthFlags{DiscordTokenFile: tokenFile, DiscordGuild: f.Guild}, DiscordGateway: true},
	}
	roles, err := cmd.roles()
	if err != nil {
		t.Fatal(err)
	}
	o := sf.Options()
	secrets := map[string]string{"SLACK_BOT_TOKEN": o.BotToken, "SLACK_APP_TOKEN": o.AppToken}
	deps := chatDeps{HTTPClient: f.Client(), SlackSecret: func(name string) (string, error) { return secrets[name], nil }}
	g := &Globals{Ctx: context.Background(), Log: slog.New(slog.DiscardHandler), Out: &strings.Builder{}}
	done := make(chan error, 1)
	go func() {
		done <- cmd.serve(context.Background(), g, roles, []siteSpec{{Name: "site-a", Client: client, APIAddr: "127.0.0.1:1"}}, db, deps)
	}()
	select {
	case err := <-done:
		t.Logf("run: %v", err)
		if err == nil || !strings.Contains(err.Error(), "token was refused") || strings.Contains(err.Error(), "a-wrong-one") {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop on a wrong token")
	}
	if len(chat) > 1 && sf.Calls("auth.test") == 0 {
		t.Error("Slack was never started beside Discord")
	}
}
