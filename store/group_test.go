package store

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openGroupDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// holdWriter takes bbolt's writer lock until the returned channel is closed, so
// the next commit waits for it and the calls after it queue.
func holdWriter(db *DB) chan struct{} {
	hold, held := make(chan struct{}), make(chan struct{})
	go func() {
		_ = db.bolt.Update(func(*bolt.Tx) error { close(held); <-hold; return nil })
	}()
	<-held
	return hold
}

// waitJoined waits until n calls are in the group commit: taken by the commit
// waiting for the writer lock, or queued behind it.
func waitJoined(t *testing.T, db *DB, n int, hold chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.grp.mu.Lock()
		in := db.grp.taken + len(db.grp.pending)
		db.grp.mu.Unlock()
		if in == n {
			return
		}
		if time.Now().After(deadline) {
			close(hold)
			t.Fatalf("%d of %d calls joined the group commit", in, n)
		}
		runtime.Gosched()
	}
}

// TestGroupCommitShares: calls that queue while a commit is in progress go
// together in the next one, not one commit each.
func TestGroupCommitShares(t *testing.T) {
	db := openGroupDB(t)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	hold := holdWriter(db) // the first call's commit waits, the rest queue
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if ok, err := db.Deliver(ctx, fmt.Sprintf("ev-%d", i), now, time.Hour); err != nil || !ok {
				t.Errorf("ev-%d: fresh %v, err %v", i, ok, err)
			}
		})
	}
	waitJoined(t, db, n, hold)
	close(hold)
	wg.Wait()
	db.grp.mu.Lock()
	commits := db.grp.commits
	db.grp.mu.Unlock()
	if commits > 2 {
		t.Fatalf("%d calls made %d commits, want at most 2 (the leader's, then everyone who queued behind it)", n, commits)
	}
}

// TestGroupCommitFailureIsolated: a call that fails (a key bbolt refuses) fails
// alone; the calls that shared its commit are retried on their own and succeed.
func TestGroupCommitFailureIsolated(t *testing.T) {
	db := openGroupDB(t)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	hold := holdWriter(db)
	long := strings.Repeat("x", bolt.MaxKeySize+1)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() {
			id := fmt.Sprintf("ev-%d", i)
			if i == 5 {
				id = long
			}
			_, errs[i] = db.Deliver(ctx, id, now, time.Hour)
		})
	}
	waitJoined(t, db, 10, hold)
	close(hold)
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 5) {
			t.Errorf("call %d: err %v (only the over-long key may fail)", i, err)
		}
	}
	for i := range 10 {
		if i == 5 {
			continue
		}
		if ok, err := db.Deliver(ctx, fmt.Sprintf("ev-%d", i), now.Add(time.Second), time.Hour); err != nil || ok {
			t.Errorf("ev-%d again: fresh %v, err %v; want recorded", i, ok, err)
		}
	}
}

// TestGroupCommitPanicIsolated: a panicking call does not strand its group.
func TestGroupCommitPanicIsolated(t *testing.T) {
	db := openGroupDB(t)
	err := db.group(context.Background(), func(*Tx) error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err %v, want the panic as an error", err)
	}
	if ok, err := db.Deliver(context.Background(), "after", time.Now(), time.Hour); err != nil || !ok {
		t.Fatalf("after a panic: fresh %v, err %v", ok, err)
	}
}

// TestOpenSkipsFreelistSync: the freelist is not written at each commit (the
// event path's commits are its cost), and a reopened file has every record.
func TestOpenSkipsFreelistSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !db.bolt.NoFreelistSync {
		t.Error("NoFreelistSync is off: every commit writes the freelist")
	}
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	for i := range 500 {
		if _, err := db.Deliver(ctx, fmt.Sprintf("ev-%d", i), now, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	db = reopen(t, db, path)
	for i := range 500 {
		if ok, err := db.Deliver(ctx, fmt.Sprintf("ev-%d", i), now.Add(time.Second), time.Hour); err != nil || ok {
			t.Fatalf("ev-%d after reopen: fresh %v, err %v", i, ok, err)
		}
	}
}
