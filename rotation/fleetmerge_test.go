package rotation

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"sepmbot/sepm"
)

// TestMergePageIsMergeInTurn: merging a page at once leaves the map exactly as
// merging its records one by one, over random pages that repeat a client within
// the page (new or known), mix hex ids in either case with other ids, rename
// clients, carry records older than the map's, and run inside full sweeps; both
// ways mergePage has (pages of mostly new clients, and of known ones) are taken.
func TestMergePageIsMergeInTurn(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 12))
	id := func(k int) string {
		switch {
		case k%5 == 0:
			return fmt.Sprintf("other-%d", k)
		case k%3 == 0:
			return strings.ToLower(fmt.Sprintf("%032X", k*7919))
		}
		return fmt.Sprintf("%032X", k*7919)
	}
	for round := range 200 {
		one, page := newFleetMap(chg), newFleetMap(chg)
		groups := groupsOf("A", "S1", "B", "T1")
		one.setGroups(groups)
		page.setGroups(groups)
		pool := 5 + rng.IntN(60)
		for p := range 12 {
			full := rng.IntN(4) == 0
			if full {
				one.beginFull()
				page.beginFull()
			}
			recs := make([]sepm.Computer, rng.IntN(40))
			for k := range recs {
				c := rng.IntN(pool)
				g, s := "A", []string{"S0", "S1"}[rng.IntN(2)]
				if rng.IntN(2) == 0 {
					g, s = "B", []string{"T0", "T1"}[rng.IntN(2)]
				}
				name := fmt.Sprintf("WKS-%d", c)
				if rng.IntN(10) == 0 {
					name += "-renamed"
				}
				recs[k] = sepm.Computer{UniqueID: id(c), ComputerName: name, OnlineStatus: rng.IntN(2),
					LastUpdateTime: chg - 5 + int64(p*3+rng.IntN(8)), ProfileSerialNo: s, Group: sepm.GroupSummary{ID: g}}
			}
			for _, c := range recs {
				one.merge(c)
			}
			marks := marksOf(recs)
			page.mergePage(marks)
			scribble(marks) // the next page reuses the bytes: the map must have kept none
			if full {
				one.endFull()
				page.endFull()
			}
			page.pageAt, page.touch, page.adding = nil, 0, false // mergePage's own bookkeeping
			one.pageAt, one.touch, one.adding = nil, 0, false
			if !reflect.DeepEqual(one, page) {
				t.Fatalf("round %d, page %d: mergePage left\n%+v\nmerge in turn left\n%+v", round, p, page, one)
			}
		}
	}
}

// marksOf is recs as a page of marks (as fakeFleet gives them).
func marksOf(recs []sepm.Computer) []sepm.ComputerMark {
	marks := make([]sepm.ComputerMark, len(recs))
	for k, c := range recs {
		marks[k] = markOf(c)
	}
	return marks
}

// scribble overwrites every byte of the marks' text, as decoding the next page
// into them would.
func scribble(marks []sepm.ComputerMark) {
	for k := range marks {
		m := &marks[k]
		for _, b := range [][]byte{m.ComputerName, m.UniqueID, m.ProfileSerialNo, m.Group.ID} {
			for j := range b {
				b[j] = '#'
			}
		}
	}
}

// TestPollMergeAllocatesNothing: merging a poll's page of clients the map already
// holds (a newer check-in, the same group, serial and name) allocates nothing per
// record: ids, serials and group ids are looked up from the page's bytes, and only
// a value the map has not seen is copied.
func TestPollMergeAllocatesNothing(t *testing.T) {
	const fleet = 2000
	// Ids and serials as SEPM writes them; a serial longer than 32 bytes too (a
	// shorter conversion can live on the stack). The records alternate groups, so
	// each misses the previous record's and is looked up.
	groups := []sepm.Group{
		{ID: "8C3E11A0F2B94D7C9E6A5B4C3D2E1F00", PolicySerialNumber: "0A1B-11/30/2026 10:00:00 123"},
		{ID: "7788990011224455AABBCCDDEEFF0011", PolicySerialNumber: "0A1C-11/30/2026 10:00:00 124 (a longer serial)"},
	}
	recs := make([]sepm.Computer, fleet)
	for i := range recs {
		g := groups[i%len(groups)]
		recs[i] = sepm.Computer{UniqueID: fmt.Sprintf("%032X", i), ComputerName: fmt.Sprintf("WKS-%05d", i), OnlineStatus: 1,
			LastUpdateTime: chg + 1, ProfileSerialNo: g.PolicySerialNumber, Group: sepm.GroupSummary{ID: g.ID}}
	}
	m := newFleetMap(chg)
	m.setGroups(groups)
	m.reserve(fleet)
	m.mergePage(marksOf(recs))
	m.sealFull(onlineCounts{online: fleet})
	page := marksOf(recs[:1000])
	last := int64(chg + 1)
	allocs := testing.AllocsPerRun(20, func() {
		last++
		for i := range page {
			page[i].LastUpdateTime = last
		}
		m.mergePage(page)
	})
	if perRecord := allocs / float64(len(page)); perRecord > 0.01 {
		t.Errorf("a poll's page of 1000 known clients: %.0f allocations (%.3f per record), want none per record", allocs, perRecord)
	}
}
