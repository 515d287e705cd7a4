package slack

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"
)

func TestGroupCacheNeverWidensAfterAFailedRefresh(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	members := []string{"UALICE", "UBOB"}
	var fail bool
	calls := 0
	g := &groupCache{groups: []string{"S1"}, now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler),
		list: func(context.Context, string) ([]string, error) {
			calls++
			if fail {
				return nil, errors.New("usergroups.users.list: 500")
			}
			return slices.Clone(members), nil
		}}
	ctx := context.Background()
	if got := g.of(ctx, "UBOB"); !slices.Equal(got, []string{"S1"}) {
		t.Fatalf("bob's groups %v", got)
	}
	// Within five minutes: no new read, even though Slack's list changed.
	members = []string{"UALICE"}
	now = now.Add(4 * time.Minute)
	if got := g.of(ctx, "UBOB"); len(got) != 1 || calls != 1 {
		t.Fatalf("within the TTL: groups %v after %d reads", got, calls)
	}
	// Expired and the refresh fails: bob (removed in Slack meanwhile) and alice
	// both lose the role until a read succeeds.
	fail = true
	now = now.Add(2 * time.Minute)
	if got := g.of(ctx, "UBOB"); len(got) != 0 {
		t.Fatalf("after a failed refresh bob still holds %v", got)
	}
	if got := g.of(ctx, "UALICE"); len(got) != 0 {
		t.Fatalf("after a failed refresh alice holds %v from a stale list", got)
	}
	// A success narrows to Slack's current list.
	fail = false
	now = now.Add(groupRetry)
	if got := g.of(ctx, "UALICE"); len(got) != 1 {
		t.Fatalf("alice after a good read: %v", got)
	}
	if got := g.of(ctx, "UBOB"); len(got) != 0 {
		t.Fatalf("bob after a good read: %v", got)
	}
}
