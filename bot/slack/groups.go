package slack

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// GroupTTL is how long a user group's member list is trusted before it is read
// again (usergroups.users.list).
const GroupTTL = 5 * time.Minute

// groupRetry is how soon a failed read is tried again.
const groupRetry = 30 * time.Second

// groupCache answers which of the configured user groups a user belongs to. A
// group's members are read at most every GroupTTL. It never widens a role on a
// failure: once a list is older than GroupTTL and cannot be read again, the group
// counts as empty (nobody holds a role through it) until a read succeeds, so a
// person removed from the group in Slack cannot keep approving while the API is
// down.
type groupCache struct {
	groups []string
	list   func(ctx context.Context, group string) ([]string, error)
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	entries map[string]*groupEntry
}

type groupEntry struct {
	members []string
	read    time.Time // when members were read; zero: never
	failed  time.Time // last failed read, after read
}

func (g *groupCache) entry(id string) *groupEntry {
	if g.entries == nil {
		g.entries = map[string]*groupEntry{}
	}
	e := g.entries[id]
	if e == nil {
		e = &groupEntry{}
		g.entries[id] = e
	}
	return e
}

// of returns the configured groups user belongs to.
func (g *groupCache) of(ctx context.Context, user string) []string {
	var out []string
	for _, id := range g.groups {
		if slices.Contains(g.members(ctx, id), user) {
			out = append(out, id)
		}
	}
	return out
}

// members returns the group's members as last read, or nil when that read is
// older than GroupTTL and a new one fails.
func (g *groupCache) members(ctx context.Context, id string) []string {
	g.mu.Lock()
	defer g.mu.Unlock() // one read at a time: a burst of events costs one call
	e := g.entry(id)
	now := g.now()
	if !e.read.IsZero() && now.Sub(e.read) < GroupTTL {
		return e.members
	}
	if !e.failed.IsZero() && now.Sub(e.failed) < groupRetry {
		return nil
	}
	m, err := g.list(ctx, id)
	if err != nil {
		e.failed = now
		e.members = nil // never widen: a stale list is no list
		g.log.Warn("slack: reading user group failed; nobody holds a role through it until it can be read", "group", id, "err", err)
		return nil
	}
	e.members, e.read, e.failed = slices.Clone(m), now, time.Time{}
	return e.members
}
