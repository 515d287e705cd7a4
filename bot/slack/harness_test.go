package slack

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"sepmbot/bot"
	"sepmbot/bot/slack/slackfake"
	"sepmbot/store"
)

// wait bounds every wait for an asynchronous outcome: a failure guard, never a
// timing assertion.
const wait = 10 * time.Second

type harness struct {
	t      *testing.T
	fake   *slackfake.Server
	db     *store.DB
	a      *Adapter
	events <-chan bot.Event
	cancel context.CancelFunc
}

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "sepmbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// start runs an adapter against fake in Socket Mode (or HTTP mode when http),
// on db; it waits for the first connection in Socket Mode.
func start(t *testing.T, fake *slackfake.Server, db *store.DB, http bool, tweak func(*Config)) *harness {
	t.Helper()
	o := fake.Options()
	cfg := Config{BotToken: o.BotToken, APIURL: fake.APIURL(), Store: db, Log: slog.New(slog.DiscardHandler)}
	if http {
		cfg.SigningSecret, cfg.Listen = "test-signing-secret", "127.0.0.1:0"
	} else {
		cfg.AppToken = o.AppToken
	}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	connected := fake.Connected()
	if err := a.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	h := &harness{t: t, fake: fake, db: db, a: a, events: a.Events(ctx), cancel: cancel}
	t.Cleanup(h.stop)
	if http {
		fake.SetHTTPTarget("http://"+a.Addr(), cfg.SigningSecret)
	} else {
		h.await(connected, "the first Socket Mode connection")
	}
	return h
}

func (h *harness) stop() {
	h.cancel()
	for range h.events { // drained and closed
	}
	h.a.Wait()
}

func (h *harness) await(ch <-chan struct{}, what string) {
	h.t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		h.t.Fatalf("timed out waiting for %s", what)
	}
}

// next returns the next event the router would get.
func (h *harness) next() bot.Event {
	h.t.Helper()
	select {
	case ev, ok := <-h.events:
		if !ok {
			h.t.Fatal("events closed")
		}
		return ev
	case <-time.After(wait):
		h.t.Fatal("timed out waiting for an event")
	}
	return bot.Event{}
}

// none checks that no event is waiting once everything delivered so far went
// through the intake: it sends a marker reaction and expects it first.
func (h *harness) none(channel, ts string) {
	h.t.Helper()
	h.fake.AddUser("UMARK", "", "marker")
	if _, err := h.fake.SendEvent(h.fake.ReactionEvent("UMARK", channel, ts, "eyes", true), 0); err != nil {
		h.t.Fatal(err)
	}
	if ev := h.next(); ev.User != "UMARK" {
		h.t.Fatalf("unexpected event before the marker: %+v", ev)
	}
}

func newFake(t *testing.T, o slackfake.Options) *slackfake.Server {
	t.Helper()
	f := slackfake.New(o)
	t.Cleanup(f.Close)
	for _, u := range []string{"UALICE", "UBOB", "UCAROL", "UDAVE"} {
		f.AddUser(u, "", u)
	}
	return f
}

func openStoreB(b *testing.B) *store.DB {
	b.Helper()
	db, err := store.Open(filepath.Join(b.TempDir(), "sepmbot.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func inboxCountB(b *testing.B, db *store.DB) int {
	n := 0
	_ = db.View(context.Background(), func(tx *store.Tx) error {
		return tx.ForEach(store.BucketInbox, func(string, []byte) error { n++; return nil })
	})
	return n
}
