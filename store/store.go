package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Buckets created by Open. Callers read and write the public ones with Tx.Get,
// Tx.Put, Tx.Delete and Tx.ForEach; the audit bucket is written only through
// Tx.AppendAudit and the delivered bucket only through DB.Deliver.
const (
	BucketRotations = "rotations" // rotation id -> encoded rotation
	BucketApprovals = "approvals" // approval request id -> encoded request
	BucketAudit     = "audit"     // "%020d" seq -> JSON AuditRecord (append-only)
	BucketDelivered = "delivered" // delivery id -> 8-byte big-endian Unix nanoseconds
	BucketTimers    = "timers"    // timer key -> encoded absolute deadline
	BucketMeta      = "meta"      // store metadata (schema version) and caller settings
	// BucketJournal holds the change journal: one record per SEPM change a rotation
	// makes, keyed by rotation || 0x00 || "%020d" seq so a rotation's records are
	// contiguous and in order. The intent is written (and committed) before the change
	// and the result after SEPM confirmed it, so a record without a result is a change
	// that may or may not have happened.
	BucketJournal = "journal"
	// BucketInbox holds inbound chat envelopes recorded before they are acknowledged
	// (the adapters' dedupe records and their not-yet-handled events), keys prefixed
	// by platform: "slack/...".
	BucketInbox = "inbox"
)

// Internal index buckets, also created by Open and refused to Put and Delete.
const (
	bucketDeliveredByTime = "delivered_by_time" // 8-byte time || id -> empty
	bucketAuditByRotation = "audit_by_rotation" // rotation || 0x00 || "%020d" seq -> empty
)

// schemaVersion is written to the meta bucket under "schema" by Open.
const schemaVersion = "1"

// maxPrunePerDeliver bounds the expired delivery ids one Deliver call removes,
// so a long outage followed by a burst cannot turn one call into a long one.
const maxPrunePerDeliver = 256

// openTimeout is how long Open waits for the file lock before giving up.
const openTimeout = 2 * time.Second

var allBuckets = []string{
	BucketRotations, BucketApprovals, BucketAudit, BucketDelivered, BucketTimers, BucketMeta, BucketJournal, BucketInbox,
	bucketDeliveredByTime, bucketAuditByRotation,
}

// reserved buckets are maintained by the store itself: Put and Delete refuse them.
var reserved = map[string]bool{
	BucketAudit:           true,
	BucketDelivered:       true,
	bucketDeliveredByTime: true,
	bucketAuditByRotation: true,
}

// ErrLocked is returned (wrapped) by Open when another process, or another
// Open in this process, holds the data file.
var ErrLocked = errors.New("store: already running: another sepmbot process holds the data file")

// ErrNoBucket is returned (wrapped) when a transaction names a bucket Open did
// not create.
var ErrNoBucket = errors.New("store: no such bucket")

// ErrReserved is returned (wrapped) by Tx.Put and Tx.Delete on a bucket the
// store maintains itself (the append-only audit trail and the delivery ids).
var ErrReserved = errors.New("store: bucket is written only by the store")

// DB is an open data file. It is safe for concurrent use by many goroutines.
type DB struct {
	bolt *bolt.DB
	path string
	grp  grouper // Deliver's shared commits
}

// Tx is one bbolt transaction: read-only inside View, read-write inside
// Update. It is valid only while the function it was passed to runs, and must
// not be used from other goroutines.
type Tx struct {
	tx *bolt.Tx
}

// AuditRecord is one entry of the audit trail.
type AuditRecord struct {
	Seq      uint64            `json:"seq"`  // assigned by AppendAudit: global, increasing
	Time     time.Time         `json:"time"` // when it happened (AppendAudit fills in now if zero)
	Rotation string            `json:"rotation,omitempty"`
	Actor    string            `json:"actor,omitempty"` // platform-qualified user or "bot"
	Kind     string            `json:"kind,omitempty"`  // e.g. "step", "vote", "approved"
	Step     string            `json:"step,omitempty"`
	Detail   string            `json:"detail,omitempty"`
	Data     map[string]string `json:"data,omitempty"`
}

// Open opens (creating it if needed, mode 0600, parent folders 0700) the
// data file at path and creates the buckets. It waits at most two seconds for
// the file lock; if another process (or another Open in this process) holds
// it, the error wraps ErrLocked. Close the DB to release the lock.
func Open(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("store: open: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// The freelist is not written at every commit (one page fewer per commit, the
	// event path's cost being its fsyncs); Open rebuilds it by scanning the file,
	// which at sepmbot's sizes (a few MB) takes milliseconds. Durability is the same:
	// the freelist is derived data.
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("store: open %s: lock not acquired within %s: %w", path, openTimeout, ErrLocked)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket([]byte(BucketMeta))
		switch v := meta.Get([]byte("schema")); {
		case v == nil:
			return meta.Put([]byte("schema"), []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("data file schema %q, this build understands %q", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &DB{bolt: bdb, path: path}, nil
}

// Path returns the data file's path.
func (d *DB) Path() string { return d.path }

// Close releases the file lock. Transactions in progress finish first.
func (d *DB) Close() error {
	if err := d.bolt.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", d.path, err)
	}
	return nil
}

// Update runs fn in one read-write transaction: one transition. If fn returns
// nil the transaction is committed and fsynced, and Update returns nil only
// once the commit is durable. If fn returns an error, panics, or ctx is done
// by the time fn returns, nothing fn wrote is kept and Update returns fn's
// error (unwrapped) or the context's error. Updates are serialised; ctx is
// checked before waiting for and after running fn, it cannot interrupt a
// commit in progress.
func (d *DB) Update(ctx context.Context, fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: update: %w", err)
	}
	var fnErr error
	err := d.bolt.Update(func(btx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			fnErr = fmt.Errorf("store: update: %w", err)
			return fnErr
		}
		if fnErr = fn(&Tx{tx: btx}); fnErr != nil {
			return fnErr
		}
		if err := ctx.Err(); err != nil {
			fnErr = fmt.Errorf("store: update: %w", err)
			return fnErr
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: update: %w", err)
	}
	return nil
}

// View runs fn in a read-only transaction that sees a consistent snapshot.
// fn's error is returned unwrapped.
func (d *DB) View(ctx context.Context, fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: view: %w", err)
	}
	var fnErr error
	err := d.bolt.View(func(btx *bolt.Tx) error {
		fnErr = fn(&Tx{tx: btx})
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: view: %w", err)
	}
	return nil
}

// bucket returns the named bucket or an error wrapping ErrNoBucket.
func (tx *Tx) bucket(name string) (*bolt.Bucket, error) {
	b := tx.tx.Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoBucket, name)
	}
	return b, nil
}

// Get returns a copy of the value stored under key, or nil if there is none
// (or the bucket does not exist). The copy stays valid after the transaction.
func (tx *Tx) Get(bucket, key string) []byte {
	b := tx.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil
	}
	return bytes.Clone(v)
}

// Put stores val under key in bucket, replacing any previous value. It fails
// in a read-only transaction, on an empty key, on an unknown bucket
// (ErrNoBucket) and on the store's own buckets (ErrReserved).
func (tx *Tx) Put(bucket, key string, val []byte) error {
	if reserved[bucket] {
		return fmt.Errorf("store: put %s/%s: %w", bucket, key, ErrReserved)
	}
	b, err := tx.bucket(bucket)
	if err != nil {
		return fmt.Errorf("store: put %s/%s: %w", bucket, key, err)
	}
	if val == nil {
		val = []byte{}
	}
	if err := b.Put([]byte(key), val); err != nil {
		return fmt.Errorf("store: put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Delete removes key from bucket; deleting a missing key is not an error. It
// fails in a read-only transaction, on an unknown bucket (ErrNoBucket) and on
// the store's own buckets (ErrReserved).
func (tx *Tx) Delete(bucket, key string) error {
	if reserved[bucket] {
		return fmt.Errorf("store: delete %s/%s: %w", bucket, key, ErrReserved)
	}
	b, err := tx.bucket(bucket)
	if err != nil {
		return fmt.Errorf("store: delete %s/%s: %w", bucket, key, err)
	}
	if err := b.Delete([]byte(key)); err != nil {
		return fmt.Errorf("store: delete %s/%s: %w", bucket, key, err)
	}
	return nil
}

// ForEach calls fn for every key of bucket in ascending byte order, with a
// copy of the value. It stops at, and returns unwrapped, the first error fn
// returns. fn must not modify the bucket being iterated: collect the keys
// and change them afterwards.
func (tx *Tx) ForEach(bucket string, fn func(key string, val []byte) error) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return fmt.Errorf("store: foreach %s: %w", bucket, err)
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil { // a nested bucket; the store creates none
			continue
		}
		if err := fn(string(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}

// ForEachPrefix calls fn, in ascending byte order, for every key of bucket that
// starts with prefix, with a copy of the value. It stops at, and returns unwrapped,
// the first error fn returns; fn must not modify the bucket.
func (tx *Tx) ForEachPrefix(bucket, prefix string, fn func(key string, val []byte) error) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return fmt.Errorf("store: foreach %s: %w", bucket, err)
	}
	p := []byte(prefix)
	c := b.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if v == nil {
			continue
		}
		if err := fn(string(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}

// NextSeq returns the next value of bucket's sequence (1, 2, 3, ...). The
// increment is part of the transaction: if it rolls back, the number is
// handed out again. Read-write transactions only.
func (tx *Tx) NextSeq(bucket string) (uint64, error) {
	b, err := tx.bucket(bucket)
	if err != nil {
		return 0, fmt.Errorf("store: next seq %s: %w", bucket, err)
	}
	n, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("store: next seq %s: %w", bucket, err)
	}
	return n, nil
}

// auditKey is the audit bucket's key for seq: zero-padded so that byte order
// is numeric order.
func auditKey(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// AppendAudit adds r to the audit trail as part of this transaction and
// returns it with Seq set (global, increasing; any Seq in r is ignored). A
// zero Time is set to the current time (UTC). Records are never changed or
// removed: the store has no API for it. Read-write transactions only.
func (tx *Tx) AppendAudit(r AuditRecord) (AuditRecord, error) {
	if strings.IndexByte(r.Rotation, 0) >= 0 {
		return AuditRecord{}, errors.New("store: append audit: rotation id contains NUL")
	}
	b, err := tx.bucket(BucketAudit)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("store: append audit: %w", err)
	}
	idx, err := tx.bucket(bucketAuditByRotation)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("store: append audit: %w", err)
	}
	seq, err := b.NextSequence()
	if err != nil {
		return AuditRecord{}, fmt.Errorf("store: append audit: %w", err)
	}
	r.Seq = seq
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	r.Data = maps.Clone(r.Data)
	val, err := json.Marshal(r)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("store: append audit: %w", err)
	}
	key := auditKey(seq)
	if err := b.Put([]byte(key), val); err != nil {
		return AuditRecord{}, fmt.Errorf("store: append audit: %w", err)
	}
	if r.Rotation != "" {
		if err := idx.Put([]byte(r.Rotation+"\x00"+key), []byte{}); err != nil {
			return AuditRecord{}, fmt.Errorf("store: append audit: %w", err)
		}
	}
	return r, nil
}

// Audit returns the audit records of rotationID ("" = every record) in Seq
// order.
func (d *DB) Audit(ctx context.Context, rotationID string) ([]AuditRecord, error) {
	var out []AuditRecord
	err := d.View(ctx, func(tx *Tx) error {
		b, err := tx.bucket(BucketAudit)
		if err != nil {
			return err
		}
		decode := func(k, v []byte) error {
			var r AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		}
		if rotationID == "" {
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if err := decode(k, v); err != nil {
					return err
				}
			}
			return nil
		}
		idx, err := tx.bucket(bucketAuditByRotation)
		if err != nil {
			return err
		}
		prefix := []byte(rotationID + "\x00")
		c := idx.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			key := k[len(prefix):]
			v := b.Get(key)
			if v == nil {
				return fmt.Errorf("index names missing record %s", key)
			}
			if err := decode(key, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: audit %q: %w", rotationID, err)
	}
	return out, nil
}

// timeKey encodes t as 8 big-endian bytes of Unix nanoseconds (times before
// 1970 count as 1970), so that byte order is time order.
func timeKey(t time.Time) []byte {
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(n))
}

// Deliver (safe for concurrent use: concurrent calls share one durable commit,
// without waiting for a timer; see group) records the chat delivery id at now and reports whether it is
// fresh: false if id was already recorded less than ttl before now (a
// redelivery to drop), true otherwise. A duplicate keeps its first time, so
// the window runs from the first delivery. In the same durable transaction
// it forgets up to 256 ids recorded ttl or more before now, oldest first.
// The caller chooses ttl (sepmbot uses at least 10 minutes); ttl <= 0 or an
// empty id is an error.
func (d *DB) Deliver(ctx context.Context, id string, now time.Time, ttl time.Duration) (fresh bool, err error) {
	if id == "" {
		return false, errors.New("store: deliver: empty id")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("store: deliver %q: ttl %s must be positive", id, ttl)
	}
	// Concurrent deliveries share one commit (group commit, no timer); each is
	// durable before Deliver returns.
	err = d.group(ctx, func(tx *Tx) error {
		fresh = false
		byID, err := tx.bucket(BucketDelivered)
		if err != nil {
			return err
		}
		byTime, err := tx.bucket(bucketDeliveredByTime)
		if err != nil {
			return err
		}
		if err := pruneDelivered(byID, byTime, now.Add(-ttl)); err != nil {
			return err
		}
		nowKey := timeKey(now)
		if prev := byID.Get([]byte(id)); prev != nil {
			if len(prev) == 8 {
				seen := time.Unix(0, int64(binary.BigEndian.Uint64(prev)))
				if now.Sub(seen) < ttl {
					fresh = false
					return nil
				}
			}
			// Expired but not yet pruned (or malformed): record it again.
			if err := byTime.Delete(append(bytes.Clone(prev), id...)); err != nil {
				return err
			}
		}
		if err := byID.Put([]byte(id), nowKey); err != nil {
			return err
		}
		if err := byTime.Put(append(nowKey, id...), []byte{}); err != nil {
			return err
		}
		fresh = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: deliver %q: %w", id, err)
	}
	return fresh, nil
}

// pruneDelivered removes, oldest first, at most maxPrunePerDeliver ids
// recorded at or before cutoff.
func pruneDelivered(byID, byTime *bolt.Bucket, cutoff time.Time) error {
	limit := timeKey(cutoff)
	var old [][]byte
	c := byTime.Cursor()
	for k, _ := c.First(); k != nil && len(old) < maxPrunePerDeliver; k, _ = c.Next() {
		if len(k) >= 8 && bytes.Compare(k[:8], limit) > 0 {
			break // the rest is newer
		}
		old = append(old, bytes.Clone(k)) // expired (or malformed)
	}
	for _, k := range old {
		if err := byTime.Delete(k); err != nil {
			return err
		}
		if len(k) < 8 {
			continue
		}
		id := k[8:]
		// Only drop the id if this index entry is its current record.
		if cur := byID.Get(id); cur != nil && bytes.Equal(cur, k[:8]) {
			if err := byID.Delete(id); err != nil {
				return err
			}
		}
	}
	return nil
}
