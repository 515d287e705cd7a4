package slack

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"sepmbot/internal/ctxsleep"
)

// Slack's limits as the pacer keeps them.
const (
	// DefaultEditBudget is chat.update's Tier 3 budget: about 50 a minute for the
	// whole workspace, every card together.
	DefaultEditBudget = 50
	// EditWindow is the window of the edit budget.
	EditWindow = time.Minute
	// PostInterval is chat.postMessage's limit: one a second per channel.
	PostInterval = time.Second
	// paceMargin spaces calls a little wider than the limit, so network jitter never
	// puts two calls into one slot at Slack's end.
	paceMargin = 1.05
)

// pacer spaces the adapter's Web API calls so Slack never has to refuse one:
// posts one a second per channel, edits evenly over the workspace's budget. After
// a 429 it waits Retry-After plus jitter before that kind of call again. Edits of
// one message collapse: a call that waits is overtaken by a newer edit of the same
// message, and only the newest state is sent.
type pacer struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	editEvery time.Duration

	mu       sync.Mutex
	nextEdit time.Time
	nextPost map[string]time.Time // channel -> earliest next post
	edits    map[string]*editSlot // channel/ts -> newest edit
}

// editSlot is the newest wanted state of one message.
type editSlot struct {
	gen  uint64 // generation of the newest Edit call
	sent uint64 // generation last sent
}

func newPacer(budget int, now func() time.Time) *pacer {
	if budget <= 0 {
		budget = DefaultEditBudget
	}
	return &pacer{
		now:       now,
		sleep:     ctxsleep.Sleep,
		editEvery: time.Duration(float64(EditWindow) / float64(budget) * paceMargin),
		nextPost:  map[string]time.Time{},
		edits:     map[string]*editSlot{},
	}
}

func jitter() time.Duration { return time.Duration(rand.Int64N(int64(500 * time.Millisecond))) }

// retryAfter reports a 429's wait.
func retryAfter(err error) (time.Duration, bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && sc.Code == 429 {
		return time.Second, true
	}
	return 0, false
}

// post runs send in channel's next post slot, again after each 429.
func (p *pacer) post(ctx context.Context, channel string, send func() error) error {
	for {
		p.mu.Lock()
		now := p.now()
		slot := later(now, p.nextPost[channel])
		p.nextPost[channel] = slot.Add(time.Duration(float64(PostInterval) * paceMargin))
		p.mu.Unlock()
		if err := p.sleep(ctx, slot.Sub(now)); err != nil {
			return err
		}
		err := send()
		wait, limited := retryAfter(err)
		p.mu.Lock()
		// Slack counts a post when it arrives, which can be any time before send
		// returns: the next slot is also a full interval after this call ended,
		// so a post delayed in transit never lands in the same second as the next.
		p.nextPost[channel] = later(p.nextPost[channel], p.now().Add(time.Duration(float64(PostInterval)*paceMargin)))
		if limited {
			p.nextPost[channel] = later(p.nextPost[channel], p.now().Add(wait+jitter()))
		}
		p.mu.Unlock()
		if !limited {
			return err
		}
	}
}

// edit runs send for message key in the workspace's next edit slot. send gets
// called only while this call's state is the newest: when a newer edit of the same
// message arrives while this one waits, this one returns nil unsent (the newer one
// carries the state). On 429 it waits Retry-After and sends again, unless a newer
// state has taken over meanwhile.
func (p *pacer) edit(ctx context.Context, key string, send func() error) error {
	p.mu.Lock()
	slot := p.edits[key]
	if slot == nil {
		slot = &editSlot{}
		p.edits[key] = slot
	}
	slot.gen++
	gen := slot.gen
	p.mu.Unlock()
	for {
		p.mu.Lock()
		if slot.gen != gen {
			p.mu.Unlock()
			return nil // overtaken: the newest state goes out in its own call
		}
		now := p.now()
		if now.Before(p.nextEdit) {
			wait := p.nextEdit.Sub(now)
			p.mu.Unlock()
			if err := p.sleep(ctx, wait); err != nil {
				return err
			}
			continue // someone else may have taken the slot, or overtaken us
		}
		p.nextEdit = now.Add(p.editEvery)
		p.mu.Unlock()
		err := send()
		wait, limited := retryAfter(err)
		if !limited {
			p.mu.Lock()
			if err == nil {
				slot.sent = gen
			}
			if slot.gen == gen {
				delete(p.edits, key)
			}
			p.mu.Unlock()
			return err
		}
		p.mu.Lock()
		p.nextEdit = later(p.nextEdit, p.now().Add(wait+jitter()))
		p.mu.Unlock()
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
