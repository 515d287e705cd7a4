package sim

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// Tests of Options.Steady: a site that starts as if it had run for days. All on the
// model's fake clock.

// steadyOptions is the realistic model at a size where a tenth of a heartbeat
// holds about 1,900 check-ins (a window's count then varies by about 2%).
func steadyOptions(steady bool) Options {
	return realistic(Options{Clients: 20_000, Heartbeat: 10 * time.Second, OfflinePercent: 5, Versions: "14.3=100", Seed: 11, Steady: steady})
}

// checkinWindows counts the check-ins of each tenth of Options.Heartbeat over the
// first three, and returns them with the steady rate's count for a window: a client
// checks in once per heartbeat of its policy on average, a roamer once per mean
// interval of its cycle (a heartbeat, or with roamChance an absence).
func checkinWindows(tm *testModel) (counts []uint64, want float64) {
	window := tm.opts.Heartbeat / 10
	cycle := (1 - roamChance) + roamChance*(roamMin+roamMax)/2 // in heartbeats
	tm.mu.Lock()
	for i := range tm.clients {
		switch c := &tm.clients[i]; {
		case !c.online:
		case c.roamer:
			want += window.Seconds() / (cycle * c.pol.hb.Seconds())
		default:
			want += window.Seconds() / c.pol.hb.Seconds()
		}
	}
	tm.mu.Unlock()
	for range 30 {
		tm.mu.Lock()
		before := tm.checkins
		tm.mu.Unlock()
		tm.advance(window)
		tm.mu.Lock()
		counts = append(counts, tm.checkins-before)
		tm.mu.Unlock()
	}
	return counts, want
}

// worstWindow is the largest relative distance of a count from want.
func worstWindow(counts []uint64, want float64) (worst float64, at int) {
	for k, n := range counts {
		if d := math.Abs(float64(n)-want) / want; d > worst {
			worst, at = d, k
		}
	}
	return worst, at
}

// TestSteadyStartChecksInAtAnEvenRate: a steady site's check-ins come at the
// steady rate in every tenth of its first three heartbeats. A fresh site's do not
// (its second heartbeat comes as a wave), which shows the check can fail.
func TestSteadyStartChecksInAtAnEvenRate(t *testing.T) {
	counts, want := checkinWindows(newTestModel(t, steadyOptions(true)))
	t.Logf("steady start: %.0f check-ins per window expected, got %v", want, counts)
	if worst, at := worstWindow(counts, want); worst > 0.10 {
		t.Errorf("steady start: window %d holds %d check-ins, %.0f%% off the steady %.0f: %v", at, counts[at], 100*worst, want, counts)
	}
	counts, want = checkinWindows(newTestModel(t, steadyOptions(false)))
	t.Logf("fresh start: %v", counts)
	if worst, _ := worstWindow(counts, want); worst < 0.25 {
		t.Errorf("fresh start: every window within %.0f%% of the steady %.0f (no wave to tell apart): %v", 100*worst, want, counts)
	}
}

// TestSteadyStartPlacesEveryClient: each online client's last check-in is before
// the start and its next after it, one interval of the client model apart, and the
// roamers away at the start are their steady share (two in three).
func TestSteadyStartPlacesEveryClient(t *testing.T) {
	tm := newTestModel(t, steadyOptions(true))
	tm.mu.Lock()
	defer tm.mu.Unlock()
	start := tm.clk.now()
	due := map[int32]int64{}
	for _, e := range tm.heap {
		due[e.idx] = e.due
	}
	roamers, away := 0, 0
	for i := range tm.clients {
		c := &tm.clients[i]
		if !c.online {
			if c.away {
				t.Fatalf("client %s is offline and away", c.name)
			}
			continue
		}
		last, next, hb := time.UnixMilli(c.lastUpdate), time.Unix(0, due[int32(i)]), c.pol.hb
		lo, hi := 1-tm.opts.Jitter, 1+tm.opts.Jitter
		if c.away {
			lo, hi = roamMin, roamMax
		}
		interval := next.Sub(last)
		if last.After(start) || !next.After(start) ||
			interval < time.Duration(lo*float64(hb))-time.Millisecond || interval > time.Duration(hi*float64(hb))+time.Millisecond {
			t.Fatalf("client %s: last check-in %s, next %s from the start: an interval of %s, not in %v..%v heartbeats",
				c.name, last.Sub(start), next.Sub(start), interval, lo, hi)
		}
		if c.roamer {
			roamers++
			if c.away {
				away++
			}
		} else if c.away {
			t.Fatalf("client %s is away and no roamer", c.name)
		}
	}
	if share := float64(away) / float64(roamers); roamers < 1000 || math.Abs(share-2.0/3) > 0.05 {
		t.Fatalf("%d of %d roamers away at the start (%.2f), not about two in three", away, roamers, share)
	}
}

// TestSteadyStartKeepsTheFleet: Steady changes only when clients check in and who
// is away, not the fleet a seed gives.
func TestSteadyStartKeepsTheFleet(t *testing.T) {
	o := steadyOptions(false)
	o.Clients = 2000
	fresh := newTestModel(t, o)
	o.Steady = true
	steady := newTestModel(t, o)
	for i := range fresh.clients {
		a, b := fresh.clients[i], steady.clients[i]
		if a.pol.hb != b.pol.hb {
			t.Fatalf("client %d: heartbeat %s fresh, %s steady", i, a.pol.hb, b.pol.hb)
		}
		a.lastUpdate, a.away, a.pol = 0, false, nil
		b.lastUpdate, b.away, b.pol = 0, false, nil
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("client %d differs:\nfresh  %+v\nsteady %+v", i, a, b)
		}
	}
}
