package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// countDelivered returns the number of entries in the delivered bucket and in
// its time index.
func countDelivered(t *testing.T, db *DB) (ids, index int) {
	t.Helper()
	err := db.View(t.Context(), func(tx *Tx) error {
		if err := tx.ForEach(BucketDelivered, func(string, []byte) error { ids++; return nil }); err != nil {
			return err
		}
		return tx.ForEach(bucketDeliveredByTime, func(string, []byte) error { index++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids, index
}

func TestDeliverDedupeAndExpiry(t *testing.T) {
	db, _ := openTemp(t)
	ctx := t.Context()
	const ttl = 10 * time.Minute
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		id    string
		at    time.Duration
		fresh bool
		why   string
	}{
		{"ev1", 0, true, "first delivery"},
		{"ev1", time.Second, false, "redelivered a second later"},
		{"ev2", 2 * time.Second, true, "another id"},
		{"ev1", ttl - time.Nanosecond, false, "just inside the ttl (window runs from the first delivery)"},
		{"ev1", ttl, true, "exactly ttl later it is forgotten"},
		{"ev1", ttl + time.Minute, false, "and counts from the new delivery"},
		{"ev2", ttl + time.Minute, true, "ev2 expired too"},
	}
	for _, s := range steps {
		fresh, err := db.Deliver(ctx, s.id, t0.Add(s.at), ttl)
		if err != nil {
			t.Fatalf("%s: %v", s.why, err)
		}
		if fresh != s.fresh {
			t.Errorf("%s: Deliver(%s, +%v) = %v, want %v", s.why, s.id, s.at, fresh, s.fresh)
		}
	}
	if ids, index := countDelivered(t, db); ids != 2 || index != 2 {
		t.Errorf("delivered %d ids / %d index entries, want 2/2", ids, index)
	}

	if _, err := db.Deliver(ctx, "", t0, ttl); err == nil {
		t.Error("Deliver with an empty id succeeded")
	}
	if _, err := db.Deliver(ctx, "ev3", t0, 0); err == nil {
		t.Error("Deliver with ttl 0 succeeded")
	}
}

func TestDeliverPrunesBoundedPerCall(t *testing.T) {
	db, _ := openTemp(t)
	ctx := t.Context()
	const ttl = 15 * time.Minute
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = maxPrunePerDeliver + 44
	for i := range n {
		if fresh, err := db.Deliver(ctx, fmt.Sprintf("old-%04d", i), t0.Add(time.Duration(i)*time.Millisecond), ttl); err != nil || !fresh {
			t.Fatalf("Deliver old-%d = %v, %v", i, fresh, err)
		}
	}
	if ids, index := countDelivered(t, db); ids != n || index != n {
		t.Fatalf("before pruning: %d/%d, want %d/%d", ids, index, n, n)
	}
	later := t0.Add(ttl + time.Hour)
	if _, err := db.Deliver(ctx, "new-1", later, ttl); err != nil {
		t.Fatal(err)
	}
	if ids, index := countDelivered(t, db); ids != n-maxPrunePerDeliver+1 || index != ids {
		t.Fatalf("after one call: %d ids / %d index, want %d", ids, index, n-maxPrunePerDeliver+1)
	}
	// The oldest went first.
	_ = db.View(ctx, func(tx *Tx) error {
		if tx.Get(BucketDelivered, "old-0000") != nil {
			t.Error("oldest id survived pruning")
		}
		if tx.Get(BucketDelivered, fmt.Sprintf("old-%04d", n-1)) == nil {
			t.Error("newest old id pruned in the first call")
		}
		return nil
	})
	if _, err := db.Deliver(ctx, "new-2", later, ttl); err != nil {
		t.Fatal(err)
	}
	if ids, index := countDelivered(t, db); ids != 2 || index != 2 {
		t.Fatalf("after two calls: %d/%d, want 2/2 (only the new ids)", ids, index)
	}
	// A pruned id is fresh again; a recent one is still a duplicate.
	if fresh, _ := db.Deliver(ctx, "old-0000", later, ttl); !fresh {
		t.Error("pruned id reported as duplicate")
	}
	if fresh, _ := db.Deliver(ctx, "new-1", later.Add(time.Minute), ttl); fresh {
		t.Error("recent id reported fresh")
	}
}

func TestDeliverRedeliveryAfterExpiryKeepsNewRecord(t *testing.T) {
	db, _ := openTemp(t)
	ctx := t.Context()
	const ttl = 10 * time.Minute
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// A short ttl on the second call lets "x" be re-recorded while its old
	// index entry is not yet pruned by a call with the long ttl.
	mustDeliver := func(id string, at time.Time, ttl time.Duration, want bool) {
		t.Helper()
		fresh, err := db.Deliver(ctx, id, at, ttl)
		if err != nil || fresh != want {
			t.Fatalf("Deliver(%s, %v) = %v, %v; want %v", id, at, fresh, err, want)
		}
	}
	mustDeliver("x", t0, ttl, true)
	mustDeliver("x", t0.Add(time.Minute), 30*time.Second, true) // expired under the short ttl: re-recorded at t0+1m
	if ids, index := countDelivered(t, db); ids != 1 || index != 1 {
		t.Fatalf("after re-record: %d/%d, want 1/1 (stale index entry removed)", ids, index)
	}
	mustDeliver("x", t0.Add(ttl+30*time.Second), ttl, false) // within ttl of t0+1m
}

// TestDeliverConcurrentGroupCommit: many goroutines delivering at once (their calls
// share commits) each get the right answer, exactly one of the copies of a
// duplicated id is fresh, and every id is durable after a reopen.
func TestDeliverConcurrentGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := map[string]int{}
	for i := range n {
		for dup := range 2 { // every id delivered twice at once
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("ev-%03d", i)
				ok, err := db.Deliver(ctx, id, now.Add(time.Duration(dup)*time.Millisecond), 10*time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					fresh[id]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for i := range n {
		if id := fmt.Sprintf("ev-%03d", i); fresh[id] != 1 {
			t.Fatalf("%s fresh %d times, want exactly once", id, fresh[id])
		}
	}
	db = reopen(t, db, path)
	for i := range n {
		if ok, err := db.Deliver(ctx, fmt.Sprintf("ev-%03d", i), now.Add(time.Second), 10*time.Minute); err != nil || ok {
			t.Fatalf("ev-%03d after reopen: fresh %v, err %v (the first delivery was not durable)", i, ok, err)
		}
	}
}
