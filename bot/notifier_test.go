package bot

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/rotation"
	"sepmbot/store"
)

// fakePlatform records what the notifier sends.
type fakePlatform struct {
	mu   sync.Mutex
	next int
	log  []string
}

func (f *fakePlatform) Name() string { return "fake" }

// rec logs one call; newMessage gives the call a message ref (posts and replies).
func (f *fakePlatform) rec(s string, newMessage bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ref := ""
	if newMessage {
		f.next++
		ref = fmt.Sprint(f.next)
		s = strings.Replace(s, "REF", ref, 1)
	}
	f.log = append(f.log, s)
	return ref
}
func (f *fakePlatform) Post(_ context.Context, _ string, m Message) (string, error) {
	return f.rec("post REF "+firstLine(RenderText(m)), true), nil
}
func (f *fakePlatform) Edit(_ context.Context, _, ref string, m Message) error {
	f.rec("edit "+ref+" "+firstLine(RenderText(m)), false)
	return nil
}
func (f *fakePlatform) Reply(_ context.Context, _, ref string, m Message) (string, error) {
	return f.rec("reply "+ref+" "+firstLine(RenderText(m)), true), nil
}
func (f *fakePlatform) React(_ context.Context, _, ref, emoji string) error {
	f.rec("react "+ref+" "+emoji, false)
	return nil
}
func (f *fakePlatform) Events(context.Context) <-chan Event { return nil }
func (f *fakePlatform) Respond(context.Context, Event, Message) error {
	return nil
}
func (f *fakePlatform) Log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func view(status string, cursor int) rotation.View {
	p, err := rotation.MakePlan(rotation.Inventory{Site: "site-a", ManagerVersion: "14.3", ServerCount: 1,
		Servers: []rotation.ServerRef{{Name: "sepm-01"}},
		Targets: []rotation.Target{{GroupID: "G", LocationID: "L", Path: "My Company", Location: "Default", MSL: "M", Secure: true, HeartbeatSeconds: 1}}}, rotation.PlanOptions{})
	if err != nil {
		panic(err)
	}
	r := rotation.Rotation{ID: "R1", Site: "site-a", Requester: "console:alice", Status: status, Plan: p, Cursor: cursor, Steps: make([]rotation.StepState, len(p.Steps))}
	for i := range r.Steps {
		r.Steps[i].Status = rotation.StepPending
		if i < cursor {
			r.Steps[i].Status = rotation.StepDone
		}
	}
	if cursor < len(r.Steps) {
		r.Steps[cursor].Status = rotation.StepActive
	}
	return rotation.View{Rotation: r}
}

// TestNotifierOneCardThreadAndRestart: one card per rotation, edited in place; replies
// go in its thread; a new notifier on the same store edits the same card.
func TestNotifierOneCardThreadAndRestart(t *testing.T) {
	db := openStore(t)
	fp := &fakePlatform{}
	ctx := context.Background()
	n := NewNotifier(db, nil, Outlet{Platform: fp, DefaultChannel: "sepm", Pacing: Pacing{CardInterval: time.Millisecond}})
	n.Update(ctx, view(rotation.StatusRunning, 0))
	n.Update(ctx, view(rotation.StatusRunning, 0)) // same state: no edit
	n.Post(ctx, "R1", "step started")
	n.Update(ctx, view(rotation.StatusRunning, 1))
	v := view(rotation.StatusRunning, 2)
	req := approvals.New("nonce", "R1", "console:alice", "h", 2, time.Hour, time.Now())
	v.Approval = &req
	refs, err := n.RequestApproval(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	// Edits run on the coalescer's goroutine, so they are checked apart from the rest.
	var calls []string
	edits := 0
	for _, c := range fp.Log() {
		if strings.HasPrefix(c, "edit ") {
			edits++
			if !strings.HasPrefix(c, "edit 1 *R1 ") {
				t.Errorf("edit of another message: %q", c)
			}
			continue
		}
		calls = append(calls, c)
	}
	want := []string{"post 1 *R1 · site-a", "reply 1 step started", "post 3 *🔐 Approval needed: R1", "react 3 ✅", "react 3 ❌", "reply 1 🔐 approval requested"}
	if len(calls) != len(want) {
		t.Fatalf("calls:\n%s", strings.Join(calls, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(calls[i], w) {
			t.Errorf("call %d = %q, want prefix %q", i, calls[i], w)
		}
	}
	if edits != 1 {
		t.Errorf("%d edits, want 1 (the repeated state is not edited again)", edits)
	}
	if len(refs) != 1 || refs[0] != "fake|sepm|3" {
		t.Errorf("approval refs %q", refs)
	}
	// A restarted bot edits the card it posted before.
	n2 := NewNotifier(db, nil, Outlet{Platform: fp, DefaultChannel: "sepm", Pacing: Pacing{CardInterval: time.Millisecond}})
	n2.Update(ctx, view(rotation.StatusPaused, 2))
	n2.Close()
	log := fp.Log()
	if last := log[len(log)-1]; !strings.HasPrefix(last, "edit 1 ") {
		t.Errorf("after restart: %q, want an edit of card 1", last)
	}
}

// openStore opens a store in the test's temporary folder, closed at cleanup.
func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestNotifierDecidedRequestShowsVerdict: once the approval request is decided, its
// message is edited to the verdict with no live buttons, once, also after a restart;
// a restarted notifier still replies in the rotation's thread.
func TestNotifierDecidedRequestShowsVerdict(t *testing.T) {
	db := openStore(t)
	fp := newTimedPlatform("fake")
	ctx := context.Background()
	n := NewNotifier(db, nil, Outlet{Platform: fp, DefaultChannel: "ops", Pacing: Pacing{CardInterval: time.Millisecond}})
	v := view(rotation.StatusRunning, 2)
	v.Rotation.Home = "fake|ops"
	req := approvals.New("nonce", "R1", "console:alice", "h", 2, time.Hour, time.Now())
	v.Approval = &req
	n.Update(ctx, v)
	refs, err := n.RequestApproval(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := ParseRef(refs[0])
	if h, ok := n.ApprovalHome(ctx, refs[0]); !ok || h.String() != "fake|ops" {
		t.Errorf("ApprovalHome(%s) = %v %v", refs[0], h, ok)
	}
	if _, ok := n.ApprovalHome(ctx, "fake|other|"+ref.ID); ok {
		t.Error("ApprovalHome does not tell the request's message from another channel's")
	}
	decided := req
	decided.State = approvals.StateApproved
	decided.Votes = []approvals.Vote{{User: "console:bob"}, {User: "console:carol"}}
	v.Approval = &decided
	v.Rotation.Updated = time.Now()
	n.Update(ctx, v)
	n.Update(ctx, v)
	n.Close()
	verdicts := 0
	for _, c := range fp.log() {
		if c.op == "edit" && c.ref == ref.ID {
			verdicts++
			if !strings.Contains(c.text, "✅ approved") || strings.Contains(c.text, "[Approve]") {
				t.Errorf("verdict edit: %s", c.text)
			}
		}
	}
	if verdicts != 1 {
		t.Errorf("%d verdict edits, want 1", verdicts)
	}
	// Restarted: the verdict is not shown again, and a post still goes to the thread.
	fp2 := newTimedPlatform("fake")
	n2 := NewNotifier(db, nil, Outlet{Platform: fp2, DefaultChannel: "elsewhere"})
	n2.Post(ctx, "R1", "resumed R1 at step approval")
	v.Rotation.Updated = time.Now()
	n2.Update(ctx, v)
	n2.Close()
	for _, c := range fp2.log() {
		if c.op == "edit" && c.ref == ref.ID {
			t.Errorf("verdict shown again after restart: %+v", c)
		}
		if c.op == "reply" && c.channel != "ops" {
			t.Errorf("post after restart went to %q, not the rotation's home", c.channel)
		}
	}
	resumed := false
	for _, c := range fp2.log() {
		resumed = resumed || c.op == "reply" && strings.Contains(c.text, "resumed R1")
	}
	if !resumed {
		t.Errorf("no resumed reply after restart: %+v", fp2.log())
	}
}
