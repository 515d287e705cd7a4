package bot

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"sepmbot/approvals"
	"sepmbot/rotation"
	"sepmbot/store"
)

// fakeEngine records calls; the router's decisions are what is under test.
type fakeEngine struct {
	calls []string
}

func (f *fakeEngine) Plan(context.Context, rotation.PlanOptions) (rotation.Plan, rotation.Inventory, error) {
	f.calls = append(f.calls, "plan")
	return rotation.Plan{Site: "site-a", Path: "single"}, rotation.Inventory{}, nil
}

func (f *fakeEngine) Rotate(_ context.Context, user, _ string, o rotation.PlanOptions) (rotation.Rotation, error) {
	c := "rotate " + user + " " + o.Mode
	if o.DamagedButValid {
		c += " damaged-but-valid"
	}
	f.calls = append(f.calls, c)
	return rotation.Rotation{ID: "R1", Plan: rotation.Plan{Path: "single"}}, nil
}

func (f *fakeEngine) Get(_ context.Context, id string) (rotation.View, error) {
	f.calls = append(f.calls, "get "+id)
	return rotation.View{}, fmt.Errorf("rotation %s: %w", id, rotation.ErrNotFound)
}

func (f *fakeEngine) List(context.Context) ([]rotation.Rotation, error) {
	f.calls = append(f.calls, "list")
	return nil, nil
}

func (f *fakeEngine) Vote(_ context.Context, b rotation.Ballot) (approvals.Outcome, error) {
	f.calls = append(f.calls, fmt.Sprintf("vote %s %s %s %s", b.User, b.Kind, b.MessageRef, b.RequestID))
	return approvals.Outcome{Kind: approvals.OutcomeVoted, Message: b.User + " approved (1 of 2)"}, nil
}

func (f *fakeEngine) Done(_ context.Context, user, id, step string) (string, error) {
	f.calls = append(f.calls, "done "+user+" "+id+" "+step)
	return "noted", nil
}

func (f *fakeEngine) Confirm(_ context.Context, user, id, step string) (string, error) {
	f.calls = append(f.calls, "confirm "+id+" "+step)
	return "confirmed", nil
}
func (f *fakeEngine) Pause(_ context.Context, user, id string) error {
	f.calls = append(f.calls, "pause "+id)
	return nil
}
func (f *fakeEngine) Resume(_ context.Context, user, id string) error {
	f.calls = append(f.calls, "resume "+id)
	return nil
}
func (f *fakeEngine) Abort(_ context.Context, user, id, reason string) error {
	f.calls = append(f.calls, "abort "+id+" "+reason)
	return nil
}
func (f *fakeEngine) Audit(_ context.Context, id string) ([]store.AuditRecord, error) {
	f.calls = append(f.calls, "audit "+id)
	return nil, nil
}

func newRouter(t *testing.T) (*Router, *fakeEngine, *store.DB) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "sepmbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	roles, err := ParseRoles([]string{"console:alice"}, []string{"console:bob,console:carol", "slack-group:S0614TZR7"}, []string{"console:vera"})
	if err != nil {
		t.Fatal(err)
	}
	fe := &fakeEngine{}
	return &Router{Engine: fe, Deliveries: db, Roles: roles, Sites: []string{"site-a"}}, fe, db
}

// dump reads every bucket the router could touch, to show that a refusal wrote nothing.
func dump(t *testing.T, db *store.DB) string {
	t.Helper()
	var b strings.Builder
	err := db.View(context.Background(), func(tx *store.Tx) error {
		for _, bucket := range []string{store.BucketRotations, store.BucketApprovals, store.BucketDelivered, store.BucketTimers, store.BucketMeta} {
			if err := tx.ForEach(bucket, func(k string, v []byte) error {
				fmt.Fprintf(&b, "%s/%s=%x\n", bucket, k, v)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := db.Audit(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "audit=%d", len(recs))
	return b.String()
}

func cmd(user, text, delivery string) Event {
	return Event{Kind: EventCommand, Platform: "console", Channel: "sepm", User: user, Text: text, DeliveryID: delivery}
}

func TestRouterRepeatedDeliveryIgnored(t *testing.T) {
	r, fe, _ := newRouter(t)
	ctx := context.Background()
	first := r.Handle(ctx, cmd("alice", "/sepm rotate site-a", "d1"))
	if !strings.Contains(first.Text, "R1 started") {
		t.Fatalf("first delivery: %q", first.Text)
	}
	again := r.Handle(ctx, cmd("alice", "/sepm rotate site-a", "d1"))
	if again.Text != "" {
		t.Errorf("repeated delivery answered %q", again.Text)
	}
	if len(fe.calls) != 1 {
		t.Errorf("engine calls %v, want one rotate", fe.calls)
	}
	// A new delivery id is a new request.
	r.Handle(ctx, cmd("alice", "/sepm rotate site-a", "d2"))
	if len(fe.calls) != 2 {
		t.Errorf("engine calls %v", fe.calls)
	}
}

func TestRouterRefusalsChangeNothing(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"viewer rotates", cmd("vera", "/sepm rotate site-a", "r1"), "needs the operator role"},
		{"stranger reads", cmd("mallory", "/sepm status", "r2"), "needs the viewer role"},
		{"approver rotates", cmd("bob", "/sepm rotate", "r3"), "needs the operator role"},
		{"operator approves", cmd("alice", "/sepm approve R1", "r4"), "needs the approver role"},
		{"malformed", cmd("alice", "/sepm rotat site-a", "r5"), "usage:"},
		{"missing id", cmd("alice", "/sepm done", "r6"), "usage:"},
		{"bad duration", cmd("alice", "/sepm rotate --min-wait 5x", "r7"), "usage:"},
		{"unknown site", cmd("alice", "/sepm rotate site-z", "r8"), "usage:"},
		{"non-approver reacts", Event{Kind: EventReactionAdded, Platform: "console", Channel: "sepm", User: "vera", Reaction: "✅", MessageRef: "7", DeliveryID: "r9"}, "approver role"},
		{"non-approver clicks", Event{Kind: EventButton, Platform: "console", Channel: "sepm", User: "alice", ActionID: "approve", Value: "n", MessageRef: "7", DeliveryID: "r10"}, "approver role"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, fe, db := newRouter(t)
			before := dump(t, db)
			got := r.Handle(context.Background(), tc.ev)
			if !strings.Contains(got.Text, tc.want) {
				t.Errorf("answer %q does not contain %q", got.Text, tc.want)
			}
			if len(fe.calls) != 0 {
				t.Errorf("engine was called: %v", fe.calls)
			}
			if after := dump(t, db); after != before {
				t.Errorf("the store changed on refusal:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestRouterVotes(t *testing.T) {
	r, fe, _ := newRouter(t)
	ctx := context.Background()
	r.Handle(ctx, Event{Kind: EventReactionAdded, Platform: "console", Channel: "sepm", User: "bob", Reaction: "✅", MessageRef: "7", DeliveryID: "v1"})
	r.Handle(ctx, Event{Kind: EventReactionRemoved, Platform: "console", Channel: "sepm", User: "bob", Reaction: "✅", MessageRef: "7", DeliveryID: "v2"})
	r.Handle(ctx, Event{Kind: EventReactionAdded, Platform: "console", Channel: "sepm", User: "carol", Reaction: "❌", MessageRef: "7", DeliveryID: "v3"})
	r.Handle(ctx, Event{Kind: EventButton, Platform: "console", Channel: "sepm", User: "carol", ActionID: "approve", Value: "nonce", MessageRef: "7", DeliveryID: "v4"})
	// A group member approves through the group entry.
	r.Handle(ctx, Event{Kind: EventReactionAdded, Platform: "slack", Channel: "C1", User: "U1", UserGroups: []string{"S0614TZR7"}, Reaction: "white_check_mark", MessageRef: "9", DeliveryID: "v5"})
	// Other emoji are ignored silently.
	if m := r.Handle(ctx, Event{Kind: EventReactionAdded, Platform: "console", Channel: "sepm", User: "bob", Reaction: "🎉", MessageRef: "7", DeliveryID: "v6"}); m.Text != "" {
		t.Errorf("other emoji answered %q", m.Text)
	}
	want := []string{
		"vote console:bob approve console|sepm|7 ",
		"vote console:bob retract console|sepm|7 ",
		"vote console:carol deny console|sepm|7 ",
		"vote console:carol approve console|sepm|7 nonce",
		"vote slack:U1 approve slack|C1|9 ",
	}
	if strings.Join(fe.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(fe.calls, "\n"), strings.Join(want, "\n"))
	}
}

func TestRouterCommands(t *testing.T) {
	r, fe, _ := newRouter(t)
	ctx := context.Background()
	steps := []struct{ ev Event }{
		{cmd("alice", "/sepm done R1 http-msl", "c1")},
		{cmd("alice", "/sepm pause R1", "c2")},
		{cmd("alice", "/sepm resume R1", "c3")},
		{cmd("alice", "/sepm abort R1 changed my mind", "c4")},
		{cmd("vera", "/sepm audit R1", "c5")},
		{cmd("vera", "/sepm status R9", "c6")},
		{cmd("carol", "/sepm approve R1", "c7")},
		{cmd("alice", "/sepm rotate site-a --damaged-but-valid", "c9")},
	}
	for _, s := range steps {
		r.Handle(ctx, s.ev)
	}
	want := []string{"done console:alice R1 http-msl", "pause R1", "resume R1", "abort R1 changed my mind", "audit R1", "get R9", "get R1", "vote console:carol approve  ", "rotate console:alice  damaged-but-valid"}
	if strings.Join(fe.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(fe.calls, "\n"), strings.Join(want, "\n"))
	}
	help := r.Handle(ctx, cmd("vera", "/sepm help", "c8"))
	if !strings.Contains(help.Text, "rotate") {
		t.Errorf("help: %q", help.Text)
	}
}

func TestParseRoles(t *testing.T) {
	if _, err := ParseRoles([]string{"alice"}, nil, nil); err == nil {
		t.Error("an entry without platform accepted")
	}
	if _, err := ParseRoles([]string{"*"}, nil, nil); err == nil {
		t.Error("'*' accepted for operators")
	}
	if _, err := ParseRoles(nil, nil, []string{"*"}); err != nil {
		t.Errorf("'*' refused for viewers: %v", err)
	}
	r, err := ParseRoles(nil, []string{"discord:8035,discord-role:4177"}, nil)
	if err != nil || r.ApproverCount() != 2 {
		t.Fatalf("%v %v", r, err)
	}
	if !r.IsApprover(Event{Platform: "discord", User: "1", UserGroups: []string{"4177"}}) {
		t.Error("role member is not an approver")
	}
	if r.IsApprover(Event{Platform: "slack", User: "8035"}) {
		t.Error("the same id on another platform must not match")
	}
}
