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
	req := approvalRequest()
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

// TestReactionRemovedWhileDisconnectedWithdrawsAfterReconnect: removing ✅ withdraws
// an approval (the router reads reaction_removed as a retraction). Bob's ✅ counted
// live; he removes it while Socket Mode is down, and carol adds hers. After the
// reconnect the router gets bob's removal first, then carol's vote; dave, who
// approved with the button and never reacted, loses nothing. A second reconnect
// does not withdraw bob's approval again, and the known reactions survive a
// restart: a removal made while the bot was stopped is seen too.
func TestReactionRemovedWhileDisconnectedWithdrawsAfterReconnect(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	db := openStore(t)
	h := start(t, fake, db, false, nil)
	ctx := context.Background()
	// next takes the router's next event and answers it, as the router would, so a
	// restart does not hand it out again.
	next := func() bot.Event {
		t.Helper()
		ev := h.next()
		if err := ev.Reply.Ack(ctx, bot.Message{Text: "noted", Visibility: bot.VisibleUser}); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	req := approvalRequest()
	ts, err := h.a.Post(ctx, "C1", req)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.a.React(ctx, "C1", ts, bot.EmojiApprove); err != nil { // the bot's seed
		t.Fatal(err)
	}
	if err := fake.React("UBOB", "C1", ts, "white_check_mark"); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Kind != bot.EventReactionAdded || ev.User != "UBOB" {
		t.Fatalf("bob's live reaction: %+v", ev)
	}
	if _, err := fake.Click("UDAVE", "C1", ts, "approve"); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Kind != bot.EventButton || ev.User != "UDAVE" {
		t.Fatalf("dave's click: %+v", ev)
	}

	reconnect := func(away func()) {
		t.Helper()
		fake.BlockConnections(true)
		fake.Disconnect()
		away()
		back := fake.Connected()
		fake.BlockConnections(false)
		h.await(back, "the reconnection")
	}
	reconnect(func() {
		if err := fake.Unreact("UBOB", "C1", ts, "white_check_mark"); err != nil {
			t.Fatal(err)
		}
		if err := fake.React("UCAROL", "C1", ts, "heavy_check_mark"); err != nil {
			t.Fatal(err)
		}
	})
	ev := next()
	if ev.Kind != bot.EventReactionRemoved || ev.User != "UBOB" || ev.Reaction != bot.EmojiApprove || ev.MessageRef != ts || ev.Channel != "C1" || ev.Recorded {
		t.Fatalf("first after the reconnect: %+v, want bob's ✅ removed (not Recorded: the router keeps its id)", ev)
	}
	if ev := next(); ev.Kind != bot.EventReactionAdded || ev.User != "UCAROL" {
		t.Fatalf("second after the reconnect: %+v, want carol's ✅", ev)
	}
	h.none("C1", ts) // nothing for dave's button vote, nor the bot's seed

	reconnect(func() {})
	if ev := next(); ev.Kind != bot.EventReactionAdded || ev.User != "UCAROL" {
		t.Fatalf("after a second reconnect: %+v, want only carol's ✅ again (the router drops it by its id)", ev)
	}
	h.none("C1", ts)

	// A restart: the new adapter knows carol's ✅ from the store.
	fake.BlockConnections(true)
	fake.Disconnect()
	h.stop()
	if err := fake.Unreact("UCAROL", "C1", ts, "heavy_check_mark"); err != nil {
		t.Fatal(err)
	}
	fake.BlockConnections(false)
	h = start(t, fake, db, false, nil)
	ev = next()
	for ev.User == "UMARK" { // the markers above, never answered, are handed out again
		ev = next()
	}
	if ev.Kind != bot.EventReactionRemoved || ev.User != "UCAROL" {
		t.Fatalf("after a restart: %+v, want carol's ✅ removed", ev)
	}
	h.none("C1", ts)
}

// approvalRequest is an approval request as the router posts it (its buttons),
// fresh each time: a test may disable its buttons.
func approvalRequest() bot.Message {
	return bot.Message{Title: "🔐 Approval needed: R1 · site-a", Buttons: []bot.Button{
		{ActionID: "approve", Value: "A1", Label: "Approve", Confirm: "Turn secure communication off?"},
		{ActionID: "deny", Value: "A1", Label: "Deny"},
	}}
}
