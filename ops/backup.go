package ops

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"sepmbot/store"
)

// Snapshotter writes a consistent copy of the data file; *store.DB implements it.
type Snapshotter interface {
	WriteTo(ctx context.Context, w io.Writer) (int64, error)
}

// WriteFile writes what write produces to path atomically: a temporary file in the
// same folder (mode 0600), synced, then renamed over path.
func WriteFile(path string, write func(w io.Writer) (int64, error)) (int64, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	n, err := write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("backup: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return n, nil
}

// Backup copies db to path (see WriteFile).
func Backup(ctx context.Context, db Snapshotter, path string) (int64, error) {
	return WriteFile(path, func(w io.Writer) (int64, error) { return db.WriteTo(ctx, w) })
}

// Summary is what a verified copy holds.
type Summary struct {
	Bytes     int64 `json:"bytes"`
	Rotations int   `json:"rotations"`
	Active    int   `json:"active"`
	Audit     int   `json:"audit_records"`
}

// Verify opens the copy at path read-only with bbolt, checks every page and counts
// its rotations and audit records.
func Verify(ctx context.Context, path string) (Summary, error) {
	var s Summary
	fi, err := os.Stat(path)
	if err != nil {
		return s, fmt.Errorf("verify: %w", err)
	}
	s.Bytes = fi.Size()
	if err := checkSize(path, fi.Size()); err != nil {
		return s, fmt.Errorf("verify %s: %w", path, err)
	}
	db, err := store.OpenReadOnly(path)
	if err != nil {
		return s, fmt.Errorf("verify: %w", err)
	}
	defer db.Close()
	if errs := db.Check(ctx); len(errs) > 0 {
		return s, fmt.Errorf("verify %s: bbolt check: %w", path, errors.Join(errs...))
	}
	err = db.View(ctx, func(tx *store.Tx) error {
		if err := tx.ForEach(store.BucketRotations, func(_ string, v []byte) error {
			s.Rotations++
			if active(v) {
				s.Active++
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.ForEach(store.BucketAudit, func(string, []byte) error { s.Audit++; return nil })
	})
	if err != nil {
		return s, fmt.Errorf("verify %s: %w", path, err)
	}
	return s, nil
}

// bbolt's meta page layout (see bbolt's internal/common): a 16-byte page header,
// then magic, version, page size, flags (4 bytes each), the root bucket (16), the
// freelist page id (8) and the high-water page id (8), all little-endian here.
const (
	boltMagic     = 0xED0CDAED
	metaMagicAt   = 16
	metaPageSzAt  = 24
	metaHighWatAt = 56
	metaTxidAt    = 64
)

// checkSize refuses a file shorter than its newest valid meta page says: bbolt maps
// the file and would fault reading past its end (a truncated copy).
func checkSize(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	type meta struct{ pageSize, hwm, txid uint64 }
	read := func(b []byte) (meta, bool) {
		if len(b) < metaTxidAt+8 || binary.LittleEndian.Uint32(b[metaMagicAt:]) != boltMagic {
			return meta{}, false
		}
		return meta{uint64(binary.LittleEndian.Uint32(b[metaPageSzAt:])), binary.LittleEndian.Uint64(b[metaHighWatAt:]), binary.LittleEndian.Uint64(b[metaTxidAt:])}, true
	}
	m0, ok0 := read(head)
	if !ok0 {
		return errors.New("not a bbolt file (no valid first meta page)")
	}
	best := m0
	if m0.pageSize >= 1024 && m0.pageSize <= 1<<16 {
		second := make([]byte, metaTxidAt+8)
		if _, err := f.ReadAt(second, int64(m0.pageSize)); err == nil {
			if m1, ok := read(second); ok && m1.txid > m0.txid {
				best = m1
			}
		}
	}
	if need := best.hwm * best.pageSize; best.pageSize == 0 || uint64(size) < need {
		return fmt.Errorf("truncated: %d bytes, its meta page needs %d", size, need)
	}
	return nil
}
