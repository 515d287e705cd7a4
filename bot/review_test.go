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
)

// memDeliveries is an in-memory Deliveries.
type memDeliveries struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memDeliveries) Deliver(_ context.Context, id string, _ time.Time, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	if m.seen[id] {
		return false, nil
	}
	m.seen[id] = true
	return true, nil
}

// gatedEngine records votes; an approve blocks until gate is closed.
type gatedEngine struct {
	fakeEngine
	gate chan struct{}
	mu   sync.Mutex
	done []string // votes that returned, in order
}

func (g *gatedEngine) Vote(_ context.Context, b rotation.Ballot) (approvals.Outcome, error) {
	if b.Kind == approvals.Approve {
		<-g.gate
	}
	g.mu.Lock()
	g.done = append(g.done, fmt.Sprintf("%s %s", b.User, b.Kind))
	g.mu.Unlock()
	return approvals.Outcome{Message: "ok"}, nil
}

func (g *gatedEngine) votes() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.done...)
}

// chanPlatform delivers the events of a channel and records answers.
type chanPlatform struct {
	fakePlatform
	events chan Event
}

func (c *chanPlatform) Events(context.Context) <-chan Event { return c.events }

// TestServeKeepsEachUsersOrder: bob reacts ✅ then removes the reaction. The engine
// must see approve, then retract; handled out of order the retraction finds no vote
// and the approval stands although bob took it back.
func TestServeKeepsEachUsersOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		roles, err := ParseRoles(nil, []string{"console:bob,console:carol"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		eng := &gatedEngine{gate: make(chan struct{})}
		r := &Router{Engine: eng, Deliveries: &memDeliveries{}, Roles: roles}
		p := &chanPlatform{events: make(chan Event, 2)}
		p.events <- Event{Kind: EventReactionAdded, Platform: "console", User: "bob", Reaction: "✅", MessageRef: "7", DeliveryID: "1"}
		p.events <- Event{Kind: EventReactionRemoved, Platform: "console", User: "bob", Reaction: "✅", MessageRef: "7", DeliveryID: "2"}
		close(p.events)
		served := make(chan struct{})
		go func() { r.Serve(context.Background(), p); close(served) }()
		synctest.Wait()
		if got := eng.votes(); len(got) != 0 {
			t.Errorf("while bob's approve is in flight the engine already handled %v", got)
		}
		close(eng.gate)
		<-served
		synctest.Wait()
		if got := strings.Join(eng.votes(), ","); got != "console:bob approve,console:bob retract" {
			t.Errorf("votes %q, want approve then retract", got)
		}
	})
}

// TestServeWaitsForHandlers: Serve returns only when every event it read has been
// handled, so the caller can close the store and the engine after it.
func TestServeWaitsForHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		roles, err := ParseRoles(nil, []string{"console:bob,console:carol"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		eng := &gatedEngine{gate: make(chan struct{})}
		r := &Router{Engine: eng, Deliveries: &memDeliveries{}, Roles: roles}
		p := &chanPlatform{events: make(chan Event, 1)}
		p.events <- Event{Kind: EventReactionAdded, Platform: "console", User: "bob", Reaction: "✅", MessageRef: "7", DeliveryID: "1"}
		close(p.events)
		served := make(chan struct{})
		go func() { r.Serve(context.Background(), p); close(served) }()
		synctest.Wait()
		select {
		case <-served:
			t.Error("Serve returned while a vote was still being handled")
		default:
		}
		close(eng.gate)
		<-served
		if got := eng.votes(); len(got) != 1 {
			t.Errorf("votes %v", got)
		}
	})
}

// TestNotifierConcurrentUpdatesOneCard: two Updates of a new rotation at once (the
// engine's announce and its driver, or a command) post one card, not two.
func TestNotifierConcurrentUpdatesOneCard(t *testing.T) {
	db := openStore(t)
	fp := &fakePlatform{}
	n := NewNotifier(db, nil, Outlet{Platform: fp, DefaultChannel: "sepm", Pacing: Pacing{CardInterval: time.Millisecond}})
	ctx := context.Background()
	const rotations = 100
	for i := range rotations {
		v := view(rotation.StatusRunning, 0)
		v.Rotation.ID = fmt.Sprintf("R%d", i)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 2 {
			wg.Go(func() {
				<-start
				n.Update(ctx, v)
			})
		}
		close(start)
		wg.Wait()
	}
	n.Close()
	posts := 0
	for _, c := range fp.Log() {
		if strings.HasPrefix(c, "post ") {
			posts++
		}
	}
	if posts != rotations {
		t.Errorf("%d cards posted for %d rotations", posts, rotations)
	}
}

// TestRolesDuplicateApproversCountOnce: the same approver named twice is one person,
// so two required approvals cannot be met.
func TestRolesDuplicateApproversCountOnce(t *testing.T) {
	r, err := ParseRoles(nil, []string{"console:bob, console:bob"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.ApproverCount(); n != 1 {
		t.Errorf("ApproverCount = %d, want 1", n)
	}
}

// TestNotifierIgnoresOlderState: the engine's driver and a command each read the
// rotation and call Update from their own goroutine; a view read before the one
// already shown must not overwrite it (the card shows the latest state).
func TestNotifierIgnoresOlderState(t *testing.T) {
	db := openStore(t)
	fp := &fakePlatform{}
	n := NewNotifier(db, nil, Outlet{Platform: fp, DefaultChannel: "sepm", Pacing: Pacing{CardInterval: time.Millisecond}})
	ctx := context.Background()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	first := view(rotation.StatusRunning, 0)
	first.Rotation.Updated = t0
	older := view(rotation.StatusRunning, 1)
	older.Rotation.Updated = t0.Add(time.Second)
	newer := view(rotation.StatusPaused, 1)
	newer.Rotation.Updated = t0.Add(2 * time.Second)
	n.Update(ctx, first)
	n.Update(ctx, newer)
	n.Update(ctx, older) // read before newer, delivered after it
	n.Close()
	log := fp.Log()
	if last := log[len(log)-1]; !strings.Contains(last, "paused") {
		t.Errorf("the card ends with %q, not the newest (paused) state\n%s", last, strings.Join(log, "\n"))
	}
}

// TestParseRolesRefusesDisplayNames: "console:@bob" or "slack:Bob Smith" can never
// match an immutable id; they are refused at start with a clear message instead of
// silently leaving nobody able to approve.
func TestParseRolesRefusesDisplayNames(t *testing.T) {
	for _, e := range []string{"console:@bob", "slack:@bob", "slack:Bob Smith", "discord:bob#1234 x"} {
		_, err := ParseRoles(nil, []string{e, "console:carol"}, nil)
		if err == nil {
			t.Errorf("%q accepted", e)
			continue
		}
		if !strings.Contains(err.Error(), "--approvers") {
			t.Errorf("%q: unclear error %v", e, err)
		}
	}
}
