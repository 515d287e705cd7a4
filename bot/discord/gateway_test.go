package discord

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"sepmbot/bot"
	"sepmbot/bot/discord/discordtest"
)

type fixedRequests struct {
	mu   sync.Mutex
	reqs []OpenRequest
}

func (r *fixedRequests) OpenRequests(context.Context) ([]OpenRequest, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs), nil
}

func open(t *testing.T, mod func(*Config)) (*Discord, *discordtest.Fake, *fakeClock) {
	t.Helper()
	d, f, c := setup(t, mod)
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	if err := d.Open(ctx); err != nil {
		t.Fatal(err)
	}
	return d, f, c
}

// The gateway identifies with guilds + guild message reactions only (no privileged
// intent, no Message Content), and READY tells the bot its ids.
func TestGatewayIdentifiesWithUnprivilegedIntents(t *testing.T) {
	d, f, _ := open(t, nil)
	f.Snapshot(func(v discordtest.View) {
		want := int(discordgo.IntentGuilds | discordgo.IntentGuildMessageReactions)
		if v.Intents() != want {
			t.Fatalf("intents %d, want %d", v.Intents(), want)
		}
		if v.Intents()&int(discordgo.IntentMessageContent|discordgo.IntentGuildMembers|discordgo.IntentGuildPresences) != 0 {
			t.Fatal("a privileged intent was asked for")
		}
	})
	if d.BotID() != f.BotID || d.AppID() != f.AppID || !d.Connected() {
		t.Fatalf("bot %s app %s connected %v", d.BotID(), d.AppID(), d.Connected())
	}
}

// A slash command over the gateway becomes one command event with the typed
// options as /sepm text; a redelivered interaction acts once.
func TestGatewayInteractionOnce(t *testing.T) {
	d, f, _ := open(t, nil)
	cmd := commandJSON(f, "5001", "7", "rotate", map[string]any{"site": "site-a", "mode": "multi", "min-wait": "10m", "damaged-but-valid": true}, "role-ops")
	f.Dispatch("INTERACTION_CREATE", cmd)
	f.Dispatch("INTERACTION_CREATE", cmd) // redelivered
	ev := next(t, d)
	if ev.Kind != bot.EventCommand || ev.Text != "/sepm rotate site-a --mode multi --min-wait 10m --damaged-but-valid" {
		t.Fatalf("text %q", ev.Text)
	}
	if ev.User != "7" || !slices.Equal(ev.UserGroups, []string{"role-ops"}) || ev.Channel != "900" || ev.DeliveryID != "5001" || ev.Platform != "discord" {
		t.Fatalf("event %+v", ev)
	}
	if err := ev.Reply.Ack(context.Background(), bot.Message{Text: "working", Placeholder: true, Visibility: bot.VisibleUser}); err != nil {
		t.Fatal(err)
	}
	if err := ev.Reply.Answer(context.Background(), bot.Message{Text: "R1 started", Visibility: bot.VisibleUser}); err != nil {
		t.Fatal(err)
	}
	// The second delivery has had time to arrive once the callbacks are recorded
	// (frames are read in order).
	f.Dispatch("INTERACTION_CREATE", commandJSON(f, "5002", "7", "list", nil))
	if ev := next(t, d); ev.DeliveryID != "5002" {
		t.Fatalf("the redelivery acted: %+v", ev)
	}
	f.Snapshot(func(v discordtest.View) {
		cbs := v.Callbacks()
		if len(cbs) != 1 || cbs[0].Type != 5 || !strings.Contains(string(cbs[0].Data), `"flags":64`) {
			t.Fatalf("callbacks %+v", cbs)
		}
		wh := v.Webhooks()
		if len(wh) != 1 || wh[0].Method != "PATCH" || wh[0].Target != "@original" {
			t.Fatalf("webhooks %+v", wh)
		}
	})
}

// Clicks: Approve becomes a button event bound to the clicked message; Deny opens a
// modal, and its submission carries the reason.
func TestButtonsAndDenyModal(t *testing.T) {
	d, f, _ := open(t, nil)
	f.Dispatch("INTERACTION_CREATE", buttonJSON(f, "6001", "8", "900", "777", "approve:nonce1", "role-appr"))
	ev := next(t, d)
	if ev.Kind != bot.EventButton || ev.ActionID != "approve" || ev.Value != "nonce1" || ev.MessageRef != "777" || ev.Channel != "900" {
		t.Fatalf("approve click %+v", ev)
	}
	if err := ev.Reply.Ack(context.Background(), bot.Message{Text: "refused: not an approver", Visibility: bot.VisibleUser}); err != nil {
		t.Fatal(err)
	}
	f.Dispatch("INTERACTION_CREATE", buttonJSON(f, "6002", "8", "900", "777", "deny:nonce1"))
	if !f.Wait(waitBound, func(v discordtest.View) bool { return len(v.Callbacks()) == 2 }) {
		t.Fatal("no modal")
	}
	none(t, d) // the click itself votes nothing
	f.Dispatch("INTERACTION_CREATE", modalJSON(f, "6003", "8", "900", "777", "deny-reason:nonce1", "change\nfreeze"))
	ev = next(t, d)
	if ev.Kind != bot.EventButton || ev.ActionID != "deny" || ev.Value != "nonce1" || ev.MessageRef != "777" || ev.Text != "change freeze" {
		t.Fatalf("deny submission %+v", ev)
	}
	f.Snapshot(func(v discordtest.View) {
		cbs := v.Callbacks()
		if cbs[0].Type != 4 || !strings.Contains(string(cbs[0].Data), `"flags":64`) {
			t.Errorf("refusal not ephemeral: %+v", cbs[0])
		}
		if cbs[1].Type != 9 || !strings.Contains(string(cbs[1].Data), "deny-reason:nonce1") {
			t.Errorf("deny click answered %+v, want a modal", cbs[1])
		}
	})
}

// Reactions are state: a redelivered add is dropped, a remove retracts, a re-add
// after the removal counts again; the bot's own reactions are ignored; a removal's
// roles come from GuildMember, cached.
func TestReactionsAreState(t *testing.T) {
	d, f, clock := open(t, nil)
	f.SetMember("8", "role-appr")
	add := func(user string) {
		f.Dispatch("MESSAGE_REACTION_ADD", map[string]any{"user_id": user, "channel_id": "900", "message_id": "777", "guild_id": f.Guild,
			"emoji": map[string]any{"name": "✅"}, "member": memberJSON(user, "role-appr")})
	}
	add(f.BotID) // the bot seeding its own ✅
	add("8")
	add("8") // redelivered
	ev := next(t, d)
	if ev.Kind != bot.EventReactionAdded || ev.User != "8" || ev.Reaction != "✅" || ev.MessageRef != "777" || !slices.Equal(ev.UserGroups, []string{"role-appr"}) {
		t.Fatalf("add %+v", ev)
	}
	f.Unreact("900", "777", "✅", "8")
	ev = next(t, d)
	if ev.Kind != bot.EventReactionRemoved || !slices.Equal(ev.UserGroups, []string{"role-appr"}) {
		t.Fatalf("remove %+v", ev)
	}
	f.Unreact("900", "777", "✅", "8") // redelivered remove
	add("8")                          // a legitimate re-add
	ev = next(t, d)
	if ev.Kind != bot.EventReactionAdded {
		t.Fatalf("re-add %+v", ev)
	}
	// The add's member refreshed the cache: a removal within the TTL needs no lookup.
	f.Unreact("900", "777", "✅", "8")
	next(t, d)
	clock.Advance(2 * time.Minute)
	add("8")
	next(t, d)
	f.Unreact("900", "777", "✅", "8")
	next(t, d)
	none(t, d)
	f.Snapshot(func(v discordtest.View) {
		lookups := 0
		for _, c := range v.Calls() {
			if strings.HasPrefix(c.Path, "/guilds/") {
				lookups++
			}
		}
		if lookups != 0 {
			t.Errorf("%d member lookups; each add carried the member and refreshed the cache", lookups)
		}
	})
	// No add seen (a restart): the removal looks the member up once, then uses the cache.
	d2, _ := New(d.cfg)
	d2.SetAppID(f.AppID, f.BotID)
	defer d2.Close()
	rm := &discordgo.MessageReactionRemove{MessageReaction: &discordgo.MessageReaction{UserID: "8", ChannelID: "900", MessageID: "778", GuildID: f.Guild, Emoji: discordgo.Emoji{Name: "✅"}}}
	d2.reactionRemove(rm)
	if ev := <-d2.events; !slices.Equal(ev.UserGroups, []string{"role-appr"}) {
		t.Fatalf("roles of a removal %v", ev.UserGroups)
	}
	rm.MessageID = "779"
	d2.reactionRemove(rm)
	<-d2.events
	f.Snapshot(func(v discordtest.View) {
		lookups := 0
		for _, c := range v.Calls() {
			if strings.HasPrefix(c.Path, "/guilds/"+f.Guild+"/members/8") {
				lookups++
			}
		}
		if lookups != 1 {
			t.Errorf("%d GuildMember lookups for two removals within the TTL, want 1", lookups)
		}
	})
}

// A reaction added while the gateway is down (its event withheld) is found by the
// reconcile after the re-identify; one already counted is not sent again.
func TestReconcileAfterReidentify(t *testing.T) {
	reqs := &fixedRequests{}
	d, f, _ := open(t, func(c *Config) { c.Requests = reqs })
	f.SetMember("8", "role-appr")
	f.SetMember("9", "role-appr")
	ref, err := d.Post(context.Background(), "900", bot.Message{Text: "approval request"})
	if err != nil {
		t.Fatal(err)
	}
	reqs.mu.Lock()
	reqs.reqs = []OpenRequest{{Channel: "900", Message: ref, Voted: []string{"8"}}}
	reqs.mu.Unlock()
	_ = d.React(context.Background(), "900", ref, "✅")
	f.React("900", ref, "✅", "8")
	if ev := next(t, d); ev.User != "8" {
		t.Fatalf("%+v", ev)
	}

	f.Hold()
	f.Kick()
	if !f.Wait(waitBound, func(v discordtest.View) bool { return !v.Connected() }) {
		t.Fatal("still connected")
	}
	if f.React("900", ref, "✅", "9") {
		t.Fatal("the fake delivered an event while the gateway was down")
	}
	f.Release()
	ev := next(t, d)
	if ev.Kind != bot.EventReactionAdded || ev.User != "9" || ev.MessageRef != ref || !slices.Equal(ev.UserGroups, []string{"role-appr"}) {
		t.Fatalf("reconciled %+v", ev)
	}
	none(t, d) // user 8's vote was counted already: not sent again
	f.Snapshot(func(v discordtest.View) {
		if v.Identifies() < 2 || v.Resumes() < 1 {
			t.Errorf("identifies %d resumes %d: want a refused resume and a re-identify", v.Identifies(), v.Resumes())
		}
		if !slices.Contains(v.Withheld(), "MESSAGE_REACTION_ADD") {
			t.Error("nothing withheld")
		}
	})
	raw, _ := json.Marshal(ev)
	_ = raw
}

// An Approve button with a confirmation asks it first (ephemeral), and the vote is
// the click on "Yes, approve", bound to the request's message.
func TestApproveAsksItsConfirmation(t *testing.T) {
	d, f, _ := open(t, nil)
	ref, err := d.Post(context.Background(), "900", bot.Message{Title: "approval", Buttons: []bot.Button{
		{ActionID: "approve", Value: "n1", Label: "Approve", Style: "primary", Confirm: "Turn secure communication off in 3 groups of site-a for at least 30m (R1)?"},
		{ActionID: "deny", Value: "n1", Label: "Deny", Style: "danger"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.Snapshot(func(v discordtest.View) {
		if c := string(v.Message(ref).Components); !strings.Contains(c, `"custom_id":"ask-approve:n1"`) || !strings.Contains(c, `"custom_id":"deny:n1"`) {
			t.Fatalf("components %s", c)
		}
	})
	f.Dispatch("INTERACTION_CREATE", buttonJSON(f, "7001", "8", "900", ref, "ask-approve:n1"))
	if !f.Wait(waitBound, func(v discordtest.View) bool { return len(v.Callbacks()) == 1 }) {
		t.Fatal("no question")
	}
	none(t, d)
	f.Snapshot(func(v discordtest.View) {
		cb := v.Callbacks()[0]
		if cb.Type != 4 || !strings.Contains(string(cb.Data), `"flags":64`) || !strings.Contains(string(cb.Data), "3 groups of site-a") ||
			!strings.Contains(string(cb.Data), `"custom_id":"approve-ok:n1:`+ref+`"`) {
			t.Fatalf("question %s", cb.Data)
		}
	})
	f.Dispatch("INTERACTION_CREATE", buttonJSON(f, "7002", "8", "900", "888", "approve-ok:n1:"+ref))
	ev := next(t, d)
	if ev.Kind != bot.EventButton || ev.ActionID != "approve" || ev.Value != "n1" || ev.MessageRef != ref {
		t.Fatalf("vote %+v", ev)
	}
	// The answer replaces the confirmation, whose button goes.
	_ = ev.Reply.Ack(context.Background(), bot.Message{Placeholder: true, Visibility: bot.VisibleUser})
	_ = ev.Reply.Answer(context.Background(), bot.Message{Text: "discord:8 approved (1 of 2)", Visibility: bot.VisibleUser})
	f.Snapshot(func(v discordtest.View) {
		wh := v.Webhooks()
		if len(wh) != 1 || wh[0].Method != "PATCH" || wh[0].Target != "@original" || !strings.Contains(string(wh[0].Body), `"components":[]`) {
			t.Fatalf("answer %+v", wh)
		}
	})
}

// A ✅ removed while the gateway is down is retracted by the reconcile.
func TestReconcileFindsARemovalMadeWhileDown(t *testing.T) {
	reqs := &fixedRequests{}
	d, f, _ := open(t, func(c *Config) { c.Requests = reqs })
	f.SetMember("8", "role-appr")
	ref, err := d.Post(context.Background(), "900", bot.Message{Text: "approval request"})
	if err != nil {
		t.Fatal(err)
	}
	reqs.mu.Lock()
	reqs.reqs = []OpenRequest{{Channel: "900", Message: ref, Voted: []string{"8"}}}
	reqs.mu.Unlock()
	f.React("900", ref, "✅", "8")
	if ev := next(t, d); ev.Kind != bot.EventReactionAdded {
		t.Fatalf("%+v", ev)
	}
	f.Hold()
	f.Kick()
	if !f.Wait(waitBound, func(v discordtest.View) bool { return !v.Connected() }) {
		t.Fatal("still connected")
	}
	f.Unreact("900", ref, "✅", "8")
	f.Release()
	ev := next(t, d)
	if ev.Kind != bot.EventReactionRemoved || ev.User != "8" || ev.MessageRef != ref || !slices.Equal(ev.UserGroups, []string{"role-appr"}) {
		t.Fatalf("reconciled removal %+v", ev)
	}
}

type requestsOnly map[string]bool

func (r requestsOnly) ApprovalHome(_ context.Context, ref string) (bot.Home, bool) {
	return bot.Home{Platform: "discord", Channel: "900"}, r[ref]
}

// People react ✅ to everything: only reactions on approval requests (posted by this
// process with vote buttons, or known to the notifier) reach the router.
func TestOnlyReactionsOnRequestsCount(t *testing.T) {
	d, f, _ := open(t, func(c *Config) { c.Messages = requestsOnly{"discord|900|777": true} })
	posted, err := d.Post(context.Background(), "900", bot.Message{Title: "request", Buttons: []bot.Button{{ActionID: "approve", Value: "n"}}})
	if err != nil {
		t.Fatal(err)
	}
	card, err := d.Post(context.Background(), "900", bot.Message{Title: "card"})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"555", card, "777", posted} {
		f.Dispatch("MESSAGE_REACTION_ADD", map[string]any{"user_id": "8", "channel_id": "900", "message_id": msg, "guild_id": f.Guild,
			"emoji": map[string]any{"name": "✅"}, "member": memberJSON("8")})
	}
	if ev := next(t, d); ev.MessageRef != "777" {
		t.Fatalf("first event on %s, want 777 (555 and the card are no requests)", ev.MessageRef)
	}
	if ev := next(t, d); ev.MessageRef != posted {
		t.Fatalf("second event on %s, want the posted request %s", ev.MessageRef, posted)
	}
}

// After a restart (no reaction state), the reconcile sends only the reactions whose
// votes are not counted yet: a counted ✅ is not cast (and refused) again.
func TestReconcileAfterRestartSkipsCountedVotes(t *testing.T) {
	reqs := &fixedRequests{}
	d, f, _ := setup(t, func(c *Config) { c.Requests = reqs })
	f.SetMember("8", "role-appr")
	f.SetMember("9", "role-appr")
	ref, err := d.Post(context.Background(), "900", bot.Message{Text: "approval request"})
	if err != nil {
		t.Fatal(err)
	}
	_ = d.React(context.Background(), "900", ref, "✅") // the bot's own seed
	f.React("900", ref, "✅", "8")
	f.React("900", ref, "✅", "9")
	f.React("900", ref, "❌", "10")
	reqs.reqs = []OpenRequest{{Channel: "900", Message: ref, Voted: []string{"8"}}}
	d.reconcile(context.Background())
	got := map[string]string{}
	for range 2 {
		ev := next(t, d)
		got[ev.User] = ev.Reaction
	}
	none(t, d)
	if len(got) != 2 || got["9"] != "✅" || got["10"] != "❌" {
		t.Fatalf("reconciled %v, want 9 ✅ and 10 ❌ (8 is counted, the bot is the bot)", got)
	}
}

// Without a configured guild, a removal's member lookup finds the guild from the channel.
func TestMemberLookupWithoutConfiguredGuild(t *testing.T) {
	d, f, _ := setup(t, func(c *Config) { c.GuildID = "" })
	f.SetMember("8", "role-x")
	d.reactionRemove(&discordgo.MessageReactionRemove{MessageReaction: &discordgo.MessageReaction{UserID: "8", ChannelID: "900", MessageID: "1", Emoji: discordgo.Emoji{Name: "✅"}}})
	if ev := next(t, d); !slices.Equal(ev.UserGroups, []string{"role-x"}) {
		t.Fatalf("roles %v", ev.UserGroups)
	}
}

// The engine's role check at the dangerous step asks for a member's roles now.
func TestMemberRolesNow(t *testing.T) {
	d, f, clock := setup(t, nil)
	f.SetMember("8", "role-appr")
	roles, err := d.MemberRoles(context.Background(), "8")
	if err != nil || !slices.Equal(roles, []string{"role-appr"}) {
		t.Fatalf("%v %v", roles, err)
	}
	f.SetMember("8") // the role was taken away
	clock.Advance(2 * time.Minute)
	if roles, err := d.MemberRoles(context.Background(), "8"); err != nil || len(roles) != 0 {
		t.Fatalf("after the TTL: %v %v", roles, err)
	}
	if _, err := d.MemberRoles(context.Background(), "99"); err == nil {
		t.Fatal("an unknown member has roles")
	}
	d2, _, _ := setup(t, func(c *Config) { c.GuildID = ""; c.HTTPClient = f.Client() })
	if _, err := d2.MemberRoles(context.Background(), "8"); err == nil {
		t.Fatal("roles without any known server")
	}
}
