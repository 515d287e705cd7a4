package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/sepm"
	"sepmbot/sepm/sim"
	"sepmbot/store"
)

// faultySEPM is the real client with faults a test switches on.
type faultySEPM struct {
	*sepm.Client
	// patch, when set, may refuse a PATCH before it is sent.
	patch func(groupID, locationID string, p sepm.Configuration) error
	// down, when set, makes every read fail with it (SEPM unreachable, or refusing
	// the bot's credentials).
	down  atomic.Pointer[error]
	reads atomic.Int64 // reads attempted while down
}

func (f *faultySEPM) fail() error {
	if p := f.down.Load(); p != nil {
		f.reads.Add(1)
		return *p
	}
	return nil
}

func (f *faultySEPM) Groups(ctx context.Context) ([]sepm.Group, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Client.Groups(ctx)
}

func (f *faultySEPM) EachComputerPage(ctx context.Context, q sepm.ComputerQuery, fn func([]sepm.Computer) error) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Client.EachComputerPage(ctx, q, fn)
}

func (f *faultySEPM) EachComputerMarkPage(ctx context.Context, q sepm.ComputerQuery, fn func([]sepm.ComputerMark) error) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Client.EachComputerMarkPage(ctx, q, fn)
}

func (f *faultySEPM) PatchLocationSettings(ctx context.Context, g, l string, p sepm.Configuration) (sepm.Settings, error) {
	if f.patch != nil {
		if err := f.patch(g, l, p); err != nil {
			return sepm.Settings{}, err
		}
	}
	return f.Client.PatchLocationSettings(ctx, g, l, p)
}

func isSecureOff(p sepm.Configuration) bool {
	gs := p.GeneralSettings
	return gs != nil && gs.SecuritySettings != nil && gs.SecuritySettings.SecureCommunications != nil && !*gs.SecuritySettings.SecureCommunications
}

// journalOf reads a rotation's change journal.
func journalOf(t *testing.T, db *store.DB, id string) []JournalRecord {
	t.Helper()
	var recs []JournalRecord
	if err := db.View(context.Background(), func(tx *store.Tx) error {
		var err error
		recs, err = loadJournalTx(tx, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestAbortHalfAppliedDisableAfterTTL is the first story: disable-secure is
// refused by SEPM on the k-th target (k-1 already off), the rotation pauses; resumed
// after the approval's ttl it rewinds to the approval; then aborted. The revert comes
// from the journal, so secure communication comes back on the targets that were
// turned off, and every target ends exactly as it was, read from the simulator.
func TestAbortHalfAppliedDisableAfterTTL(t *testing.T) {
	t.Parallel()
	for _, k := range []int{2, 3} {
		t.Run(fmt.Sprintf("refused-at-%d", k), func(t *testing.T) {
			t.Parallel()
			var skew atomic.Int64
			var disables atomic.Int64
			f := &faultySEPM{}
			f.patch = func(_, _ string, p sepm.Configuration) error {
				if isSecureOff(p) && disables.Add(1) == int64(k) {
					return &sepm.APIError{Method: "PATCH", Path: "groups/x/locations/y/settings", Status: 400, Message: "simulated refusal"}
				}
				return nil
			}
			g := newRig(t, rigOptions{sim: sim.Options{Clients: 80, Servers: 1, Groups: 5, Seed: int64(60 + k)},
				wrap: func(c *sepm.Client) SEPM { f.Client = c; return f },
				now:  func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
			r := g.rotate(PlanOptions{})
			v, err := (&operator{g: g, id: r.ID, stop: func(v View) bool { return v.Rotation.Status == StatusPaused }}).run(g.ctx, 60*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if s, _, _ := v.Rotation.Current(); s.ID != "disable-secure" || !strings.Contains(v.Rotation.LastError, "simulated refusal") {
				t.Fatalf("paused at %s: %q", s.ID, v.Rotation.LastError)
			}
			off := 0
			for _, j := range journalOf(t, g.db, r.ID) {
				if j.Field == FieldSecure && j.State == JournalApplied {
					off++
				}
			}
			if off != k-1 {
				t.Fatalf("journal: %d targets turned off before the refusal, want %d", off, k-1)
			}
			skew.Store(int64(2 * time.Hour)) // resumed after the approval's ttl
			if err := g.eng.Resume(g.ctx, "console:alice", r.ID); err != nil {
				t.Fatal(err)
			}
			g.waitFor(r.ID, 30*time.Second, "rewound to the approval", func(v View) bool {
				s, st, _ := v.Rotation.Current()
				return s.ID == "approval" && st.Status == StepActive && v.Approval != nil && v.Approval.MessageRef != ""
			})
			skew.Store(0) // the simulator's clients live in real time
			if err := g.eng.Abort(g.ctx, "console:alice", r.ID, "after the ttl rewind"); err != nil {
				t.Fatal(err)
			}
			v, err = (&operator{g: g, id: r.ID}).run(g.ctx, 60*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if v.Rotation.Status != StatusAborted {
				t.Fatalf("status %s: %s", v.Rotation.Status, v.Rotation.LastError)
			}
			if v.Rotation.Plan.StepIndex("revert-enable-secure") < 0 {
				t.Errorf("the revert has no enable step although the journal shows secure communication turned off")
			}
			assertRestored(t, g.client, v.Rotation)
			if fl := fleet(t, g.client); fl.Orphaned != 0 {
				t.Errorf("orphaned = %d", fl.Orphaned)
			}
		})
	}
}

// TestConcurrentRotateOne: 100 concurrent rotate calls on one site create exactly
// one rotation; a site sharing the lock is refused too, another site is not.
func TestConcurrentRotateOne(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 30, Servers: 1, Groups: 3, Seed: 75}})
	g.eng.cfg.Notifier = newRecorder()
	var ok atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			if _, err := g.eng.Rotate(g.ctx, "console:alice", "", PlanOptions{NewCerts: g.newFPs}); err == nil {
				ok.Add(1)
			} else {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if ok.Load() != 1 {
		t.Fatalf("%d rotations created, want exactly 1", ok.Load())
	}
	for err := range errs {
		if !strings.Contains(err.Error(), "finish or abort it first") {
			t.Errorf("refusal: %v", err)
		}
	}
	rots, err := g.eng.List(g.ctx)
	if err != nil || len(rots) != 1 {
		t.Fatalf("stored rotations: %d (%v)", len(rots), err)
	}
	partner := g.cfg
	partner.Site, partner.LockSites = "site-b", []string{"site-a"}
	pe, err := NewEngine(partner)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pe.Rotate(g.ctx, "console:alice", "", PlanOptions{NewCerts: g.newFPs}); err == nil || !strings.Contains(err.Error(), "R1") {
		t.Errorf("a replication partner rotated while R1 is active: %v", err)
	}
	if rs, _ := pe.List(g.ctx); len(rs) != 0 {
		t.Errorf("site-b's engine lists site-a's rotations: %d", len(rs))
	}
}

// TestOutageDuringWait: SEPM unreachable for three poll intervals during a wait:
// one alert, one recovery message, and the wait completes without an operator.
func TestOutageDuringWait(t *testing.T) {
	t.Parallel()
	f := &faultySEPM{}
	var armed atomic.Bool
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 60, Servers: 1, Groups: 3, Seed: 76},
		wrap: func(c *sepm.Client) SEPM { f.Client = c; return f },
		onPost: func(_, text string) {
			if strings.HasPrefix(text, "▶ wait-disable") && armed.CompareAndSwap(false, true) {
				down := error(&netErr{})
				f.down.Store(&down)
				time.AfterFunc(3*300*time.Millisecond, func() { f.down.Store(nil) })
			}
		}})
	r := g.rotate(PlanOptions{})
	v, err := (&operator{g: g, id: r.ID}).run(g.ctx, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation.Status != StatusCompleted {
		t.Fatalf("status %s: %s", v.Rotation.Status, v.Rotation.LastError)
	}
	if a, b := g.posted("SEPM has not answered"), g.posted("SEPM answers again"); a != 1 || b != 1 {
		t.Errorf("%d alerts and %d recovery messages, want 1 and 1", a, b)
	}
	if n := g.auditKinds(r.ID)["step-failed"]; n != 0 {
		t.Errorf("the outage paused the rotation %d times", n)
	}
}

type netErr struct{}

func (*netErr) Error() string   { return "dial tcp 127.0.0.1:8446: connect: connection refused" }
func (*netErr) Timeout() bool   { return false }
func (*netErr) Temporary() bool { return true }

// TestAuthRejectedStopsAtOnce: a 401 from identity/authenticate during a wait is not
// an outage: the bot stops trying at once and pauses, saying so.
func TestAuthRejectedStopsAtOnce(t *testing.T) {
	t.Parallel()
	f := &faultySEPM{}
	var armed atomic.Bool
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 40, Servers: 1, Groups: 3, Seed: 77},
		wrap: func(c *sepm.Client) SEPM { f.Client = c; return f },
		onPost: func(_, text string) {
			if strings.HasPrefix(text, "▶ wait-disable") && armed.CompareAndSwap(false, true) {
				rej := error(&sepm.APIError{Method: "POST", Path: "identity/authenticate", Status: 401, Message: "Invalid username or password"})
				f.down.Store(&rej)
			}
		}})
	r := g.rotate(PlanOptions{})
	v, err := (&operator{g: g, id: r.ID, stop: func(v View) bool { return v.Rotation.Status == StatusPaused }}).run(g.ctx, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(v.Rotation.LastError, "rejected the bot's credentials") {
		t.Fatalf("paused with %q", v.Rotation.LastError)
	}
	if n := f.reads.Load(); n != 1 {
		t.Errorf("%d SEPM reads after the 401, want 1 (no retry)", n)
	}
}

// TestDenyPausesAtApproval: a deny pauses at the approval step; resume asks again;
// abort reverts.
func TestDenyPausesAtApproval(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 40, Servers: 1, Groups: 3, Seed: 78}})
	r := g.rotate(PlanOptions{})
	v := g.reachApproval(r.ID)
	if _, err := g.eng.Vote(g.ctx, Ballot{MessageRef: v.Approval.MessageRef, User: "console:bob", Kind: approvals.Deny, Reason: "not during month end"}); err != nil {
		t.Fatal(err)
	}
	v = g.waitFor(r.ID, 20*time.Second, "paused by the deny", func(v View) bool { return v.Rotation.Status == StatusPaused })
	if s, _, _ := v.Rotation.Current(); s.ID != "approval" || v.Rotation.Aborting {
		t.Fatalf("after deny: at %s aborting=%v", s.ID, v.Rotation.Aborting)
	}
	old := v.Approval.ID
	if err := g.eng.Resume(g.ctx, "console:alice", r.ID); err != nil {
		t.Fatal(err)
	}
	g.awaitNewApproval(r.ID, old)
	abortAndCheck(t, g, r.ID)
	g.auditKindsNoDisable(r.ID)
	assertRestored(t, g.client, mustGet(t, g, r.ID).Rotation)
}

type roleMap struct {
	mu  sync.Mutex
	not map[string]bool
}

func (m *roleMap) IsApprover(_ context.Context, u string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.not[u] && (u == "console:bob" || u == "console:carol" || u == "console:dave"), nil
}

// TestApproverRevokedBeforeDisable: a voter who lost the approver role by the
// dangerous step no longer counts: secure communication stays on, approval is asked
// again.
func TestApproverRevokedBeforeDisable(t *testing.T) {
	t.Parallel()
	roles := &roleMap{not: map[string]bool{}}
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 40, Servers: 1, Groups: 3, Seed: 79}, roles: roles})
	r := g.rotate(PlanOptions{})
	v := g.reachApproval(r.ID)
	if err := g.eng.Pause(g.ctx, "console:alice", r.ID); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"console:bob", "console:carol"} {
		if _, err := g.eng.Vote(g.ctx, Ballot{MessageRef: v.Approval.MessageRef, User: u, Kind: approvals.Approve}); err != nil {
			t.Fatal(err)
		}
	}
	roles.mu.Lock()
	roles.not["console:carol"] = true
	roles.mu.Unlock()
	if err := g.eng.Resume(g.ctx, "console:alice", r.ID); err != nil {
		t.Fatal(err)
	}
	g.awaitNewApproval(r.ID, v.Approval.ID)
	if g.auditKindsNoDisable(r.ID)["approver-revoked"] != 1 {
		t.Errorf("no approver-revoked record")
	}
}

// TestRestartTellsTheStory: after a restart the bot posts "resumed R1 at step X",
// posts what a killed process committed but did not announce (with the wait's
// deadline), and takes votes on the approval request's old message and its re-post.
func TestRestartTellsTheStory(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 40, Servers: 1, Groups: 3, Seed: 80}})
	r := g.rotate(PlanOptions{})
	v := g.reachApproval(r.ID)
	first := v.Approval.MessageRef
	if _, err := g.eng.Vote(g.ctx, Ballot{MessageRef: first, User: "console:bob", Kind: approvals.Approve}); err != nil {
		t.Fatal(err)
	}
	g.restart("b-", nil)
	v = g.waitFor(r.ID, 20*time.Second, "the request re-posted", func(v View) bool { return v.Approval != nil && len(v.Approval.MessageRefs) > 0 })
	if g.posted("resumed R1 after a restart at step approval") != 1 {
		t.Errorf("no resumed message: %q", g.rec.Posts())
	}
	if _, err := g.eng.Vote(g.ctx, Ballot{MessageRef: first, User: "console:carol", Kind: approvals.Approve}); err != nil {
		t.Fatalf("a vote on the original message after the restart: %v", err)
	}
	// A step committed but not announced when the process died: the wait's start is
	// committed (with its deadline) and the process killed before posting it.
	g.waitFor(r.ID, 30*time.Second, "wait-disable active", stopAt("wait-disable"))
	var deadline string
	g.restart("c-", func() {
		if err := g.db.Update(context.Background(), func(tx *store.Tx) error {
			cur, err := loadTx(tx, r.ID)
			if err != nil {
				return err
			}
			cur.Steps[cur.Cursor] = StepState{Status: StepPending}
			cur.Wait, cur.Outbox = nil, nil
			n, _, err := Apply(cur, Event{Kind: EvStart}, time.Now())
			if err != nil {
				return err
			}
			deadline = n.Wait.Deadline.Format("2006-01-02 15:04:05 MST")
			return saveTx(tx, &n)
		}); err != nil {
			t.Fatal(err)
		}
	})
	g.waitFor(r.ID, 20*time.Second, "owed announcement posted", func(View) bool {
		return g.posted("▶ wait-disable: Wait at least three heartbeats in all groups (at least until "+deadline+")") == 1
	})
	g.waitFor(r.ID, 20*time.Second, "resumed message with the wait's exact deadline", func(View) bool {
		return g.posted("resumed R1 after a restart at step wait-disable (active, running); the wait runs at least until "+deadline) == 1
	})
}

// TestMissingHTTPCopyReturnsToStep1: when SEPM answers at step 5 that an HTTP copy
// does not exist, Broadcom steps 1-4 go back to waiting, naming the copy.
func TestMissingHTTPCopyReturnsToStep1(t *testing.T) {
	t.Parallel()
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 40, Servers: 1, Groups: 3, Seed: 81}})
	r := g.rotate(PlanOptions{})
	g.waitFor(r.ID, 20*time.Second, "http-msl active", stopAt("http-msl"))
	if _, err := g.eng.Done(g.ctx, "console:alice", r.ID, "http-msl"); err != nil { // without creating the copies
		t.Fatal(err)
	}
	v := g.waitFor(r.ID, 20*time.Second, "back at http-msl", func(v View) bool {
		s, st, _ := v.Rotation.Current()
		return s.ID == "http-msl" && st.Status == StepActive && st.DoneBy == "" && g.posted("SEPM has no management server list named") > 0
	})
	name := HTTPCopyName(v.Rotation.Plan.GroupsToChange[0].MSL, 8014)
	if g.posted(fmt.Sprintf("%q", name)) == 0 {
		t.Errorf("the missing copy %q is not named", name)
	}
	if v.Rotation.Status != StatusRunning {
		t.Errorf("status %s: %s", v.Rotation.Status, v.Rotation.LastError)
	}
	v, err := (&operator{g: g, id: r.ID}).run(g.ctx, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation.Status != StatusCompleted {
		t.Fatalf("status %s", v.Rotation.Status)
	}
	if errors.Is(nil, ErrStale) {
		t.Fatal()
	}
}

// auditKinds counts a rotation's audit records by kind.
func (g *rig) auditKinds(id string) map[string]int {
	g.t.Helper()
	recs, err := g.db.Audit(context.Background(), id)
	if err != nil {
		g.t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, a := range recs {
		kinds[a.Kind]++
	}
	return kinds
}

// TestShortWaitOrphans: with the wait floor removed from the engine (a test-only
// switch), a rotation orphans clients that were away when secure communication
// was turned off and come back after two and a half heartbeats, as a closed laptop
// does: the wait ended as soon as the online clients caught up (within one and a
// half heartbeats, at a jitter of 0.5), and the certificate changed before they
// returned. With the floor (three heartbeats) they come back, fetch the policy and
// none is orphaned by that. The simulator's roaming clients come and go as well.
//
// The absence is a scheduled one (SetOnline for a fixed time from the start of
// the first wait): random roaming alone orphaned 0-7 clients of 1000, depending
// on how fast the bot stepped, and a loaded machine made the short wait long
// enough to orphan none.
func TestShortWaitOrphans(t *testing.T) {
	t.Parallel()
	opts := sim.Options{Clients: 1000, Servers: 1, Groups: 4, Seed: 90, PolicyFetch: 1, Jitter: 0.5, RoamingPercent: 30, Heartbeat: 2 * time.Second}
	const away = 100
	run := func(noFloor bool) (orphaned int) {
		g := newRig(t, rigOptions{sim: opts})
		g.eng.noWaitFloor = noFloor
		r := g.rotate(PlanOptions{})
		// The orphan interlock may pause it (a run without a stop would wait out its
		// deadline on a pause): accept the orphans and go on.
		untilPaused := func(v View) bool { return v.Rotation.Status == StatusPaused }
		v, err := (&operator{g: g, id: r.ID, stop: stopAt("wait-disable")}).run(g.ctx, 90*time.Second)
		if err != nil {
			t.Error(err)
			return -1
		}
		if v.Rotation.Status != StatusPaused {
			// The secure-off policy was just issued: clients go away before most
			// have fetched it and come back after 2.5 heartbeats.
			if _, err := g.site.SetOnline(away, false, 5*opts.Heartbeat/2); err != nil {
				t.Error(err)
				return -1
			}
			v, err = (&operator{g: g, id: r.ID, stop: untilPaused}).run(g.ctx, 90*time.Second)
			if err != nil {
				t.Error(err)
				return -1
			}
		}
		for v.Rotation.Status == StatusPaused {
			if _, err := g.eng.AcceptOrphans(g.ctx, "console:alice", r.ID, currentStepID(v.Rotation), opts.Clients); err != nil {
				t.Error(err)
				return -1
			}
			if v, err = (&operator{g: g, id: r.ID, stop: untilPaused}).run(g.ctx, 90*time.Second); err != nil {
				t.Error(err)
				return -1
			}
		}
		return fleet(t, g.client).Orphaned
	}
	var short, long int
	var wg sync.WaitGroup
	wg.Go(func() { short = run(true) })
	wg.Go(func() { long = run(false) })
	wg.Wait()
	t.Logf("orphaned: %d with waits ended as soon as the online clients caught up, %d with the floor", short, long)
	if short < away/2 {
		t.Fatalf("%d clients orphaned without the wait floor, of %d away across the certificate step: the tests cannot tell a short wait from a long one", short, away)
	}
	if long >= short {
		t.Errorf("the floor orphaned %d, not fewer than the short wait's %d", long, short)
	}
}

func currentStepID(r Rotation) string {
	s, _, _ := r.Current()
	return s.ID
}

// TestExposureReminderWhilePaused: a rotation paused with secure communication off
// says so every 24 hours, naming the operators, and the card data carries how long.
func TestExposureReminderWhilePaused(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 40, Servers: 1, Groups: 3, Seed: 82},
		now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	r := g.rotate(PlanOptions{})
	if _, err := (&operator{g: g, id: r.ID, stop: stopAt("wait-disable")}).run(g.ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := g.eng.Pause(g.ctx, "console:alice", r.ID); err != nil {
		t.Fatal(err)
	}
	v := mustGet(t, g, r.ID)
	if v.Rotation.SecureOffSince == 0 || v.Rotation.HTTPSince == 0 {
		t.Fatalf("exposure not recorded: http since %d, secure off since %d", v.Rotation.HTTPSince, v.Rotation.SecureOffSince)
	}
	skew.Store(int64(25 * time.Hour))
	g.eng.wake(r.ID)
	g.waitFor(r.ID, 20*time.Second, "the first reminder", func(View) bool { return g.posted("⏰ R1 is paused") == 1 })
	if g.posted("secure communication has been off for 1d") != 1 || g.posted("Operators: console:alice") != 1 {
		t.Errorf("the reminder does not say how long or whom: %q", tail(g.rec.Posts(), 1))
	}
	skew.Store(int64(50 * time.Hour))
	g.eng.wake(r.ID)
	g.waitFor(r.ID, 20*time.Second, "the second reminder", func(View) bool { return g.posted("⏰ R1 is paused") == 2 })
	cur := mustGet(t, g, r.ID).Rotation
	if on, off := cur.Exposure(time.Now().Add(50 * time.Hour)); on < 50*time.Hour || off < 50*time.Hour {
		t.Errorf("exposure %s on HTTP, %s secure off", on, off)
	}
}

// TestWaitHoldsUntilDeadlineOnFakeClock: on a frozen engine clock a wait whose
// clients have all caught up does not end, poll after poll; it ends once the clock
// reaches its deadline.
func TestWaitHoldsUntilDeadlineOnFakeClock(t *testing.T) {
	t.Parallel()
	base := time.Now()
	var offset atomic.Int64
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 40, Servers: 1, Groups: 3, Seed: 85},
		now: func() time.Time { return base.Add(time.Duration(offset.Load())) }})
	r := g.rotate(PlanOptions{})
	if _, err := (&operator{g: g, id: r.ID, stop: stopAt("wait-disable")}).run(g.ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	g.waitFor(r.ID, 30*time.Second, "every online client caught up", func(v View) bool {
		return v.Progress != nil && v.Progress.Online > 0 && v.Progress.OnNewPolicy == v.Progress.Online
	})
	seen := g.rec.Updates()
	g.waitFor(r.ID, 30*time.Second, "three more polls", func(View) bool { return g.rec.Updates() >= seen+3 })
	v := mustGet(t, g, r.ID)
	if s, st, _ := v.Rotation.Current(); s.ID != "wait-disable" || st.Status != StepActive {
		t.Fatalf("the wait ended before its deadline on the engine's clock: at %s/%s", s.ID, st.Status)
	}
	offset.Store(int64(v.Rotation.Wait.Deadline.Sub(base))) // the clock reaches the deadline
	g.eng.wake(r.ID)
	g.waitFor(r.ID, 30*time.Second, "the wait ends at its deadline", func(View) bool { return g.posted("✅ wait-disable done") == 1 })
}

// TestAbortHalfAppliedAfterCertChange: enable-secure or restore-msl refused by SEPM
// on the second target (the first already changed), then aborted: the revert built
// from the journal leaves every target exactly as it was before the rotation, and
// nobody is orphaned.
func TestAbortHalfAppliedAfterCertChange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		step  string
		match func(sepm.Configuration) bool
	}{
		{"enable-secure", func(p sepm.Configuration) bool {
			gs := p.GeneralSettings
			return gs != nil && gs.SecuritySettings != nil && gs.SecuritySettings.SecureCommunications != nil && *gs.SecuritySettings.SecureCommunications
		}},
		{"restore-msl", func(p sepm.Configuration) bool {
			cs := p.CommunicationSettings
			return cs != nil && cs.SemServer != nil && !strings.Contains(cs.SemServer.Name, "(HTTP")
		}},
	}
	for i, tc := range cases {
		t.Run(tc.step, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			f := &faultySEPM{}
			f.patch = func(_, _ string, p sepm.Configuration) error {
				if tc.match(p) && n.Add(1) == 2 {
					return &sepm.APIError{Method: "PATCH", Path: "groups/x/locations/y/settings", Status: 400, Message: "simulated refusal"}
				}
				return nil
			}
			g := newRig(t, rigOptions{sim: sim.Options{Clients: 80, Servers: 1, Groups: 5, Seed: int64(86 + i)}, wrap: func(c *sepm.Client) SEPM { f.Client = c; return f }})
			r := g.rotate(PlanOptions{})
			v, err := (&operator{g: g, id: r.ID, stop: func(v View) bool { return v.Rotation.Status == StatusPaused }}).run(g.ctx, 90*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if s, _, _ := v.Rotation.Current(); s.ID != tc.step {
				t.Fatalf("paused at %s: %q", s.ID, v.Rotation.LastError)
			}
			abortAndCheck(t, g, r.ID)
			v = mustGet(t, g, r.ID)
			assertRestored(t, g.client, v.Rotation)
			if fl := fleet(t, g.client); fl.Orphaned != 0 {
				t.Errorf("orphaned = %d", fl.Orphaned)
			}
		})
	}
}
