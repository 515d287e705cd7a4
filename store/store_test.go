package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// reopen closes db and opens path again, as a restart would; the new DB is closed
// at cleanup.
func reopen(t *testing.T, db *DB, path string) *DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
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
