package bench

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"sepmbot/bot"
	"sepmbot/rotation"
	"sepmbot/store"
)

// RouterConfig sizes the router throughput run.
type RouterConfig struct {
	Dir      string        // folder for the bbolt file (its fsyncs are part of the figure)
	SEPM     rotation.SEPM // the engine's client (status and refused votes never call it)
	Users    int           // concurrent users, each waiting for its answer before its next event
	Duration time.Duration // how long to send
	Logger   *slog.Logger
}

// RouterResult is what the run measured.
type RouterResult struct {
	Events  int64   // events answered
	Seconds float64 // from the first event sent to the last answer
}

// PerSecond is the throughput.
func (r RouterResult) PerSecond() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Events) / r.Seconds
}

// RunRouter sends events through the real bot.Router served on an in-memory
// platform: Users users at once, each alternating `/sepm status` and a ✅ reaction
// (a vote, refused by the engine: the message carries no request), every event with
// its own delivery id, deduped in the real bbolt store (store.Deliver) before the
// engine sees it. An event counts when its answer is delivered (Reply.Ack with the
// answer, or Reply.Answer after a placeholder), so each counted event was deduped
// and durable before its answer.
func RunRouter(ctx context.Context, cfg RouterConfig) (RouterResult, error) {
	db, err := store.Open(filepath.Join(cfg.Dir, "router.db"))
	if err != nil {
		return RouterResult{}, err
	}
	defer db.Close()
	eng, err := rotation.NewEngine(rotation.Config{Store: db, SEPM: cfg.SEPM, Notifier: &benchNotifier{covered: map[string]time.Time{}}, Site: "bench", Logger: cfg.Logger})
	if err != nil {
		return RouterResult{}, err
	}
	users := make([]string, cfg.Users)
	for i := range users {
		users[i] = fmt.Sprintf("console:u%d", i+1)
	}
	roles, err := bot.ParseRoles(users, users, users)
	if err != nil {
		return RouterResult{}, err
	}
	router := &bot.Router{Engine: eng, Deliveries: db, Roles: roles, Sites: []string{"bench"}, Log: cfg.Logger}
	p := &memPlatform{events: make(chan bot.Event)}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() { router.Serve(sctx, p); close(served) }()

	var done atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	end := start.Add(cfg.Duration)
	for u := range cfg.Users {
		wg.Go(func() {
			for k := 0; time.Now().Before(end); k++ {
				ans := make(chan struct{}, 1)
				ev := bot.Event{Platform: "console", User: fmt.Sprintf("u%d", u+1), Channel: "sepm",
					DeliveryID: fmt.Sprintf("u%d-%d", u+1, k), Reply: &memReply{done: ans}}
				if k%2 == 0 {
					ev.Kind, ev.Text = bot.EventCommand, "/sepm status"
				} else {
					ev.Kind, ev.Reaction, ev.MessageRef = bot.EventReactionAdded, bot.EmojiApprove, fmt.Sprintf("m-%d-%d", u+1, k)
				}
				select {
				case p.events <- ev:
				case <-ctx.Done():
					return
				}
				select {
				case <-ans:
					done.Add(1)
				case <-time.After(30 * time.Second):
					errOnce.Do(func() { firstErr = fmt.Errorf("router: no answer to %s within 30s", ev.DeliveryID) })
					return
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
	res := RouterResult{Events: done.Load(), Seconds: time.Since(start).Seconds()}
	stop()
	<-served
	if firstErr == nil && res.Events == 0 {
		firstErr = fmt.Errorf("router: no event answered")
	}
	return res, firstErr
}

// memPlatform is a bot.Platform in memory: events come from the bench, every answer
// goes to the event's Reply.
type memPlatform struct{ events chan bot.Event }

func (*memPlatform) Name() string { return "console" }
func (*memPlatform) Post(context.Context, string, bot.Message) (string, error) {
	return "1", nil
}
func (*memPlatform) Edit(context.Context, string, string, bot.Message) error { return nil }
func (*memPlatform) Reply(context.Context, string, string, bot.Message) (string, error) {
	return "1", nil
}
func (*memPlatform) React(context.Context, string, string, string) error { return nil }
func (*memPlatform) Respond(context.Context, bot.Event, bot.Message) error {
	return nil
}

// Events hands out the bench's events until ctx is done.
func (p *memPlatform) Events(ctx context.Context) <-chan bot.Event {
	out := make(chan bot.Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-p.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// memReply signals done once the event's answer (not a placeholder) arrives.
type memReply struct {
	done chan struct{}
	once sync.Once
}

func (r *memReply) Ack(_ context.Context, m bot.Message) error {
	if !m.Placeholder {
		r.once.Do(func() { r.done <- struct{}{} })
	}
	return nil
}

func (r *memReply) Answer(context.Context, bot.Message) error {
	r.once.Do(func() { r.done <- struct{}{} })
	return nil
}
