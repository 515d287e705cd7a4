package console

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"sepmbot/bot"
)

func collect(t *testing.T, c *Console) []bot.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []bot.Event
	for ev := range c.Events(ctx) {
		out = append(out, ev)
	}
	return out
}

func TestConsoleParsesLines(t *testing.T) {
	var out bytes.Buffer
	hooked := ""
	in := strings.NewReader(strings.Join([]string{
		"@alice /sepm rotate site-a",
		"/sepm status",
		"",
		"# a comment",
		"@bob react ✅ 7",
		"@bob unreact ✅ #7",
		"!sim fleet",
		"@carol click approve 1",
		"@carol click deny 99",
	}, "\n"))
	c := New(in, &out, Options{As: "alice", Hook: func(_ context.Context, line string) (string, error) {
		hooked = line
		return "clients 5", nil
	}})
	ref, _ := c.Post(context.Background(), "sepm", bot.Message{Text: "approve?", Buttons: []bot.Button{{ActionID: "approve", Value: "nonce-1", Label: "Approve"}}})
	if ref != "1" {
		t.Fatalf("first ref %q", ref)
	}
	evs := collect(t, c)
	if len(evs) != 5 {
		t.Fatalf("events %+v", evs)
	}
	want := []struct {
		kind bot.EventKind
		user string
		text string
		ref  string
		val  string
	}{
		{bot.EventCommand, "alice", "/sepm rotate site-a", "", ""},
		{bot.EventCommand, "alice", "/sepm status", "", ""},
		{bot.EventReactionAdded, "bob", "", "7", ""},
		{bot.EventReactionRemoved, "bob", "", "7", ""},
		{bot.EventButton, "carol", "", "1", "nonce-1"},
	}
	seen := map[string]bool{}
	for i, w := range want {
		ev := evs[i]
		if ev.Kind != w.kind || ev.User != w.user || ev.Text != w.text || ev.MessageRef != w.ref || ev.Value != w.val || ev.Platform != "console" {
			t.Errorf("event %d = %+v, want %+v", i, ev, w)
		}
		if ev.DeliveryID == "" || seen[ev.DeliveryID] {
			t.Errorf("event %d: delivery id %q not unique", i, ev.DeliveryID)
		}
		seen[ev.DeliveryID] = true
	}
	if hooked != "sim fleet" {
		t.Errorf("hook got %q", hooked)
	}
	text := out.String()
	for _, s := range []string{"[#1] approve?", "[Approve]", "[sim] clients 5", `message #99 has no "deny" button`} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q:\n%s", s, text)
		}
	}
}

func TestConsoleOutputForms(t *testing.T) {
	var out bytes.Buffer
	c := New(strings.NewReader(""), &out, Options{})
	ctx := context.Background()
	card, _ := c.Post(ctx, "sepm", bot.Message{Text: "card\nline two"})
	_ = c.Edit(ctx, "sepm", card, bot.Message{Text: "card v2"})
	reply, _ := c.Reply(ctx, "sepm", card, bot.Message{Text: "step done"})
	_ = c.React(ctx, "sepm", card, "✅")
	_ = c.Respond(ctx, bot.Event{User: "bob"}, bot.Message{Text: "refused", Visibility: bot.VisibleUser})
	_ = c.Respond(ctx, bot.Event{User: "bob"}, bot.Message{Text: "status for all"})
	got := out.String()
	want := "[#1] card\n    line two\n[#1 edited] card v2\n[#2 ↳1] step done\n[#1 +✅]\n[→bob] refused\n[#3] status for all\n"
	if got != want || reply != "2" {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

// TestConsoleNumbersSurviveRestart: with a SeqFile, a restarted console keeps
// numbering where it stopped, so old and new messages never share a number.
func TestConsoleNumbersSurviveRestart(t *testing.T) {
	seq := filepath.Join(t.TempDir(), "console.seq")
	var out bytes.Buffer
	c := New(strings.NewReader(""), &out, Options{SeqFile: seq})
	c.Post(context.Background(), "", bot.Message{Text: "a"})
	c.Post(context.Background(), "", bot.Message{Text: "b"})
	c2 := New(strings.NewReader(""), &out, Options{SeqFile: seq})
	ref, _ := c2.Post(context.Background(), "", bot.Message{Text: "c"})
	if ref != "3" {
		t.Errorf("after restart the next message is #%s, want #3", ref)
	}
	if c.run == c2.run {
		t.Error("two runs share a delivery-id prefix")
	}
}

// TestConsoleWaitingCardPaced: during a wait the card is printed in full at most once
// per 30 s, with one progress line in between when the progress changed; any other
// change prints the card at once.
func TestConsoleWaitingCardPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		c := New(strings.NewReader(""), &out, Options{})
		ctx := context.Background()
		steps := []bot.Step{{State: bot.StepActive, Number: 5, Title: "Wait at least three heartbeats", ID: "wait-disable", Current: true}}
		card, _ := c.Post(ctx, "sepm", bot.Message{Title: "R1", Steps: steps})
		for i := range 60 {
			p := &bot.Progress{Label: "wait 1 of 4", Elapsed: time.Duration(i) * time.Second, Total: 24 * time.Hour, Done: i, Of: 100, Unit: "clients checked in"}
			_ = c.Edit(ctx, "sepm", card, bot.Message{Title: "R1", Steps: steps, Progress: p})
			_ = c.Edit(ctx, "sepm", card, bot.Message{Title: "R1", Steps: steps, Progress: p}) // unchanged: nothing printed
			time.Sleep(time.Second)
		}
		steps[0].State = bot.StepDone
		_ = c.Edit(ctx, "sepm", card, bot.Message{Title: "R1", Steps: steps})
		text := out.String()
		if n := strings.Count(text, "[#1 edited]"); n != 3 {
			t.Errorf("%d full prints, want 3 (at 0 s, at 30 s, and the step change):\n%s", n, text)
		}
		if n := strings.Count(text, "[#1 ⏳] wait 1 of 4 · ⏳ "); n != 58 {
			t.Errorf("%d progress lines, want 58", n)
		}
		if lines := strings.Count(text, "\n"); lines > 200 {
			t.Errorf("%d lines for a minute of wait", lines)
		}
	})
}

// TestConsoleAtUserSimAndCase: `@alice !sim ...` reaches the hook; click matches a
// button by action or label in any case; react with an emoji name passes it on;
// malformed react/click lines get their usage.
func TestConsoleAtUserSimAndCase(t *testing.T) {
	var out bytes.Buffer
	hooked := ""
	in := strings.NewReader(strings.Join([]string{
		"@alice !sim fleet",
		"@carol click Approve 1",
		"@carol click DENY 1",
		"@bob react :white_check_mark: 1",
		"@bob react",
		"@bob click approve",
	}, "\n"))
	c := New(in, &out, Options{As: "alice", Hook: func(_ context.Context, line string) (string, error) {
		hooked = line
		return "ok", nil
	}})
	c.Post(context.Background(), "sepm", bot.Message{Text: "approve?", Buttons: []bot.Button{{ActionID: "approve", Value: "n1", Label: "Approve"}, {ActionID: "deny", Value: "n1", Label: "Deny"}}})
	evs := collect(t, c)
	if hooked != "sim fleet" {
		t.Errorf("@alice !sim fleet: hook got %q", hooked)
	}
	if len(evs) != 3 || evs[0].ActionID != "approve" || evs[1].ActionID != "deny" || evs[2].Reaction != ":white_check_mark:" || evs[0].Channel != "sepm" {
		t.Errorf("events %+v", evs)
	}
	for _, w := range []string{"usage: react EMOJI MESSAGE#", "usage: click BUTTON MESSAGE#"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}
