package slack

import (
	"context"
	"testing"
	"time"

	"sepmbot/store"
)

// TestInboxHandledMarksAndPruning: a record marked answered (by handled, or in the
// commit of a later record) is not handed out again; a repeat within DedupeTTL is
// not fresh; once expired, records and their marks are all dropped.
func TestInboxHandledMarksAndPruning(t *testing.T) {
	db := openStore(t)
	in := storeInbox{db: db}
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0)
	rec := func(key string, at time.Time) record { return record{Key: key, Received: at} }
	fresh, err := in.record(ctx, []record{rec("a", t0), rec("b", t0), rec("a", t0)}, nil)
	if err != nil || !fresh[0] || !fresh[1] || fresh[2] {
		t.Fatalf("first record: %v %v", fresh, err)
	}
	if err := in.handled(ctx, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	fresh, err = in.record(ctx, []record{rec("c", t0.Add(time.Second)), rec("b", t0.Add(time.Second))}, []string{"c"})
	if err != nil || !fresh[0] || fresh[1] {
		t.Fatalf("second record: %v %v", fresh, err)
	}
	got, err := in.pending(ctx, t0.Add(time.Minute))
	if err != nil || len(got) != 1 || got[0].Key != "b" {
		t.Fatalf("pending %+v %v, want only b (a and c answered)", got, err)
	}
	got, err = in.pending(ctx, t0.Add(DedupeTTL+2*time.Second))
	if err != nil || len(got) != 0 {
		t.Fatalf("after the TTL: pending %+v %v", got, err)
	}
	n := 0
	_ = db.View(ctx, func(tx *store.Tx) error {
		return tx.ForEach(store.BucketInbox, func(string, []byte) error { n++; return nil })
	})
	if n != 0 {
		t.Fatalf("%d inbox keys left after the TTL, want 0 (records and marks pruned)", n)
	}
	// Recorded again after expiry: fresh, and not answered.
	fresh, err = in.record(ctx, []record{rec("a", t0.Add(DedupeTTL+3*time.Second))}, nil)
	if err != nil || !fresh[0] {
		t.Fatalf("after expiry: %v %v", fresh, err)
	}
	if got, _ := in.pending(ctx, t0.Add(DedupeTTL+4*time.Second)); len(got) != 1 {
		t.Fatalf("re-recorded a: pending %+v, want it", got)
	}
}
