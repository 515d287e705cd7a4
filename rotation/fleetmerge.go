package rotation

import (
	"sepmbot/sepm"
)

// This file merges SEPM's computer records into the fleetMap (progress.go): the
// id of each record finds its mark, and the record replaces it.

// mergePage merges one page of records, as merge does each in turn. It finds
// every record's mark before it merges any. At 100,000 clients and more the id
// map, the marks and the names are larger than the CPU's caches, and a poll's
// records (the clients that checked in, scattered through the fleet) land at
// random in them. The lookups of a page do not depend on each other, so the CPU
// overlaps their memory reads; merging each record as it is looked up would wait
// for each record's reads in turn.
//
// A page of clients the map does not hold yet (the sweep that builds the map)
// has nothing to find ahead: each lookup misses, and merging would look the
// client up again. So after a page that was mostly new clients, and on a new
// map, the next page is merged one record at a time.
func (m *fleetMap) mergePage(page []sepm.ComputerMark) {
	if m.adding {
		added := 0
		for k := range page {
			if m.mergeMark(&page[k]) {
				added++
			}
		}
		m.adding = 2*added > len(page)
		return
	}
	at := m.pageAt[:0]
	unknown := 0
	for k := range page {
		i, known := m.lookup(page[k].UniqueID)
		if !known {
			i = -1
			unknown++
		}
		at = append(at, i)
	}
	m.adding = 2*unknown > len(page)
	var touch byte // read each known mark's name once, for the same reason
	for _, i := range at {
		if i >= 0 {
			if c := &m.marks[i]; c.nameN > 0 {
				touch += m.text[c.name]
			}
		}
	}
	m.touch += touch
	added := false
	for k := range page {
		i := at[k]
		if i < 0 && added { // an earlier record of this page may have added it
			if j, known := m.lookup(page[k].UniqueID); known {
				i = j
			}
		}
		if m.mergeAt(&page[k], i) {
			added = true
		}
	}
	m.pageAt = at
}

// mergeMark adds or replaces one client's record and reports whether it added the
// client. A record older than the one the map holds (an overlapping read) is
// ignored.
func (m *fleetMap) mergeMark(c *sepm.ComputerMark) (added bool) {
	i, known := m.lookup(c.UniqueID)
	if !known {
		i = -1
	}
	return m.mergeAt(c, i)
}

// mergeAt merges c, whose mark is marks[i] (-1: a client the map does not hold),
// and reports whether it added the client. It keeps nothing of c's bytes.
func (m *fleetMap) mergeAt(c *sepm.ComputerMark, i int32) (added bool) {
	mark := clientMark{last: c.LastUpdateTime, serial: m.idAfter(&m.lastS, c.ProfileSerialNo), group: m.idAfter(&m.lastG, c.Group.ID), online: c.OnlineStatus == 1}
	if i >= 0 {
		if m.inFull {
			m.seen.add(i)
		}
		old := m.marks[i]
		if mark.last < old.last && !old.gone {
			return false
		}
		if old.gone {
			m.goneN--
		}
		m.count(i, old, -1)
		mark.name, mark.nameN = old.name, old.nameN
		if !m.sameName(old, c.ComputerName) {
			mark.name, mark.nameN = m.addName(c.ComputerName) // renamed: rare, the old bytes stay
		}
		m.marks[i] = mark
	} else {
		mark.name, mark.nameN = m.addName(c.ComputerName)
		i = int32(len(m.marks))
		m.marks = append(m.marks, mark)
		m.store(c.UniqueID, i)
		if m.inFull {
			m.seen.add(i)
		}
		added = true
	}
	m.count(i, mark, +1)
	if m.lag.has(i) {
		m.fullCaughtUp = false
		if len(m.shownL) < maxLaggardNames && !m.shown(i) {
			m.shownL = append(m.shownL, i)
		}
	}
	return added
}

// hexID reads a 32-hex-digit uniqueId as 16 bytes (either case: SEPM's ids are
// upper case, and the same id in lower case is the same client).
func hexID(id []byte) (k [16]byte, ok bool) {
	if len(id) != 32 {
		return k, false
	}
	var bad byte // a byte that is no hex digit brings 0xF0 bits
	for j := range 16 {
		hi, lo := hexVal[id[2*j]], hexVal[id[2*j+1]]
		bad |= hi | lo
		k[j] = hi<<4 | lo&0x0F
	}
	return k, bad&0xF0 == 0
}

// hexVal is each byte's value as a hex digit, 0xFF for none.
var hexVal = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			t[c] = byte(c - 'A' + 10)
		default:
			t[c] = 0xFF
		}
	}
	return t
}()

func (m *fleetMap) lookup(id []byte) (int32, bool) {
	if k, ok := hexID(id); ok {
		i, known := m.hexIDs[k]
		return i, known
	}
	i, known := m.otherIDs[string(id)] // the conversion in an index does not allocate
	return i, known
}

func (m *fleetMap) store(id []byte, i int32) {
	if k, ok := hexID(id); ok {
		m.hexIDs[k] = i
		return
	}
	m.otherIDs[string(id)] = i // a copy of its own
}
