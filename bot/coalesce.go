package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// RateLimitError is returned by a platform edit the platform refused for now (HTTP 429):
// the next attempt must wait After.
type RateLimitError struct{ After time.Duration }

// Error implements error.
func (e RateLimitError) Error() string {
	return fmt.Sprintf("rate limited: retry after %s", e.After)
}

// RetryAfter is how long to wait before the next attempt.
func (e RateLimitError) RetryAfter() time.Duration { return e.After }

// retryAfter is what the coalescer looks for in an edit error.
type retryAfter interface{ RetryAfter() time.Duration }

// editTimeout bounds one edit call.
const editTimeout = 30 * time.Second

// closeRateLimitAttempts is how many rate-limited attempts Close makes per key before
// it gives up on that key's last state.
const closeRateLimitAttempts = 3

// Coalescer limits the edits of each message (key): at most one edit per interval per
// key, and the last edit always shows the latest state submitted.
//
// Updates marked important (the first and the last state of every step) are never
// dropped while the coalescer runs: each is shown, in order, in its own edit slot. An
// unimportant update replaces a pending unimportant one; an important update replaces
// pending unimportant ones before it (they are older states). An edit failing with an
// error that has a RetryAfter() method delays the next attempt by that much and retries
// the latest pending state; other errors are logged and the next update proceeds.
//
// A key has one goroutine while it has pending edits and none when idle.
type Coalescer struct {
	interval time.Duration
	edit     func(ctx context.Context, key string, m Message) error
	log      *slog.Logger

	mu      sync.Mutex
	keys    map[string]*coalesceKey
	closing bool
	closed  chan struct{} // closed by Close: workers stop waiting for their interval
	wg      sync.WaitGroup
}

// coalesceKey is the state of one key.
type coalesceKey struct {
	queue   []pendingEdit // zero or more important entries, then at most one unimportant
	running bool          // a worker goroutine serves this key
	next    time.Time     // earliest start of the next edit (interval after the last start)
	retryAt time.Time     // earliest next attempt after a rate limit
	limited int           // rate-limited attempts since Close
}

type pendingEdit struct {
	m         Message
	important bool
}

// NewCoalescer returns a coalescer that calls edit at most once per interval per key.
func NewCoalescer(interval time.Duration, edit func(ctx context.Context, key string, m Message) error, log *slog.Logger) *Coalescer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Coalescer{
		interval: max(interval, 0),
		edit:     edit,
		log:      log,
		keys:     map[string]*coalesceKey{},
		closed:   make(chan struct{}),
	}
}

// Submit queues m as the new state of key. It never blocks on the edit. After Close
// it does nothing.
func (c *Coalescer) Submit(key string, m Message, important bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		c.log.Debug("card update after close dropped", "key", key)
		return
	}
	now := time.Now()
	c.prune(now)
	k := c.keys[key]
	if k == nil {
		k = &coalesceKey{}
		c.keys[key] = k
	}
	// A trailing unimportant entry is always superseded by a newer state.
	if n := len(k.queue); n > 0 && !k.queue[n-1].important {
		k.queue = k.queue[:n-1]
	}
	k.queue = append(k.queue, pendingEdit{m: m, important: important})
	if !k.running {
		k.running = true
		c.wg.Add(1)
		go c.run(key, k)
	}
}

// prune forgets idle keys whose interval is over (their state no longer matters).
// c.mu is held.
func (c *Coalescer) prune(now time.Time) {
	for key, k := range c.keys {
		if !k.running && len(k.queue) == 0 && !now.Before(k.next) && !now.Before(k.retryAt) {
			delete(c.keys, key)
		}
	}
}

// Close stops accepting updates and flushes: each key with pending updates gets one
// last edit showing its latest state, made at once (the interval is not waited for;
// a rate limit is, up to a few attempts). Close returns when every worker has ended.
func (c *Coalescer) Close() {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		close(c.closed)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// run serves one key until its queue is empty.
func (c *Coalescer) run(key string, k *coalesceKey) {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		if c.closing && len(k.queue) > 1 {
			// Flush: only the latest state is shown.
			k.queue = k.queue[len(k.queue)-1:]
		}
		if len(k.queue) == 0 {
			k.running = false
			c.mu.Unlock()
			return
		}
		now := time.Now()
		at := k.retryAt
		if !c.closing && k.next.After(at) {
			at = k.next
		}
		if wait := at.Sub(now); wait > 0 {
			closing := c.closing
			c.mu.Unlock()
			t := time.NewTimer(wait)
			if closing {
				<-t.C // only a rate limit is waited for while closing
			} else {
				select {
				case <-t.C:
				case <-c.closed:
					t.Stop()
				}
			}
			continue
		}
		e := k.queue[0]
		k.queue = k.queue[1:]
		k.next = now.Add(c.interval)
		c.mu.Unlock()

		err := c.call(key, e.m)

		c.mu.Lock()
		var ra retryAfter
		switch {
		case err == nil:
		case errors.As(err, &ra):
			d := max(ra.RetryAfter(), 0)
			k.retryAt = time.Now().Add(d)
			if c.closing {
				k.limited++
			}
			if c.closing && k.limited >= closeRateLimitAttempts {
				c.log.Warn("card edit still rate limited at close; giving up", "key", key, "retry_after", d)
				k.queue = nil
				break
			}
			// Retry the latest pending state: the failed one unless a newer state
			// supersedes it (an important one is kept in its place).
			if e.important || len(k.queue) == 0 {
				k.queue = append([]pendingEdit{e}, k.queue...)
			}
			c.log.Info("card edit rate limited", "key", key, "retry_after", d)
		default:
			c.log.Warn("card edit failed", "key", key, "err", err)
		}
		c.mu.Unlock()
	}
}

// call makes one edit, bounded by editTimeout.
func (c *Coalescer) call(key string, m Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), editTimeout)
	defer cancel()
	return c.edit(ctx, key, m)
}
