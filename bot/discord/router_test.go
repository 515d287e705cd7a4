package discord

import (
	"context"
	"sync"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/bot"
	"sepmbot/bot/discord/discordtest"
	"sepmbot/rotation"
	"sepmbot/store"
)

// ballotEngine records the ballots the router casts; everything else is unused.
type ballotEngine struct {
	mu      sync.Mutex
	ballots []rotation.Ballot
	got     chan struct{}
}

func (e *ballotEngine) Vote(_ context.Context, b rotation.Ballot) (approvals.Outcome, error) {
	e.mu.Lock()
	e.ballots = append(e.ballots, b)
	e.mu.Unlock()
	e.got <- struct{}{}
	return approvals.Outcome{Kind: approvals.OutcomeRejected, Message: "denied"}, nil
}
func (e *ballotEngine) Plan(context.Context, rotation.PlanOptions) (rotation.Plan, rotation.Inventory, error) {
	return rotation.Plan{}, rotation.Inventory{}, nil
}
func (e *ballotEngine) Rotate(context.Context, string, string, rotation.PlanOptions) (rotation.Rotation, error) {
	return rotation.Rotation{}, nil
}
func (e *ballotEngine) Get(context.Context, string) (rotation.View, error) {
	return rotation.View{}, nil
}
func (e *ballotEngine) List(context.Context) ([]rotation.Rotation, error) { return nil, nil }
func (e *ballotEngine) Done(context.Context, string, string, string) (string, error) {
	return "", nil
}
func (e *ballotEngine) Confirm(context.Context, string, string, string) (string, error) {
	return "", nil
}
func (e *ballotEngine) Pause(context.Context, string, string) error                { return nil }
func (e *ballotEngine) Resume(context.Context, string, string) error               { return nil }
func (e *ballotEngine) Abort(context.Context, string, string, string) error        { return nil }
func (e *ballotEngine) Audit(context.Context, string) ([]store.AuditRecord, error) { return nil, nil }

type memDeliveries struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memDeliveries) Deliver(_ context.Context, id string, _ time.Time, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[id] {
		return false, nil
	}
	m.seen[id] = true
	return true, nil
}

// The reason typed in the Deny form reaches the engine's ballot, bound to the
// request (nonce) and its message, through the real router.
func TestDenyFormReasonReachesTheBallot(t *testing.T) {
	d, f, _ := open(t, nil)
	roles, err := bot.ParseRoles(nil, []string{"discord:8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := &ballotEngine{got: make(chan struct{}, 4)}
	r := &bot.Router{Engine: eng, Deliveries: &memDeliveries{seen: map[string]bool{}}, Roles: roles}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { r.Serve(ctx, d); close(served) }()
	defer func() { cancel(); <-served }()

	f.Dispatch("INTERACTION_CREATE", modalJSON(f, "8001", "8", "900", "777", "deny-reason:nonce9", "not during the change freeze"))
	select {
	case <-eng.got:
	case <-time.After(waitBound):
		t.Fatal("no ballot")
	}
	eng.mu.Lock()
	b := eng.ballots[0]
	eng.mu.Unlock()
	if b.Kind != approvals.Deny || b.RequestID != "nonce9" || b.MessageRef != "discord|900|777" || b.Reason != "not during the change freeze" || b.User != "discord:8" {
		t.Fatalf("ballot %+v", b)
	}
	if !f.Wait(waitBound, func(v discordtest.View) bool { return len(v.Callbacks()) == 1 }) {
		t.Fatal("the form was not acknowledged")
	}
}
