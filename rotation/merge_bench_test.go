package rotation

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"sepmbot/sepm"
)

// BenchmarkFleetMapMerge100k is the map's share of an incremental poll: 10,000
// records (a 300 s heartbeat's 30 s) merged into the map of a 100,000-client fleet,
// in name order as SEPM pages them, a page of 1000 at a time as the Tracker does.
// Reports ns per merged record.
func BenchmarkFleetMapMerge100k(b *testing.B) {
	const fleet, changed = 100_000, 10_000
	groups := make([]sepm.Group, 20)
	for g := range groups {
		groups[g] = sepm.Group{ID: fmt.Sprintf("%032X", 0xA0000+g), PolicySerialNumber: fmt.Sprintf("%04X-11/30/2026 10:00:00 %03d", g, g)}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cs := make([]sepm.Computer, fleet)
	for i := range cs {
		g := groups[rng.IntN(len(groups))]
		cs[i] = sepm.Computer{UniqueID: fmt.Sprintf("%032X", rng.Uint64()), ComputerName: fmt.Sprintf("WKS-%06d", i), OnlineStatus: 1,
			LastUpdateTime: chg + 1, ProfileSerialNo: g.PolicySerialNumber, Group: sepm.GroupSummary{ID: g.ID}}
	}
	m := newFleetMap(chg)
	m.setGroups(groups)
	m.reserve(fleet)
	for _, c := range cs {
		m.merge(c)
	}
	m.sealFull(onlineCounts{online: fleet})
	picked := rng.Perm(fleet)[:changed]
	slices.Sort(picked) // cs is in name order
	upd := make([]sepm.ComputerMark, 0, changed)
	for _, i := range picked {
		upd = append(upd, markOf(cs[i]))
	}
	b.ResetTimer()
	for n := range b.N {
		for i := range upd {
			upd[i].LastUpdateTime = chg + 2 + int64(n)
		}
		for page := range slices.Chunk(upd, 1000) {
			m.mergePage(page)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*changed), "ns/record")
}

// BenchmarkFleetMapBuild100k is the first full sweep of a wait: 100,000 records,
// none known yet, merged into a new map a page of 1000 at a time. Reports ns per
// record.
func BenchmarkFleetMapBuild100k(b *testing.B) {
	const fleet = 100_000
	cs := make([]sepm.ComputerMark, fleet)
	for i := range cs {
		cs[i] = markOf(sepm.Computer{UniqueID: fmt.Sprintf("%032X", uint64(i)*0x9E3779B97F4A7C15), ComputerName: fmt.Sprintf("WKS-%06d", i),
			OnlineStatus: 1, LastUpdateTime: chg + 1, ProfileSerialNo: "S1", Group: sepm.GroupSummary{ID: "A"}})
	}
	for b.Loop() {
		m := newFleetMap(chg)
		m.setGroups(groupsOf("A", "S1"))
		m.reserve(fleet)
		for page := range slices.Chunk(cs, 1000) {
			m.mergePage(page)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fleet), "ns/record")
}
