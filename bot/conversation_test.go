package bot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"sepmbot/approvals"
	"sepmbot/rotation"
	"sepmbot/store"
)

// timedPlatform records every call with the bubble's time, channel and first line.
type timedPlatform struct {
	name  string
	start time.Time

	mu    sync.Mutex
	next  int
	calls []timedCall
}

type timedCall struct {
	at      time.Duration
	op      string // post, edit, reply, react, respond
	channel string
	ref     string
	text    string
	vis     Visibility
}

func newTimedPlatform(name string) *timedPlatform {
	return &timedPlatform{name: name, start: time.Now()}
}

func (f *timedPlatform) Name() string { return f.name }

func (f *timedPlatform) rec(op, channel, ref string, m Message, fresh bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fresh {
		f.next++
		ref = fmt.Sprint(f.next)
	}
	f.calls = append(f.calls, timedCall{at: time.Since(f.start), op: op, channel: channel, ref: ref, text: RenderText(m), vis: m.Visibility})
	return ref
}

func (f *timedPlatform) Post(_ context.Context, ch string, m Message) (string, error) {
	return f.rec("post", ch, "", m, true), nil
}
func (f *timedPlatform) Edit(_ context.Context, ch, ref string, m Message) error {
	f.rec("edit", ch, ref, m, false)
	return nil
}
func (f *timedPlatform) Reply(_ context.Context, ch, ref string, m Message) (string, error) {
	return f.rec("reply", ch, "", m, true), nil
}
func (f *timedPlatform) React(_ context.Context, ch, ref, emoji string) error {
	f.rec("react", ch, ref, Message{Text: emoji}, false)
	return nil
}
func (f *timedPlatform) Events(context.Context) <-chan Event { return nil }
func (f *timedPlatform) Respond(_ context.Context, ev Event, m Message) error {
	f.rec("respond", ev.Channel, "", m, false)
	return nil
}

func (f *timedPlatform) log() []timedCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]timedCall(nil), f.calls...)
}

// TestCardNeverBehind is acceptance 2 through the notifier: 1,000 updates of each
// card across 6 step changes in 60 s, with three milestones at each step change.
// Every edit shows the newest state of its card at its time; every state is on the
// card within one --card-interval (with 3 cards sharing a budget of 10 edits a
// minute: within the budget's share, 3 × 6 s); every milestone reaches the thread
// within 1 s of its post slot (the channel's posts paced at one per second), in
// order, none dropped.
func TestCardNeverBehind(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cards  int
		budget int
	}{{"one card", 1, 0}, {"three cards sharing a budget", 3, 10}} {
		t.Run(tc.name, func(t *testing.T) {
			db := openStore(t)
			synctest.Test(t, func(t *testing.T) { cardNeverBehind(t, db, tc.cards, tc.budget) })
		})
	}
}

func cardNeverBehind(t *testing.T, db *store.DB, cards, budget int) {
	const interval, postEvery, window = 2 * time.Second, time.Second, time.Minute
	fp := newTimedPlatform("fake")
	n := NewNotifier(db, nil, Outlet{Platform: fp, DefaultChannel: "ops", Pacing: Pacing{CardInterval: interval, PostInterval: postEvery, EditBudget: budget, EditWindow: window}})
	ctx := context.Background()
	t0 := time.Now()
	submitted := map[string][]time.Duration{} // rotation -> state i submitted at [i]
	type milestone struct {
		text string
		at   time.Duration
	}
	var milestones []milestone
	for i := range 1000 {
		step := i * 6 / 1000
		for c := range cards {
			id := fmt.Sprintf("R%d", c+1)
			v := view(rotation.StatusRunning, step)
			v.Rotation.ID, v.Rotation.Home = id, "fake|ops"
			v.Rotation.Updated = t0.Add(time.Duration(i) * 60 * time.Millisecond)
			v.Rotation.LastError = fmt.Sprintf("poll %d", i)
			if i > 0 && step != (i-1)*6/1000 {
				for _, s := range []string{"finished", "vote", "started"} {
					text := fmt.Sprintf("%s step %d %s", id, step, s)
					n.Post(ctx, id, text)
					milestones = append(milestones, milestone{text, time.Since(fp.start)})
				}
			}
			n.Update(ctx, v)
			submitted[id] = append(submitted[id], time.Since(fp.start))
		}
		time.Sleep(60 * time.Millisecond)
	}
	time.Sleep(2 * time.Minute)
	synctest.Wait()
	n.Close()

	state := func(text string) int {
		i := strings.Index(text, "poll ")
		if i < 0 {
			return -1
		}
		var k int
		fmt.Sscanf(text[i:], "poll %d", &k)
		return k
	}
	cardOf := map[string]string{} // message ref -> rotation
	shows := map[string][]timedCall{}
	var replies []timedCall
	for _, c := range fp.log() {
		if c.channel != "ops" {
			t.Errorf("%s in channel %q, not the rotations' home", c.op, c.channel)
		}
		switch c.op {
		case "post":
			id, _, _ := strings.Cut(strings.TrimPrefix(c.text, "*"), " ")
			cardOf[c.ref] = id
			shows[id] = append(shows[id], c)
		case "edit":
			shows[cardOf[c.ref]] = append(shows[cardOf[c.ref]], c)
		case "reply":
			replies = append(replies, c)
		}
	}
	bound := interval
	if budget > 0 {
		bound = max(interval, time.Duration(cards)*window/time.Duration(budget))
	}
	for id, subs := range submitted {
		for _, e := range shows[id] {
			newest := 0
			for j, at := range subs {
				if at < e.at {
					newest = j
				}
			}
			if got := state(e.text); got < newest {
				t.Errorf("%s: the card at %s shows state %d, but %d was submitted before", id, e.at, got, newest)
			}
		}
		worst := time.Duration(0)
		for j, at := range subs {
			by := time.Duration(-1)
			for _, e := range shows[id] {
				if e.at >= at && state(e.text) >= j {
					by = e.at
					break
				}
			}
			if by < 0 {
				t.Fatalf("%s: state %d never shown", id, j)
			}
			worst = max(worst, by-at)
		}
		if worst > bound {
			t.Errorf("%s: the card was %s behind, more than %s", id, worst, bound)
		}
		t.Logf("%s: %d shows of 1,000 states, at most %s behind (bound %s)", id, len(shows[id]), worst, bound)
	}
	if len(replies) != len(milestones) {
		t.Fatalf("%d milestones posted, %d reached the thread", len(milestones), len(replies))
	}
	// The cards' own posts took the channel's first slots at 0 s, 1 s, ...
	slot := time.Duration(cards-1) * postEvery
	late := time.Duration(0)
	for k, m := range milestones {
		slot = max(m.at, slot+postEvery)
		r := replies[k]
		if r.text != m.text {
			t.Errorf("milestone %d is %q, want %q (order)", k, r.text, m.text)
		}
		if r.at < slot || r.at > slot+time.Second {
			t.Errorf("milestone %q reached the thread at %s, its slot is %s", m.text, r.at, slot)
		}
		late = max(late, r.at-slot)
	}
	t.Logf("%d milestones, at most %s after their slot", len(milestones), late)
}

// slowEngine takes five seconds to plan.
type slowEngine struct{ fakeEngine }

func (s *slowEngine) Plan(ctx context.Context, o rotation.PlanOptions) (rotation.Plan, rotation.Inventory, error) {
	time.Sleep(5 * time.Second)
	return s.fakeEngine.Plan(ctx, o)
}

// handle is a recording reply handle.
type handle struct {
	start time.Time
	mu    sync.Mutex
	acks  []timedCall
	ans   []timedCall
}

func (h *handle) Ack(_ context.Context, m Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.acks = append(h.acks, timedCall{at: time.Since(h.start), text: RenderText(m), vis: m.Visibility, op: fmt.Sprint(m.Placeholder)})
	return nil
}

func (h *handle) Answer(_ context.Context, m Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ans = append(h.ans, timedCall{at: time.Since(h.start), text: RenderText(m), vis: m.Visibility})
	return nil
}

// TestRouterAcksThenAnswers is acceptance 3: a command whose handler takes 5 s is
// acknowledged at once (before the handler returns) and answered through the reply
// handle after it; a refusal is the acknowledgement itself, for the user only, and
// nothing reaches the channel.
func TestRouterAcksThenAnswers(t *testing.T) {
	r, _, _ := newRouter(t)
	eng := &slowEngine{}
	r.Engine = eng
	synctest.Test(t, func(t *testing.T) {
		fp := newTimedPlatform("console")
		events := make(chan Event, 3)
		slow := &handle{start: time.Now()}
		refused := &handle{start: time.Now()}
		second := &handle{start: time.Now()}
		ev := cmd("alice", "/sepm plan", "a1")
		ev.Reply = slow
		events <- ev
		behind := cmd("alice", "/sepm help", "a3") // waits for alice's plan, acked at once
		behind.Reply = second
		events <- behind
		bad := cmd("mallory", "/sepm rotate site-a", "a2")
		bad.Reply = refused
		events <- bad
		close(events)
		done := make(chan struct{})
		go func() { r.Serve(context.Background(), &chanPlatform{events: events}); close(done) }()

		time.Sleep(time.Second)
		synctest.Wait()
		slow.mu.Lock()
		// The ack waits only for the delivery id's durable record, which concurrent
		// events share (a group commit: at most the commit in progress and its own).
		const commit = 50 * time.Millisecond
		if len(slow.acks) != 1 || slow.acks[0].at > commit || slow.acks[0].op != "true" || len(slow.ans) != 0 {
			t.Errorf("after 1 s: acks %+v answers %+v; want one placeholder ack at 0s and no answer yet", slow.acks, slow.ans)
		}
		slow.mu.Unlock()
		<-done
		if len(slow.ans) != 1 || slow.ans[0].at < 5*time.Second || slow.ans[0].at > 5*time.Second+commit || !strings.Contains(slow.ans[0].text, "Plan for site-a") {
			t.Errorf("answer %+v, want the plan at 5s through the handle", slow.ans)
		}
		if len(refused.acks) != 1 || refused.acks[0].vis != VisibleUser || !strings.Contains(refused.acks[0].text, "needs the operator role") || len(refused.ans) != 0 {
			t.Errorf("refusal: acks %+v answers %+v; want one ephemeral ack", refused.acks, refused.ans)
		}
		if len(second.acks) != 1 || second.acks[0].at > commit || len(second.ans) != 1 || second.ans[0].at < 5*time.Second || second.ans[0].at > 5*time.Second+2*commit || !strings.Contains(second.ans[0].text, "Subcommands") {
			t.Errorf("a command behind a slow one: acks %+v answers %+v; want acked at 0s, answered at 5s", second.acks, second.ans)
		}
		for _, c := range fp.log() {
			t.Errorf("the platform was called: %+v", c)
		}
	})
}

// TestRouterRefusalFallbackStaysEphemeral: without a reply handle the router answers
// through Respond, and a refusal is marked for the user only (the console prints it
// as "[→user]", Slack as an ephemeral message), while a placeholder is dropped.
func TestRouterRefusalFallbackStaysEphemeral(t *testing.T) {
	r, _, _ := newRouter(t)
	fp := newTimedPlatform("console")
	r.serveOne(context.Background(), fp, cmd("mallory", "/sepm rotate site-a", "f1"), false)
	r.serveOne(context.Background(), fp, cmd("vera", "/sepm status R1", "f2"), false)
	calls := fp.log()
	if len(calls) != 2 || calls[0].op != "respond" || calls[0].vis != VisibleUser || calls[1].vis != VisibleUser {
		t.Fatalf("calls %+v", calls)
	}
	for _, c := range calls {
		if strings.Contains(c.text, "working on it") {
			t.Errorf("a placeholder reached a platform without an ack deadline: %+v", c)
		}
	}
}

// homeEngine is a fake engine that remembers rotations with their home.
type homeEngine struct {
	fakeEngine
	mu   sync.Mutex
	rots map[string]rotation.Rotation
}

func (h *homeEngine) Rotate(ctx context.Context, user, home string, o rotation.PlanOptions) (rotation.Rotation, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := view(rotation.StatusRunning, 2)
	v.Rotation.Home, v.Rotation.Requester = home, user
	h.rots[v.Rotation.ID] = v.Rotation
	return v.Rotation, nil
}

func (h *homeEngine) Get(_ context.Context, id string) (rotation.View, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.rots[id]
	if !ok {
		return rotation.View{}, rotation.ErrNotFound
	}
	return rotation.View{Rotation: r}, nil
}

// TestRotationLivesAtHome is acceptance 4: a rotation started in channel A lives in A
// (card, thread, approval request); /sepm in a channel not allowed is refused with a
// reason; status asked in another allowed channel B answers in B while the card
// stays in A; a reaction on a message in B with the same ref as A's request changes
// nothing; a vote from another platform counts only when --link maps the account.
func TestRotationLivesAtHome(t *testing.T) {
	r, _, db := newRouter(t)
	eng := &homeEngine{rots: map[string]rotation.Rotation{}}
	r.Engine = eng
	r.Channels = Channels{"console": {"A", "B"}}
	ctx := context.Background()
	con := newTimedPlatform("console")
	other := newTimedPlatform("slack")
	n := NewNotifier(db, nil, Outlet{Platform: con, DefaultChannel: "sepm", Pacing: Pacing{CardInterval: time.Millisecond}}, Outlet{Platform: other, DefaultChannel: "C9"})
	r.Messages = n

	start := cmd("alice", "/sepm rotate site-a", "h1")
	start.Channel = "A"
	if m := r.Handle(ctx, start); !strings.Contains(m.Text, "R1 started") {
		t.Fatalf("rotate: %q", m.Text)
	}
	v, _ := eng.Get(ctx, "R1")
	if v.Rotation.Home != "console|A" {
		t.Fatalf("home %q, want console|A", v.Rotation.Home)
	}
	req := approvals.New("nonce", "R1", "console:alice", "h", 2, time.Hour, time.Now())
	v.Approval = &req
	n.Update(ctx, v)
	n.Post(ctx, "R1", "▶ approval: two-person approval")
	refs, err := n.RequestApproval(ctx, v)
	if err != nil || len(refs) != 1 {
		t.Fatalf("request: %v %v", refs, err)
	}
	n.Close()
	ref, ok := ParseRef(refs[0])
	if !ok || ref.Platform != "console" || ref.Channel != "A" {
		t.Fatalf("request ref %q is not qualified with console|A", refs[0])
	}
	for _, c := range con.log() {
		if c.channel != "A" {
			t.Errorf("%s %q in channel %q, not the rotation's home A", c.op, firstLine(c.text), c.channel)
		}
	}
	if len(other.log()) != 0 {
		t.Errorf("the other platform was used: %+v", other.log())
	}

	// Not an allowed channel: refused with the reason, nothing called.
	elsewhere := cmd("alice", "/sepm status R1", "h2")
	elsewhere.Channel = "random"
	if m := r.Handle(ctx, elsewhere); m.Visibility != VisibleUser || !strings.Contains(m.Text, "only in A, B") {
		t.Errorf("command in #random: %+v", m)
	}
	// Status in B answers in B (to the channel asked), the card stays in A.
	inB := cmd("vera", "/sepm status R1", "h3")
	inB.Channel = "B"
	before := len(con.log())
	r.serveOne(ctx, con, inB, false)
	calls := con.log()[before:]
	if len(calls) != 1 || calls[0].op != "respond" || calls[0].channel != "B" || calls[0].vis != VisibleChannel || !strings.Contains(calls[0].text, "R1 · site-a") {
		t.Errorf("status in B: %+v", calls)
	}
	// A reaction in B on a message with the same id as A's request: its qualified
	// ref differs, so the engine is handed a ref it never stored.
	var got []rotation.Ballot
	r.Engine = &ballotEngine{homeEngine: eng, ballots: &got}
	react := Event{Kind: EventReactionAdded, Platform: "console", Channel: "B", User: "bob", Reaction: "✅", MessageRef: ref.ID, DeliveryID: "h4"}
	r.Handle(ctx, react)
	if len(got) != 1 || got[0].MessageRef == refs[0] || got[0].MessageRef != "console|B|"+ref.ID {
		t.Errorf("ballot %+v, want ref console|B|%s (not A's %s)", got, ref.ID, refs[0])
	}
	// An unknown emoji on the request gets a hint; elsewhere nothing.
	thumbs := Event{Kind: EventReactionAdded, Platform: "console", Channel: "A", User: "bob", Reaction: "👍", MessageRef: ref.ID, DeliveryID: "h5"}
	if m := r.Handle(ctx, thumbs); !strings.Contains(m.Text, "does not vote") || m.Visibility != VisibleUser {
		t.Errorf("👍 on the request: %+v", m)
	}
	thumbs.Channel, thumbs.DeliveryID = "B", "h6"
	if m := r.Handle(ctx, thumbs); m.Text != "" {
		t.Errorf("👍 elsewhere answered %q", m.Text)
	}

	// approve R1 from Slack: refused unless linked; linked, it counts as the person.
	got = nil
	r.Roles.Approvers = append(r.Roles.Approvers, "slack:UBOB")
	fromSlack := Event{Kind: EventCommand, Platform: "slack", Channel: "C9", User: "UBOB", Text: "/sepm approve R1", DeliveryID: "h7"}
	if m := r.Handle(ctx, fromSlack); !strings.Contains(m.Text, "votes count only from there") || len(got) != 0 {
		t.Errorf("unlinked vote from slack: %q, ballots %+v", m.Text, got)
	}
	r.Links, _ = ParseLinks([]string{"console:bob=slack:UBOB"})
	fromSlack.DeliveryID = "h8"
	r.Handle(ctx, fromSlack)
	if len(got) != 1 || got[0].User != "console:bob" {
		t.Errorf("linked vote: %+v, want it counted as console:bob", got)
	}
}

// ballotEngine records ballots.
type ballotEngine struct {
	*homeEngine
	ballots *[]rotation.Ballot
}

func (b *ballotEngine) Vote(_ context.Context, bl rotation.Ballot) (approvals.Outcome, error) {
	*b.ballots = append(*b.ballots, bl)
	return approvals.Outcome{Message: "noted"}, nil
}

func TestEmojiVotes(t *testing.T) {
	for _, e := range []string{"✅", "✔️", "✔", ":white_check_mark:", "white_check_mark", "heavy_check_mark", ":heavy_check_mark:"} {
		if a, ok := EmojiVote(e); !ok || !a {
			t.Errorf("%q does not approve", e)
		}
	}
	for _, e := range []string{"❌", "✖️", ":x:", "x", "heavy_multiplication_x"} {
		if a, ok := EmojiVote(e); !ok || a {
			t.Errorf("%q does not deny", e)
		}
	}
	for _, e := range []string{"👍", ":+1:", "thumbsup", "🎉", "ok", ""} {
		if _, ok := EmojiVote(e); ok {
			t.Errorf("%q votes", e)
		}
	}
}

func TestEscapes(t *testing.T) {
	if got := EscapeSlack("<!channel> hi <@U123> <https://evil.example|click> & *bold*"); got != "&lt;!channel&gt; hi &lt;@U123&gt; &lt;https://evil.example|click&gt; &amp; *bold*" {
		t.Errorf("slack: %q", got)
	}
	got := EscapeDiscord("@everyone @here <@123> <@&456> <#789> [click](https://evil.example) `code`")
	for _, bad := range []string{"@everyone", "@here", "<@123>", "<@&456>", "<#789>", "[click]("} {
		if strings.Contains(got, bad) {
			t.Errorf("discord escape left %q in %q", bad, got)
		}
	}
	if !strings.Contains(got, "`code`") {
		t.Errorf("discord escape broke the bot's markup: %q", got)
	}
}

func TestChannelsAndLinks(t *testing.T) {
	ch, err := ParseChannels([]string{"slack:C1,slack:C2", "discord:99"})
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Allows("slack", "C2") || ch.Allows("slack", "C3") || !ch.Allows("discord", "99") || !ch.Allows("console", "anything") {
		t.Errorf("allow-list %v", ch)
	}
	for _, bad := range []string{"slack", "slack:", ":C1", "slack:C 1", "slack:C|1"} {
		if _, err := ParseChannels([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	l, err := ParseLinks([]string{"console:bob=slack:UBOB=discord:1"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Person("discord:1") != "console:bob" || l.Person("slack:UX") != "slack:UX" || !l.Linked("slack:UBOB") {
		t.Errorf("links %v", l)
	}
	for _, bad := range [][]string{{"console:bob"}, {"console:bob=slack:@bob"}, {"console:bob=slack:U1", "console:carol=slack:U1"}} {
		if _, err := ParseLinks(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestMirroredRequestVotesFromHomeOnly: a request mirrored on another platform
// carries several refs; a reaction there counts only from a linked account, as the
// person it is linked to, and a decided request is marked everywhere.
func TestMirroredRequestVotesFromHomeOnly(t *testing.T) {
	r, _, db := newRouter(t)
	con := newTimedPlatform("console")
	slack := newTimedPlatform("slack")
	n := NewNotifier(db, nil, Outlet{Platform: con, DefaultChannel: "sepm", Pacing: Pacing{CardInterval: time.Millisecond}},
		Outlet{Platform: slack, DefaultChannel: "C9", Mirror: true, Pacing: Pacing{CardInterval: time.Millisecond}})
	r.Messages = n
	var got []rotation.Ballot
	r.Engine = &ballotEngine{homeEngine: &homeEngine{rots: map[string]rotation.Rotation{}}, ballots: &got}
	r.Roles.Approvers = append(r.Roles.Approvers, "slack:UBOB", "slack:UEVE")
	ctx := context.Background()

	v := view(rotation.StatusRunning, 2)
	v.Rotation.Home = "console|A"
	req := approvals.New("nonce", "R1", "console:alice", "h", 2, time.Hour, time.Now())
	v.Approval = &req
	n.Update(ctx, v)
	refs, err := n.RequestApproval(ctx, v)
	if err != nil || len(refs) != 2 {
		t.Fatalf("refs %v %v, want the home's and the mirror's", refs, err)
	}
	mirror, _ := ParseRef(refs[1])
	if mirror.Platform != "slack" || mirror.Channel != "C9" {
		t.Fatalf("mirror ref %v", mirror)
	}
	react := func(user, delivery string) Message {
		return r.Handle(ctx, Event{Kind: EventReactionAdded, Platform: "slack", Channel: "C9", User: user, Reaction: "white_check_mark", MessageRef: mirror.ID, DeliveryID: delivery})
	}
	if m := react("UEVE", "m1"); !strings.Contains(m.Text, "lives on console") || len(got) != 0 {
		t.Errorf("unlinked reaction on the mirror: %q, ballots %+v", m.Text, got)
	}
	r.Links, _ = ParseLinks([]string{"console:bob=slack:UBOB"})
	react("UBOB", "m2")
	if len(got) != 1 || got[0].User != "console:bob" || got[0].MessageRef != refs[1] {
		t.Errorf("linked reaction: %+v", got)
	}
	decided := req
	decided.State = approvals.StateRejected
	decided.DeniedBy = "console:carol"
	v.Approval = &decided
	v.Rotation.Updated = time.Now()
	n.Update(ctx, v)
	n.Close()
	for _, p := range []*timedPlatform{con, slack} {
		marked := false
		for _, c := range p.log() {
			marked = marked || c.op == "edit" && strings.Contains(c.text, "❌ denied by carol")
		}
		if !marked {
			t.Errorf("%s: the decided request is not marked", p.name)
		}
	}
}

// TestLinkedRequesterIsOnePerson: a linked person rotating from another platform is
// recorded as their link's identity, so their vote from any account is the
// requester's (and refused by the two-person rule).
func TestLinkedRequesterIsOnePerson(t *testing.T) {
	r, fe, _ := newRouter(t)
	r.Links, _ = ParseLinks([]string{"console:alice=slack:UALICE"})
	r.Roles.Operators = append(r.Roles.Operators, "slack:UALICE")
	r.Handle(context.Background(), Event{Kind: EventCommand, Platform: "slack", Channel: "C1", User: "UALICE", Text: "/sepm rotate site-a", DeliveryID: "l1"})
	if len(fe.calls) != 1 || fe.calls[0] != "rotate console:alice " {
		t.Errorf("calls %q, want the rotation requested by console:alice", fe.calls)
	}
}
