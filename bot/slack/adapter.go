// Package slack is sepmbot's Slack adapter, on github.com/slack-go/slack: Socket
// Mode (the default: no public URL, fits on-premises networks) or HTTP mode (slash
// commands, interactivity and events POSTed to the bot, each verified with the v0
// signature before anything is parsed). It turns verified envelopes into
// bot.Events and renders bot.Messages as Block Kit.
//
// Guarantees:
//   - Every envelope is recorded durably (its dedupe record) before it is
//     acknowledged, and acknowledged within Slack's 3 seconds; the work follows and
//     never blocks the transport's reader. An envelope acknowledged but not yet
//     answered when the bot died is handed out again after a restart.
//   - The same delivery is acted on once: Events API by event_id, clicks by
//     (action_ts, user, action_id), slash commands by trigger_id, kept DedupeTTL.
//   - Identity is the Slack user id within the bot token's team (auth.test);
//     events from another team are refused, the bot's own reactions ignored.
//   - Chat API calls are paced under Slack's limits (1 post/s per channel; the
//     workspace's chat.update budget shared by every card, newest state wins); a
//     429 is waited out and never shown in the channel.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"sepmbot/bot"
	"sepmbot/store"
)

// DefaultAPIURL is Slack's Web API.
const DefaultAPIURL = "https://slack.com/api/"

// DefaultAckWait is how long a slash command's ack waits for the router's first
// answer before it goes out empty (the answer then follows by chat.postEphemeral):
// well inside Slack's 3 seconds.
const DefaultAckWait = 2 * time.Second

// Counters receives the adapter's Web API accounting (metrics implement it):
// one APICall per call made, one RateLimited per 429 received.
type Counters interface {
	APICall(platform, method string)
	RateLimited(platform, method string)
}

// Config configures the adapter. Tokens and the signing secret are used only to
// talk to Slack and never logged.
type Config struct {
	BotToken string // xoxb-
	AppToken string // xapp-, Socket Mode
	// SigningSecret and Listen select HTTP mode: endpoints /slack/commands,
	// /slack/interactivity and /slack/events on Listen.
	SigningSecret string
	Listen        string
	// APIURL is the Web API base (ending in "/"); default DefaultAPIURL. Socket
	// Mode's apps.connections.open follows it.
	APIURL string
	// Groups are the user group ids (S…) named in the roles; each user's
	// memberships among them are resolved for the router.
	Groups []string
	// Store keeps the dedupe records and open approval requests.
	Store *store.DB
	// EditBudget is the workspace's chat.update budget per minute (default 50).
	EditBudget int
	// CardInterval is the least time between two edits of one card.
	CardInterval time.Duration
	// AckWait bounds how long a slash command's ack waits for the router.
	AckWait time.Duration
	// PingInterval is how long Socket Mode waits for Slack's ping before it
	// reconnects (default 30s).
	PingInterval time.Duration
	Counters     Counters
	Log          *slog.Logger
	Now          func() time.Time
}

// Adapter is the Slack bot.Platform.
type Adapter struct {
	cfg   Config
	api   *slack.Client
	log   *slog.Logger
	now   func() time.Time
	inbox inbox
	pace  *pacer
	grp   *groupCache
	users *teamCache

	team, botUser string // from auth.test

	incoming *queue[*delivery]
	ready    *queue[*delivery]
	events   chan bot.Event

	handledQ *queue[string]

	wg        sync.WaitGroup
	mu        sync.Mutex
	cancel    context.CancelFunc
	err       error // why the transport stopped
	server    *http.Server
	addr      string
	connected chan struct{}   // closed and replaced on every Socket Mode connect
	open      map[string]bool // open approval requests (store keys), loaded on first use
}

// New builds the adapter; Start connects it.
func New(cfg Config) (*Adapter, error) {
	if cfg.BotToken == "" {
		return nil, errors.New("slack: no bot token (SLACK_BOT_TOKEN or SLACK_BOT_TOKEN_FILE)")
	}
	if cfg.Listen == "" && cfg.AppToken == "" {
		return nil, errors.New("slack: Socket Mode needs the app-level token (SLACK_APP_TOKEN or SLACK_APP_TOKEN_FILE), or give --slack-listen for HTTP mode")
	}
	if cfg.Listen != "" && cfg.SigningSecret == "" {
		return nil, errors.New("slack: HTTP mode (--slack-listen) needs the signing secret (SLACK_SIGNING_SECRET or SLACK_SIGNING_SECRET_FILE)")
	}
	if cfg.Store == nil {
		return nil, errors.New("slack: no store")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Adapter{
		cfg: cfg, log: cfg.Log, now: cfg.Now, inbox: storeInbox{db: cfg.Store},
		pace:     newPacer(cfg.EditBudget, cfg.Now),
		incoming: newQueue[*delivery](), ready: newQueue[*delivery](), handledQ: newQueue[string](),
		events:    make(chan bot.Event, 64),
		connected: make(chan struct{}),
	}
	opts := []slack.Option{
		slack.OptionAPIURL(cfg.APIURL),
		slack.OptionHTTPClient(&http.Client{Timeout: 30 * time.Second, Transport: countingTransport{next: http.DefaultTransport, c: cfg.Counters}}),
	}
	if cfg.AppToken != "" {
		opts = append(opts, slack.OptionAppLevelToken(cfg.AppToken))
	}
	a.api = slack.New(cfg.BotToken, opts...)
	a.grp = &groupCache{groups: cfg.Groups, now: cfg.Now, log: cfg.Log,
		list: func(ctx context.Context, g string) ([]string, error) { return a.api.GetUserGroupMembersContext(ctx, g) }}
	a.users = &teamCache{now: cfg.Now, info: func(ctx context.Context, u string) (string, error) {
		info, err := a.api.GetUserInfoContext(ctx, u)
		if err != nil {
			return "", err
		}
		return info.TeamID, nil
	}}
	return a, nil
}

// Name is "slack".
func (a *Adapter) Name() string { return "slack" }

// Team is the workspace id from auth.test (after Start).
func (a *Adapter) Team() string { return a.team }

// Start checks the bot token (auth.test gives the team and the bot's own user id),
// hands out the envelopes recorded but not answered before a restart, and starts
// the transport: Socket Mode, or the HTTP listener. A token Slack refuses is an
// error here; later fatal errors stop Events (see Err).
func (a *Adapter) Start(ctx context.Context) error {
	id, err := a.api.AuthTestContext(ctx)
	if err != nil {
		return fmt.Errorf("slack: auth.test: %w", err)
	}
	a.team, a.botUser = id.TeamID, id.UserID
	ctx, cancel := context.WithCancel(ctx)
	a.mu.Lock()
	a.cancel = cancel
	a.mu.Unlock()
	pending, err := a.inbox.pending(ctx, a.now())
	if err != nil {
		cancel()
		return err
	}
	var replay []*delivery
	for _, r := range pending {
		replay = append(replay, &delivery{rec: r})
	}
	if len(replay) > 0 {
		a.log.Info("slack: handling envelopes acknowledged before the restart", "n", len(replay))
		a.ready.push(replay...)
	}
	var ln func(context.Context) error
	if a.cfg.Listen != "" {
		if ln, err = a.listen(); err != nil {
			cancel()
			return err
		}
	}
	a.wg.Go(func() { a.runRecorder(ctx) })
	a.wg.Go(func() { a.runDispatcher(ctx) })
	a.wg.Go(func() { a.runHandled(ctx) })
	a.wg.Go(func() { a.runPrune(ctx) })
	a.wg.Go(func() {
		var err error
		if ln != nil {
			err = ln(ctx)
		} else {
			err = a.runSocket(ctx)
		}
		if err != nil && ctx.Err() == nil {
			a.log.Error("slack: stopped", "err", err)
			a.mu.Lock()
			a.err = err
			a.mu.Unlock()
			a.stop()
		}
	})
	return nil
}

// Wait returns once the adapter has stopped (its context done, or Err) and every
// answered envelope is marked so in the store.
func (a *Adapter) Wait() { a.wg.Wait() }

// stopper cancels the intake when the transport fails fatally.
func (a *Adapter) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		a.cancel()
	}
}

// Err is why the adapter stopped on its own (a revoked token, a listener that
// failed), or nil.
func (a *Adapter) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Events delivers inbound events; the channel is closed when ctx is done or the
// adapter stopped (see Err).
func (a *Adapter) Events(ctx context.Context) <-chan bot.Event {
	go func() {
		<-ctx.Done()
		a.stop()
	}()
	return a.events
}

// runHandled marks answered envelopes in the store, in batches. Under load the
// recorder's commits carry the marks (see runRecorder); this commits the rest,
// at most handledDelay after they were queued. A mark only spares an answered
// envelope a second hand-out after a restart, where the router drops a repeated
// engine call by its delivery id, so it may wait.
func (a *Adapter) runHandled(ctx context.Context) {
	flush := func(max int) {
		if keys, ok := a.handledQ.take(closedCtx, max); ok {
			if err := a.inbox.handled(context.WithoutCancel(ctx), keys); err != nil {
				a.log.Warn("slack: marking envelopes handled", "err", err)
			}
		}
	}
	for {
		if _, ok := a.handledQ.peek(ctx); !ok {
			flush(0) // stopping: what was answered is marked before Wait returns
			return
		}
		select {
		case <-time.After(handledDelay):
			flush(maxBatch) // what the recorder has not taken meanwhile
		case <-ctx.Done():
			flush(0)
			return
		}
	}
}

// handledDelay is how long answered marks wait for a recorder commit to carry them.
const handledDelay = 50 * time.Millisecond

// closedCtx is done from the start: take with it returns only what is queued.
var closedCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// runPrune drops expired dedupe records now and then.
func (a *Adapter) runPrune(ctx context.Context) {
	t := time.NewTicker(DedupeTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := a.inbox.pending(ctx, a.now()); err != nil && ctx.Err() == nil {
				a.log.Warn("slack: pruning dedupe records", "err", err)
			}
		}
	}
}

// countingTransport counts Web API calls and 429s by method.
type countingTransport struct {
	next http.RoundTripper
	c    Counters
}

// RoundTrip makes the call and counts it (and a 429) by Web API method.
func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if t.c != nil {
		method := r.URL.Path[lastSlash(r.URL.Path)+1:]
		t.c.APICall("slack", method)
		if err == nil && resp.StatusCode == http.StatusTooManyRequests {
			t.c.RateLimited("slack", method)
		}
	}
	return resp, err
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

// teamCache remembers which team a user belongs to (users.info), for events that
// do not say (reactions); an unknown or unreadable user is not ours.
type teamCache struct {
	now  func() time.Time
	info func(ctx context.Context, user string) (string, error)

	mu      sync.Mutex
	entries map[string]teamEntry
}

type teamEntry struct {
	team string
	read time.Time
}

func (c *teamCache) team(ctx context.Context, user string) (string, error) {
	c.mu.Lock()
	if e, ok := c.entries[user]; ok && c.now().Sub(e.read) < GroupTTL {
		c.mu.Unlock()
		return e.team, nil
	}
	c.mu.Unlock()
	team, err := c.info(ctx, user)
	if err != nil {
		return "", fmt.Errorf("slack: users.info %s: %w", user, err)
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]teamEntry{}
	}
	c.entries[user] = teamEntry{team: team, read: c.now()}
	c.mu.Unlock()
	return team, nil
}
