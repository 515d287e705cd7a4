package rotation

import (
	"bytes"
	"math/bits"
	"slices"
	"strings"
	"time"

	"sepmbot/sepm"
)

// This file holds the pure part of a wait's progress: a compact per-client map that
// one full computers sweep builds and cheap incremental reads (computers changed
// since the last read, group serials, stats/client/onlinestatus) keep current, and
// the decisions of when a wait sweeps in full and when it may end. No I/O here; the
// Tracker (tracker.go) feeds it from SEPM.
//
// How the incremental figure can differ from a full sweep's:
//   - Online/Offline of an incremental poll come from stats/client/onlinestatus, not
//     from the records: a client that goes offline may not touch its lastUpdateTime,
//     so its record (and its online flag in the map) stays as it was.
//   - OnNewPolicy counts the map's clients whose last record was online, on their
//     group's current serial and checked in after the change. A client that went
//     offline after checking in stays counted (stale online flag), so the figure can
//     run ahead of the truth; it is capped at Online. A lagging client that went
//     offline stays listed among the laggards until the next full sweep.
//   - Clients deleted from SEPM stay in the map until the next full sweep.
//
// None of this decides a wait: a wait completes only after a full sweep in its final
// window (the confirming sweep, whose records are exact) found every online client
// on the current policy, and the cheap reads since then found nobody who lags and no
// rise in the online count that the map does not account for. The incremental
// figure only errs towards "maybe caught up" (stale online flags inflate
// OnNewPolicy), so it never hides a wait that could end: it triggers a confirming
// sweep, and the sweep's exact records decide.

// clientMark is what the map keeps per client.
type clientMark struct {
	last   int64  // lastUpdateTime, epoch ms
	serial uint32 // interned profileSerialNo
	group  uint32 // interned group id
	name   uint32 // offset of the computer name in fleetMap.names
	nameN  uint16 // its length in bytes
	online bool
	gone   bool // not in SEPM's list at the latest full sweep (counted nowhere)
}

// maxLaggardNames is how many laggard names a Progress lists.
const maxLaggardNames = 10

// fleetMap is the compact per-client view of one wait. The zero value is not
// usable; see newFleetMap.
type fleetMap struct {
	changeAt int64 // epoch ms: a check-in must be after it to count

	// ids maps a uniqueId to an index in marks: a record of a known client updates
	// its mark in place (no map write, no allocation). SEPM's uniqueIds are 32 hex
	// digits, kept as 16 bytes (hexIDs); any other id is kept as a string (otherIDs),
	// a copy of its own, never a decoder's string that may share a page buffer.
	// Computer names live in one byte arena (text), not a string each: at 500,000
	// clients the map costs about 60 bytes a client.
	hexIDs   map[[16]byte]int32
	otherIDs map[string]int32
	marks    []clientMark
	text     []byte
	pageAt   []int32 // mergePage's marks of a page, reused
	touch    byte    // mergePage's early reads end here
	adding   bool    // a new map, or the latest page was mostly new clients (mergePage)

	// A full sweep updates the map in place (a second map for the sweep would double
	// the memory at 500,000 clients): seen marks the clients it read, and at its end
	// the others are gone (deleted from SEPM). A sweep that fails leaves the map as
	// fresh as what it read.
	inFull   bool
	seen     lagSet
	goneN    int
	intern   map[string]uint32 // serials and group ids -> small numbers (from 1)
	interned []string          // the map's copies, by number - 1
	lastS    uint32            // the latest record's serial and group (idAfter)
	lastG    uint32
	serial   map[uint32]uint32 // group -> its current policy serial

	online int     // clients whose latest record is online
	onNew  int     // online, on the group's serial, checked in after changeAt
	lag    lagSet  // online and not onNew (indexes in marks)
	shownL []int32 // the laggards shown (sticky, at most 10)

	// cursor is a lower bound of SEPM's clock when the latest read began (the
	// largest lastUpdateTime on that read's first page): every change the read may
	// have missed is after it.
	cursor int64

	// Confirmation: set by a full sweep that found every online client on the new
	// policy; cleared by any later record of a laggard (only a full sweep sets it).
	fullCaughtUp bool
	fullOnline   int // online right after that sweep
	statusAtFull int // onlinestatus Online read just before that sweep
	status       onlineCounts
}

type onlineCounts struct{ online, offline int }

func newFleetMap(changeAt int64) *fleetMap {
	return &fleetMap{changeAt: changeAt, adding: true, hexIDs: map[[16]byte]int32{}, otherIDs: map[string]int32{}, intern: map[string]uint32{}, serial: map[uint32]uint32{}}
}

// maxReserve bounds the room reserved from SEPM's own count of clients.
const maxReserve = 5_000_000

// reserve makes room for n clients (SEPM's onlinestatus total, a hint: the map
// still grows past it), so a full sweep does not grow the map and its marks by
// doubling, which at 500,000 clients costs tens of MB.
func (m *fleetMap) reserve(n int) {
	n = min(max(n, 0), maxReserve)
	if len(m.marks) > 0 || n == 0 {
		return
	}
	m.marks = make([]clientMark, 0, n)
	m.hexIDs = make(map[[16]byte]int32, n)
	m.text = make([]byte, 0, n*16)
}

func (m *fleetMap) id(s string) uint32 {
	if n, ok := m.intern[s]; ok {
		return n
	}
	k := strings.Clone(s)
	m.interned = append(m.interned, k)
	n := uint32(len(m.interned))
	m.intern[k] = n
	return n
}

// idAfter interns s, trying *last first: pages come in name order, and names often
// follow departments, so a record is often of the previous record's group (and
// serial); comparing with it is cheaper than hashing again. Neither the comparison
// nor the lookup allocates; a new value is copied.
func (m *fleetMap) idAfter(last *uint32, s []byte) uint32 {
	if n := *last; n != 0 && m.interned[n-1] == string(s) {
		return n
	}
	if n, ok := m.intern[string(s)]; ok {
		*last = n
		return n
	}
	*last = m.id(string(s))
	return *last
}

// onNewPolicy reports whether c counts as caught up.
func (m *fleetMap) onNewPolicy(c clientMark) bool {
	s, ok := m.serial[c.group]
	return c.online && ok && c.serial == s && c.last > m.changeAt
}

func (m *fleetMap) count(id int32, c clientMark, sign int) {
	if !c.online {
		return
	}
	m.online += sign
	if m.onNewPolicy(c) {
		m.onNew += sign
		return
	}
	if sign > 0 {
		m.lag.add(id)
	} else {
		m.lag.del(id)
	}
}

// setGroups records each group's current policy serial. When a serial changed (or
// a group appeared or went), membership is recounted from the map, which is the
// rare O(fleet) in-memory case. It reports whether anything changed.
func (m *fleetMap) setGroups(groups []sepm.Group) bool {
	next := make(map[uint32]uint32, len(groups))
	for _, g := range groups {
		next[m.id(g.ID)] = m.id(g.PolicySerialNumber)
	}
	changed := len(next) != len(m.serial)
	for g, s := range next {
		if old, ok := m.serial[g]; !ok || old != s {
			changed = true
		}
	}
	if !changed {
		return false
	}
	m.serial = next
	m.recount()
	return true
}

func (m *fleetMap) recount() {
	m.online, m.onNew = 0, 0
	m.lag.reset()
	for i, c := range m.marks {
		m.count(int32(i), c, +1)
	}
	if m.lag.len() > 0 {
		m.fullCaughtUp = false
	}
	m.pruneNames()
}

// maxNameBytes bounds a kept computer name (SEPM's are at most 256 characters).
const maxNameBytes = 1024

func (m *fleetMap) addName(name []byte) (uint32, uint16) {
	if len(name) > maxNameBytes {
		name = name[:maxNameBytes]
	}
	off := uint32(len(m.text))
	m.text = append(m.text, name...)
	return off, uint16(len(name))
}

// sameName compares the kept name with a record's.
func (m *fleetMap) sameName(c clientMark, name []byte) bool {
	if len(name) > maxNameBytes {
		name = name[:maxNameBytes]
	}
	return bytes.Equal(m.text[c.name:c.name+uint32(c.nameN)], name)
}

func (m *fleetMap) nameOf(c clientMark) string {
	return string(m.text[c.name : c.name+uint32(c.nameN)])
}

func (m *fleetMap) shown(i int32) bool {
	return slices.Contains(m.shownL, i)
}

// pruneNames drops shown laggards that caught up and refills the list from the
// laggard set, stopping at ten: the list stays stable from poll to poll and costs
// O(10), not O(laggards).
func (m *fleetMap) pruneNames() {
	kept := m.shownL[:0]
	for _, id := range m.shownL {
		if m.lag.has(id) {
			kept = append(kept, id)
		}
	}
	m.shownL = kept
	if len(m.shownL) >= maxLaggardNames || len(m.shownL) == m.lag.len() {
		return
	}
	m.lag.each(func(id int32) bool {
		if !m.shown(id) {
			m.shownL = append(m.shownL, id)
		}
		return len(m.shownL) < maxLaggardNames
	})
}

// beginFull starts a full sweep into the map.
func (m *fleetMap) beginFull() {
	m.inFull = true
	m.seen.reset()
}

// abortFull ends a failed full sweep: what it read stays merged, nothing is gone.
func (m *fleetMap) abortFull() { m.inFull = false }

// endFull ends a whole full sweep: a client it did not read is gone from SEPM, and
// every count is taken again from the map (O(fleet) in memory, once per sweep).
func (m *fleetMap) endFull() {
	m.inFull = false
	for i := range m.marks {
		if c := &m.marks[i]; !c.gone && !m.seen.has(int32(i)) {
			c.gone, c.online = true, false
			m.goneN++
		}
	}
	m.recount()
}

// advance moves the cursor after a whole read succeeded: firstPageMax is the
// largest lastUpdateTime on the read's first page (0 when it had none).
func (m *fleetMap) advance(firstPageMax int64) {
	m.cursor = max(m.cursor, firstPageMax)
}

// since is the LastUpdate of the next incremental read: the cursor less overlap,
// which absorbs clock skew between management servers, equal timestamps (SEPM
// returns changes strictly after it) and check-ins committed slightly out of order.
// Re-reading a record is harmless.
func (m *fleetMap) since(overlap time.Duration) int64 {
	return max(m.cursor-overlap.Milliseconds(), 1)
}

// sealFull ends a full sweep: the map is exact as of now; status is the online
// count read just before the sweep.
func (m *fleetMap) sealFull(status onlineCounts) {
	m.pruneNames()
	m.fullCaughtUp = m.lag.len() == 0
	m.fullOnline = m.online
	m.statusAtFull = status.online
	m.status = status
}

// confirmed reports whether the latest full sweep found every online client caught
// up and nothing read since contradicts it: no record of a laggard, and the online
// count (onlinestatus) rose no more since that sweep than the map saw clients come
// online. Deltas, not totals, are compared, so a steady difference between how
// onlinestatus and the computer records count does not block a wait.
func (m *fleetMap) confirmed() bool {
	return m.fullCaughtUp && m.lag.len() == 0 && m.status.online-m.statusAtFull <= m.online-m.fullOnline
}

// progress is the figure shown for the wait. full: the map was just rebuilt from
// records, whose online flags are exact; otherwise online and offline come from
// onlinestatus.
func (m *fleetMap) progress(full bool) Progress {
	var p Progress
	if full {
		p.Online, p.Offline, p.OnNewPolicy = m.online, len(m.marks)-m.goneN-m.online, m.onNew
	} else {
		p.Online, p.Offline, p.OnNewPolicy = m.status.online, m.status.offline, min(m.onNew, m.status.online)
	}
	for _, i := range m.shownL {
		p.Laggards = append(p.Laggards, m.nameOf(m.marks[i]))
	}
	return p
}

// pollKind is what a wait's next poll reads.
type pollKind int

const (
	pollIncremental pollKind = iota // changed computers, groups, onlinestatus
	pollFull                        // groups, onlinestatus and every computer
)

// waitClock is what the wait decisions look at.
type waitClock struct {
	Now, Deadline time.Time
	// Built: a full sweep built the map for this wait (false after a restart).
	Built bool
	// FinalFull: a full sweep started inside the final window.
	FinalFull bool
	// Sweep is how long the latest full sweep took.
	Sweep time.Duration
	// Confirmed: fleetMap.confirmed. MaybeCaughtUp: the latest figure shows every
	// online client caught up (it may be stale).
	Confirmed, MaybeCaughtUp bool
	Override                 bool // an operator ended the wait (done)
	Interval                 time.Duration
}

// confirmMargin is added to twice the measured sweep when the confirming sweep is
// scheduled: a sweep up to one sweep plus a second slower than the last still ends
// before the deadline.
const confirmMargin = time.Second

// windowOpens is when the final window starts: the confirming sweep starts then, so
// that (taking twice the last sweep, plus a second) it is done before the deadline
// and the wait ends at the deadline after one cheap check instead of one sweep late.
// A sweep faster than predicted leaves a longer gap before the deadline, which the
// polls after it (incremental, with the online-count check) cover; one slower than
// twice the last plus a second ends after the deadline, and the wait ends when it
// does, late by the overrun. Sweep is re-measured by every full sweep.
func (w waitClock) windowOpens() time.Time {
	return w.Deadline.Add(-(2*w.Sweep + confirmMargin))
}

// nextPoll decides what the poll at w.Now reads.
func nextPoll(w waitClock) pollKind {
	switch {
	case !w.Built:
		return pollFull // start of the wait, or after a restart
	case w.Now.Before(w.windowOpens()):
		return pollIncremental
	case !w.FinalFull:
		return pollFull // the confirming sweep
	case w.Confirmed || w.Override:
		return pollIncremental // the cheap last check; an override needs no sweep
	case w.MaybeCaughtUp:
		return pollFull // the confirming sweep found laggards; they may have caught up
	}
	return pollIncremental
}

// canEnd decides whether the wait completes after the poll at w.Now: never before
// the deadline, never without a full sweep in the final window, and, unless an
// operator overrode it, only on a confirmed verdict.
func canEnd(w waitClock) bool {
	return !w.Now.Before(w.Deadline) && w.Built && w.FinalFull && (w.Confirmed || w.Override)
}

// lagFollowUp and lagFollowUpFor: how often, and until how long after the deadline,
// the laggards a confirming sweep found are polled for (beyond it, --poll-interval).
const (
	lagFollowUp    = 5 * time.Second
	lagFollowUpFor = 10 * time.Minute
)

// sleepFor is how long to wait before the next poll: at most one interval, and
// never past the moment the window opens (before the confirming sweep) or the
// deadline (once it is done).
func sleepFor(w waitClock) time.Duration {
	next := w.Interval
	if w.FinalFull && !w.Confirmed && !w.Override && w.Now.Before(w.Deadline.Add(lagFollowUpFor)) {
		// The confirming sweep found laggards: follow them up closely (cheap
		// incremental polls) so the wait ends soon after the last one catches up,
		// not an interval later; a full sweep follows once they seem caught up, at
		// most one per twice its own length.
		next = min(next, max(lagFollowUp, 2*w.Sweep))
	}
	at := w.Deadline
	if !w.FinalFull {
		at = w.windowOpens()
		if !w.Now.Before(at) {
			return 0 // the window opened during this poll: sweep now
		}
	}
	if left := at.Sub(w.Now); left > 0 && left < next {
		next = left
	}
	return next
}

// lagSet is a set of indexes in marks, one bit each (at 500,000 clients 62 KB,
// where a map of laggards costs tens of MB at a wait's start, when most lag).
type lagSet struct {
	words []uint64
	n     int
}

func (l *lagSet) has(i int32) bool {
	w := int(i >> 6)
	return w < len(l.words) && l.words[w]&(1<<(i&63)) != 0
}

func (l *lagSet) add(i int32) {
	w := int(i >> 6)
	if w >= len(l.words) {
		l.words = append(l.words, make([]uint64, w+1-len(l.words))...)
	}
	if l.words[w]&(1<<(i&63)) == 0 {
		l.words[w] |= 1 << (i & 63)
		l.n++
	}
}

func (l *lagSet) del(i int32) {
	if l.has(i) {
		l.words[i>>6] &^= 1 << (i & 63)
		l.n--
	}
}

func (l *lagSet) len() int { return l.n }

func (l *lagSet) reset() {
	clear(l.words)
	l.n = 0
}

// each calls fn with the members in ascending order until fn returns false.
func (l *lagSet) each(fn func(int32) bool) {
	for w, word := range l.words {
		for word != 0 {
			if !fn(int32(w<<6 + bits.TrailingZeros64(word))) {
				return
			}
			word &= word - 1
		}
	}
}
