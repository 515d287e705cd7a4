package sim

import (
	bits64 "math/bits"
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
	// epoch counts the changes other than appends (an insert in place, a
	// compaction, a rebuild): they move entries, so a cached selection that
	// remembers how much of the log it has read is void after one.
	epoch uint64
	cache luCache
}

// luCache is the last large selection the index answered (more than
// luSortMax clients), kept so that the pages of one query (a poll reads ten or
// more, each a new request) do not select again: the next page's query reads
// only the log entries appended since. It holds, for one query's filters, the
// selected clients as a bitmap over the query's sort order and as a list in that
// order.
type luCache struct {
	ok    bool
	q     computerQuery // the filters (paging and direction cleared)
	epoch uint64        // luIndex.epoch it was built in
	read  int           // log entries it has taken in
	bits  []uint64      // by rank in the sort order
	match []int32       // the selection, in the sort order
}

// luSortMax is the selection size up to which a lastUpdate query sorts its
// clients; above it, they are marked in a bitmap of the fleet and read in order.
const luSortMax = 1024

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
		x.epoch++
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
	x.epoch++
}

// rebuildLULocked builds the log from every client's lastUpdate (after the fleet is
// built or restored from a state file).
func (m *model) rebuildLULocked() {
	x := &m.lu
	x.epoch++
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

// cachedSinceLocked answers a lastUpdate query (q.lastUpdate > 0, no id or
// hardware key) from the cache when the cache holds q's filters and the log has
// only grown since: the clients of the entries appended since that q selects
// join the bitmap (a client's lastUpdate only grows between epochs and its group
// and name never change, so none leaves), and the list is rebuilt if any did.
// It reports false when the cache cannot answer.
func (m *model) cachedSinceLocked(q computerQuery) ([]int32, bool) {
	x := &m.lu
	c := &x.cache
	if !c.ok || c.epoch != x.epoch || c.q != filtersOf(q) {
		return nil, false
	}
	if c.read == len(x.log) {
		return c.match, true
	}
	_, rank := m.sortOf(q)
	joined := false
	for _, e := range x.log[c.read:] {
		if e.lu <= q.lastUpdate || !m.selects(q, &m.clients[e.idx]) {
			continue
		}
		r := rank[e.idx]
		if w, b := r>>6, uint64(1)<<(r&63); c.bits[w]&b == 0 {
			c.bits[w] |= b
			joined = true
		}
	}
	c.read = len(x.log)
	if joined { // a new list: one an earlier query returned stays as it was
		c.match = m.readBitsLocked(make([]int32, 0, len(c.match)+len(c.match)/8), c.bits, q)
	}
	return c.match, true
}

// cacheSinceLocked makes match (q's selection, in q's sort order, more than
// luSortMax clients, taken from the whole log as it is now) with its bitmap the
// cache.
func (m *model) cacheSinceLocked(q computerQuery, match []int32, bits []uint64) {
	m.lu.cache = luCache{ok: true, q: filtersOf(q), epoch: m.lu.epoch, read: len(m.lu.log), bits: bits, match: match}
}

// filtersOf is q without its paging and direction: what selects the clients.
func filtersOf(q computerQuery) computerQuery {
	q.index, q.size, q.desc, q.reduced = 0, 0, false, false
	return q
}

// sortOf is q's sort order (client indexes by position) and its inverse (each
// client's position, its rank).
func (m *model) sortOf(q computerQuery) (order, rank []int32) {
	if q.byID {
		return m.byID, m.rankID
	}
	return m.byName, m.rankName
}

// readBitsLocked appends to dst the clients whose rank bits has set, in q's sort
// order.
func (m *model) readBitsLocked(dst []int32, bits []uint64, q computerQuery) []int32 {
	order, _ := m.sortOf(q)
	for w, word := range bits {
		for word != 0 {
			dst = append(dst, order[w<<6+bits64.TrailingZeros64(word)])
			word &= word - 1
		}
	}
	return dst
}
