package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// WriteTo writes a consistent copy of the whole data file to w from one read
// transaction (bbolt's hot backup: writers are not blocked). It returns the bytes
// written.
func (d *DB) WriteTo(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	var n int64
	err := d.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup %s: %w", d.path, err)
	}
	return n, nil
}

// OpenReadOnly opens an existing data file for reading only (no bucket is created,
// nothing is written). It shares the file with other readers but not with a
// running bot: if a process holds it for writing, the error wraps ErrLocked after
// two seconds. Update fails on a read-only DB.
func OpenReadOnly(path string) (*DB, error) {
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout, ReadOnly: true})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("store: open %s: lock not acquired within %s: %w", path, openTimeout, ErrLocked)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &DB{bolt: bdb, path: path}, nil
}

// Check runs bbolt's consistency check of every page in one read transaction and
// returns the problems found (none for a sound file).
func (d *DB) Check(ctx context.Context) []error {
	if err := ctx.Err(); err != nil {
		return []error{err}
	}
	var errs []error
	_ = d.bolt.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	return errs
}
