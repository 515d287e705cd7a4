package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// RateLimitError is returned by a platform call the platform refused for now (HTTP
// 429): the next attempt must wait After.
type RateLimitError struct{ After time.Duration }

// Error implements error.
func (e RateLimitError) Error() string {
	return fmt.Sprintf("rate limited: retry after %s", e.After)
}

// RetryAfter is how long to wait before the next attempt.
func (e RateLimitError) RetryAfter() time.Duration { return e.After }

// retryAfter is what the pacers look for in an error.
type retryAfter interface{ RetryAfter() time.Duration }

// callTimeout bounds one platform call.
const callTimeout = 30 * time.Second

// closeRateLimitAttempts is how many rate-limited attempts Close makes per item
// before it gives up on it.
const closeRateLimitAttempts = 3

// Coalescer paces the edits of messages (keys, e.g. run cards) on one platform:
//
//   - a key has at most one pending edit, the newest state submitted: a newer state
//     replaces it, so every edit shows the latest state at its time;
//   - a key is edited at most once per interval;
//   - when the platform's budget is shared (budget edits per window, for every key
//     together), consecutive edits are at least window/budget apart and the keys
//     with pending edits take turns, the one ready longest first: with k busy cards
//     each is at most max(interval, k·window/budget) behind;
//   - an error with a RetryAfter() method (a 429) holds every edit for that long and
//     keeps the failed state pending unless a newer one replaced it; other errors
//     are logged and the next state proceeds.
//
// One worker goroutine serves the coalescer while edits are pending; none when idle.
type Coalescer struct {
	interval time.Duration
	gap      time.Duration // least time between any two edits (window/budget)
	edit     func(ctx context.Context, key string, m Message) error
	log      *slog.Logger

	mu       sync.Mutex
	keys     map[string]*coalesceKey
	running  bool
	last     time.Time // start of the latest edit
	retryAt  time.Time // no edit before this (a rate limit)
	wake     chan struct{}
	closing  bool
	closed   chan struct{}
	wg       sync.WaitGroup
	attempts map[string]int // rate-limited attempts per key while closing
}

// coalesceKey is the state of one key.
type coalesceKey struct {
	pending *Message
	next    time.Time // earliest next edit of this key (interval after its last)
}

// NewCoalescer returns a coalescer editing each key at most once per interval and,
// when budget > 0, all keys together at most budget times per window.
func NewCoalescer(interval time.Duration, budget int, window time.Duration, edit func(ctx context.Context, key string, m Message) error, log *slog.Logger) *Coalescer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var gap time.Duration
	if budget > 0 && window > 0 {
		gap = window / time.Duration(budget)
	}
	return &Coalescer{
		interval: max(interval, 0),
		gap:      gap,
		edit:     edit,
		log:      log,
		keys:     map[string]*coalesceKey{},
		wake:     make(chan struct{}, 1),
		closed:   make(chan struct{}),
		attempts: map[string]int{},
	}
}

// Submit makes m the newest state of key. It never blocks on an edit. After Close it
// does nothing.
func (c *Coalescer) Submit(key string, m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		c.log.Debug("card update after close dropped", "key", key)
		return
	}
	k := c.keys[key]
	if k == nil {
		k = &coalesceKey{}
		c.keys[key] = k
	}
	k.pending = &m
	if !c.running {
		c.running = true
		c.wg.Add(1)
		go c.run()
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close stops accepting updates and flushes: each key with a pending state gets one
// last edit, made at once (intervals and the budget are not waited for; a rate limit
// is, up to a few attempts). Close returns when the worker has ended.
func (c *Coalescer) Close() {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		close(c.closed)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// pick returns the pending key to edit next and when it may start; ok is false when
// nothing is pending. c.mu is held.
func (c *Coalescer) pick() (key string, at time.Time, ok bool) {
	for name, k := range c.keys {
		if k.pending == nil {
			continue
		}
		ready := k.next
		if c.closing {
			ready = time.Time{}
		}
		if !ok || ready.Before(at) || (ready.Equal(at) && name < key) {
			key, at, ok = name, ready, true
		}
	}
	if !ok {
		return "", time.Time{}, false
	}
	if !c.closing {
		if g := c.last.Add(c.gap); c.gap > 0 && g.After(at) {
			at = g
		}
	}
	if c.retryAt.After(at) {
		at = c.retryAt
	}
	return key, at, true
}

// run serves the keys until nothing is pending.
func (c *Coalescer) run() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		key, at, ok := c.pick()
		if !ok {
			c.running = false
			c.prune()
			c.mu.Unlock()
			return
		}
		now := time.Now()
		if wait := at.Sub(now); wait > 0 {
			closing := c.closing
			c.mu.Unlock()
			t := time.NewTimer(wait)
			if closing {
				<-t.C // only a rate limit is waited for while closing
			} else {
				select {
				case <-t.C:
				case <-c.wake:
					t.Stop()
				case <-c.closed:
					t.Stop()
				}
			}
			continue
		}
		k := c.keys[key]
		m := *k.pending
		k.pending = nil
		k.next = now.Add(c.interval)
		c.last = now
		c.mu.Unlock()

		err := c.call(key, m)

		c.mu.Lock()
		var ra retryAfter
		switch {
		case err == nil:
		case errors.As(err, &ra):
			d := max(ra.RetryAfter(), 0)
			c.retryAt = time.Now().Add(d)
			if k.pending == nil {
				k.pending = &m // nothing newer: the failed state is still the newest
			}
			k.next = time.Time{}
			if c.closing {
				c.attempts[key]++
				if c.attempts[key] >= closeRateLimitAttempts {
					c.log.Warn("card edit still rate limited at close; giving up", "key", key, "retry_after", d)
					k.pending = nil
				}
			}
			c.log.Debug("card edit rate limited", "key", key, "retry_after", d)
		default:
			c.log.Warn("card edit failed", "key", key, "err", err)
		}
		c.mu.Unlock()
	}
}

// prune forgets idle keys whose interval is over. c.mu is held.
func (c *Coalescer) prune() {
	now := time.Now()
	for name, k := range c.keys {
		if k.pending == nil && !now.Before(k.next) {
			delete(c.keys, name)
		}
	}
}

// call makes one edit, bounded by callTimeout.
func (c *Coalescer) call(key string, m Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return c.edit(ctx, key, m)
}

// Poster sends each channel's posts (thread replies, milestones, approval requests)
// in order, never dropping one: at most one per interval per channel, and a post
// refused with a RetryAfter() error waits and is tried again. One worker goroutine
// per channel while posts are queued.
type Poster struct {
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	chans   map[string]*postQueue
	closing bool
	wg      sync.WaitGroup
}

type postQueue struct {
	items   []postItem
	running bool
	next    time.Time
}

type postItem struct {
	fn   func(ctx context.Context) error
	done chan error // nil: nobody waits
}

// NewPoster returns a poster sending at most one post per interval per channel.
func NewPoster(interval time.Duration, log *slog.Logger) *Poster {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Poster{interval: max(interval, 0), log: log, chans: map[string]*postQueue{}}
}

// Go queues fn as the next post in channel; it returns at once.
func (p *Poster) Go(channel string, fn func(ctx context.Context) error) {
	p.enqueue(channel, postItem{fn: fn})
}

// Do queues fn as the next post in channel and waits until it has been sent (or ctx
// is done), returning its error.
func (p *Poster) Do(ctx context.Context, channel string, fn func(ctx context.Context) error) error {
	done := make(chan error, 1)
	if !p.enqueue(channel, postItem{fn: fn, done: done}) {
		return errors.New("the notifier is closed")
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Poster) enqueue(channel string, it postItem) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		p.log.Warn("post after close dropped", "channel", channel)
		return false
	}
	q := p.chans[channel]
	if q == nil {
		q = &postQueue{}
		p.chans[channel] = q
	}
	q.items = append(q.items, it)
	if !q.running {
		q.running = true
		p.wg.Add(1)
		go p.run(channel, q)
	}
	return true
}

// Close sends every queued post (paced as always) and returns when all are sent.
func (p *Poster) Close() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Poster) run(channel string, q *postQueue) {
	defer p.wg.Done()
	attempts := 0
	for {
		p.mu.Lock()
		if len(q.items) == 0 {
			q.running = false
			if !time.Now().Before(q.next) {
				delete(p.chans, channel)
			}
			p.mu.Unlock()
			return
		}
		if wait := time.Until(q.next); wait > 0 {
			p.mu.Unlock()
			time.Sleep(wait) // a queued post is never dropped, so nothing interrupts the pause
			continue
		}
		it := q.items[0]
		now := time.Now()
		q.next = now.Add(p.interval)
		closing := p.closing
		p.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err := it.fn(ctx)
		cancel()

		var ra retryAfter
		if errors.As(err, &ra) && (!closing || attempts < closeRateLimitAttempts) {
			attempts++
			p.mu.Lock()
			q.next = time.Now().Add(max(ra.RetryAfter(), p.interval))
			p.mu.Unlock()
			p.log.Debug("post rate limited", "channel", channel, "retry_after", ra.RetryAfter())
			continue
		}
		attempts = 0
		p.mu.Lock()
		q.items = q.items[1:]
		p.mu.Unlock()
		if err != nil {
			p.log.Warn("posting", "channel", channel, "err", err)
		}
		if it.done != nil {
			it.done <- err
		}
	}
}
