package slack

import (
	"context"
	"sync"
)

// The intake is the path of every inbound envelope, in both modes:
//
//	transport reader -> queue (never blocks the reader)
//	  -> recorder: one durable commit for all envelopes waiting, then the ack
//	     (a duplicate is acked and dropped; a slash command's ack waits for the
//	     router's first answer, at most AckWait)
//	  -> dispatcher: in arrival order, role groups resolved, onto Events.
//
// An envelope is acked only after its record is durable, so a crash after the
// ack loses nothing: Start hands out the records not yet answered.

// delivery is one envelope on its way through the intake.
type delivery struct {
	rec record
	// ack answers the transport: Socket Mode's envelope ack, HTTP mode's response.
	// Nil for records replayed after a restart.
	ack *acker
	// silent deliveries (reconciled reactions) answer nobody.
	silent bool
}

// queue is an unbounded FIFO with a wake-up signal.
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	wake  chan struct{}
}

func newQueue[T any]() *queue[T] { return &queue[T]{wake: make(chan struct{}, 1)} }

func (q *queue[T]) push(v ...T) {
	q.mu.Lock()
	q.items = append(q.items, v...)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take waits for items and returns up to max of them (all when max <= 0).
func (q *queue[T]) take(ctx context.Context, max int) ([]T, bool) {
	for {
		q.mu.Lock()
		if n := len(q.items); n > 0 {
			if max > 0 && n > max {
				n = max
			}
			out := q.items[:n:n]
			q.items = q.items[n:]
			q.mu.Unlock()
			return out, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// peek waits until the queue has items (without taking them); false when ctx is done.
func (q *queue[T]) peek(ctx context.Context) (int, bool) {
	for {
		q.mu.Lock()
		n := len(q.items)
		q.mu.Unlock()
		if n > 0 {
			return n, true
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return 0, false
		}
	}
}

// maxBatch bounds the envelopes one commit records.
const maxBatch = 512

// runRecorder records envelopes in batches and acks them.
func (a *Adapter) runRecorder(ctx context.Context) {
	for {
		batch, ok := a.incoming.take(ctx, maxBatch)
		if !ok {
			return
		}
		recs := make([]record, len(batch))
		for i, d := range batch {
			recs[i] = d.rec
		}
		// Answers marked since the last commit ride along in this one.
		done, _ := a.handledQ.take(closedCtx, 0)
		fresh, err := a.inbox.record(ctx, recs, done)
		if err != nil {
			// Not acked: Slack delivers again, and the bot may be able to record it then.
			a.log.Error("slack: recording envelopes failed; not acknowledging them", "n", len(batch), "err", err)
			a.handledQ.push(done...) // marked by the next commit
			for _, d := range batch {
				d.ack.send(errNotRecorded)
			}
			continue
		}
		var out []*delivery
		for i, d := range batch {
			if !fresh[i] {
				a.log.Info("slack: dropping a repeated delivery", "key", d.rec.Key)
				d.ack.send(nil)
				continue
			}
			if !d.rec.Event.Command {
				d.ack.send(nil) // events and clicks: the answer, if any, follows by the Web API
			}
			out = append(out, d)
		}
		a.ready.push(out...)
	}
}

// errNotRecorded tells a transport not to acknowledge (HTTP: answer 503).
var errNotRecorded = errorPayload("not recorded")

type errorPayload string

// runDispatcher hands recorded envelopes to the router, in order.
func (a *Adapter) runDispatcher(ctx context.Context) {
	defer close(a.events)
	for {
		batch, ok := a.ready.take(ctx, 0)
		if !ok {
			return
		}
		for _, d := range batch {
			ev, ok := a.toEvent(ctx, d)
			if !ok {
				continue
			}
			select {
			case a.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}
}
