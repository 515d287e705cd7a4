package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// openTemp opens a fresh data file in a temporary folder, closed at cleanup.
func openTemp(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sepmbot.db")
	db, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, path
}

func TestOpenCreatesBuckets(t *testing.T) {
	db, path := openTemp(t)
	ctx := t.Context()
	err := db.View(ctx, func(tx *Tx) error {
		for _, b := range allBuckets {
			if err := tx.ForEach(b, func(string, []byte) error { return nil }); err != nil {
				return fmt.Errorf("bucket %s: %w", b, err)
			}
		}
		if got := string(tx.Get(BucketMeta, "schema")); got != schemaVersion {
			return fmt.Errorf("schema = %q, want %q", got, schemaVersion)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("data file mode %v, want no group/other access", perm)
	}
}

func TestOpenCreatesParentFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "sepmbot.db")
	db, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func TestPutGetForEachDelete(t *testing.T) {
	db, _ := openTemp(t)
	ctx := t.Context()
	err := db.Update(ctx, func(tx *Tx) error {
		for _, k := range []string{"r3", "r1", "r2", "r10"} {
			if err := tx.Put(BucketRotations, k, []byte("v-"+k)); err != nil {
				return err
			}
		}
		return tx.Put(BucketTimers, "empty", nil)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}

	err = db.View(ctx, func(tx *Tx) error {
		v := tx.Get(BucketRotations, "r1")
		if string(v) != "v-r1" {
			t.Errorf("Get r1 = %q", v)
		}
		v[0] = 'X' // the caller owns the copy
		if again := tx.Get(BucketRotations, "r1"); string(again) != "v-r1" {
			t.Errorf("Get after mutating the returned slice = %q", again)
		}
		if v := tx.Get(BucketRotations, "nope"); v != nil {
			t.Errorf("Get absent = %q, want nil", v)
		}
		if v := tx.Get("no-such-bucket", "r1"); v != nil {
			t.Errorf("Get in unknown bucket = %q, want nil", v)
		}
		if v := tx.Get(BucketTimers, "empty"); v == nil || len(v) != 0 {
			t.Errorf("Get of empty value = %#v, want empty non-nil", v)
		}
		var keys []string
		err := tx.ForEach(BucketRotations, func(k string, val []byte) error {
			if string(val) != "v-"+k {
				t.Errorf("ForEach %s = %q", k, val)
			}
			keys = append(keys, k)
			return nil
		})
		if err != nil {
			return err
		}
		if want := []string{"r1", "r10", "r2", "r3"}; !slices.Equal(keys, want) {
			t.Errorf("ForEach order %v, want %v", keys, want)
		}
		stop := errors.New("stop")
		n := 0
		if err := tx.ForEach(BucketRotations, func(string, []byte) error { n++; return stop }); err != stop || n != 1 {
			t.Errorf("ForEach stop: err %v after %d calls, want stop after 1", err, n)
		}
		if err := tx.ForEach("no-such-bucket", func(string, []byte) error { return nil }); !errors.Is(err, ErrNoBucket) {
			t.Errorf("ForEach unknown bucket: %v, want ErrNoBucket", err)
		}
		if err := tx.Put(BucketRotations, "r9", []byte("x")); err == nil {
			t.Error("Put in a read-only transaction succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}

	err = db.Update(ctx, func(tx *Tx) error {
		if err := tx.Delete(BucketRotations, "r2"); err != nil {
			return err
		}
		if err := tx.Delete(BucketRotations, "never-there"); err != nil {
			return fmt.Errorf("delete of a missing key: %w", err)
		}
		if err := tx.Put("no-such-bucket", "k", nil); !errors.Is(err, ErrNoBucket) {
			t.Errorf("Put unknown bucket: %v, want ErrNoBucket", err)
		}
		if err := tx.Delete("no-such-bucket", "k"); !errors.Is(err, ErrNoBucket) {
			t.Errorf("Delete unknown bucket: %v, want ErrNoBucket", err)
		}
		if err := tx.Put(BucketRotations, "", []byte("x")); err == nil {
			t.Error("Put with an empty key succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	_ = db.View(ctx, func(tx *Tx) error {
		if v := tx.Get(BucketRotations, "r2"); v != nil {
			t.Errorf("r2 after Delete = %q", v)
		}
		if v := tx.Get(BucketRotations, "r3"); string(v) != "v-r3" {
			t.Errorf("r3 = %q", v)
		}
		return nil
	})
}

func TestUpdateErrorRollsBack(t *testing.T) {
	db, _ := openTemp(t)
	ctx := t.Context()
	if err := db.Update(ctx, func(tx *Tx) error { return tx.Put(BucketRotations, "kept", []byte("1")) }); err != nil {
		t.Fatal(err)
	}

	boom := errors.New("boom")
	err := db.Update(ctx, func(tx *Tx) error {
		if err := tx.Put(BucketRotations, "kept", []byte("2")); err != nil {
			return err
		}
		if err := tx.Put(BucketRotations, "lost", []byte("x")); err != nil {
			return err
		}
		if _, err := tx.NextSeq(BucketRotations); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(AuditRecord{Rotation: "R1", Kind: "lost"}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update = %v, want the function's own error unwrapped", err)
	}

	// A panic rolls back too (bbolt re-panics after the rollback).
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic inside Update was swallowed")
			}
		}()
		_ = db.Update(ctx, func(tx *Tx) error {
			_ = tx.Put(BucketRotations, "panicked", []byte("x"))
			panic("boom")
		})
	}()

	// A context cancelled while fn runs rolls back as well.
	cctx, cancel := context.WithCancel(ctx)
	err = db.Update(cctx, func(tx *Tx) error {
		cancel()
		return tx.Put(BucketRotations, "cancelled", []byte("x"))
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with cancelled ctx = %v, want context.Canceled", err)
	}
	if err := db.Update(cctx, func(*Tx) error { t.Error("fn ran with a done context"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with done ctx = %v", err)
	}

	err = db.View(ctx, func(tx *Tx) error {
		if v := tx.Get(BucketRotations, "kept"); string(v) != "1" {
			t.Errorf("kept = %q, want the committed 1", v)
		}
		for _, k := range []string{"lost", "panicked", "cancelled"} {
			if v := tx.Get(BucketRotations, k); v != nil {
				t.Errorf("%s = %q after rollback", k, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := db.Audit(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Errorf("audit after rollback = %+v, want none", recs)
	}
	// The sequence consumed in the rolled-back transaction is handed out again.
	err = db.Update(ctx, func(tx *Tx) error {
		n, err := tx.NextSeq(BucketRotations)
		if err == nil && n != 1 {
			t.Errorf("NextSeq after rollback = %d, want 1", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNextSeqIncreasesAndSurvivesReopen(t *testing.T) {
	db, path := openTemp(t)
	ctx := t.Context()
	next := func(db *DB) uint64 {
		t.Helper()
		var n uint64
		if err := db.Update(ctx, func(tx *Tx) (err error) { n, err = tx.NextSeq(BucketApprovals); return err }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for want := uint64(1); want <= 3; want++ {
		if got := next(db); got != want {
			t.Fatalf("NextSeq = %d, want %d", got, want)
		}
	}
	if err := db.View(ctx, func(tx *Tx) error { _, err := tx.NextSeq(BucketApprovals); return err }); err == nil {
		t.Error("NextSeq in a read-only transaction succeeded")
	}
	if err := db.Update(ctx, func(tx *Tx) error {
		return tx.Put(BucketApprovals, "A1", []byte("pending"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if got := next(db2); got != 4 {
		t.Errorf("NextSeq after reopen = %d, want 4", got)
	}
	_ = db2.View(ctx, func(tx *Tx) error {
		if v := tx.Get(BucketApprovals, "A1"); string(v) != "pending" {
			t.Errorf("A1 after reopen = %q", v)
		}
		return nil
	})
}

func TestConcurrentUpdatesAreSerialised(t *testing.T) {
	db, _ := openTemp(t)
	ctx := t.Context()
	const workers, each = 8, 25
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				var n uint64
				err := db.Update(ctx, func(tx *Tx) (err error) {
					if n, err = tx.NextSeq(BucketMeta); err != nil {
						return err
					}
					return tx.Put(BucketMeta, fmt.Sprintf("n%03d", n), []byte("x"))
				})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[n] = true
				mu.Unlock()
			}
		})
		wg.Go(func() {
			for range each {
				_ = db.View(ctx, func(tx *Tx) error {
					return tx.ForEach(BucketMeta, func(string, []byte) error { return nil })
				})
			}
		})
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Errorf("%d distinct sequence numbers, want %d", len(seen), workers*each)
	}
}

func TestAuditAppendOnly(t *testing.T) {
	db, path := openTemp(t)
	ctx := t.Context()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	in := []AuditRecord{
		{Seq: 99, Time: t0, Rotation: "R1", Actor: "slack:U1", Kind: "requested", Step: "disable-secure-comm"},
		{Time: t0.Add(time.Second), Rotation: "R2", Actor: "bot", Kind: "step", Detail: "copied MSL"},
		{Time: t0.Add(2 * time.Second), Rotation: "R1", Actor: "slack:U2", Kind: "vote", Data: map[string]string{"n": "1"}},
		{Rotation: "", Actor: "bot", Kind: "started"}, // zero time gets filled in
	}
	var got []AuditRecord
	err := db.Update(ctx, func(tx *Tx) error {
		for _, r := range in {
			out, err := tx.AppendAudit(r)
			if err != nil {
				return err
			}
			got = append(got, out)
		}
		// The trail cannot be edited through the generic API.
		if err := tx.Put(BucketAudit, auditKey(1), []byte("{}")); !errors.Is(err, ErrReserved) {
			t.Errorf("Put on audit: %v, want ErrReserved", err)
		}
		if err := tx.Delete(BucketAudit, auditKey(1)); !errors.Is(err, ErrReserved) {
			t.Errorf("Delete on audit: %v, want ErrReserved", err)
		}
		for _, b := range []string{bucketAuditByRotation, BucketDelivered, bucketDeliveredByTime} {
			if err := tx.Put(b, "k", nil); !errors.Is(err, ErrReserved) {
				t.Errorf("Put on %s: %v, want ErrReserved", b, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r.Seq != uint64(i+1) {
			t.Errorf("record %d Seq = %d, want %d", i, r.Seq, i+1)
		}
	}
	if got[3].Time.IsZero() {
		t.Error("zero Time not filled in")
	}
	in[2].Data["n"] = "changed" // the stored record does not alias the caller's map

	if err := db.View(ctx, func(tx *Tx) error {
		_, err := tx.AppendAudit(AuditRecord{Kind: "x"})
		return err
	}); err == nil {
		t.Error("AppendAudit in a read-only transaction succeeded")
	}

	check := func(db *DB) {
		t.Helper()
		all, err := db.Audit(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 4 {
			t.Fatalf("Audit(\"\") = %d records, want 4", len(all))
		}
		for i, r := range all {
			if r.Seq != uint64(i+1) {
				t.Errorf("Audit(\"\")[%d].Seq = %d", i, r.Seq)
			}
		}
		if !all[0].Time.Equal(t0) || all[0].Actor != "slack:U1" || all[0].Step != "disable-secure-comm" {
			t.Errorf("first record = %+v", all[0])
		}
		if all[2].Data["n"] != "1" {
			t.Errorf("Data = %v, want n=1", all[2].Data)
		}
		r1, err := db.Audit(ctx, "R1")
		if err != nil {
			t.Fatal(err)
		}
		if len(r1) != 2 || r1[0].Seq != 1 || r1[1].Seq != 3 || r1[1].Kind != "vote" {
			t.Errorf("Audit(R1) = %+v, want seqs 1 and 3", r1)
		}
		r2, _ := db.Audit(ctx, "R2")
		if len(r2) != 1 || r2[0].Seq != 2 {
			t.Errorf("Audit(R2) = %+v", r2)
		}
		// "R" is a prefix of "R1" and "R2" but a different rotation.
		if none, _ := db.Audit(ctx, "R"); len(none) != 0 {
			t.Errorf("Audit(R) = %+v, want none", none)
		}
	}
	check(db)

	// Sequence numbers keep increasing across a restart.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	check(db2)
	var r AuditRecord
	if err := db2.Update(ctx, func(tx *Tx) (err error) {
		r, err = tx.AppendAudit(AuditRecord{Rotation: "R1", Kind: "approved"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r.Seq != 5 {
		t.Errorf("Seq after reopen = %d, want 5", r.Seq)
	}
	r1, _ := db2.Audit(ctx, "R1")
	if len(r1) != 3 || r1[2].Kind != "approved" {
		t.Errorf("Audit(R1) after append = %+v", r1)
	}
}

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

func TestOpenLockedSameProcess(t *testing.T) {
	_, path := openTemp(t)
	db2, err := openWithin(t, path)
	if err == nil {
		db2.Close()
		t.Fatal("second Open of the same file succeeded")
	}
	assertLocked(t, err)
}

// openWithin runs Open and fails the test if it has not returned after a
// generous deadline: Open must give up (its own timeout is 2 s), never hang.
func openWithin(t *testing.T, path string) (*DB, error) {
	t.Helper()
	type result struct {
		db  *DB
		err error
	}
	done := make(chan result, 1)
	go func() {
		db, err := Open(path)
		done <- result{db, err}
	}()
	select {
	case r := <-done:
		return r.db, r.err
	case <-time.After(30 * time.Second):
		t.Fatal("Open hung on a locked file")
		return nil, nil
	}
}

func assertLocked(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Open error %v does not wrap ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "already running") {
		t.Errorf("Open error %q does not say \"already running\"", err)
	}
}

// holdEnv names the data file the helper process holds open.
const holdEnv = "SEPMBOT_STORE_TEST_HOLD"

// TestHelperHoldLock is not a test: run as a child process by
// TestOpenLockedAcrossProcesses, it opens the file, says "ready" and keeps it
// open until its stdin closes.
func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv(holdEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	db, err := Open(path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = db.Close()
	os.Exit(0)
}

func TestOpenLockedAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sepmbot.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$", "-test.count=1")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})

	// Wait for the child's readiness line: from then on it holds the lock.
	lines := bufio.NewScanner(stdout)
	ready := false
	for lines.Scan() {
		line := lines.Text()
		if line == "ready" {
			ready = true
			break
		}
		if strings.HasPrefix(line, "error:") {
			t.Fatalf("helper: %s", line)
		}
	}
	if !ready {
		t.Fatalf("helper exited before holding the file: %v", lines.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	db, err := openWithin(t, path)
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded while another process holds the file")
	}
	assertLocked(t, err)

	// Once the other process lets go, Open succeeds.
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	db, err = Open(path)
	if err != nil {
		t.Fatalf("Open after the holder exited: %v", err)
	}
	db.Close()
}

func BenchmarkUpdate(b *testing.B) {
	db, _ := openTemp(b)
	ctx := context.Background()
	val := []byte(`{"state":"running","step":3}`)
	start := time.Now()
	n := 0
	for b.Loop() {
		n++
		key := fmt.Sprintf("r%08d", n%64)
		if err := db.Update(ctx, func(tx *Tx) error { return tx.Put(BucketRotations, key, val) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "commits/s")
}

func TestForEachPrefixAndJournalBucket(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.Update(ctx, func(tx *Tx) error {
		for _, k := range []string{"R1\x00002", "R1\x00001", "R10\x00001", "R2\x00001"} {
			if err := tx.Put(BucketJournal, k, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := db.View(ctx, func(tx *Tx) error {
		return tx.ForEachPrefix(BucketJournal, "R1\x00", func(k string, _ []byte) error {
			got = append(got, k)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "R1\x00001" || got[1] != "R1\x00002" {
		t.Fatalf("prefix scan = %q, want R1's two records in order", got)
	}
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
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range n {
		if ok, err := db.Deliver(ctx, fmt.Sprintf("ev-%03d", i), now.Add(time.Second), 10*time.Minute); err != nil || ok {
			t.Fatalf("ev-%03d after reopen: fresh %v, err %v (the first delivery was not durable)", i, ok, err)
		}
	}
}
