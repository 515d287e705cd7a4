package sim

import (
	"slices"
	"sort"
)

// This file keeps the lastUpdate index: GET computers?lastUpdate=T answers from the
// clients that checked in after T, not from a scan of the fleet.
//
// The index is an append log of (lastUpdate, client, seq) kept sorted by
// lastUpdate. Every change of a client's lastUpdate appends an entry and bumps
// the client's seq, which voids its older entries (lazy invalidation); the log
// is compacted when the void entries outnumber the live ones. Check-ins happen in
// time order, so an append is O(1); a clock that steps back inserts in place.

// luEntry is one entry of the lastUpdate log; it is live while seq equals its
// client's seq.
type luEntry struct {
	lu  int64 // the client's lastUpdate (epoch ms) when the entry was made
	idx int32
	seq uint32
}

// luIndex is the lastUpdate log of a model; guarded by model.mu.
type luIndex struct {
	log []luEntry
	seq []uint32 // per client: the seq of its live entry (apart from the clients, to stay in cache)
}

// luCompactMin is the log length under which the index is never compacted.
const luCompactMin = 1024

// setLastUpdateLocked sets client i's lastUpdate and records it in the index.
// Every write of client.lastUpdate after the fleet is built goes through here.
func (m *model) setLastUpdateLocked(i int32, lu int64) {
	m.clients[i].lastUpdate = lu
	x := &m.lu
	x.seq[i]++
	e := luEntry{lu: lu, idx: i, seq: x.seq[i]}
	if n := len(x.log); n == 0 || x.log[n-1].lu <= lu {
		x.log = append(x.log, e)
	} else {
		// The clock stepped back: keep the log sorted (rare, O(log length)).
		k := sort.Search(n, func(j int) bool { return x.log[j].lu > lu })
		x.log = slices.Insert(x.log, k, e)
	}
	if len(x.log) > luCompactMin && len(x.log) > 2*len(m.clients) {
		m.compactLULocked()
	}
}

// compactLULocked drops the void entries of the log, keeping its order.
func (m *model) compactLULocked() {
	x := &m.lu
	out := x.log[:0]
	for _, e := range x.log {
		if x.seq[e.idx] == e.seq {
			out = append(out, e)
		}
	}
	clear(x.log[len(out):])
	x.log = out
}

// rebuildLULocked builds the log from every client's lastUpdate (after the fleet is
// built or restored from a state file).
func (m *model) rebuildLULocked() {
	x := &m.lu
	x.log = make([]luEntry, len(m.clients), len(m.clients)+len(m.clients)/4)
	if len(x.seq) != len(m.clients) {
		x.seq = make([]uint32, len(m.clients))
	}
	for i := range m.clients {
		x.seq[i]++
		x.log[i] = luEntry{lu: m.clients[i].lastUpdate, idx: int32(i), seq: x.seq[i]}
	}
	slices.SortFunc(x.log, func(a, b luEntry) int {
		switch {
		case a.lu < b.lu:
			return -1
		case a.lu > b.lu:
			return 1
		}
		return int(a.idx) - int(b.idx)
	})
}

// sinceLocked appends to dst every client whose lastUpdate is after t, each once,
// in no particular order, and reports false instead when more than limit log
// entries would have to be read (a scan of the fleet is cheaper then).
func (m *model) sinceLocked(dst []int32, t int64, limit int) ([]int32, bool) {
	x := &m.lu
	k := sort.Search(len(x.log), func(j int) bool { return x.log[j].lu > t })
	if len(x.log)-k > limit {
		return dst, false
	}
	for _, e := range x.log[k:] {
		if x.seq[e.idx] == e.seq {
			dst = append(dst, e.idx)
		}
	}
	return dst, true
}

// luIndexLimit is how many log entries a lastUpdate query reads at most before it
// scans the fleet instead: the index reads the log in order and touches no
// client, a scan touches every client, so the index wins up to about half.
func luIndexLimit(clients int) int { return clients / 2 }
