package discord

import (
	"context"
	"sync"
	"testing"
	"time"

	"sepmbot/bot"
	"sepmbot/bot/discord/discordtest"
)

// fakeClock is the adapter's and the fake Discord's shared clock: a Sleep advances
// it, so a retry that waits retry_after finds the fake's window passed, and one that
// does not wait is answered 429 again.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	slept  []time.Duration
	frozen bool
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d)
	return ctx.Err()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// setup starts a fake Discord and an adapter pointed at it (gateway not opened).
func setup(t *testing.T, mod func(*Config)) (*Discord, *discordtest.Fake, *fakeClock) {
	t.Helper()
	clock := newClock()
	f := discordtest.New(clock)
	t.Cleanup(f.Close)
	cfg := Config{Token: "test-token-SECRET", GuildID: f.Guild, HTTPClient: f.Client(), Now: clock.Now, Sleep: clock.Sleep, Sites: []string{"site-a"}}
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.SetAppID(f.AppID, f.BotID)
	t.Cleanup(func() { _ = d.Close() })
	return d, f, clock
}

// next reads the next event the adapter emits, failing after a generous bound.
func next(t *testing.T, d *Discord) bot.Event {
	t.Helper()
	select {
	case ev := <-d.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return bot.Event{}
}

// none asserts no event is queued once the fake has settled (every call answered).
func none(t *testing.T, d *Discord) {
	t.Helper()
	select {
	case ev := <-d.events:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

const waitBound = 10 * time.Second
