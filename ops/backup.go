package ops

import (
	"context"
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
