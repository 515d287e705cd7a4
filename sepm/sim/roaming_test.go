package sim

import (
	"testing"
	"time"
)

// Tests of the realistic client model (issue 7 item 7): failed policy downloads,
// heartbeat jitter, roaming clients. All on the model's fake clock.

// realistic are the options `sepmbot sim` and the demo use.
func realistic(o Options) Options {
	o.PolicyFetch, o.Jitter, o.RoamingPercent = 0.7, 0.5, 10
	return o
}

// caughtUpLocked is what a bot observes through the REST API: every client SEPM
// shows online holds its group's current policy and checked in after the change.
func (tm *testModel) caughtUp(change time.Time) bool {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	for i := range tm.clients {
		c := &tm.clients[i]
		if c.checkingIn() && (c.serial != tm.groups[c.group].serial || c.lastUpdate <= change.UnixMilli()) {
			return false
		}
	}
	return true
}

// waitLikeBot waits at least floor, then until every client seen online caught up
// (polling every tenth of a heartbeat), as the engine's heartbeat wait does.
func (tm *testModel) waitLikeBot(floor time.Duration) {
	tm.t.Helper()
	change := tm.clk.now()
	tm.advance(floor)
	for range 2000 {
		if tm.caughtUp(change) {
			return
		}
		tm.advance(tm.opts.Heartbeat / 10)
	}
	tm.t.Fatal("clients never caught up")
}

// procedureWithWait runs the single-server procedure with every wait ended by
// waitLikeBot(floor) and returns the orphans after the certificate update.
func procedureWithWait(t *testing.T, o Options, floor time.Duration) FleetReport {
	tm := newTestModel(t, o)
	tm.heartbeats(3)
	httpMSL, err := tm.copyMSLAsHTTP(defaultMSLName, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := tm.assignMSL(httpMSL, nil); err != nil {
		t.Fatal(err)
	}
	tm.waitLikeBot(floor)
	tm.patchAll(secureCfg(false))
	tm.waitLikeBot(floor)
	for _, s := range tm.servers {
		tm.updateCert(s.name)
	}
	tm.waitLikeBot(floor)
	tm.heartbeats(6) // every roamer away at the update is back and has met the new certificate
	return tm.fleet()
}

// TestShortWaitOrphansRoamers is the proof that a test can tell a short wait from a
// long one: with the realistic model, ending each wait as soon as the clients seen
// online caught up orphans roamers that were away; waiting three heartbeats first
// orphans nobody. With the ideal model (the Options defaults) both orphan nobody,
// which is why the realistic model exists.
func TestShortWaitOrphansRoamers(t *testing.T) {
	hb := 10 * time.Second
	base := Options{Clients: 600, Heartbeat: hb, Versions: "14.3=100", Seed: 7}
	for _, seed := range []int64{7, 8, 9} {
		o := realistic(base)
		o.Seed = seed
		short := procedureWithWait(t, o, 0)
		long := procedureWithWait(t, o, 3*hb)
		t.Logf("seed %d: floor 0: %d orphaned (%d absences, %d failed downloads); floor 3 heartbeats: %d orphaned",
			seed, short.Orphaned, short.Absences, short.FetchFailures, long.Orphaned)
		if short.Orphaned == 0 {
			t.Errorf("seed %d: a wait ended as soon as the online clients caught up orphaned nobody", seed)
		}
		if long.Orphaned != 0 {
			t.Errorf("seed %d: three-heartbeat waits orphaned %d: %+v", seed, long.Orphaned, long.OrphanedClients)
		}
		if short.Absences == 0 || short.FetchFailures == 0 {
			t.Errorf("seed %d: the realistic model did not run: %+v", seed, short)
		}
	}
	ideal := procedureWithWait(t, base, 0)
	if ideal.Orphaned != 0 || ideal.Absences != 0 || ideal.FetchFailures != 0 {
		t.Fatalf("ideal model: %+v", ideal)
	}
}

func TestPolicyFetchFailsAShare(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 1000, PolicyFetch: 0.7, Heartbeat: 10 * time.Second, Versions: "14.3=100"})
	tm.patchAll(secureCfg(false))
	change := tm.clk.now()
	tm.advance(9*time.Second + 400*time.Millisecond) // before any retry of a failure at the latest first check-in
	tm.mu.Lock()
	checked, fetched := 0, 0
	for i := range tm.clients {
		c := &tm.clients[i]
		if !c.checkingIn() || c.lastUpdate <= change.UnixMilli() {
			continue
		}
		checked++
		if c.serial == tm.groups[c.group].serial {
			fetched++
		}
	}
	tm.mu.Unlock()
	if checked < 500 || fetched == checked {
		t.Fatalf("%d of %d clients that checked in hold the new policy: downloads never fail", fetched, checked)
	}
	tm.settle() // failed downloads are retried
	f := tm.fleet()
	// Each client downloads the policy once; the failures before it are geometric:
	// failures / (failures + downloads) is about 1 - 0.7.
	share := float64(f.FetchFailures) / float64(f.FetchFailures+1000)
	if f.Pending != 0 || share < 0.25 || share > 0.35 {
		t.Fatalf("failure share %.3f, want about 0.3: %+v", share, f)
	}
}

func TestJitterOption(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 500, Jitter: 0.5, Heartbeat: 10 * time.Second})
	tm.heartbeats(2)
	now := tm.clk.now()
	tm.mu.Lock()
	defer tm.mu.Unlock()
	short, long := 0, 0
	for _, e := range tm.heap {
		c := &tm.clients[e.idx]
		if e.gen != c.gen {
			continue
		}
		gap := time.Unix(0, e.due).Sub(time.UnixMilli(c.lastUpdate))
		if gap < 5*time.Second-time.Millisecond || gap > 15*time.Second+time.Millisecond {
			t.Fatalf("client %s: interval %v is not 10s +-50%%", c.name, gap)
		}
		if gap < 7*time.Second {
			short++
		}
		if gap > 13*time.Second {
			long++
		}
	}
	if short == 0 || long == 0 {
		t.Fatalf("jitter does not use its range: %d short, %d long (at %v)", short, long, now)
	}
}

func TestRoamersDropAndReturn(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 1000, RoamingPercent: 20, Heartbeat: 10 * time.Second})
	roamers := 0
	for i := range tm.clients {
		if tm.clients[i].roamer {
			roamers++
		}
	}
	if roamers != 200 {
		t.Fatalf("%d roamers, want 200", roamers)
	}
	maxAway := 0
	for range 40 {
		tm.advance(time.Second)
		f := tm.fleet()
		maxAway = max(maxAway, f.Away)
		if f.Away+f.Offline-f.Away > 0 && f.OK+f.Offline != f.Total {
			t.Fatalf("%+v", f)
		}
	}
	if maxAway == 0 || maxAway > roamers {
		t.Fatalf("at most %d roamers away at once (of %d)", maxAway, roamers)
	}
	// A roamer is back within 2.75 of its heartbeats.
	tm.mu.Lock()
	var away []int32
	for i := range tm.clients {
		if tm.clients[i].away {
			away = append(away, int32(i))
		}
	}
	tm.mu.Unlock()
	tm.advance(27500*time.Millisecond + time.Millisecond)
	tm.mu.Lock()
	defer tm.mu.Unlock()
	for _, i := range away {
		if c := &tm.clients[i]; c.away && c.lastUpdate < tm.clk.now().Add(-27500*time.Millisecond).UnixMilli() {
			t.Fatalf("roamer %s away longer than 2.75 heartbeats", c.name)
		}
	}
}

func TestRealisticOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{Password: "x", PolicyFetch: 1.5},
		{Password: "x", PolicyFetch: -0.1},
		{Password: "x", Jitter: 0.95},
		{Password: "x", RoamingPercent: 101},
		{Password: "x", Servers: 1, ServerListen: []string{"127.0.0.1:0", "127.0.0.1:0"}},
	} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o, err := Options{Password: "x"}.withDefaults()
	if err != nil || o.PolicyFetch != 1 || o.Jitter != 0.1 || o.RoamingPercent != 0 {
		t.Fatalf("defaults: %+v %v", o, err)
	}
}
