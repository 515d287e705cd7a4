package store

import (
	"context"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Group commit for small independent writes (Deliver): concurrent calls share one
// read-write transaction and so one fsync, and each returns only once that commit
// is durable.
//
// Unlike bbolt's Batch, no call waits for a timer (Batch waits up to MaxBatchDelay,
// 10 ms, for more calls to join): the first caller commits at once; callers that
// arrive while a commit is in progress queue up and go together in the next one,
// led by the first of them. An idle store commits a lone call without delay, and
// under load a commit takes every call that queued during the previous one, so a
// call waits at most for the commit in progress and its own.

// grouper queues calls for the next shared commit.
type grouper struct {
	mu      sync.Mutex
	pending []*groupCall
	leading bool // a caller is committing (or about to): the others queue
	commits int  // shared commits made (tests)
	taken   int  // calls in the commit in progress (tests)
}

// groupCall is one caller's part of a shared commit.
type groupCall struct {
	fn   func(tx *Tx) error
	err  error
	done chan struct{} // closed once fn's writes are durable, or err is set
	lead chan struct{} // closed when this caller must commit the next group
}

// group runs fn in a read-write transaction shared with concurrent calls and
// returns once it is durable. fn may run more than once (when another call of the
// same group fails, the group is rolled back and each fn runs again alone), so it
// must set its results afresh on every run. ctx is checked before joining; a
// commit in progress is not interrupted.
func (d *DB) group(ctx context.Context, fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: update: %w", err)
	}
	c := &groupCall{fn: fn, done: make(chan struct{}), lead: make(chan struct{})}
	g := &d.grp
	g.mu.Lock()
	g.pending = append(g.pending, c)
	if !g.leading {
		g.leading = true
		g.mu.Unlock()
		d.leadGroup()
	} else {
		g.mu.Unlock()
		select {
		case <-c.done:
		case <-c.lead:
			d.leadGroup()
		}
	}
	<-c.done
	if c.err != nil {
		return fmt.Errorf("store: update: %w", c.err)
	}
	return nil
}

// leadGroup commits every queued call (the leader's own among them), then hands
// the lead to the first call that queued meanwhile, or gives it up.
func (d *DB) leadGroup() {
	g := &d.grp
	g.mu.Lock()
	calls := g.pending
	g.pending, g.taken = nil, len(calls)
	g.mu.Unlock()

	d.commitGroup(calls)

	g.mu.Lock()
	g.commits++
	if len(g.pending) > 0 {
		close(g.pending[0].lead)
	} else {
		g.leading = false
	}
	g.mu.Unlock()
}

// commitGroup runs calls in one transaction; if any fails, that transaction is
// rolled back and each call runs in a transaction of its own, so one bad call
// fails only itself.
func (d *DB) commitGroup(calls []*groupCall) {
	failed := -1
	err := d.bolt.Update(func(btx *bolt.Tx) error {
		for i, c := range calls {
			if err := safeRun(c.fn, &Tx{tx: btx}); err != nil {
				failed = i
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil:
	case failed >= 0 && len(calls) > 1:
		for _, c := range calls {
			c.err = d.bolt.Update(func(btx *bolt.Tx) error { return safeRun(c.fn, &Tx{tx: btx}) })
		}
	default:
		for _, c := range calls {
			c.err = err
		}
	}
	for _, c := range calls {
		close(c.done)
	}
}

// safeRun runs fn, turning a panic into an error so one caller's bug cannot strand
// the others of its group.
func safeRun(fn func(tx *Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in a grouped update: %v", p)
		}
	}()
	return fn(tx)
}
