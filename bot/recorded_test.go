package bot

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/rotation"
)

// orderLog is one ordered log of what the router did: deliveries recorded, acks,
// answers and engine calls.
type orderLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *orderLog) add(op string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, op)
}

func (l *orderLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.ops, " | ")
}

type loggedDeliveries struct {
	log  *orderLog
	seen map[string]bool
	err  error
}

func (d *loggedDeliveries) Deliver(_ context.Context, id string, _ time.Time, _ time.Duration) (bool, error) {
	d.log.add("deliver " + id)
	if d.err != nil {
		return false, d.err
	}
	if d.seen[id] {
		return false, nil
	}
	d.seen[id] = true
	return true, nil
}

type loggedReply struct{ log *orderLog }

func (r loggedReply) Ack(_ context.Context, m Message) error {
	if m.Placeholder {
		r.log.add("ack placeholder")
	} else {
		r.log.add("ack " + headLine(m.Text))
	}
	return nil
}

func (r loggedReply) Answer(_ context.Context, m Message) error {
	r.log.add("answer " + headLine(m.Text))
	return nil
}

func headLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

type loggedEngine struct {
	fakeEngine
	log *orderLog
}

func (e *loggedEngine) Vote(ctx context.Context, b rotation.Ballot) (approvals.Outcome, error) {
	e.log.add("engine vote")
	return e.fakeEngine.Vote(ctx, b)
}

func (e *loggedEngine) Pause(ctx context.Context, user, id string) error {
	e.log.add("engine pause " + id)
	return nil
}

func recordedRouter(t *testing.T) (*Router, *orderLog, *loggedDeliveries) {
	t.Helper()
	r, _, _ := newRouter(t)
	log := &orderLog{}
	d := &loggedDeliveries{log: log, seen: map[string]bool{}}
	r.Deliveries, r.Engine = d, &loggedEngine{log: log}
	return r, log, d
}

func serveEvents(r *Router, evs ...Event) {
	ch := make(chan Event, len(evs))
	for _, ev := range evs {
		ch <- ev
	}
	close(ch)
	r.Serve(context.Background(), &chanPlatform{events: ch})
}

// TestRouterRecordedEventOneCommit: for an event the platform recorded (Slack's
// inbox record, committed before its ack), an answer that changes nothing goes
// without the router's own record, and work for the engine is recorded after the
// placeholder ack and before the engine runs.
func TestRouterRecordedEventOneCommit(t *testing.T) {
	r, log, _ := recordedRouter(t)
	help := cmd("vera", "/sepm help", "h1")
	help.Recorded, help.Reply = true, loggedReply{log}
	serveEvents(r, help)
	if got, want := log.String(), "ack sepmbot rotates SEPM server certificates from chat (the leading /sepm may be left out)."; got != want {
		t.Errorf("recorded help: %s\nwant %s (no second record)", got, want)
	}

	r, log, _ = recordedRouter(t)
	pause := cmd("alice", "/sepm pause R1", "p1")
	pause.Recorded, pause.Reply = true, loggedReply{log}
	serveEvents(r, pause)
	if got, want := log.String(), "ack placeholder | deliver console/p1 | engine pause R1 | answer R1 paused"; got != want {
		t.Errorf("recorded pause: %s\nwant %s", got, want)
	}

	// Not recorded by the platform: the router's record comes first, as before.
	r, log, _ = recordedRouter(t)
	pause.Recorded, pause.Reply = false, loggedReply{log}
	serveEvents(r, pause)
	if got, want := log.String(), "deliver console/p1 | ack placeholder | engine pause R1 | answer R1 paused"; got != want {
		t.Errorf("unrecorded pause: %s\nwant %s", got, want)
	}
	r, log, _ = recordedRouter(t)
	help.Recorded, help.Reply = false, loggedReply{log}
	serveEvents(r, help)
	if got := log.String(); !strings.HasPrefix(got, "deliver console/h1 | ack sepmbot") {
		t.Errorf("unrecorded help: %s; want its delivery recorded before the answer", got)
	}
}

// TestRouterRecordedReplayActsOnce: a recorded event handed out again (after a
// restart) whose delivery the router already recorded does not reach the engine;
// one the router cannot record does not either, and the user is told.
func TestRouterRecordedReplayActsOnce(t *testing.T) {
	r, log, _ := recordedRouter(t)
	vote := Event{Kind: EventButton, Platform: "console", Channel: "sepm", User: "bob", ActionID: "approve", Value: "A1", MessageRef: "m1", DeliveryID: "v1", Recorded: true, Reply: loggedReply{log}}
	serveEvents(r, vote, vote, vote)
	if n := strings.Count(log.String(), "engine vote"); n != 1 {
		t.Errorf("the same recorded vote three times reached the engine %d times: %s", n, log)
	}

	r, log, d := recordedRouter(t)
	d.err = errors.New("disk full")
	vote.Reply = loggedReply{log}
	serveEvents(r, vote)
	if got := log.String(); strings.Contains(got, "engine") || !strings.Contains(got, "answer not done: sepmbot could not record") {
		t.Errorf("recording failed: %s; want no engine call and the user told", got)
	}
}
