package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"sepmbot/bot"
	"sepmbot/bot/slack/slackfake"
)

// postAnchor posts a message through the adapter so reactions have something to land on.
func postAnchor(t *testing.T, h *harness, channel string) string {
	t.Helper()
	ts, err := h.a.Post(context.Background(), channel, bot.Message{Text: "anchor"})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestSameEventThreeTimesActsOnce(t *testing.T) {
	for _, mode := range []string{"socket", "http"} {
		t.Run(mode, func(t *testing.T) {
			fake := newFake(t, slackfake.Options{})
			h := start(t, fake, openStore(t), mode == "http", nil)
			ts := postAnchor(t, h, "C1")
			ev := fake.ReactionEvent("UALICE", "C1", ts, "white_check_mark", true)
			for retry := range 3 {
				a, err := fake.SendEvent(ev, retry)
				if err != nil || a.Status != http.StatusOK {
					t.Fatalf("delivery %d: %v %+v", retry, err, a)
				}
				if retry == 0 && inboxCount(t, h.db) != 1 { // acked only once durable
					t.Fatal("acked before its dedupe record was in the store")
				}
			}
			got := h.next()
			if got.Kind != bot.EventReactionAdded || got.User != "UALICE" || got.Reaction != bot.EmojiApprove || got.MessageRef != ts || got.Channel != "C1" {
				t.Fatalf("event %+v", got)
			}
			if got.DeliveryID != "ev/"+ev["event_id"].(string) {
				t.Fatalf("delivery id %q", got.DeliveryID)
			}
			h.none("C1", ts) // the two redeliveries never reached the router

			// A click delivered twice and a command delivered twice: once each.
			cmd := fake.CommandPayload("UBOB", "C1", "status")
			for retry := range 2 {
				go fake.SendCommand(cmd, retry)
			}
			c := h.next()
			if c.Kind != bot.EventCommand || c.Text != "/sepm status" || c.User != "UBOB" {
				t.Fatalf("command %+v", c)
			}
			_ = c.Reply.Ack(context.Background(), bot.Message{Text: "ok", Visibility: bot.VisibleUser})
			h.none("C1", ts)
		})
	}
}

func TestCommandAckCarriesTheEphemeralAnswer(t *testing.T) {
	for _, mode := range []string{"socket", "http"} {
		t.Run(mode, func(t *testing.T) {
			fake := newFake(t, slackfake.Options{})
			h := start(t, fake, openStore(t), mode == "http", nil)
			answers := make(chan slackfake.Answer, 1)
			go func() {
				a, err := fake.Command("UALICE", "C1", "help")
				if err != nil {
					t.Error(err)
				}
				answers <- a
			}()
			ev := h.next()
			if err := ev.Reply.Ack(context.Background(), bot.Message{Text: "usage: /sepm help", Visibility: bot.VisibleUser}); err != nil {
				t.Fatal(err)
			}
			a := <-answers
			if !strings.Contains(a.Text, "usage: /sepm help") || !a.Ephemeral() {
				t.Fatalf("ack %+v %s", a, a.Body)
			}
			if n := fake.Calls("chat.postMessage"); n != 0 {
				t.Fatalf("an ephemeral answer reached the channel (%d posts)", n)
			}
		})
	}
}

func TestCommandAckedInTimeWhenTheRouterIsSlow(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	h := start(t, fake, openStore(t), false, func(c *Config) { c.AckWait = 1 }) // the router misses it
	answers := make(chan slackfake.Answer, 1)
	go func() {
		a, _ := fake.Command("UALICE", "C1", "rotate site-a")
		answers <- a
	}()
	ev := h.next()
	a := <-answers // acked empty without the router
	if a.Text != "" {
		t.Fatalf("ack %q", a.Text)
	}
	// The router's late answer goes by chat.postEphemeral to that user only.
	if err := ev.Reply.Ack(context.Background(), bot.Message{Text: "R1 started", Visibility: bot.VisibleUser}); err != nil {
		t.Fatal(err)
	}
	eph := fake.Ephemerals("UALICE")
	if len(eph) != 1 || !strings.Contains(eph[0].Text, "R1 started") || eph[0].Channel != "C1" {
		t.Fatalf("ephemerals %+v", eph)
	}
}

func TestAckedButUnhandledEnvelopeIsHandledAfterRestart(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	db := openStore(t)
	h := start(t, fake, db, false, nil)
	ts := postAnchor(t, h, "C1")
	if _, err := fake.SendEvent(fake.ReactionEvent("UALICE", "C1", ts, "x", true), 0); err != nil {
		t.Fatal(err) // acked: recorded
	}
	first := h.next()
	h.stop() // the bot dies before the router answered it

	h2 := start(t, fake, db, false, nil)
	again := h2.next()
	if again.DeliveryID != first.DeliveryID || again.Reaction != bot.EmojiDeny {
		t.Fatalf("after restart %+v, want %+v", again, first)
	}
	// Answered now: a third start hands out nothing.
	_ = again.Reply.Ack(context.Background(), bot.Message{Text: "vote refused: already counted", Visibility: bot.VisibleUser})
	h2.stop()
	h3 := start(t, fake, db, false, nil)
	h3.none("C1", ts)
}

func TestForeignTeamAndBotOwnReactionsChangeNothing(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	fake.AddUser("UEXT", "T0OTHER", "guest")
	h := start(t, fake, openStore(t), false, nil)
	ts := postAnchor(t, h, "C1")

	// A slash command from another workspace: refused with a reason, no event.
	a, err := fake.SendCommand(fake.CommandPayload("UEXT", "C1", "rotate site-a"), 0)
	if err != nil || !strings.Contains(a.Text, "refused") || !a.Ephemeral() {
		t.Fatalf("foreign command answer %+v %v", a, err)
	}
	// A reaction by a guest of another workspace in a shared channel: ignored.
	if err := fake.React("UEXT", "C1", ts, "white_check_mark"); err != nil {
		t.Fatal(err)
	}
	// The bot's own seeded reaction: not a vote.
	if err := h.a.React(context.Background(), "C1", ts, bot.EmojiApprove); err != nil {
		t.Fatal(err)
	}
	if _, err := fake.SendEvent(fake.ReactionEvent("UBOT", "C1", ts, "white_check_mark", true), 0); err != nil {
		t.Fatal(err)
	}
	// A click from another team.
	p, _ := fake.ClickPayload("UALICE", "C1", ts, "approve")
	if p == nil {
		p = map[string]any{}
	}
	raw, _ := json.Marshal(map[string]any{"type": "block_actions", "team": map[string]any{"id": "T0OTHER"},
		"user": map[string]any{"id": "UEXT", "team_id": "T0OTHER"}, "container": map[string]any{"channel_id": "C1", "message_ts": ts},
		"actions": []any{map[string]any{"action_id": "approve", "block_id": "b", "value": "x", "action_ts": "1.1"}}})
	var click map[string]any
	_ = json.Unmarshal(raw, &click)
	if _, err := fake.SendInteraction(click, 0); err != nil {
		t.Fatal(err)
	}
	h.none("C1", ts)
	if len(fake.Ephemerals("UEXT")) < 2 { // the command's refusal and the click's
		t.Fatalf("the foreign user got no reason: %+v", fake.Ephemerals("UEXT"))
	}
}

func TestRevokedTokenStopsTheBot(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	h := start(t, fake, openStore(t), false, nil)
	fake.RevokeTokens()
	for range h.events {
	}
	if err := h.a.Err(); err == nil || !strings.Contains(err.Error(), "token_revoked") {
		t.Fatalf("Err() = %v, want token_revoked", err)
	}
}

func TestOtherDropsReconnect(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	h := start(t, fake, openStore(t), false, nil)
	for range 2 {
		c := fake.Connected()
		fake.Disconnect()
		h.await(c, "a reconnection")
	}
	ts := postAnchor(t, h, "C1")
	h.none("C1", ts)
	if h.a.Err() != nil {
		t.Fatal(h.a.Err())
	}
}

// TestReaderNeverWaitsForTheRouter: with the router stalled, far more envelopes
// than any buffer holds are all acknowledged (Slack would otherwise redeliver
// them), and the router gets every one once it reads again, in order.
func TestReaderNeverWaitsForTheRouter(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	h := start(t, fake, openStore(t), false, nil)
	ts := postAnchor(t, h, "C1")
	const n = 300
	for i := range n {
		name := "white_check_mark"
		if i%2 == 1 {
			name = "x"
		}
		a, err := fake.SendEvent(fake.ReactionEvent("UALICE", "C1", ts, name, i%4 < 2), 0)
		if err != nil || a.Status != http.StatusOK {
			t.Fatalf("envelope %d not acknowledged while the router is stalled: %v", i, err)
		}
	}
	for i := range n {
		ev := h.next()
		want := bot.EmojiApprove
		if i%2 == 1 {
			want = bot.EmojiDeny
		}
		if ev.Reaction != want {
			t.Fatalf("event %d out of order: %s", i, ev.Reaction)
		}
	}
}
