package bot

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/rotation"
	"sepmbot/store"
)

// BenchmarkRouterEvents: router throughput with 8 concurrent users, each event a
// `/sepm status R1` or an Approve click with its own delivery id, through
// Router.Serve with an in-memory platform and the real bbolt store. The events are
// not Recorded by the platform, so the router records each delivery id durably
// (store.Deliver, group commit) before the event's answer. Each user waits for the
// answer to its event before sending the next (a person in chat does; and the
// router handles one user's events in order anyway), so at most 8 events are in
// flight and one commit carries at most 8 delivery ids. The engine is a stub: the
// status answer is a fixed view rendered as the card, the vote a fixed outcome.
//
//	go test -run '^$' -bench RouterEvents -benchtime 20000x ./bot/
//
// Reports events/s, the time from an event's arrival to its answer (p50, p99), and
// this process's CPU per event.
func BenchmarkRouterEvents(b *testing.B) {
	const users = 8
	db, err := store.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var approvers []string
	for u := range users {
		approvers = append(approvers, fmt.Sprintf("console:U%d", u))
	}
	roles, err := ParseRoles(nil, approvers, []string{"*"})
	if err != nil {
		b.Fatal(err)
	}
	eng := &benchEngine{view: view(rotation.StatusRunning, 2)}
	r := &Router{Engine: eng, Deliveries: db, Roles: roles, Sites: []string{"site-a"}}
	p := &benchPlatform{events: make(chan Event, users)}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { r.Serve(ctx, p); close(served) }()

	lat := make([][]time.Duration, users)
	var wg sync.WaitGroup
	cpu0 := processCPU()
	b.ResetTimer()
	start := time.Now()
	for u := range users {
		n := b.N / users
		if u < b.N%users {
			n++
		}
		wg.Go(func() {
			done := make(chan Message, 1)
			for i := range n {
				ev := Event{Platform: "console", User: fmt.Sprintf("U%d", u), Channel: "C1",
					DeliveryID: fmt.Sprintf("u%d-%d", u, i), Reply: benchReply{done}}
				if i%2 == 0 {
					ev.Kind, ev.Text = EventCommand, "/sepm status R1"
				} else {
					ev.Kind, ev.ActionID, ev.Value, ev.MessageRef = EventButton, "approve", "A1", "m1"
				}
				t0 := time.Now()
				p.events <- ev
				m := <-done
				lat[u] = append(lat[u], time.Since(t0))
				if i < 2 && m.Title == "" && m.Text == "" {
					b.Errorf("user %d event %d: empty answer", u, i)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := processCPU() - cpu0
	close(p.events)
	<-served
	cancel()

	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	q := func(f float64) float64 { return float64(all[int(f*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "events/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "cpu-µs/event")
	b.ReportMetric(0, "ns/op")
	if got := eng.votes(); got != len(all)/2 {
		b.Fatalf("engine saw %d votes, want %d", got, len(all)/2)
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPlatform is an in-memory Platform: events from a channel, answers through
// each event's Reply.
type benchPlatform struct{ events chan Event }

func (p *benchPlatform) Name() string                                          { return "bench" }
func (p *benchPlatform) Post(context.Context, string, Message) (string, error) { return "1", nil }
func (p *benchPlatform) Edit(context.Context, string, string, Message) error   { return nil }
func (p *benchPlatform) Reply(context.Context, string, string, Message) (string, error) {
	return "1", nil
}
func (p *benchPlatform) React(context.Context, string, string, string) error { return nil }
func (p *benchPlatform) Events(context.Context) <-chan Event                 { return p.events }
func (p *benchPlatform) Respond(context.Context, Event, Message) error       { return nil }

// benchReply hands the event's real answer (not the placeholder) to its user.
type benchReply struct{ done chan<- Message }

func (r benchReply) Ack(_ context.Context, m Message) error {
	if !m.Placeholder {
		r.done <- m
	}
	return nil
}

func (r benchReply) Answer(_ context.Context, m Message) error {
	r.done <- m
	return nil
}

// benchEngine answers status with a fixed view and counts votes.
type benchEngine struct {
	fakeEngine
	view rotation.View
	mu   sync.Mutex
	n    int
}

func (e *benchEngine) Get(context.Context, string) (rotation.View, error) { return e.view, nil }

func (e *benchEngine) Vote(_ context.Context, b rotation.Ballot) (approvals.Outcome, error) {
	e.mu.Lock()
	e.n++
	e.mu.Unlock()
	return approvals.Outcome{Kind: approvals.OutcomeVoted, Message: b.User + " approved R1 (1 of 2)"}, nil
}

func (e *benchEngine) votes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}
