package sepm

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"sync"
	"unicode/utf8"
)

// ComputerMark is the part of a computer record that a wait's per-client map keeps:
// what a wait reads of every record of every poll. EachComputerMarkPage decodes
// into it without allocating: its text fields are the record's bytes (a JSON
// string's contents, unescaped; empty for an absent field or null), held in
// buffers that the next page overwrites.
type ComputerMark struct {
	ComputerName    json.RawMessage `json:"computerName"`
	UniqueID        json.RawMessage `json:"uniqueId"`
	OnlineStatus    int             `json:"onlineStatus"`   // 1 online, 0 offline
	LastUpdateTime  int64           `json:"lastUpdateTime"` // epoch ms of the last check-in
	ProfileSerialNo json.RawMessage `json:"profileSerialNo"`
	Group           struct {
		ID json.RawMessage `json:"id"`
	} `json:"group"`
}

// EachComputerMarkPage reads the computers as EachComputerPage does (the same
// requests, checks and fallback to full records) and calls fn with each page's
// marks. The page and its bytes are valid only during fn: the next page is decoded
// into the same memory, kept from read to read, so a read allocates nothing per
// record once the buffers are sized. A text field that is neither a JSON string
// nor null refuses the page, as decoding it into a string would.
func (c *Client) EachComputerMarkPage(ctx context.Context, q ComputerQuery, fn func(page []ComputerMark) error) error {
	return computerPagesOf(ctx, c, q, markKey, markReuse, func(p *Page[ComputerMark]) error { return fn(p.Content) })
}

// markReuse decodes the marks of every read into pages kept from read to read:
// a wait's polls allocate nothing per record once one read has sized them.
var markReuse = &pageReuse[ComputerMark]{
	pages:   &sync.Pool{New: func() any { return new(Page[ComputerMark]) }},
	reset:   resetMarks,
	decoded: func(p *Page[ComputerMark]) error { return unquoteMarks(p.Content) },
	sum:     sumMarks,
}

// markSeed seeds sumMarks: one for the process, so that equal pages hash equal.
var markSeed = maphash.MakeSeed()

// sumMarks hashes every field of every mark, each text with its length.
func sumMarks(marks []ComputerMark) uint64 {
	var h maphash.Hash
	h.SetSeed(markSeed)
	var n [8]byte
	for i := range marks {
		m := &marks[i]
		for _, f := range [...][]byte{m.ComputerName, m.UniqueID, m.ProfileSerialNo, m.Group.ID} {
			h.Write(binary.LittleEndian.AppendUint64(n[:0], uint64(len(f))))
			h.Write(f)
		}
		h.Write(binary.LittleEndian.AppendUint64(n[:0], uint64(m.OnlineStatus)))
		h.Write(binary.LittleEndian.AppendUint64(n[:0], uint64(m.LastUpdateTime)))
	}
	return h.Sum64()
}

// markKey is the first record's id for the repeat check (one string per page).
func markKey(m ComputerMark) string { return string(m.UniqueID) }

// resetMarks readies a page for the next decode into the same memory. The decoder
// fills an element of the slice's spare room in place, and a field a record lacks
// keeps what the element held, so every element in reach is emptied first (its
// buffers kept), and the envelope zeroed.
func resetMarks(p *Page[ComputerMark]) {
	all := p.Content[:cap(p.Content)]
	for i := range all {
		m := &all[i]
		m.ComputerName, m.UniqueID, m.ProfileSerialNo, m.Group.ID = m.ComputerName[:0], m.UniqueID[:0], m.ProfileSerialNo[:0], m.Group.ID[:0]
		m.OnlineStatus, m.LastUpdateTime = 0, 0
	}
	*p = Page[ComputerMark]{Content: p.Content[:0]}
}

// unquoteMarks turns each text field of a decoded page from its JSON form into its
// contents, in place.
func unquoteMarks(marks []ComputerMark) error {
	for i := range marks {
		m := &marks[i]
		for _, f := range [...]struct {
			name string
			raw  *json.RawMessage
		}{{"computerName", &m.ComputerName}, {"uniqueId", &m.UniqueID}, {"profileSerialNo", &m.ProfileSerialNo}, {"group.id", &m.Group.ID}} {
			if err := unquoteText(f.raw); err != nil {
				return fmt.Errorf("record %d: %s: %w", i+1, f.name, err)
			}
		}
	}
	return nil
}

// unquoteText replaces a JSON string with its contents and null with nothing; an
// absent field is already empty. A string with escapes or bytes that are not UTF-8
// takes encoding/json's unquoting (invalid bytes become U+FFFD, as in a decoded
// string); the others are their own contents, moved in place.
func unquoteText(raw *json.RawMessage) error {
	r := *raw
	switch {
	case len(r) == 0:
		return nil
	case string(r) == "null":
		*raw = r[:0]
		return nil
	case r[0] != '"':
		return fmt.Errorf("a %s where a string belongs", jsonKind(r[0]))
	case bytes.IndexByte(r, '\\') < 0 && utf8.Valid(r):
		n := copy(r, r[1:len(r)-1])
		*raw = r[:n]
		return nil
	}
	var s string // rare in these fields: a string of its own
	if err := json.Unmarshal(r, &s); err != nil {
		return err
	}
	*raw = append(r[:0], s...)
	return nil
}

func jsonKind(b byte) string {
	switch b {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	default:
		return "number"
	}
}
