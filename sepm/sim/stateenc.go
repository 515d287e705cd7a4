package sim

import (
	"bytes"
	"encoding/gob"
)

// snapEncoder writes a snapshot as gob.NewEncoder(w).Encode(sn) does, the same
// bytes (its type definitions, then the value), with one gob.Encoder kept from
// save to save: a fresh encoder regrows its buffer from nothing, in steps of
// 1.25x for a large one, which allocates about five times the 40 MB of a
// 500,000-client snapshot on every save. The kept encoder sends its type
// definitions only once, so the first save's are kept and written before each
// later value.
type snapEncoder struct {
	enc   *gob.Encoder
	w     chunkWriter
	types []byte // the type definitions of the first save
}

// chunkWriter appends to dst and remembers where the last Write began (gob writes
// each message, type or value, in one Write).
type chunkWriter struct {
	dst  *bytes.Buffer
	last int
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	c.last = c.dst.Len()
	return c.dst.Write(p)
}

// encode replaces dst's contents with the encoded snapshot.
func (e *snapEncoder) encode(dst *bytes.Buffer, sn *snapshot) error {
	dst.Reset()
	e.w.dst = dst
	if e.enc == nil {
		e.enc = gob.NewEncoder(&e.w)
		if err := e.enc.Encode(sn); err != nil {
			e.enc = nil
			return err
		}
		e.types = bytes.Clone(dst.Bytes()[:e.w.last])
		return nil
	}
	dst.Write(e.types)
	if err := e.enc.Encode(sn); err != nil {
		e.enc = nil // start afresh: its state after an error is not worth trusting
		return err
	}
	return nil
}
