package main

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sepmbot/bot/slack/slackfake"
	"sepmbot/sepm/sim"
)

// TestRunChatSlackCLI runs the real `sepmbot run --chat slack` in a child process
// against the fake Slack (tokens from *_FILE, --slack-api-url, --slack-channel):
// /sepm help is answered to the user only, /sepm outside its channel is refused,
// and revoking the tokens stops the bot with Slack's reason and a failing exit.
func TestRunChatSlackCLI(t *testing.T) {
	t.Parallel()
	site, err := sim.Start(context.Background(), sim.Options{Clients: 20, Servers: 1, Groups: 3, Versions: "14.3=100", Heartbeat: time.Second, User: "admin", Password: "pw-slack-cli", Seed: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	fake := slackfake.New(slackfake.Options{})
	defer fake.Close()
	fake.AddUser("UALICE", "", "alice")
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	o := fake.Options()
	env := []string{
		"SEPMBOT_SEPM_PASSWORD=pw-slack-cli",
		"SLACK_BOT_TOKEN_FILE=" + write("bot", o.BotToken), "SLACK_APP_TOKEN_FILE=" + write("app", o.AppToken),
	}
	args := []string{"run", "--chat", "slack", "--slack-api-url", fake.APIURL(), "--slack-channel", "C0SEPM",
		"--data", filepath.Join(dir, "data"), "--sepm-url", site.URL(), "--sepm-user", "admin", "--sepm-fingerprint", site.APIFingerprint(),
		"--operators", "slack:UALICE", "--approvers", "slack:UBOB,slack:UCAROL", "--viewers", "*"}
	for _, s := range site.Servers() {
		args = append(args, "--sepm-server", s.Name+"="+s.ClientAddr)
	}
	connected := fake.Connected()
	done := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, err = runMain(t, env, args...)
		done <- err
	}()
	select {
	case <-connected:
	case err := <-done:
		t.Fatalf("run ended before connecting: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		t.Fatal("the bot never connected to Socket Mode")
	}
	a, err := fake.Command("UALICE", "C0SEPM", "help")
	if err != nil || !strings.Contains(a.Text, "/sepm") || !a.Ephemeral() {
		t.Fatalf("/sepm help: %+v %v", a, err)
	}
	if a, err := fake.Command("UALICE", "C0OTHER", "list"); err != nil || !strings.Contains(a.Text, "refused") {
		t.Fatalf("/sepm list in another channel: %+v %v", a, err)
	}
	fake.RevokeTokens()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("run exited 0 after its token was revoked\n%s", out)
		}
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		if !strings.Contains(stderr, "token_revoked") {
			t.Fatalf("the bot stopped without Slack's reason: %v\n%s", err, stderr)
		}
		for _, secret := range []string{o.BotToken, o.AppToken} {
			if strings.Contains(stderr, secret) {
				t.Fatalf("a token reached the log:\n%s", stderr)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the bot kept running with a revoked token")
	}
	for _, secret := range []string{o.BotToken, o.AppToken} {
		if strings.Contains(out, secret) {
			t.Fatalf("a token reached stdout:\n%s", out)
		}
	}
}
