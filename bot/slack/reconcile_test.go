package slack

import (
	"context"
	"testing"

	"sepmbot/bot"
	"sepmbot/bot/slack/slackfake"
)

// TestReactionWhileDisconnectedCountsAfterReconnect: an approver reacts while the
// bot's Socket Mode connection is down; after it reconnects, reactions.get on the
// open request hands the vote to the router (and its answer goes nowhere: the
// approver did nothing just now). Reactions on a decided request are not read.
func TestReactionWhileDisconnectedCountsAfterReconnect(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	h := start(t, fake, openStore(t), false, nil)
	ctx := context.Background()
	req := bot.Message{Title: "🔐 Approval needed: R1 · site-a", Buttons: []bot.Button{
		{ActionID: "approve", Value: "A1", Label: "Approve", Confirm: "Turn secure communication off?"},
		{ActionID: "deny", Value: "A1", Label: "Deny"},
	}}
	ts, err := h.a.Post(ctx, "C1", req)
	if err != nil {
		t.Fatal(err)
	}
	decided, err := h.a.Post(ctx, "C1", req)
	if err != nil {
		t.Fatal(err)
	}
	req.Buttons[0].Disabled, req.Buttons[1].Disabled = true, true
	if err := h.a.Edit(ctx, "C1", decided, req); err != nil {
		t.Fatal(err)
	}
	if err := h.a.React(ctx, "C1", ts, bot.EmojiApprove); err != nil { // the bot's seed
		t.Fatal(err)
	}

	fake.BlockConnections(true)
	fake.Disconnect()
	if err := fake.React("UBOB", "C1", ts, "heavy_check_mark"); err != nil {
		t.Fatal(err)
	}
	if err := fake.React("UCAROL", "C1", decided, "white_check_mark"); err != nil {
		t.Fatal(err)
	}
	if err := fake.React("UDAVE", "C1", ts, "tada"); err != nil {
		t.Fatal(err)
	}
	back := fake.Connected()
	fake.BlockConnections(false)
	h.await(back, "the reconnection")

	ev := h.next()
	if ev.Kind != bot.EventReactionAdded || ev.User != "UBOB" || ev.Reaction != bot.EmojiApprove || ev.MessageRef != ts || ev.Channel != "C1" {
		t.Fatalf("reconciled event %+v", ev)
	}
	if err := ev.Reply.Ack(ctx, bot.Message{Text: "vote refused: already counted", Visibility: bot.VisibleUser}); err != nil {
		t.Fatal(err)
	}
	h.none("C1", ts) // carol's vote on the decided request, dave's 🎉 and the bot's seed: nothing
	if n := len(fake.Ephemerals("UBOB")); n != 0 {
		t.Fatalf("bob got %d answers for a vote he made while the bot was away", n)
	}
}
