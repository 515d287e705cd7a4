package rotation

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/sepm"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// singlePlan is a 14.x single-server plan with a 10 s heartbeat and a 60 s floor.
func singlePlan() Plan {
	inv := inventory(1, nil)
	for i := range inv.Targets {
		inv.Targets[i].HeartbeatSeconds = 10
	}
	p, err := MakePlan(inv, PlanOptions{MinWait: time.Minute})
	if err != nil {
		panic(err)
	}
	return p
}

func newRot(p Plan) Rotation {
	r := Rotation{ID: "R1", Site: "site-a", Requester: "alice", Created: t0, Plan: p, Status: StatusRunning, Steps: make([]StepState, len(p.Steps)), OldCerts: map[string]string{"sepm-01": "old"}, NewCerts: map[string]string{"sepm-01": "new"}}
	for i := range r.Steps {
		r.Steps[i].Status = StepPending
	}
	return r
}

// at moves r to step id, every earlier step done, id active (a wait armed at now).
func at(t *testing.T, r Rotation, id string, now time.Time) Rotation {
	t.Helper()
	for {
		s, st, ok := r.Current()
		if !ok {
			t.Fatalf("no step %s", id)
		}
		if st.Status == StepPending {
			var err error
			if r, _, err = Apply(r, Event{Kind: EvStart, Aborting: r.Aborting}, now); err != nil {
				t.Fatalf("start %s: %v", s.ID, err)
			}
		}
		if s.ID == id {
			return r
		}
		fin := now
		if r.Wait != nil {
			fin = r.Wait.Deadline
		}
		var err error
		if r, _, err = Apply(r, Event{Kind: EvFinish, Aborting: r.Aborting}, fin); err != nil {
			t.Fatalf("finish %s: %v", s.ID, err)
		}
	}
}

func stepIDsOf(r Rotation) []string {
	var out []string
	for _, s := range r.Plan.Steps[r.Cursor:] {
		out = append(out, s.ID)
	}
	return out
}

func hasEffect(effs []Effect, k EffectKind) bool {
	for _, f := range effs {
		if f.Kind == k {
			return true
		}
	}
	return false
}

func TestApplyIsPure(t *testing.T) {
	r := at(t, newRot(singlePlan()), "wait-disable", t0)
	before := r.clone()
	if _, _, err := Apply(r, Event{Kind: EvAbort, Actor: "alice", Touched: Touched{Secure: true, MSL: true}}, t0); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, r) {
		t.Fatalf("Apply modified its input")
	}
}

// TestNoStepBeforeItsDeadline: a wait cannot finish before its absolute deadline,
// whatever the observation says, and finishes at it.
func TestNoStepBeforeItsDeadline(t *testing.T) {
	r := at(t, newRot(singlePlan()), "wait-disable", t0)
	if r.Wait == nil || !r.Wait.Deadline.Equal(t0.Add(time.Minute)) {
		t.Fatalf("wait armed with %+v, want a deadline at the 60 s floor", r.Wait)
	}
	for _, d := range []time.Duration{0, time.Second, 59*time.Second + 999*time.Millisecond} {
		if _, _, err := Apply(r, Event{Kind: EvFinish}, t0.Add(d)); err == nil {
			t.Errorf("the wait finished %s after it started, before its deadline", d)
		}
	}
	n, effs, err := Apply(r, Event{Kind: EvFinish}, t0.Add(time.Minute))
	if err != nil || n.Cursor != r.Cursor+1 || n.Wait != nil || !hasEffect(effs, EffDisarmTimer) {
		t.Fatalf("at the deadline: cursor %d, wait %v, %v", n.Cursor, n.Wait, err)
	}
	// An operator may not end it early either.
	if _, _, err := Apply(r, Event{Kind: EvDone, Actor: "alice", Step: "wait-disable"}, t0.Add(30*time.Second)); err == nil {
		t.Errorf("done ended a wait before its deadline")
	}
}

func TestApplyTransitions(t *testing.T) {
	base := newRot(singlePlan())
	waiting := at(t, base, "wait-disable", t0)
	approval := at(t, base, "approval", t0)
	cert := at(t, base, "cert-sepm-01", t0)
	paused, _, _ := Apply(waiting, Event{Kind: EvPause, Actor: "bob"}, t0)
	drifted, _, err := Apply(cert, Event{Kind: EvInterlock, Reason: "X differs.", Drift: true}, t0)
	if err != nil || !drifted.Drifted {
		t.Fatalf("drifted: %v %v", drifted.Drifted, err)
	}
	aborting, _, err := Apply(cert, Event{Kind: EvAbort, Actor: "bob", Reason: "x", Touched: Touched{Secure: true}, HeartbeatSeconds: 10}, t0)
	if err != nil || !aborting.Aborting {
		t.Fatalf("aborting: %v", err)
	}
	cases := []struct {
		name    string
		r       Rotation
		ev      Event
		wantErr string // "" = success; "stale" = ErrStale
		check   func(t *testing.T, n Rotation, effs []Effect)
	}{
		{name: "start arms the wait and owes an announcement with the deadline", r: at(t, base, "disable-secure", t0), ev: Event{Kind: EvFinish},
			check: func(t *testing.T, n Rotation, _ []Effect) {
				n, effs, err := Apply(n, Event{Kind: EvStart}, t0)
				if err != nil || !hasEffect(effs, EffArmTimer) || !strings.Contains(n.Outbox[len(n.Outbox)-1].Text, "at least until 2026-03-01 12:01:00") {
					t.Fatalf("%v %v %+v", err, effs, n.Outbox)
				}
			}},
		{name: "start of a step already active is stale", r: waiting, ev: Event{Kind: EvStart}, wantErr: "stale"},
		{name: "a step event from the other phase is stale", r: waiting, ev: Event{Kind: EvFail, Aborting: true, Reason: "x"}, wantErr: "stale"},
		{name: "a step event naming another step is stale", r: waiting, ev: Event{Kind: EvFinish, Step: "wait-cert"}, wantErr: "stale"},
		{name: "fail pauses with the reason", r: waiting, ev: Event{Kind: EvFail, Reason: "boom"},
			check: func(t *testing.T, n Rotation, _ []Effect) {
				if n.Status != StatusPaused || n.LastError != "boom" {
					t.Fatalf("%s %q", n.Status, n.LastError)
				}
			}},
		{name: "interlock pauses and says resume checks again", r: cert, ev: Event{Kind: EvInterlock, Reason: "X differs."},
			check: func(t *testing.T, n Rotation, effs []Effect) {
				if n.Status != StatusPaused || !strings.Contains(n.Outbox[len(n.Outbox)-1].Text, "`resume R1` checks again") {
					t.Fatalf("%s %+v", n.Status, n.Outbox)
				}
			}},
		{name: "interlock about SEPM's state marks the rotation drifted", r: cert, ev: Event{Kind: EvInterlock, Reason: "X differs.", Drift: true},
			check: func(t *testing.T, n Rotation, _ []Effect) {
				if !n.Drifted {
					t.Fatalf("not drifted")
				}
			}},
		{name: "interlock during an abort never marks drift (a revert is not rewound)", r: aborting, ev: Event{Kind: EvInterlock, Aborting: true, Reason: "X differs.", Drift: true},
			check: func(t *testing.T, n Rotation, _ []Effect) {
				if n.Status != StatusPaused || n.Drifted || !strings.Contains(n.Outbox[len(n.Outbox)-1].Text, "The revert is paused") {
					t.Fatalf("%s drifted=%v %+v", n.Status, n.Drifted, n.Outbox)
				}
			}},
		{name: "an abort forgets a drift (its revert is not rewound)", r: drifted, ev: Event{Kind: EvAbort, Actor: "bob", Reason: "x", Touched: Touched{Secure: true}, HeartbeatSeconds: 10},
			check: func(t *testing.T, n Rotation, _ []Effect) {
				if !n.Aborting || n.Drifted {
					t.Fatalf("aborting=%v drifted=%v", n.Aborting, n.Drifted)
				}
			}},
		{name: "pause twice is refused", r: paused, ev: Event{Kind: EvPause, Actor: "bob"}, wantErr: "not running"},
		{name: "resume a running rotation is refused", r: waiting, ev: Event{Kind: EvResume, Actor: "bob"}, wantErr: "not paused"},
		{name: "resume keeps the wait's deadline", r: paused, ev: Event{Kind: EvResume, Actor: "bob"},
			check: func(t *testing.T, n Rotation, _ []Effect) {
				if n.Status != StatusRunning || !n.Wait.Deadline.Equal(waiting.Wait.Deadline) {
					t.Fatalf("%s %+v", n.Status, n.Wait)
				}
			}},
		{name: "deny pauses at the approval step", r: withApproval(approval, "req1"), ev: Event{Kind: EvDeny, Actor: "carol", Reason: "denied by carol: not today"},
			check: func(t *testing.T, n Rotation, _ []Effect) {
				s, _, _ := n.Current()
				if n.Status != StatusPaused || s.ID != "approval" || n.Aborting {
					t.Fatalf("%s at %s aborting=%v", n.Status, s.ID, n.Aborting)
				}
				// resume asks again: the rejected request is void and forgotten
				rej := approvals.Request{ID: "req1", State: approvals.StateRejected}
				n2, effs, err := Apply(n, Event{Kind: EvResume, Actor: "alice", Approval: &rej}, t0)
				if err != nil || n2.Approval != "" || !hasEffect(effs, EffVoidRequest) {
					t.Fatalf("resume after deny: approval %q %v %v", n2.Approval, effs, err)
				}
			}},
		{name: "rewind to the approval voids the votes and resets the steps", r: withApproval(at(t, base, "disable-secure", t0), "req1"), ev: Event{Kind: EvRewind, To: "approval", Note: "approval-stale", Reason: "asked again"},
			check: func(t *testing.T, n Rotation, effs []Effect) {
				s, st, _ := n.Current()
				if s.ID != "approval" || st.Status != StepPending || n.Approval != "" || !hasEffect(effs, EffVoidRequest) {
					t.Fatalf("at %s/%s approval %q", s.ID, st.Status, n.Approval)
				}
				if n.Steps[n.Plan.StepIndex("disable-secure")].Status != StepPending {
					t.Fatalf("the step rewound from is not pending")
				}
			}},
		{name: "rewind forward is refused", r: approval, ev: Event{Kind: EvRewind, To: "wait-cert"}, wantErr: "not a step before"},
		{name: "a revert never goes back", r: at(t, aborted(t, waiting, Touched{Secure: true}), "revert-enable-secure", t0), ev: Event{Kind: EvRewind, Aborting: true, To: "revert-wait-1"}, wantErr: "never goes back"},
		{name: "done on a manual step records the operator", r: cert, ev: Event{Kind: EvDone, Actor: "alice", Step: "cert-sepm-01"},
			check: func(t *testing.T, n Rotation, _ []Effect) {
				if _, st, _ := n.Current(); st.DoneBy != "alice" {
					t.Fatalf("done by %q", st.DoneBy)
				}
			}},
		{name: "done on another step is refused", r: cert, ev: Event{Kind: EvDone, Actor: "alice", Step: "wait-cert"}, wantErr: "not the current step"},
		{name: "done on an auto step is refused", r: at(t, base, "disable-secure", t0), ev: Event{Kind: EvDone, Actor: "alice", Step: "disable-secure"}, wantErr: "the bot does it"},
		{name: "accept orphans is audited and lifts an orphan pause", r: pausedOrphans(t, base), ev: Event{Kind: EvAcceptOrphans, Actor: "alice", Step: "enable-secure", N: 3},
			check: func(t *testing.T, n Rotation, effs []Effect) {
				if _, st, _ := n.Current(); st.AcceptOrphans != 3 || n.Status != StatusRunning || !hasEffect(effs, EffAudit) {
					t.Fatalf("accept %d status %s", st.AcceptOrphans, n.Status)
				}
			}},
		{name: "confirm with nothing seen is refused", r: cert, ev: Event{Kind: EvConfirm, Actor: "alice", Step: "cert-sepm-01"}, wantErr: "no new certificate"},
		{name: "cert seen then confirm trusts it", r: cert, ev: Event{Kind: EvCertSeen, FP: "fresh"},
			check: func(t *testing.T, n Rotation, _ []Effect) {
				n2, effs, err := Apply(n, Event{Kind: EvConfirm, Actor: "alice", Step: "cert-sepm-01"}, t0)
				if err != nil || n2.NewCerts["sepm-01"] != "fresh" || !hasEffect(effs, EffTrust) {
					t.Fatalf("%v %v", err, n2.NewCerts)
				}
			}},
		{name: "end before the last step is stale", r: waiting, ev: Event{Kind: EvEnd}, wantErr: "stale"},
		{name: "posted clears the outbox up to seq", r: waiting, ev: Event{Kind: EvPosted, N: 2},
			check: func(t *testing.T, n Rotation, _ []Effect) {
				for _, o := range n.Outbox {
					if o.Seq <= 2 {
						t.Fatalf("message %d still owed", o.Seq)
					}
				}
				if len(n.Outbox) != len(waiting.Outbox)-2 {
					t.Fatalf("outbox %d, want %d", len(n.Outbox), len(waiting.Outbox)-2)
				}
			}},
		{name: "abort twice is refused", r: aborted(t, waiting, Touched{Secure: true}), ev: Event{Kind: EvAbort, Actor: "bob"}, wantErr: "already aborting"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, effs, err := Apply(tc.r, tc.ev, t0)
			switch {
			case tc.wantErr == "stale":
				if !errors.Is(err, ErrStale) {
					t.Fatalf("err = %v, want ErrStale", err)
				}
				return
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, n, effs)
			}
		})
	}
}

func withApproval(r Rotation, id string) Rotation { r.Approval = id; return r }

func pausedOrphans(t *testing.T, base Rotation) Rotation {
	r := at(t, base, "enable-secure", t0)
	r, _, err := Apply(r, Event{Kind: EvInterlock, Reason: "4 clients are suspected orphaned: ..."}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func aborted(t *testing.T, r Rotation, tc Touched) Rotation {
	n, _, err := Apply(r, Event{Kind: EvAbort, Actor: "bob", Touched: tc}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAbortFromEveryState: from every step of the plan, in every status, the abort's
// revert comes from what the journal says was touched (never from step status), and
// its waits are three heartbeats, except the first when a certificate changed or may
// be changing, which keeps the certificate wait's floor.
func TestAbortFromEveryState(t *testing.T) {
	base := newRot(singlePlan())
	touches := []Touched{{}, {MSL: true}, {Secure: true}, {Secure: true, MSL: true}}
	for _, s := range base.Plan.Steps {
		for _, paused := range []bool{false, true} {
			for _, tc := range touches {
				name := fmt.Sprintf("%s/paused=%v/secure=%v,msl=%v", s.ID, paused, tc.Secure, tc.MSL)
				t.Run(name, func(t *testing.T) {
					r := at(t, base, s.ID, t0)
					if paused {
						r, _, _ = Apply(r, Event{Kind: EvPause, Actor: "bob"}, t0)
					}
					n, effs, err := Apply(r, Event{Kind: EvAbort, Actor: "bob", Reason: "test", Touched: tc, HeartbeatSeconds: 10}, t0)
					if err != nil {
						t.Fatal(err)
					}
					if n.Status != StatusRunning || !n.Aborting || n.Wait != nil {
						t.Fatalf("status %s aborting %v wait %v", n.Status, n.Aborting, n.Wait)
					}
					ids := stepIDsOf(n)
					want := []string{}
					if tc.Secure {
						want = append(want, "revert-wait-1", "revert-enable-secure")
						if tc.MSL {
							want = append(want, "revert-wait-2")
						}
					}
					if tc.MSL {
						want = append(want, "revert-restore-msl")
					}
					if tc.Secure || tc.MSL {
						want = append(want, "revert-wait-3")
					}
					want = append(want, "revert-report")
					if !reflect.DeepEqual(ids, want) {
						t.Fatalf("revert %v, want %v", ids, want)
					}
					certMay := s.Action == ActCert || r.CertChanges > 0
					for _, ps := range n.Plan.Steps[n.Cursor:] {
						if ps.Kind != KindWait {
							continue
						}
						wantSecs := int64(30)
						if ps.ID == "revert-wait-1" && certMay {
							wantSecs = 60
						}
						if ps.WaitSeconds != wantSecs {
							t.Errorf("%s waits %ds, want %d", ps.ID, ps.WaitSeconds, wantSecs)
						}
					}
					for i := 0; i < n.Cursor; i++ {
						if n.Steps[i].Status == StepPending || n.Steps[i].Status == StepActive {
							t.Errorf("step %s left %s behind the abort", n.Plan.Steps[i].ID, n.Steps[i].Status)
						}
					}
					if !hasEffect(effs, EffAudit) || len(n.Outbox) == len(r.Outbox) {
						t.Errorf("abort not audited or not announced")
					}
					// The revert runs to the end and the rotation ends aborted.
					for {
						_, st, ok := n.Current()
						if !ok {
							break
						}
						if st.Status == StepPending {
							n, _, err = Apply(n, Event{Kind: EvStart, Aborting: true}, t0)
						} else {
							fin := t0
							if n.Wait != nil {
								fin = n.Wait.Deadline
							}
							n, _, err = Apply(n, Event{Kind: EvFinish, Aborting: true}, fin)
						}
						if err != nil {
							t.Fatal(err)
						}
					}
					if n, _, err = Apply(n, Event{Kind: EvEnd}, t0); err != nil || n.Status != StatusAborted {
						t.Fatalf("end: %s %v", n.Status, err)
					}
				})
			}
		}
	}
}

// TestAbortAfterCertChangeKeepsFloor: once a certificate changed, the revert wait
// that lets clients take it keeps the floor, not three heartbeats.
func TestAbortAfterCertChangeKeepsFloor(t *testing.T) {
	r := at(t, newRot(singlePlan()), "wait-cert", t0)
	r.CertChanges = 1
	n, _, err := Apply(r, Event{Kind: EvAbort, Actor: "bob", Touched: Touched{Secure: true, MSL: true}, HeartbeatSeconds: 10}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _ := n.Current(); s.ID != "revert-wait-1" || s.WaitSeconds != 60 {
		t.Fatalf("first revert step %s waits %ds, want revert-wait-1 at the 60 s floor", s.ID, s.WaitSeconds)
	}
}

func TestSuspectsOf(t *testing.T) {
	ws := []watch{{Step: "cert", At: 100_000, HB: 10, Clients: []watchedClient{{"a", "A"}, {"b", "B"}, {"c", "C"}, {"d", "D"}}}}
	last := map[string]int64{"a": 120_000, "b": 99_000, "c": 95_000} // d vanished from SEPM
	if got := suspectsOf(ws, last, 125_000); len(got) != 0 {
		t.Errorf("at 25 s after the change nobody is silent for 3 heartbeats yet: %v", got)
	}
	got := suspectsOf(ws, last, 128_000)
	if len(got) != 1 || got[0].ID != "c" {
		t.Errorf("suspects at 128 s = %v, want c (silent 33 s > 30 s; b only 29 s)", got)
	}
	if got := suspectsOf(ws, last, 200_000); len(got) != 2 {
		t.Errorf("suspects at 200 s = %v, want b and c", got)
	}
}

func TestCountReport(t *testing.T) {
	all := []sepm.Computer{
		{UniqueID: "new", ComputerName: "n", OnlineStatus: 1, LastUpdateTime: 300},
		{UniqueID: "orph", ComputerName: "o", OnlineStatus: 0, LastUpdateTime: 150},
		{UniqueID: "away", ComputerName: "a", OnlineStatus: 0, LastUpdateTime: 50},
		{UniqueID: "never", ComputerName: "v", OnlineStatus: 0},
	}
	rep := countReport(all, map[string]bool{"orph": true}, 100, 200)
	if rep.ClientsTotal != 4 || rep.OnNew != 1 || rep.SuspectedOrphaned != 1 || rep.OfflineBefore != 1 || rep.NeverSeen != 1 {
		t.Fatalf("report %+v", rep)
	}
	if rep.Clean() {
		t.Errorf("a report with a suspected orphan reads as clean")
	}
	r := newRot(singlePlan())
	r.Cursor = len(r.Steps)
	r.Report = &rep
	n, _, err := Apply(r, Event{Kind: EvEnd}, t0)
	if err != nil {
		t.Fatal(err)
	}
	last := n.Outbox[len(n.Outbox)-1].Text
	if n.Status != StatusCompleted || !strings.Contains(last, "NOT cleanly") || strings.HasPrefix(last, "🏁") {
		t.Errorf("completed with a suspected orphan reads %q", last)
	}
}

func TestReminderDue(t *testing.T) {
	r := newRot(singlePlan())
	r.ExpectedEnd = t0.Add(time.Hour)
	if _, ok := reminderDue(r, t0, 24*time.Hour); ok {
		t.Errorf("nothing exposed, yet a reminder is due")
	}
	r.SecureOffSince = t0.UnixMilli()
	due, ok := reminderDue(r, t0, 24*time.Hour)
	if !ok || !due.Equal(t0.Add(25*time.Hour)) {
		t.Errorf("first overdue reminder at %v, want expected end + 24h", due)
	}
	r.LastReminder = t0.Add(25 * time.Hour)
	if due, _ := reminderDue(r, t0, 24*time.Hour); !due.Equal(t0.Add(49 * time.Hour)) {
		t.Errorf("next reminder at %v, want 24h after the last", due)
	}
	p := newRot(singlePlan())
	p.Status, p.PausedAt, p.SecureOffSince, p.ExpectedEnd = StatusPaused, t0, t0.UnixMilli(), t0.Add(100*time.Hour)
	if due, ok := reminderDue(p, t0, 24*time.Hour); !ok || !due.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("paused with secure off: reminder at %v, want 24h after the pause", due)
	}
}

func TestStoreBackoffCapped(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n < 40; n++ {
		d := storeBackoff(n)
		if d < prev || d > maxStoreBackoff || d <= 0 {
			t.Fatalf("backoff(%d) = %s after %s", n, d, prev)
		}
		prev = d
	}
	if storeBackoff(1) > time.Second || storeBackoff(39) != maxStoreBackoff {
		t.Errorf("backoff starts at %s and ends at %s", storeBackoff(1), storeBackoff(39))
	}
}

// TestActionBindsTheRiskyWindow: every choice that makes the window risky is part of
// the approved action; changing any of them changes its hash (voids the approval).
func TestActionBindsTheRiskyWindow(t *testing.T) {
	base := newRot(singlePlan())
	base.Options.NewCerts = map[string]string{"sepm-01": "aa"}
	h := actionHash(base)
	mut := map[string]func(r *Rotation){
		"site":       func(r *Rotation) { r.Site = "site-b" },
		"path":       func(r *Rotation) { r.Plan.Path = PathMulti },
		"target":     func(r *Rotation) { r.Plan.GroupsToChange = r.Plan.GroupsToChange[1:] },
		"min-wait":   func(r *Rotation) { r.Options.MinWait = 2 * time.Hour },
		"straggler":  func(r *Rotation) { r.Plan.StragglerSeconds = 5 },
		"new cert":   func(r *Rotation) { r.Options.NewCerts = map[string]string{"sepm-01": "bb"} },
		"no cert":    func(r *Rotation) { r.Options.NewCerts = nil },
		"rotation":   func(r *Rotation) { r.ID = "R2" },
		"secure off": func(r *Rotation) { r.Plan.GroupsToChange[0].Secure = !r.Plan.GroupsToChange[0].Secure },
	}
	for name, f := range mut {
		r := base.clone()
		r.Options.NewCerts = cloneMap(base.Options.NewCerts)
		f(&r)
		if actionHash(r) == h {
			t.Errorf("changing the %s leaves the approved action's hash unchanged", name)
		}
	}
	if actionHash(base.clone()) != h {
		t.Errorf("the hash is not stable")
	}
}

// TestApplyInvariants: from every step of both paths, running or paused, forward or
// reverting, every event either is refused (and changes nothing) or yields a state
// that keeps the invariants: the cursor within the plan, at most the current step
// active, a wait armed only on an active wait step, steps parallel to the plan.
func TestApplyInvariants(t *testing.T) {
	multi, err := MakePlan(inventory(2, nil), PlanOptions{Straggler: time.Hour, StragglerSet: true})
	if err != nil {
		t.Fatal(err)
	}
	kinds := []EventKind{EvStart, EvFinish, EvFail, EvInterlock, EvPause, EvResume, EvAbort, EvRewind, EvDeny, EvExpired, EvApprovalAsked, EvDone, EvAcceptOrphans, EvConfirm, EvCertSeen, EvRejectDone, EvEnd, EvRemind, EvPosted}
	req := approvals.New("n2", "R1", "alice", "h", 2, time.Hour, t0)
	var states []Rotation
	for _, p := range []Plan{singlePlan(), multi} {
		base := newRot(p)
		for _, s := range p.Steps {
			r := at(t, base, s.ID, t0)
			states = append(states, r)
			pr, _, _ := Apply(r, Event{Kind: EvPause, Actor: "bob"}, t0)
			states = append(states, pr)
			ab, _, _ := Apply(r, Event{Kind: EvAbort, Actor: "bob", Touched: Touched{Secure: true, MSL: true}}, t0)
			states = append(states, ab, at(t, ab, ab.Plan.Steps[len(ab.Plan.Steps)-1].ID, t0))
		}
	}
	for i, r := range states {
		for _, k := range kinds {
			cur, _, _ := r.Current()
			ev := Event{Kind: k, Actor: "bob", Step: cur.ID, Aborting: r.Aborting, Reason: "why", To: r.Plan.Steps[0].ID, FP: "fp", N: 1, Request: &req, Note: "note"}
			before := r.clone()
			n, _, err := Apply(r, ev, t0.Add(24*time.Hour))
			if !reflect.DeepEqual(before, r) {
				t.Fatalf("state %d, %s: Apply modified its input", i, k)
			}
			if err != nil {
				continue
			}
			if n.Cursor < 0 || n.Cursor > len(n.Plan.Steps) || len(n.Steps) != len(n.Plan.Steps) {
				t.Fatalf("state %d, %s: cursor %d of %d steps (%d states)", i, k, n.Cursor, len(n.Plan.Steps), len(n.Steps))
			}
			for j, st := range n.Steps {
				if st.Status == StepActive && j != n.Cursor {
					t.Fatalf("state %d, %s: step %s active but the cursor is at %d", i, k, n.Plan.Steps[j].ID, n.Cursor)
				}
				if j < n.Cursor && (st.Status == StepPending || st.Status == StepActive) {
					t.Fatalf("state %d, %s: step %s behind the cursor is %s", i, k, n.Plan.Steps[j].ID, st.Status)
				}
			}
			if n.Wait != nil {
				s, st, ok := n.Current()
				if !ok || s.Kind != KindWait || st.Status != StepActive || n.Wait.Step != s.ID {
					t.Fatalf("state %d, %s: a wait armed for %s while the current step is %s/%v", i, k, n.Wait.Step, s.ID, st)
				}
			}
			if n.Status == StatusCompleted && n.Aborting || n.Status == StatusAborted && !n.Aborting {
				t.Fatalf("state %d, %s: status %s with aborting=%v", i, k, n.Status, n.Aborting)
			}
		}
	}
}
