package rotation

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/sepm"
	"sepmbot/sepm/sim"
)

// auditHasEveryStep checks that every step of the plan was started and finished.
func auditHasEveryStep(t *testing.T, g *rig, r Rotation) {
	t.Helper()
	recs, err := g.db.Audit(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	started, done := map[string]int{}, map[string]int{}
	for _, a := range recs {
		switch a.Kind {
		case "step-started":
			started[a.Step]++
		case "step-done":
			done[a.Step]++
		}
	}
	for _, s := range r.Plan.Steps {
		if started[s.ID] != 1 || done[s.ID] != 1 {
			t.Errorf("audit: step %s started %d times, done %d times; want 1 and 1", s.ID, started[s.ID], done[s.ID])
		}
	}
	for k, n := range auditChanges(t, g.db, r.ID) {
		if n > 1 {
			t.Errorf("audit: SEPM change %s applied %d times", k, n)
		}
	}
}

func TestEndToEndSingleServer(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 2000, Servers: 1, Groups: 8, OfflinePercent: 5, Seed: 11}})
	r := g.rotate(PlanOptions{})
	if r.Plan.Path != PathSingle {
		t.Fatalf("path %s", r.Plan.Path)
	}
	v, err := (&operator{g: g, id: r.ID}).run(g.ctx, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation.Status != StatusCompleted {
		t.Fatalf("status %s: %s", v.Rotation.Status, v.Rotation.LastError)
	}
	f := fleet(t, g.client)
	if f.Orphaned != 0 {
		t.Errorf("orphaned = %d, want 0 (%+v)", f.Orphaned, f.OrphanedClients)
	}
	if f.Total != 2000 {
		t.Errorf("total = %d", f.Total)
	}
	assertRestored(t, g.client, v.Rotation)
	auditHasEveryStep(t, g, v.Rotation)
	// Secure communication went off exactly once per target that had it on.
	changes := auditChanges(t, g.db, r.ID)
	for _, tg := range v.Rotation.Plan.GroupsToChange {
		if tg.Secure && changes["disable-secure "+tg.Key()] != 1 {
			t.Errorf("disable-secure on %s applied %d times", tg.Key(), changes["disable-secure "+tg.Key()])
		}
	}
	if v.Rotation.Report == nil || v.Rotation.Report.ClientsTotal != 2000 {
		t.Errorf("report = %+v", v.Rotation.Report)
	}
}

func TestEndToEndMultiServer(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 2000, Servers: 2, Groups: 8, Versions: "14.3=90,12.1=10", OfflinePercent: 5, Seed: 12}})
	r := g.rotate(PlanOptions{Straggler: 2 * time.Second, StragglerSet: true})
	if r.Plan.Path != PathMulti {
		t.Fatalf("path %s: %s", r.Plan.Path, r.Plan.Reason)
	}
	v, err := (&operator{g: g, id: r.ID}).run(g.ctx, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation.Status != StatusCompleted {
		t.Fatalf("status %s: %s", v.Rotation.Status, v.Rotation.LastError)
	}
	f := fleet(t, g.client)
	if f.Orphaned != 0 {
		t.Errorf("orphaned = %d, want 0 (%+v)", f.Orphaned, f.OrphanedClients)
	}
	for _, s := range g.site.Servers() {
		if s.Fingerprint != g.newFPs[s.Name] {
			t.Errorf("%s presents %s, want the new %s", s.Name, s.Fingerprint, g.newFPs[s.Name])
		}
	}
	assertRestored(t, g.client, v.Rotation)
	auditHasEveryStep(t, g, v.Rotation)
}

// TestCertificateConfirmWithoutFingerprint: with no --new-cert-sha256 the bot shows
// what it sees and trusts it only after an operator confirms.
func TestCertificateConfirmWithoutFingerprint(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 200, Servers: 1, Groups: 4, Seed: 13}, noNewCerts: true})
	r := g.rotate(PlanOptions{})
	v, err := (&operator{g: g, id: r.ID}).run(g.ctx, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation.Status != StatusCompleted {
		t.Fatalf("status %s: %s", v.Rotation.Status, v.Rotation.LastError)
	}
	recs, _ := g.db.Audit(context.Background(), r.ID)
	kinds := map[string]int{}
	for _, a := range recs {
		kinds[a.Kind]++
	}
	if kinds["certificate-seen"] != 1 || kinds["certificate-confirmed"] != 1 {
		t.Errorf("audit kinds %v: want one certificate-seen and one certificate-confirmed", kinds)
	}
	if f := fleet(t, g.client); f.Orphaned != 0 {
		t.Errorf("orphaned = %d", f.Orphaned)
	}
}

// TestApprovalRulesThroughEngine: each bad vote is refused with its reason and changes
// nothing; two valid votes open the dangerous step exactly once.
func TestApprovalRulesThroughEngine(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 100, Servers: 1, Groups: 4, Seed: 14}})
	r := g.rotate(PlanOptions{})
	v := g.reachApproval(r.ID)
	ref := v.Approval.MessageRef
	before, _ := g.db.Audit(context.Background(), r.ID)
	refused := []struct {
		b    Ballot
		code string
	}{
		{Ballot{MessageRef: ref, User: "console:alice", Kind: approvals.Approve}, "requester"},
		{Ballot{MessageRef: ref, User: "console:mallory", Kind: approvals.Approve}, "not-approver"},
		{Ballot{MessageRef: "msg-999", User: "console:bob", Kind: approvals.Approve}, "wrong-message"},
		{Ballot{Rotation: "R99", User: "console:bob", Kind: approvals.Approve}, ""},
	}
	for _, tc := range refused {
		_, err := g.eng.Vote(g.ctx, tc.b)
		var ref *approvals.Refusal
		if err == nil {
			t.Errorf("%+v: accepted", tc.b)
			continue
		}
		if tc.code != "" && (!errors.As(err, &ref) || ref.Code != tc.code) {
			t.Errorf("%+v: err %v, want refusal %s", tc.b, err, tc.code)
		}
	}
	after, _ := g.db.Audit(context.Background(), r.ID)
	if len(after) != len(before) {
		t.Errorf("refused votes changed the audit: %d -> %d records", len(before), len(after))
	}
	if _, err := g.eng.Vote(g.ctx, Ballot{MessageRef: ref, User: "console:bob", Kind: approvals.Approve}); err != nil {
		t.Fatal(err)
	}
	_, err := g.eng.Vote(g.ctx, Ballot{MessageRef: ref, User: "console:bob", Kind: approvals.Approve})
	var refusal *approvals.Refusal
	if !errors.As(err, &refusal) || refusal.Code != "already-voted" {
		t.Errorf("double vote: %v", err)
	}
	if st := mustGet(t, g, r.ID); st.Rotation.Steps[st.Rotation.Cursor].Status != StepActive || st.Rotation.Plan.Steps[st.Rotation.Cursor].Action != ActApproval {
		t.Fatalf("one vote must not open the step")
	}
	if _, err := g.eng.Vote(g.ctx, Ballot{Rotation: r.ID, User: "console:carol", Kind: approvals.Approve}); err != nil {
		t.Fatal(err)
	}
	v, err = (&operator{g: g, id: r.ID}).run(g.ctx, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation.Status != StatusCompleted {
		t.Fatalf("status %s", v.Rotation.Status)
	}
	recs, _ := g.db.Audit(context.Background(), r.ID)
	n := 0
	for _, a := range recs {
		if a.Kind == "vote-approved" {
			n++
		}
		if a.Kind == "step-started" && a.Step == "disable-secure" {
			n += 10
		}
	}
	if n != 11 {
		t.Errorf("want exactly one approval verdict and one disable-secure start, got code %d", n)
	}
	// A vote after the verdict changes nothing.
	if _, err := g.eng.Vote(g.ctx, Ballot{MessageRef: ref, User: "console:dave", Kind: approvals.Approve}); err == nil {
		t.Errorf("vote after the verdict accepted")
	}
}

func mustGet(t *testing.T, g *rig, id string) View {
	t.Helper()
	v, err := g.eng.Get(g.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestApprovalExpiry: a request past its ttl refuses votes and pauses the rotation;
// resume asks again with a new request.
func TestApprovalExpiry(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 50, Servers: 1, Groups: 3, Seed: 15}})
	g.eng.cfg.ApprovalTTL = 500 * time.Millisecond
	r := g.rotate(PlanOptions{})
	v, err := (&operator{g: g, id: r.ID, stop: func(v View) bool {
		return v.Rotation.Status == StatusPaused
	}, acted: map[string]bool{"skip-votes": true}}).runNoVotes(g.ctx, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(v.Rotation.LastError, "expired") {
		t.Fatalf("want a pause for the expired approval, got %q (status %s)", v.Rotation.LastError, v.Rotation.Status)
	}
	_, err = g.eng.Vote(g.ctx, Ballot{MessageRef: v.Approval.MessageRef, User: "console:bob", Kind: approvals.Approve})
	var refusal *approvals.Refusal
	if !errors.As(err, &refusal) || refusal.Code != "expired" {
		t.Errorf("vote after ttl: %v, want expired", err)
	}
	old := v.Approval.ID
	g.eng.cfg.ApprovalTTL = time.Hour
	if err := g.eng.Resume(g.ctx, "console:alice", r.ID); err != nil {
		t.Fatal(err)
	}
	v, err = (&operator{g: g, id: r.ID}).run(g.ctx, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation.Status != StatusCompleted || v.Approval == nil || v.Approval.ID == old {
		t.Fatalf("status %s; a new approval request must be used", v.Rotation.Status)
	}
}

// runNoVotes drives console work but never votes.
func (o *operator) runNoVotes(ctx context.Context, d time.Duration) (View, error) {
	stop := o.stop
	o.stop = func(v View) bool {
		if stop != nil && stop(v) {
			return true
		}
		if v.Approval != nil {
			o.acted[v.Approval.ID] = true // pretend we voted: nobody does
		}
		return false
	}
	return o.run(ctx, d)
}

// TestAbortFromEachPhase: abort at each phase leaves secure communication on, the
// original MSLs assigned and nobody orphaned.
func TestAbortFromEachPhase(t *testing.T) {
	t.Parallel()
	phases := []struct {
		name string
		at   func(v View) bool
	}{
		{"http-msl", atStep("http-msl", false)},
		{"approval", func(v View) bool {
			return atStep("approval", false)(v) && v.Approval != nil && v.Approval.MessageRef != ""
		}},
		{"wait-disable", atStep("wait-disable", false)},
		{"cert-before-update", atStep("cert-sepm-01", false)},
		{"wait-cert", atStep("wait-cert", false)},
		{"wait-enable", atStep("wait-enable", false)},
		{"wait-restore", atStep("wait-restore", false)},
	}
	for i, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			t.Parallel()
			g := newRig(t, rigOptions{sim: sim.Options{Clients: 150, Servers: 1, Groups: 5, Seed: int64(20 + i)}})
			r := g.rotate(PlanOptions{})
			v, err := (&operator{g: g, id: r.ID, stop: ph.at}).run(g.ctx, 90*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !v.Rotation.Active() {
				t.Fatalf("rotation ended before the abort point: %s", v.Rotation.Status)
			}
			if err := g.eng.Abort(g.ctx, "console:alice", r.ID, "test abort at "+ph.name); err != nil {
				t.Fatal(err)
			}
			v, err = (&operator{g: g, id: r.ID}).run(g.ctx, 90*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if v.Rotation.Status != StatusAborted {
				t.Fatalf("status %s: %s", v.Rotation.Status, v.Rotation.LastError)
			}
			assertRestored(t, g.client, v.Rotation)
			if f := fleet(t, g.client); f.Orphaned != 0 {
				t.Errorf("orphaned = %d after abort at %s", f.Orphaned, ph.name)
			}
		})
	}
}

// atStep fires when the given step is the current, active one.
func atStep(id string, _ bool) func(v View) bool {
	return func(v View) bool {
		s, st, ok := v.Rotation.Current()
		return ok && s.ID == id && st.Status == StepActive
	}
}

// TestPauseResume: a paused rotation takes no step until resumed.
func TestPauseResume(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 50, Servers: 1, Groups: 3, Seed: 16}})
	r := g.rotate(PlanOptions{})
	if err := g.eng.Pause(g.ctx, "console:alice", r.ID); err != nil {
		t.Fatal(err)
	}
	if err := g.eng.Pause(g.ctx, "console:alice", r.ID); err == nil {
		t.Errorf("pausing twice accepted")
	}
	v := mustGet(t, g, r.ID)
	if v.Rotation.Status != StatusPaused || v.Rotation.Cursor != 0 {
		t.Fatalf("paused rotation moved: %s cursor %d", v.Rotation.Status, v.Rotation.Cursor)
	}
	if err := g.eng.Resume(g.ctx, "console:alice", r.ID); err != nil {
		t.Fatal(err)
	}
	v, err := (&operator{g: g, id: r.ID}).run(g.ctx, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation.Status != StatusCompleted {
		t.Fatalf("status %s", v.Rotation.Status)
	}
}

func TestSecondRotationRefused(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 20, Servers: 1, Groups: 2, Seed: 17}})
	r := g.rotate(PlanOptions{})
	_, err := g.eng.Rotate(g.ctx, "console:alice", "", PlanOptions{NewCerts: g.newFPs})
	if err == nil || !strings.Contains(err.Error(), r.ID) {
		t.Fatalf("second rotation: %v", err)
	}
}

func BenchmarkPoll100k(b *testing.B) {
	site := startSim(b, sim.Options{Clients: 100000, Servers: 1, Groups: 8, Heartbeat: 5 * time.Second, Seed: 1})
	client := clientFor(b, site)
	// A poll reads only SEPM, so the engine needs no store here.
	e := &Engine{cfg: Config{SEPM: client, Now: time.Now}}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		p, err := e.Poll(ctx, time.Now().Add(-time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		if p.Online+p.Offline != 100000 {
			b.Fatalf("polled %d clients", p.Online+p.Offline)
		}
	}
}

// BenchmarkIncrementalPoll100k compares a wait's two kinds of poll at 100,000
// clients: "full" (groups, onlinestatus, every computer: what every poll was) and
// "changed-10pct" (groups, onlinestatus and the computers changed since the last
// poll, here the newest 10% of check-ins plus what checks in meanwhile). reply-B/op
// is the reply bodies' bytes, from the client's own counters.
func BenchmarkIncrementalPoll100k(b *testing.B) {
	// A day's heartbeat: few clients check in while it runs, so "changed" stays at 10%.
	site := startSim(b, sim.Options{Clients: 100000, Servers: 1, Groups: 8, Heartbeat: 24 * time.Hour, Seed: 1})
	client := clientFor(b, site)
	ctx := context.Background()
	changeAt := time.Now().Add(-time.Hour)
	// The newest 10% of check-ins: where the cursor stands for the incremental poll.
	var lasts []int64
	if err := client.EachComputerPage(ctx, sepm.ComputerQuery{PageSize: 1000}, func(page []sepm.Computer) error {
		for _, c := range page {
			lasts = append(lasts, c.LastUpdateTime)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	slices.Sort(lasts)
	p90 := lasts[len(lasts)*9/10]
	b.Run("full", func(b *testing.B) {
		tr := NewTracker(client, changeAt, nil)
		before := client.Stats()
		for b.Loop() {
			p, err := tr.Full(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if p.Online+p.Offline != 100000 {
				b.Fatalf("swept %d clients", p.Online+p.Offline)
			}
		}
		b.ReportMetric(float64(client.Stats().Sub(before).BodyBytes)/float64(b.N), "reply-B/op")
	})
	b.Run("changed-10pct", func(b *testing.B) {
		tr := NewTracker(client, changeAt, nil)
		if _, err := tr.Full(ctx); err != nil {
			b.Fatal(err)
		}
		before := client.Stats()
		for b.Loop() {
			tr.m.cursor = p90 + IncrementalOverlap.Milliseconds() // the previous poll saw up to p90
			if _, err := tr.Incremental(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(client.Stats().Sub(before).BodyBytes)/float64(b.N), "reply-B/op")
	})
}
