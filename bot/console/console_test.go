package console

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
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
	c := New(in, &out, Options{As: "alice", MultiUser: true, Hook: func(_ context.Context, line string) (string, error) {
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
	_ = c.Respond(ctx, bot.Event{User: "bob"}, bot.Message{Text: "refused"})
	got := out.String()
	want := "[#1] card\n    line two\n[#1 edited] card v2\n[#2 ↳1] step done\n[#1 +✅]\n[→bob] refused\n"
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

// TestConsoleIsOnePerson: without MultiUser (sepmbot run) every line is the console
// user's; a line that tries to speak as someone else is refused with a message and
// yields no event, whatever it would have done.
func TestConsoleIsOnePerson(t *testing.T) {
	for _, tc := range []struct {
		line     string
		wantUser string // "" for no event
		wantSaid string
	}{
		{"/sepm status", "alice", ""},
		{"react ✅ 7", "alice", ""},
		{"@alice /sepm status", "alice", ""}, // the console's own name changes nothing
		{"@bob react ✅ 7", "", "refused: this console is one person, alice (--console-user); a line cannot speak as @bob"},
		{"@bob /sepm approve R1", "", "Only `sepmbot demo` lets one terminal speak as several users"},
		{"@carol click approve 1", "", "cannot speak as @carol"},
		{"@operator /sepm abort R1", "", "cannot speak as @operator"},
		{"@bob\u202e /sepm status", "", "cannot speak as @bob"},
		{"@ /sepm status", "", "needs a user name"},
		{"@bob", "", "needs a user name"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			line := strings.ReplaceAll(tc.line, "\\u202e", "\u202e")
			var out bytes.Buffer
			c := New(strings.NewReader(line+"\n"), &out, Options{As: "alice"})
			c.Post(context.Background(), "", bot.Message{Text: "approve?", Buttons: []bot.Button{{ActionID: "approve", Value: "n1", Label: "Approve"}}})
			evs := collect(t, c)
			if tc.wantUser == "" {
				if len(evs) != 0 {
					t.Fatalf("events %+v, want none", evs)
				}
				if !strings.Contains(out.String(), "[→alice] ") || !strings.Contains(out.String(), tc.wantSaid) {
					t.Errorf("output lacks %q:\n%s", tc.wantSaid, out.String())
				}
				if strings.Contains(out.String(), "\u202e") {
					t.Errorf("the refusal echoes a bidi control: %q", out.String())
				}
				return
			}
			if len(evs) != 1 || evs[0].User != tc.wantUser {
				t.Fatalf("events %+v, want one of %s", evs, tc.wantUser)
			}
		})
	}
}
