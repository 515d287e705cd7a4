package discord

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"sepmbot/bot"
	"sepmbot/bot/discord/discordtest"
)

type countingObserver struct {
	calls, limited map[string]int
}

func (o *countingObserver) ChatCall(platform, method string, err error) {
	if platform != "discord" {
		panic(platform)
	}
	o.calls[method]++
}
func (o *countingObserver) ChatRateLimited(_, method string) { o.limited[method]++ }

// Every REST call reaches the fake (the Transport rewrites discord.com), the fake
// records posts, edits, reactions and thread replies, and every message goes out
// with allowed mentions off.
func TestRESTGoesToTheFakeAndIsRecorded(t *testing.T) {
	d, f, _ := setup(t, nil)
	ctx := context.Background()
	msg := bot.Message{Title: "R1 · site-a", Text: "hello @everyone <@123> [x](https://evil)", Buttons: []bot.Button{{ActionID: "approve", Value: "n1", Label: "Approve", Style: "primary"}}}
	ref, err := d.Post(ctx, "900", msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Edit(ctx, "900", ref, bot.Message{Title: "R1 · decided", Buttons: []bot.Button{{ActionID: "approve", Value: "n1", Label: "Approve", Disabled: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := d.React(ctx, "900", ref, "✅"); err != nil {
		t.Fatal(err)
	}
	reply, err := d.Reply(ctx, "900", ref, bot.Message{Text: "step 1 done"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Reply(ctx, "900", ref, bot.Message{Text: "step 2 done"}); err != nil {
		t.Fatal(err)
	}
	f.Snapshot(func(v discordtest.View) {
		for _, c := range v.Calls() {
			if c.Status >= 300 {
				t.Errorf("%s %s answered %d", c.Method, c.Path, c.Status)
			}
		}
		m := v.Message(ref)
		if m == nil || m.Edits != 1 {
			t.Fatalf("card %+v", m)
		}
		var am struct {
			Parse *[]string `json:"parse"`
		}
		if err := json.Unmarshal(m.AllowedMentions, &am); err != nil || am.Parse == nil || len(*am.Parse) != 0 {
			t.Errorf("allowed mentions %s, want parse []", m.AllowedMentions)
		}
		if !strings.Contains(string(m.Components), `"disabled":true`) {
			t.Errorf("decided request's buttons not disabled: %s", m.Components)
		}
		first := v.Messages()[0]
		_ = first
		if r := v.Reactions("900", ref, "✅"); len(r) != 1 || r[0] != f.BotID {
			t.Errorf("reactions %v", r)
		}
		rm := v.Message(reply)
		if rm == nil || rm.ChannelID != ref || !m.Thread {
			t.Errorf("thread reply %+v (card thread %v)", rm, m.Thread)
		}
		threads := 0
		for _, c := range v.Calls() {
			if strings.HasSuffix(c.Path, "/threads") {
				threads++
			}
		}
		if threads != 1 {
			t.Errorf("%d thread creations for two replies", threads)
		}
	})
}

// Mentions and masked links in text from SEPM or a user are neutralised in the embed.
func TestRenderNeutralisesMentionsAndLinks(t *testing.T) {
	r := render(bot.Message{Title: "@everyone", Text: "@here <@123> <@&5> <#7> [click](https://evil.example) `@everyone in code` *bold*",
		Fields: []bot.Field{{Label: "group", Value: "@everyone"}}, Context: []string{"<@1>"}})
	e := r.Embeds[0]
	all := e.Title + e.Description + e.Fields[0].Value
	for _, bad := range []string{"@everyone", "@here", "<@123>", "<@&5>", "<#7>", "[click](", "<@1>"} {
		if strings.Contains(strings.ReplaceAll(all, "`@everyone in code`", ""), bad) {
			t.Errorf("%q survived: %q", bad, all)
		}
	}
	if !strings.Contains(e.Description, "**bold**") {
		t.Errorf("bold not rendered: %q", e.Description)
	}
}

// A card with 200 groups and 200 steps stays within Discord's limits.
func TestRenderStaysWithinLimits(t *testing.T) {
	m := bot.Message{Title: strings.Repeat("T", 400), Text: strings.Repeat("body line\n", 600)}
	for i := range 200 {
		m.List = append(m.List, strings.Repeat("g", 50)+string(rune('a'+i%26)))
		m.Steps = append(m.Steps, bot.Step{State: bot.StepPending, Number: i + 1, Title: "step", ID: "s"})
		m.Fields = append(m.Fields, bot.Field{Label: "L", Value: strings.Repeat("v", 2000)})
		m.Buttons = append(m.Buttons, bot.Button{ActionID: "approve", Value: "x", Label: strings.Repeat("b", 100)})
	}
	r := render(m)
	e := r.Embeds[0]
	total, all := 0, ""
	for _, x := range r.Embeds {
		total += len([]rune(x.Title)) + len([]rune(x.Description))
		all += x.Description
		if len([]rune(x.Description)) > maxDescription {
			t.Fatalf("description %d runes", len([]rune(x.Description)))
		}
	}
	for _, f := range e.Fields {
		total += len([]rune(f.Name)) + len([]rune(f.Value))
		if len([]rune(f.Value)) > maxFieldValue {
			t.Fatalf("field value %d runes", len([]rune(f.Value)))
		}
	}
	if len([]rune(e.Title)) > maxTitle || len(e.Fields) > maxFields || total > maxEmbedTotal || len(r.Embeds) > 10 {
		t.Fatalf("title %d, fields %d, total %d, embeds %d", len([]rune(e.Title)), len(e.Fields), total, len(r.Embeds))
	}
	if !strings.Contains(all, "more") {
		t.Error("no '…and N more' where the list was cut")
	}
	if len(r.Components) > maxRows {
		t.Fatalf("%d rows", len(r.Components))
	}
}

// Posts honour 429's retry_after: the adapter waits it out (on the shared clock)
// and the post goes through; it never retries early (the fake would refuse again).
func TestPostHonoursRetryAfter(t *testing.T) {
	obs := &countingObserver{calls: map[string]int{}, limited: map[string]int{}}
	d, f, clock := setup(t, func(c *Config) { c.Observer = obs })
	f.Limit("POST /channels/900/messages", 2, 5*time.Second)
	ctx := context.Background()
	for i := range 5 {
		if _, err := d.Post(ctx, "900", bot.Message{Text: "milestone"}); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	f.Snapshot(func(v discordtest.View) {
		if n := len(v.Messages()); n != 5 {
			t.Fatalf("%d messages posted, want 5 (never dropped)", n)
		}
		if v.Limited() == 0 {
			t.Fatal("the fake never answered 429: the test drove nothing too fast")
		}
		if v.Limited() != obs.limited["message.create"] {
			t.Errorf("observer counted %d 429s, fake sent %d", obs.limited["message.create"], v.Limited())
		}
		// Each 429 was followed by a wait of exactly its retry_after: no second 429 in a row.
		calls := v.Calls()
		for i := 1; i < len(calls); i++ {
			if calls[i].Status == 429 && calls[i-1].Status == 429 {
				t.Errorf("retried before retry_after passed (calls %d and %d both 429)", i-1, i)
			}
		}
		var body struct {
			RetryAfter float64 `json:"retry_after"`
		}
		for _, c := range calls {
			_ = json.Unmarshal(c.Body, &body)
		}
	})
	if len(clock.Slept()) == 0 {
		t.Fatal("no wait on the clock")
	}
	if obs.calls["message.create"] < 5 {
		t.Errorf("observer saw %d calls", obs.calls["message.create"])
	}
}

// A card edit refused with 429 returns at once as a bot.RateLimitError carrying
// retry_after, so the coalescer sends the newest state later (no old edit queued).
func TestEditRateLimitGoesToTheCoalescer(t *testing.T) {
	d, f, clock := setup(t, nil)
	ctx := context.Background()
	ref, err := d.Post(ctx, "900", bot.Message{Text: "card"})
	if err != nil {
		t.Fatal(err)
	}
	f.Limit("PATCH /channels/900/messages/", 1, 3*time.Second)
	if err := d.Edit(ctx, "900", ref, bot.Message{Text: "v1"}); err != nil {
		t.Fatal(err)
	}
	err = d.Edit(ctx, "900", ref, bot.Message{Text: "v2"})
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() != 3*time.Second {
		t.Fatalf("second edit: %v, want a RetryAfter of 3s", err)
	}
	if len(clock.Slept()) != 0 {
		t.Fatal("an edit waited inside the adapter")
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Fatal("token in an error")
	}
}

// The 3 s window never waits behind a rate limit: a 429 on an interaction callback
// returns at once (no sleep on the clock), whatever retry_after says.
func TestInteractionCallbackNeverWaits(t *testing.T) {
	d, f, clock := setup(t, nil)
	f.Limit("POST /interactions/", 0, time.Hour)
	i := commandInteraction(f, "1", "list", nil)
	r := &interactionReply{d: d, i: i, at: clock.Now()}
	err := r.Ack(context.Background(), bot.Message{Text: "x", Visibility: bot.VisibleUser})
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) {
		t.Fatalf("ack under 429: %v", err)
	}
	if len(clock.Slept()) != 0 {
		t.Fatal("the interaction window waited behind a rate limit")
	}
}

// A reactor's answer is one short reply in the thread of the message they reacted
// to, naming them (mentions off); a thread started before a restart is reused.
func TestRespondToAReactionInTheThread(t *testing.T) {
	d, f, _ := setup(t, nil)
	ctx := context.Background()
	req, err := d.Post(ctx, "900", bot.Message{Title: "approval"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Reply(ctx, "900", req, bot.Message{Text: "first"}); err != nil {
		t.Fatal(err)
	}
	d2, _, _ := setup(t, func(c *Config) { c.HTTPClient = f.Client() }) // restarted: knows no threads
	ev := bot.Event{Kind: bot.EventReactionAdded, Platform: "discord", User: "8", Channel: "900", MessageRef: req, Reaction: "✅"}
	if err := d2.Respond(ctx, ev, bot.Message{Text: "refused: discord:8 does not hold the approver role\nmore detail", Visibility: bot.VisibleUser}); err != nil {
		t.Fatal(err)
	}
	f.Snapshot(func(v discordtest.View) {
		var inThread []*discordtest.Message
		for _, m := range v.Messages() {
			if m.ChannelID == req {
				inThread = append(inThread, m)
			}
		}
		if len(inThread) != 2 || inThread[1].Content != "<@8>" || !strings.Contains(string(inThread[1].Embeds), "refused") || strings.Contains(string(inThread[1].Embeds), "more detail") {
			t.Fatalf("thread %+v", inThread)
		}
	})
}
