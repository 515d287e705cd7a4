package rotation

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"sepmbot/sepm"
)

// TestTrackerIncrementalReadsOnlyChanged: after the full sweep, a poll asks for the
// computers changed since (less the overlap) and merges them; its cost follows the
// clients that checked in.
func TestTrackerIncrementalReadsOnlyChanged(t *testing.T) {
	ctx := context.Background()
	const n = 5000
	f := newFakeFleet(n, 4, chg-100_000)   // nobody checked in since the change
	f.comps[0].LastUpdateTime = chg - 1000 // the newest record, on the first page
	tr := newTracker(f, chg, nil)
	p, err := tr.Full(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Online != n || p.OnNewPolicy != 0 || len(p.Laggards) != maxLaggardNames {
		t.Fatalf("full %+v", p)
	}
	for i := 0; i < n; i += 10 { // 10% check in with the policy
		f.set(i, func(c *sepm.Computer) { c.LastUpdateTime = chg + 5000 })
	}
	_, before, _ := f.stats()
	p, err = tr.Incremental(ctx)
	if err != nil {
		t.Fatal(err)
	}
	qs, after, fulls := f.stats()
	if got := after - before; got != n/10 {
		t.Errorf("incremental poll read %d records, want %d", got, n/10)
	}
	if fulls != 1 {
		t.Errorf("%d full reads, want 1", fulls)
	}
	if last := qs[len(qs)-1].LastUpdate; last != chg-1000-IncrementalOverlap.Milliseconds() {
		t.Errorf("LastUpdate = %d, want the cursor less the overlap", last)
	}
	if p.OnNewPolicy != n/10 || p.Online != n {
		t.Errorf("incremental %+v", p)
	}
	// The next poll starts from the newest check-in seen.
	if _, err := tr.Incremental(ctx); err != nil {
		t.Fatal(err)
	}
	qs, last, _ := f.stats()
	if q := qs[len(qs)-1].LastUpdate; q != chg+5000-IncrementalOverlap.Milliseconds() {
		t.Errorf("second poll LastUpdate = %d", q)
	}
	if last-after != n/10 {
		t.Errorf("second poll read %d records (the overlap re-reads the last check-ins), want %d", last-after, n/10)
	}
}

// TestTrackerCursorSurvivesSlowSweep: a client read on the first page that checks in
// while later pages are read, at a time older than the newest record of those
// pages, is still caught by the next poll: the cursor comes from the first page.
func TestTrackerCursorSurvivesSlowSweep(t *testing.T) {
	ctx := context.Background()
	f := newFakeFleet(3000, 2, chg-1000)
	f.comps[2999].LastUpdateTime = chg + 60_000 // page 3 holds a recent check-in
	f.maxLast = chg + 60_000
	f.onPage = func(f *fakeFleet, q sepm.ComputerQuery, n int) {
		if q.LastUpdate == 0 && n == 1 {
			// Page 1's client 0 checks in during the sweep, before page 3's newest record.
			f.comps[0].LastUpdateTime = chg + 30_000
		}
	}
	tr := newTracker(f, chg, nil)
	if _, err := tr.Full(ctx); err != nil {
		t.Fatal(err)
	}
	f.onPage = nil
	if _, err := tr.Incremental(ctx); err != nil {
		t.Fatal(err)
	}
	i, _ := tr.m.lookup([]byte(f.comps[0].UniqueID))
	if got := tr.m.marks[i].last; got != chg+30_000 {
		t.Errorf("client 0's check-in during the sweep was missed: map holds %d", got)
	}
}

// TestTrackerFailedFullKeepsMap: a full sweep that fails half-way leaves the map and
// the confirmation as they were.
func TestTrackerFailedFullKeepsMap(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := newFakeFleet(2500, 2, chg+1)
	tr := newTracker(f, chg, nil)
	if _, err := tr.Full(ctx); err != nil {
		t.Fatal(err)
	}
	if !tr.Confirmed() {
		t.Fatal("not confirmed")
	}
	f.onPage = func(*fakeFleet, sepm.ComputerQuery, int) { cancel() }
	if _, err := tr.Full(ctx); err == nil {
		t.Fatal("a cancelled sweep succeeded")
	}
	if !tr.Confirmed() || len(tr.m.marks) != 2500 {
		t.Errorf("after a failed sweep: confirmed %v, %d clients", tr.Confirmed(), len(tr.m.marks))
	}
}

// TestTrackerSweepDuration: the tracker keeps how long its last full sweep took (the
// wait schedules its confirming sweep from it).
func TestTrackerSweepDuration(t *testing.T) {
	now := w0
	f := newFakeFleet(10, 1, chg+1)
	f.onPage = func(*fakeFleet, sepm.ComputerQuery, int) { now = now.Add(1500 * time.Millisecond) }
	tr := newTracker(f, chg, func() time.Time { return now })
	if _, err := tr.Full(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := tr.SweepDuration(); got != 1500*time.Millisecond {
		t.Errorf("SweepDuration = %s, want 1.5s", got)
	}
}

// TestTrackerOfflineLaggardInvitesSweep: a lagging client that goes offline without
// a new record stays a laggard in the map, but the onlinestatus count falls, so the
// tracker says a full sweep is worth it (else the wait could never end); the sweep
// then confirms.
func TestTrackerOfflineLaggardInvitesSweep(t *testing.T) {
	ctx := context.Background()
	f := newFakeFleet(1500, 3, chg+1000)
	f.comps[4].ProfileSerialNo = "S0"
	tr := newTracker(f, chg, nil)
	if _, err := tr.Full(ctx); err != nil {
		t.Fatal(err)
	}
	if tr.MaybeCaughtUp() || tr.Confirmed() {
		t.Fatal("a laggard online: maybe caught up / confirmed")
	}
	f.statusOnline = func(n int) int { return n - 1 } // it went offline; its record did not change
	p, err := tr.Incremental(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Online != 1499 || p.OnNewPolicy != 1499 || tr.Lagging() != 1 {
		t.Fatalf("incremental %+v, lagging %d", p, tr.Lagging())
	}
	if !tr.MaybeCaughtUp() || tr.Confirmed() {
		t.Fatalf("maybe %v confirmed %v: want maybe caught up, not confirmed", tr.MaybeCaughtUp(), tr.Confirmed())
	}
	f.set(4, func(c *sepm.Computer) { c.OnlineStatus = 0 })
	f.statusOnline = nil
	if _, err := tr.Full(ctx); err != nil {
		t.Fatal(err)
	}
	if !tr.Confirmed() {
		t.Error("the sweep that sees it offline does not confirm")
	}
}

// TestWaitEndLatency: the next step's start minus the wait's deadline; not known
// until the next step started, nor for a step that is not a wait.
func TestWaitEndLatency(t *testing.T) {
	r := Rotation{Plan: Plan{Steps: []PlanStep{{ID: "approval", Kind: KindApproval}, {ID: "wait-disable", Kind: KindWait, WaitSeconds: 900}, {ID: "cert-sepm-01", Kind: KindManual}}},
		Steps: []StepState{{Started: w0.Add(-time.Hour)}, {Started: w0}, {}}}
	if _, ok := WaitEndLatency(r, "wait-disable"); ok {
		t.Error("latency known before the next step started")
	}
	r.Steps[2].Started = w0.Add(900*time.Second + 350*time.Millisecond)
	if lat, ok := WaitEndLatency(r, "wait-disable"); !ok || lat != 350*time.Millisecond {
		t.Errorf("latency %s %v, want 350ms", lat, ok)
	}
	for _, id := range []string{"approval", "cert-sepm-01", "nope"} {
		if _, ok := WaitEndLatency(r, id); ok {
			t.Errorf("latency of %s", id)
		}
	}
}

// TestTrackerFullDropsDeletedClients: the full sweep updates the map in place; a
// client deleted from SEPM (a lagging one here) is counted nowhere after it, and
// counts again when it comes back.
func TestTrackerFullDropsDeletedClients(t *testing.T) {
	ctx := context.Background()
	f := newFakeFleet(100, 2, chg+1)
	f.set(7, func(c *sepm.Computer) { c.ProfileSerialNo = "S0" }) // lagging
	tr := newTracker(f, chg, nil)
	p, err := tr.Full(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Online != 100 || p.OnNewPolicy != 99 || tr.Confirmed() {
		t.Fatalf("first sweep: %+v", p)
	}
	f.mu.Lock()
	gone := f.comps[7]
	f.comps = append(f.comps[:7:7], f.comps[8:]...)
	f.mu.Unlock()
	if p, err = tr.Full(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Online != 99 || p.Offline != 0 || p.OnNewPolicy != 99 || !tr.Confirmed() || len(p.Laggards) != 0 {
		t.Fatalf("after the deletion: %+v confirmed %v", p, tr.Confirmed())
	}
	f.mu.Lock()
	f.comps = append(f.comps, gone)
	f.mu.Unlock()
	if p, err = tr.Full(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Online != 100 || p.OnNewPolicy != 99 || tr.Confirmed() || len(tr.m.marks) != 100 {
		t.Fatalf("back again: %+v confirmed %v, %d marks", p, tr.Confirmed(), len(tr.m.marks))
	}
}

// TestTrackerIncrementalSideReadsOverlap: a poll reads the group serials and the
// online counts while the changed computers come in, so it takes the longer of the
// two, not their sum (fake clock: each small call 10 ms, each page 10 ms).
func TestTrackerIncrementalSideReadsOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeFleet(500, 4, chg-100_000)
		f.callDelay, f.pageDelay = 10*time.Millisecond, 10*time.Millisecond
		tr := newTracker(f, chg, nil)
		if _, err := tr.Full(ctx); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 500; i += 10 {
			f.set(i, func(c *sepm.Computer) { c.LastUpdateTime = chg + 5000 })
		}
		start := time.Now()
		p, err := tr.Incremental(ctx)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if p.OnNewPolicy != 50 {
			t.Errorf("incremental %+v", p)
		}
		if sequential := 2*f.callDelay + f.pageDelay; took >= sequential {
			t.Errorf("the poll took %s, the calls one after the other %s: the side reads did not overlap the computers read", took, sequential)
		}
	})
}

// TestTrackerIncrementalGroupsErrorKeepsCursor: a poll whose GET groups fails fails
// as a whole (its records are not classified against unknown serials) and leaves
// the cursor where it was: the next poll asks from the same point.
func TestTrackerIncrementalGroupsErrorKeepsCursor(t *testing.T) {
	ctx := context.Background()
	f := newFakeFleet(500, 4, chg-100_000)
	tr := newTracker(f, chg, nil)
	if _, err := tr.Full(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i += 10 {
		f.set(i, func(c *sepm.Computer) { c.LastUpdateTime = chg + 5000 })
	}
	f.groupsErr = errors.New("503 from groups")
	if _, err := tr.Incremental(ctx); err == nil || !strings.Contains(err.Error(), "reading group serials") || !strings.Contains(err.Error(), "503 from groups") {
		t.Fatalf("poll with groups failing: %v", err)
	}
	qs, _, _ := f.stats()
	failed := qs[len(qs)-1].LastUpdate
	f.groupsErr = nil
	p, err := tr.Incremental(ctx)
	if err != nil {
		t.Fatal(err)
	}
	qs, _, _ = f.stats()
	if again := qs[len(qs)-1].LastUpdate; again != failed {
		t.Errorf("after a failed poll the next asks from %d, want %d (the cursor moved)", again, failed)
	}
	if p.OnNewPolicy != 50 {
		t.Errorf("the poll after the failure: %+v", p)
	}
}
