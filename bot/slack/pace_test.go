package slack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slack-go/slack"
)

// slidingLimit is the fake's rule: at most n calls in any window; otherwise a
// 429 with the time until the oldest call leaves the window.
type slidingLimit struct {
	mu      sync.Mutex
	n       int
	window  time.Duration
	calls   []time.Time
	limited int
}

func (s *slidingLimit) call() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.calls = slices.DeleteFunc(s.calls, func(t time.Time) bool { return !t.After(now.Add(-s.window)) })
	if len(s.calls) >= s.n {
		s.limited++
		return &slack.RateLimitedError{RetryAfter: s.calls[0].Add(s.window).Sub(now).Round(time.Second) + time.Second}
	}
	s.calls = append(s.calls, now)
	return nil
}

// TestEditsShareTheWorkspaceBudget: three cards editing as fast as they like
// for ten minutes never exceed the budget (no 429), each card's newest state
// always goes out, and the budget is used (the pacer does not starve).
func TestEditsShareTheWorkspaceBudget(t *testing.T) {
	for _, budget := range []int{50, 10} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := &slidingLimit{n: budget, window: time.Minute}
				p := newPacer(budget, time.Now)
				var mu sync.Mutex
				sent := map[string]int{} // card -> newest state sent
				var wg sync.WaitGroup
				ctx := context.Background()
				for card := range 3 {
					key := fmt.Sprintf("C1/%d", card)
					wg.Go(func() {
						var inner sync.WaitGroup
						for state := 1; state <= 600; state++ { // one new state a second
							inner.Go(func() {
								_ = p.edit(ctx, key, func() error {
									if err := lim.call(); err != nil {
										return err
									}
									mu.Lock()
									sent[key] = max(sent[key], state)
									mu.Unlock()
									return nil
								})
							})
							time.Sleep(time.Second)
						}
						inner.Wait()
					})
				}
				wg.Wait()
				if lim.limited != 0 {
					t.Fatalf("%d edits refused with 429", lim.limited)
				}
				for card := range 3 {
					if got := sent[fmt.Sprintf("C1/%d", card)]; got != 600 {
						t.Errorf("card %d: newest state sent %d, want 600", card, got)
					}
				}
			})
		})
	}
}

// TestA429IsWaitedOutAndOnlyTheNewestStateSent: Slack refuses an edit (its
// budget used by someone else); the pacer waits Retry-After and sends the newest
// state only, never an error to the caller.
func TestA429IsWaitedOutAndOnlyTheNewestStateSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(50, time.Now)
		var mu sync.Mutex
		var got []int
		refuse := true
		ctx := context.Background()
		send := func(state int) func() error {
			return func() error {
				mu.Lock()
				defer mu.Unlock()
				if refuse {
					refuse = false
					return &slack.RateLimitedError{RetryAfter: 30 * time.Second}
				}
				got = append(got, state)
				return nil
			}
		}
		errs := make(chan error, 3)
		go func() { errs <- p.edit(ctx, "C1/1", send(1)) }()
		time.Sleep(10 * time.Second) // state 1 is waiting out its 429
		go func() { errs <- p.edit(ctx, "C1/1", send(2)) }()
		time.Sleep(time.Second)
		go func() { errs <- p.edit(ctx, "C1/1", send(3)) }()
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(got, []int{3}) {
			t.Fatalf("sent %v, want only the newest [3]", got)
		}
	})
}

func TestPostsOneASecondPerChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(50, time.Now)
		lims := map[string]*slidingLimit{"C1": {n: 1, window: time.Second}, "C2": {n: 1, window: time.Second}}
		var wg sync.WaitGroup
		for i := range 20 {
			ch := []string{"C1", "C2"}[i%2]
			wg.Go(func() {
				if err := p.post(context.Background(), ch, lims[ch].call); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for ch, l := range lims {
			if l.limited != 0 {
				t.Errorf("%s: %d posts refused", ch, l.limited)
			}
		}
		// Milestones are never dropped: a post refused by Slack anyway is sent later.
		l := &slidingLimit{n: 1, window: time.Second}
		_ = l.call()
		if err := p.post(context.Background(), "C3", l.call); err != nil {
			t.Fatal(err)
		}
		if l.limited != 1 || len(l.calls) != 1 {
			t.Fatalf("refused %d, sent %d: want the refused post sent after its wait", l.limited, len(l.calls))
		}
	})
}

func TestPacerStopsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1, time.Now)
		_ = p.edit(context.Background(), "C1/1", func() error { return nil })
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := p.edit(ctx, "C1/2", func() error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	})
}

// TestPostDelayedInTransitKeepsItsSecond: Slack counts a post when it arrives. A
// post that takes 400 ms to get there must not share a second with the next one,
// which goes fast (the slot is a full interval after the slow call ended).
func TestPostDelayedInTransitKeepsItsSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(50, time.Now)
		l := &slidingLimit{n: 1, window: time.Second}
		for i := range 6 {
			delay := []time.Duration{400 * time.Millisecond, 0}[i%2]
			if err := p.post(context.Background(), "C1", func() error {
				time.Sleep(delay) // in transit: Slack sees the call only now
				return l.call()
			}); err != nil {
				t.Fatal(err)
			}
		}
		if l.limited != 0 {
			t.Fatalf("%d posts refused: the next slot did not wait for the slow post to arrive", l.limited)
		}
	})
}
