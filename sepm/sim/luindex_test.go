package sim

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// bruteMatch is the computer query's selection as a scan of the fleet in sort
// order, the way the simulator answered before the lastUpdate index.
func bruteMatch(m *model, q computerQuery) []int32 {
	order := m.byName
	if q.byID {
		order = m.byID
	}
	var out []int32
	for _, i := range order {
		c := &m.clients[i]
		if (q.group < 0 || c.group == q.group) && c.lastUpdate > q.lastUpdate && (q.name == "" || wildcard(q.name, c.name)) {
			out = append(out, i)
		}
	}
	return out
}

// checkIndexAgrees compares, for many lastUpdate values, the indexed selection,
// the selection that scans, and the brute-force one.
func checkIndexAgrees(t *testing.T, m *model, r *rand.Rand, lo, hi int64, round int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if on := countOnline(m); m.onlineN != on {
		t.Fatalf("round %d: onlineN %d, %d clients checking in", round, m.onlineN, on)
	}
	if !slices.IsSortedFunc(m.lu.log, func(a, b luEntry) int { return int(a.lu - b.lu) }) {
		t.Fatalf("round %d: the lastUpdate log is out of order (a clock step back appended in place?)", round)
	}
	groups := []int32{-1, -1, int32(1 + r.IntN(len(m.groups)-1))}
	names := []string{"", "", "*-0*1", "LAP-*"}
	for range 30 {
		q := computerQuery{group: groups[r.IntN(len(groups))], name: names[r.IntN(len(names))], byID: r.IntN(2) == 0,
			lastUpdate: lo + r.Int64N(hi-lo+1)}
		if r.IntN(10) == 0 {
			// exactly a client's lastUpdate: the filter is strictly after T
			q.lastUpdate = m.clients[r.IntN(len(m.clients))].lastUpdate
		}
		want := bruteMatch(m, q)
		indexed := m.matchLocked(q, len(m.clients)+len(m.lu.log)) // always the index
		scanned := m.matchLocked(q, -1)                           // never the index
		auto := m.matchLocked(q, luIndexLimit(len(m.clients)))
		for name, got := range map[string][]int32{"indexed": indexed, "scanned": scanned, "auto": auto} {
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, query %+v: %s selection has %d clients, brute force %d (or a different order)",
					round, q, name, len(got), len(want))
			}
		}
	}
}

// TestLastUpdateIndexMatchesBruteForce (and the online count) runs a randomized fleet (offline clients,
// roamers, failed policy downloads, clients taken offline and back) on a fake
// clock, the clock sometimes stepping back, and checks after every round that a
// lastUpdate query selects exactly the clients, in exactly the order, that a scan
// of the fleet selects, for many T around the fleet's check-ins. It then restores
// a snapshot into a fresh model and checks again.
func TestLastUpdateIndexMatchesBruteForce(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 3000, Heartbeat: 2 * time.Second, OfflinePercent: 10, RoamingPercent: 20, PolicyFetch: 0.7, Jitter: 0.5})
	m := tm.model
	r := rand.New(rand.NewPCG(7, 11))
	start := tm.clk.now().UnixMilli()
	for round := range 40 {
		step := time.Duration(r.IntN(700)) * time.Millisecond
		if round%9 == 8 {
			step = -time.Duration(1+r.IntN(400)) * time.Millisecond // the clock steps back
		}
		tm.clk.set(tm.clk.now().Add(step))
		if round%7 == 3 {
			if _, err := m.setOnline(100, false, 0); err != nil {
				t.Fatal(err)
			}
		}
		if round%11 == 4 {
			if _, err := m.blockClients(nil, 50, true); err != nil {
				t.Fatal(err)
			}
		}
		if round%11 == 9 {
			if _, err := m.blockClients(nil, 30, false); err != nil {
				t.Fatal(err)
			}
		}
		if round == 30 {
			if _, err := m.updateCertificate("sepm-01", false); err != nil {
				t.Fatal(err)
			}
		}
		if round%7 == 5 {
			if _, err := m.setOnline(100, true, 0); err != nil {
				t.Fatal(err)
			}
		}
		m.mu.Lock()
		m.stepLocked(tm.clk.now())
		m.mu.Unlock()
		now := tm.clk.now().UnixMilli()
		checkIndexAgrees(t, m, r, start-8*24*3600*1000, now+10, round)
		checkIndexAgrees(t, m, r, now-3000, now+10, round) // the recent past, where polls ask
	}
	m.mu.Lock()
	if len(m.lu.log) > 2*len(m.clients)+1 {
		t.Errorf("lastUpdate log holds %d entries for %d clients: it is never compacted", len(m.lu.log), len(m.clients))
	}
	checkins := m.checkins
	sn := m.snapshotLocked(nil)
	m.mu.Unlock()
	if f := m.fleet(); f.Orphaned == 0 || f.Offline == 0 {
		t.Fatalf("fleet %+v: the test orphans nobody or leaves nobody offline", f)
	}
	if checkins < 8_000 {
		t.Fatalf("only %d check-ins: the test does not exercise the log", checkins)
	}

	// A restart from the state file rebuilds the index.
	fresh := newTestModel(t, Options{Clients: 3000, Heartbeat: 2 * time.Second, OfflinePercent: 10, RoamingPercent: 20, PolicyFetch: 0.7, Jitter: 0.5})
	fresh.mu.Lock()
	err := fresh.restoreLocked(sn)
	fresh.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	now := tm.clk.now().UnixMilli()
	checkIndexAgrees(t, fresh.model, r, now-3000, now+10, -1)
}

// BenchmarkLastUpdateMatch500k measures the selection of a lastUpdate query at
// 500,000 clients (300 s heartbeat) for the clients of the last 3 s (1%), 30 s
// (10%) and 120 s (40%): through the index (a poll's first page), from the
// index's cache (its later pages, the log unchanged) and by a scan of the fleet;
// the time is the model-lock hold of the selection.
func BenchmarkLastUpdateMatch500k(b *testing.B) {
	m, clk := benchModel(b, 500_000, 300*time.Second)
	// One heartbeat of check-ins, so that the log is in check-in order.
	for range 300 {
		clk.set(clk.now().Add(time.Second))
		m.mu.Lock()
		m.stepLocked(clk.now())
		m.mu.Unlock()
	}
	for _, back := range []time.Duration{3 * time.Second, 30 * time.Second, 120 * time.Second} {
		q := computerQuery{group: -1, lastUpdate: clk.now().Add(-back).UnixMilli()}
		for _, way := range []struct {
			name   string
			limit  int
			cached bool
		}{{"index", luIndexLimit(len(m.clients)), false}, {"cached", luIndexLimit(len(m.clients)), true}, {"scan", -1, false}} {
			b.Run(back.String()+"/"+way.name, func(b *testing.B) {
				var n int
				for b.Loop() {
					m.mu.Lock()
					if !way.cached {
						m.lu.cache = luCache{}
					}
					n = len(m.matchLocked(q, way.limit))
					m.mu.Unlock()
				}
				b.ReportMetric(float64(n), "clients")
			})
		}
	}
}

func countOnline(m *model) int {
	n := 0
	for i := range m.clients {
		if m.clients[i].checkingIn() {
			n++
		}
	}
	return n
}

// BenchmarkLastUpdateCompact500k measures one compaction of the lastUpdate log at
// 500,000 clients (it runs under the model lock once per 500,000 check-ins, every
// heartbeat at a 300 s heartbeat): a log of 1,000,000 entries, half of them void.
func BenchmarkLastUpdateCompact500k(b *testing.B) {
	m, clk := benchModel(b, 500_000, 300*time.Second)
	r := rand.New(rand.NewPCG(1, 2))
	lu := clk.now().UnixMilli()
	for b.Loop() {
		b.StopTimer()
		m.mu.Lock()
		for len(m.lu.log) < 2*len(m.clients) {
			lu++
			m.setLastUpdateLocked(int32(r.IntN(len(m.clients))), lu)
		}
		b.StartTimer()
		m.compactLULocked()
		m.mu.Unlock()
	}
}

// TestLastUpdateCacheFollowsTheLog: the pages of one lastUpdate query answer from
// the cached selection, which takes in the check-ins appended since (a poll's
// later pages see clients that checked in after its first), and the cache is
// dropped after the log was compacted or a check-in was stamped before the last
// (the clock stepped back). Every answer is the brute-force selection, and a list
// handed out earlier never changes.
func TestLastUpdateCacheFollowsTheLog(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 12_000, Heartbeat: 2 * time.Second, OfflinePercent: 5, RoamingPercent: 20, PolicyFetch: 0.7, Jitter: 0.5})
	m := tm.model
	r := rand.New(rand.NewPCG(3, 5))
	queries := []computerQuery{
		{group: -1},
		{group: -1, byID: true, desc: true, index: 3, size: 1000},
		{group: -1, name: "*-*", reduced: true},
	}
	var hits, grown, stale, compactions, bumps int
	var prev, prevCopy []int32
	var q computerQuery
	index := len(m.clients) * 10 // always through the index (and its cache), never a scan
	for round := range 60 {
		if round%10 == 0 { // the next query, for the clients of the last 1.5 s
			q = queries[(round/10)%len(queries)]
			q.lastUpdate = tm.clk.now().Add(-1500 * time.Millisecond).UnixMilli()
		}
		tm.clk.set(tm.clk.now().Add(time.Duration(r.IntN(300)) * time.Millisecond))
		m.mu.Lock()
		logLen, epoch := len(m.lu.log), m.lu.epoch
		m.stepLocked(tm.clk.now())
		if round%10 == 7 { // a check-in stamped before the last (the wall clock stepped back)
			m.setLastUpdateLocked(int32(r.IntN(len(m.clients))), m.lu.log[len(m.lu.log)-1].lu-200)
		}
		if len(m.lu.log) < logLen {
			compactions++
		}
		if m.lu.epoch != epoch && round%10 != 0 {
			bumps++ // a compaction or an insert in place: the cache must be dropped
		}
		for page := range 2 { // two pages of one query, the model unchanged between them
			c := m.lu.cache
			cached := c.ok && c.epoch == m.lu.epoch && c.q == filtersOf(q)
			got := m.matchLocked(q, index)
			want := bruteMatch(m, q)
			if !slices.Equal(got, want) {
				m.mu.Unlock()
				t.Fatalf("round %d page %d (cached %t): %d clients selected, brute force %d (or another order)", round, page, cached, len(got), len(want))
			}
			if len(want) <= luSortMax {
				m.mu.Unlock()
				t.Fatalf("round %d: only %d clients selected: the cache is not exercised", round, len(want))
			}
			switch {
			case cached && page == 0 && c.read < len(m.lu.log):
				grown++
			case cached:
				hits++
			case page == 0 && round%10 != 0:
				stale++ // the same query, the cache dropped: a compaction or a step back
			}
			if page == 1 && !cached {
				m.mu.Unlock()
				t.Fatalf("round %d: the second page of a query did not answer from the cache", round)
			}
		}
		if prev != nil && !slices.Equal(prev, prevCopy) {
			m.mu.Unlock()
			t.Fatalf("round %d: a selection handed out earlier changed under its reader", round)
		}
		prev = m.matchLocked(q, index)
		prevCopy = slices.Clone(prev)
		m.mu.Unlock()
	}
	if stale != bumps {
		t.Errorf("%d caches dropped for %d compactions and inserts in place: only those may drop it", stale, bumps)
	}
	if grown < 20 || hits < 40 || compactions == 0 || bumps <= compactions {
		t.Fatalf("the test did not exercise the cache: %d answers took in new check-ins, %d hits, %d compactions, %d epoch changes",
			grown, hits, compactions, bumps)
	}
	t.Logf("%d answers took in new check-ins, %d hits, %d compactions, %d epoch changes", grown, hits, compactions, bumps)
}
