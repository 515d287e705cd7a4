package rotation

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"sepmbot/sepm"
	"sepmbot/store"
)

// The tests in this file run a real engine (store, driver, machine) on the fake
// clock of a synctest bubble against fakeFleet, whose reads take simulated time.

const clockWait = "wait-disable"

// clockRig is an engine driving one rotation that starts with a wait of
// waitSeconds (heartbeat hb seconds) followed by a manual step.
type clockRig struct {
	eng    *Engine
	rec    *recorder
	db     *store.DB
	cancel context.CancelFunc
	start  time.Time // when the rotation was stored (the wait starts right after)
}

func newClockRig(t *testing.T, f SEPM, waitSeconds int64, hb int, changeAt int64) *clockRig {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "sepmbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r := Rotation{ID: "R1", Site: "site-a", Requester: "console:alice", Created: now, Updated: now, Status: StatusRunning, ChangeAt: changeAt,
		Plan: Plan{Site: "site-a", HeartbeatSeconds: hb, Steps: []PlanStep{
			{ID: clockWait, Title: "Wait at least three heartbeats", Kind: KindWait, Action: ActWait, WaitSeconds: waitSeconds},
			{ID: "http-msl", Title: "Create the HTTP copies", Kind: KindManual, Action: ActHTTPCopy},
		}},
		Steps: []StepState{{Status: StepPending}, {Status: StepPending}},
	}
	if err := db.Update(context.Background(), func(tx *store.Tx) error { return saveTx(tx, &r) }); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	eng, err := NewEngine(Config{Store: db, SEPM: f, Notifier: rec, Site: "site-a", PollInterval: 30 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	g := &clockRig{eng: eng, rec: rec, db: db, cancel: cancel, start: now}
	t.Cleanup(g.stop)
	return g
}

func (g *clockRig) stop() {
	g.cancel()
	g.eng.Wait()
	g.db.Close()
}

func (g *clockRig) get(t *testing.T) Rotation {
	t.Helper()
	v, err := g.eng.Get(context.Background(), "R1")
	if err != nil {
		t.Fatal(err)
	}
	return v.Rotation
}

func (g *clockRig) progress(t *testing.T) *Progress {
	t.Helper()
	v, err := g.eng.Get(context.Background(), "R1")
	if err != nil {
		t.Fatal(err)
	}
	return v.Progress
}

// deadline is the wait's deadline once it started.
func (g *clockRig) deadline(t *testing.T) time.Time {
	t.Helper()
	synctest.Wait()
	r := g.get(t)
	if r.Wait == nil || r.Wait.Step != clockWait {
		t.Fatalf("the wait did not start: cursor %d, %s", r.Cursor, r.Status)
	}
	return r.Wait.Deadline
}

// sleepUntil advances the fake clock to at and lets every goroutine settle.
func sleepUntil(at time.Time) {
	time.Sleep(time.Until(at))
	synctest.Wait()
}

func (g *clockRig) posted(sub string) int {
	n := 0
	for _, p := range g.rec.Posts() {
		if strings.Contains(p, sub) {
			n++
		}
	}
	return n
}

// TestWaitEndsOnTimeAt100k: at 100,000 clients, with a full sweep that takes 2.2 s
// of simulated time (100 pages of 22 ms), a wait whose clients have all caught up
// hands over to the next step within 1 s of its deadline, also when the confirming
// sweep runs slower or faster than the sweep the tracker measured, and also after a
// restart mid-wait. Between the sweeps, polls read only what changed.
func TestWaitEndsOnTimeAt100k(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		later   float64 // confirming sweep's pace against the first one
		restart bool
	}{
		{"as measured", 1, false},
		{"confirming sweep 1.5x slower", 1.5, false},
		{"confirming sweep 2x faster", 0.5, false},
		{"restart mid-wait", 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				changeAt := time.Now().Add(-time.Minute).UnixMilli()
				// Every client caught up, their check-ins spread over the minute since the change.
				f := newFakeFleet(100_000, 8, changeAt+60_000, 59_000)
				f.pageDelay, f.callDelay, f.laterSweeps = 22*time.Millisecond, 5*time.Millisecond, tc.later
				g := newClockRig(t, f, 3600, 300, changeAt)
				dl := g.deadline(t)
				sleepUntil(dl.Add(-30 * time.Minute))
				if tc.restart {
					g.stop()
					db, err := store.Open(g.db.Path())
					if err != nil {
						t.Fatal(err)
					}
					g.db = db
					g.eng, err = NewEngine(Config{Store: db, SEPM: f, Notifier: g.rec, Site: "site-a", PollInterval: 30 * time.Second, Logger: testLogger(t)})
					if err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithCancel(context.Background())
					g.cancel = cancel
					if err := g.eng.Start(ctx); err != nil {
						t.Fatal(err)
					}
					synctest.Wait()
				}
				f.set(5, func(c *sepm.Computer) { c.LastUpdateTime = time.Now().UnixMilli() }) // a check-in
				sleepUntil(dl.Add(2 * time.Second))
				r := g.get(t)
				lat, ok := WaitEndLatency(r, clockWait)
				if !ok {
					t.Fatalf("the next step did not start by 2 s after the deadline (cursor %d, %s, %q)", r.Cursor, r.Status, r.LastError)
				}
				if lat < 0 || lat > time.Second {
					t.Errorf("wait-end latency %s, want 0..1s", lat)
				}
				if !strings.Contains(r.Steps[0].Note, "100000/100000 online clients") {
					t.Errorf("note %q", r.Steps[0].Note)
				}
				qs, _, fulls := f.stats()
				want := 2 // the wait's first sweep and the confirming one
				if tc.restart {
					want = 3 // and one to rebuild the map after the restart
				}
				if fulls != want {
					t.Errorf("%d full sweeps in an hour's wait, want %d (%d reads in all)", fulls, want, len(qs))
				}
				t.Logf("wait-end latency %s; %d reads, %d of them full sweeps", lat, len(qs), fulls)
			})
		})
	}
}

// TestWaitNeverEndsBeforeDeadline: every client caught up from the first poll and
// the confirming sweep done early: the wait still holds until its deadline (the
// KB's floor), then ends.
func TestWaitNeverEndsBeforeDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		changeAt := time.Now().Add(-time.Minute).UnixMilli()
		f := newFakeFleet(2000, 4, changeAt+60_000, 59_000)
		f.pageDelay, f.callDelay, f.laterSweeps = 20*time.Millisecond, 5*time.Millisecond, 0.1 // confirming sweep far faster than predicted
		g := newClockRig(t, f, 24*3600, 300, changeAt)
		dl := g.deadline(t)
		for _, at := range []time.Time{g.start.Add(time.Hour), dl.Add(-time.Minute), dl.Add(-5 * time.Second), dl.Add(-time.Millisecond)} {
			sleepUntil(at)
			r := g.get(t)
			if s, st, _ := r.Current(); s.ID != clockWait || st.Status != StepActive || r.Status != StatusRunning {
				t.Fatalf("%s before the deadline: at %s/%s, rotation %s (%q)", dl.Sub(at), s.ID, st.Status, r.Status, r.LastError)
			}
			if p := g.progress(t); p == nil || p.OnNewPolicy != p.Online {
				t.Fatalf("%s before the deadline: progress %+v, want every online client caught up", dl.Sub(at), p)
			}
		}
		sleepUntil(dl.Add(time.Second))
		r := g.get(t)
		if lat, ok := WaitEndLatency(r, clockWait); !ok || lat < 0 {
			t.Fatalf("the wait did not end at its deadline: latency %s ok %v, cursor %d, %q", lat, ok, r.Cursor, r.LastError)
		}
		recs, err := g.db.Audit(context.Background(), "R1")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range recs {
			if a.Kind == "step-failed" {
				t.Errorf("the wait failed on its way (an attempt to end it early?): %s", a.Detail)
			}
		}
	})
}

// TestConfirmingSweepFindsLaggard: a client whose record turns laggard without a
// new lastUpdateTime is invisible to incremental polls; the confirming sweep finds
// it and the wait goes on past its deadline with its name, warns three heartbeats
// after, and ends when the client catches up, or when an operator says done.
func TestConfirmingSweepFindsLaggard(t *testing.T) {
	t.Parallel()
	for _, ending := range []string{"client catches up", "operator override"} {
		t.Run(ending, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				changeAt := time.Now().Add(-time.Minute).UnixMilli()
				f := newFakeFleet(2000, 4, changeAt+60_000, 59_000)
				f.pageDelay, f.callDelay = 20*time.Millisecond, 5*time.Millisecond
				const hb = 60
				g := newClockRig(t, f, 3600, hb, changeAt)
				dl := g.deadline(t)
				sleepUntil(dl.Add(-30 * time.Minute))
				f.set(7, func(c *sepm.Computer) { c.ProfileSerialNo = "S0" }) // no new lastUpdateTime
				sleepUntil(dl.Add(-time.Minute))
				if p := g.progress(t); p.OnNewPolicy != p.Online {
					t.Fatalf("an incremental poll saw the silent laggard: %+v (the test needs it hidden)", p)
				}
				sleepUntil(dl.Add(10 * time.Second))
				r := g.get(t)
				if s, st, _ := r.Current(); s.ID != clockWait || st.Status != StepActive {
					t.Fatalf("the wait ended with a laggard the confirming sweep must find: at %s/%s", s.ID, st.Status)
				}
				p := g.progress(t)
				if p.Online-p.OnNewPolicy != 1 || len(p.Laggards) != 1 || p.Laggards[0] != "WKS-000007" {
					t.Fatalf("after the confirming sweep: %+v, want WKS-000007 lagging", p)
				}
				sleepUntil(dl.Add(3*hb*time.Second + 31*time.Second))
				if g.posted("1 online clients have not checked in") != 1 || g.posted("WKS-000007") != 1 {
					t.Fatalf("no laggard warning three heartbeats after the deadline: %q", g.rec.Posts())
				}
				if ending == "operator override" {
					if _, err := g.eng.Done(context.Background(), "console:alice", "R1", clockWait); err != nil {
						t.Fatal(err)
					}
					sleepUntil(time.Now().Add(5 * time.Second)) // the poll it wakes takes simulated time
					r := g.get(t)
					if r.Cursor != 1 || !strings.Contains(r.Steps[0].Note, "ended by console:alice with 1 lagging") {
						t.Fatalf("override: cursor %d, note %q", r.Cursor, r.Steps[0].Note)
					}
					return
				}
				_, _, fulls := f.stats()
				f.set(7, func(c *sepm.Computer) { c.ProfileSerialNo, c.LastUpdateTime = "S1", time.Now().UnixMilli() })
				sleepUntil(time.Now().Add(2 * g.eng.cfg.PollInterval))
				r = g.get(t)
				if r.Cursor != 1 || !strings.Contains(r.Steps[0].Note, "2000/2000 online clients") {
					t.Fatalf("after the laggard caught up: cursor %d, note %q, progress %+v", r.Cursor, r.Steps[0].Note, g.progress(t))
				}
				// The incremental poll that saw it catch up did not end the wait: a full
				// sweep confirmed it first.
				if _, _, after := f.stats(); after != fulls+1 {
					t.Errorf("%d full sweeps between the catch-up and the end, want 1", after-fulls)
				}
			})
		})
	}
}

// TestLastCheckAtDeadline: between the confirming sweep and the deadline a client
// turns laggard, or the online count rises with no record to account for it: the
// cheap check at the deadline does not end the wait on stale data; the wait goes on
// (after a rise, the next full sweep accounts for it and ends it).
func TestLastCheckAtDeadline(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(f *fakeFleet)
		ends   bool // by a minute after the deadline
	}{
		{"a client checks in on the old policy", func(f *fakeFleet) {
			f.set(11, func(c *sepm.Computer) { c.ProfileSerialNo, c.LastUpdateTime = "S0", time.Now().UnixMilli() })
		}, false},
		{"online count rises unseen", func(f *fakeFleet) {
			f.mu.Lock()
			f.statusOnline = func(n int) int { return n + 1 }
			f.mu.Unlock()
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				changeAt := time.Now().Add(-time.Minute).UnixMilli()
				f := newFakeFleet(2000, 4, changeAt+60_000, 59_000)
				f.pageDelay, f.callDelay = 20*time.Millisecond, 5*time.Millisecond
				g := newClockRig(t, f, 3600, 300, changeAt)
				dl := g.deadline(t)
				sleepUntil(dl.Add(-300 * time.Millisecond)) // the confirming sweep is done
				if _, _, fulls := f.stats(); fulls != 2 {
					t.Fatalf("%d full sweeps before the deadline, want 2 (start, confirming)", fulls)
				}
				tc.change(f)
				sleepUntil(dl.Add(5 * time.Second))
				if r := g.get(t); r.Cursor != 0 {
					t.Fatalf("the wait ended at its deadline on a verdict the last check contradicts (note %q)", r.Steps[0].Note)
				}
				sleepUntil(dl.Add(time.Minute))
				r := g.get(t)
				if ended := r.Cursor == 1; ended != tc.ends {
					t.Fatalf("a minute after the deadline: ended %v, want %v (progress %+v)", ended, tc.ends, g.progress(t))
				}
				if _, _, fulls := f.stats(); tc.ends && fulls != 3 {
					t.Errorf("%d full sweeps, want 3 (the rise is accounted for by a new sweep)", fulls)
				}
			})
		})
	}
}
