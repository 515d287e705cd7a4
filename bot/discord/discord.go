// Package discord is sepmbot's Discord adapter, on github.com/bwmarrin/discordgo
// v0.29.0: /sepm as an application command with subcommands and typed options
// (registered by bulk overwrite, with autocomplete for rotation and step ids), run
// cards and approval requests as embeds with Approve/Deny buttons (Deny asks for a
// reason in a modal), ✅/❌ reactions as votes, and answers within Discord's 3-second
// interaction window.
//
// Events arrive over the gateway (the default: no public URL; intents guilds and
// guild message reactions only, neither privileged, no Message Content) or, for
// interactions only, over an HTTP endpoint verified with Ed25519 (Handler). Discord
// delivers interactions to one of the two, never both; reactions always need the
// gateway.
//
// Guarantees: an interaction id acts once (redeliveries are dropped); reactions are
// state, not events (an add counts a vote not yet counted, a remove retracts it, a
// redelivery changes nothing, a re-add after a removal counts again); after every
// READY the reactions on each open approval request are read back with
// MessageReactions, so a vote cast while the gateway was down is not lost; every
// message is sent with allowed mentions off; a 429's retry_after is honoured, and the
// interaction window never waits behind a rate-limited call. Only reactions on
// approval requests reach the router (people react ✅ to everything), the bot's own
// are ignored, and an Approve button with a confirmation asks it (ephemeral) before
// the vote counts.
package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"sepmbot/bot"
	"sepmbot/internal/ctxsleep"
)

// PlatformName is the platform prefix of Discord user keys: "discord:80351110224678912".
const PlatformName = "discord"

// Observer counts calls to Discord's API and its 429 answers (the metrics package
// implements it). method names the REST call: "message.create", "interaction.callback".
type Observer interface {
	ChatCall(platform, method string, err error)
	ChatRateLimited(platform, method string)
}

// OpenRequest is an approval request waiting for votes whose message lives on Discord.
type OpenRequest struct {
	Channel, Message string
	// Voted are the Discord user ids whose vote on the request is already counted.
	Voted []string
}

// Requests lists the open approval requests on Discord (for the reconcile after READY).
type Requests interface {
	OpenRequests(ctx context.Context) ([]OpenRequest, error)
}

// Messages recognises approval requests by their qualified ref
// ("discord|channel|message"); *bot.Notifier implements it. Reactions on any other
// message are none of the bot's business: people react with ✅ all day.
type Messages interface {
	ApprovalHome(ctx context.Context, ref string) (bot.Home, bool)
}

// Completer offers autocomplete choices: active rotation ids, and the step ids of one.
type Completer interface {
	RotationIDs(ctx context.Context) ([]string, error)
	StepIDs(ctx context.Context, rotation string) ([]string, error)
}

// Config configures the adapter. Token is the bot token (without "Bot ").
type Config struct {
	Token string
	// GuildID scopes the /sepm registration to one server (commands update at once);
	// "" registers globally (Discord may take up to an hour to show changes).
	GuildID string
	// Sites are the site names offered as choices of the site option.
	Sites []string
	// HTTPClient carries every REST call (tests point it at a fake); nil: a client
	// with a 20 s timeout.
	HTTPClient *http.Client
	Requests   Requests
	// Messages filters reactions to approval requests (nil: every reaction is passed
	// on, and the router decides).
	Messages  Messages
	Completer Completer
	Observer  Observer
	Log       *slog.Logger
	// Now and Sleep are the clock (tests share a fake one with the fake Discord).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// CardInterval is the least time between two edits of one card.
	CardInterval time.Duration
	// MemberTTL is how long a member's roles looked up with GuildMember are cached
	// (default 1 minute).
	MemberTTL time.Duration
}

// Discord is a bot.Platform on Discord.
type Discord struct {
	cfg Config
	s   *discordgo.Session
	log *slog.Logger
	run string // per-process prefix of reaction delivery ids

	events chan bot.Event
	done   chan struct{}
	once   sync.Once

	mu        sync.Mutex
	botID     string
	appID     string
	ready     chan struct{} // closed at the first READY
	readyOnce sync.Once
	connected bool
	seq       int64
	seen      map[string]time.Time // interaction ids acted on -> when
	reactions map[string]bool      // channel/message/user/emoji -> present
	members   map[string]member    // guild/user -> roles, cached
	threads   map[string]bool      // message ids with a thread
	confirms  map[string]string    // button value -> its Confirm question
	requests  map[string]bool      // message ids this process posted with vote buttons
	userGuild map[string]string    // user id -> the server they last acted in
	ctx       context.Context      // for work started by gateway handlers
	cancel    context.CancelFunc
}

type member struct {
	roles []string
	at    time.Time
}

// New builds the adapter; nothing is sent until Open or a call.
func New(cfg Config) (*Discord, error) {
	if cfg.Token == "" {
		return nil, errors.New("discord: no bot token (DISCORD_BOT_TOKEN or DISCORD_BOT_TOKEN_FILE)")
	}
	s, err := discordgo.New("Bot " + cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("discord session: %w", err)
	}
	s.Identify.Intents = discordgo.IntentGuilds | discordgo.IntentGuildMessageReactions
	s.ShouldRetryOnRateLimit = false // every call site decides: see call
	s.StateEnabled = false
	// Handlers run in the gateway's order (discordgo's default runs each in its own
	// goroutine): a reaction and its removal must reach the router as they happened.
	// Handlers only record state and queue events; slow answers run on their own.
	s.SyncEvents = true
	s.LogLevel = discordgo.LogWarning
	if cfg.HTTPClient != nil {
		s.Client = cfg.HTTPClient
	} else {
		s.Client = &http.Client{Timeout: 20 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	routeLogs(cfg.Log)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = ctxsleep.Sleep
	}
	if cfg.MemberTTL <= 0 {
		cfg.MemberTTL = time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Discord{
		cfg: cfg, s: s, log: cfg.Log, run: fmt.Sprintf("%x", time.Now().UnixNano()),
		events: make(chan bot.Event, 64), done: make(chan struct{}), ready: make(chan struct{}),
		seen: map[string]time.Time{}, reactions: map[string]bool{}, members: map[string]member{},
		threads: map[string]bool{}, confirms: map[string]string{}, requests: map[string]bool{}, userGuild: map[string]string{}, ctx: ctx, cancel: cancel,
	}
	s.AddHandler(d.onReady)
	s.AddHandler(d.onDisconnect)
	s.AddHandler(func(_ *discordgo.Session, ic *discordgo.InteractionCreate) {
		defer d.survive("interaction")
		d.interaction(ic.Interaction)
	})
	s.AddHandler(func(_ *discordgo.Session, r *discordgo.MessageReactionAdd) {
		defer d.survive("reaction add")
		d.reactionAdd(r)
	})
	s.AddHandler(func(_ *discordgo.Session, r *discordgo.MessageReactionRemove) {
		defer d.survive("reaction remove")
		d.reactionRemove(r)
	})
	return d, nil
}

// survive keeps one malformed event from taking the gateway reader (and the bot)
// down: the handler's panic is logged and the event dropped.
func (d *Discord) survive(what string) {
	if p := recover(); p != nil {
		d.log.Error("discord: dropped an event that broke its handler", "event", what, "panic", fmt.Sprint(p))
	}
}

var logOnce sync.Once

// routeLogs sends discordgo's own log lines (a package-level logger) to slog at
// warn level, from the first adapter's logger.
func routeLogs(log *slog.Logger) {
	if log == nil {
		return
	}
	logOnce.Do(func() {
		discordgo.Logger = func(level, _ int, format string, a ...any) {
			if level <= discordgo.LogWarning {
				log.Warn("discordgo: " + fmt.Sprintf(format, a...))
			}
		}
	})
}

// Name is "discord".
func (d *Discord) Name() string { return PlatformName }

// Open connects the gateway and waits for the first READY (or ctx). discordgo then
// reconnects by itself; every READY triggers a reconcile.
func (d *Discord) Open(ctx context.Context) error {
	if err := d.s.Open(); err != nil {
		err = scrub(err, d.cfg.Token)
		var ae *APIError
		var ce *websocket.CloseError
		if (errors.As(err, &ae) && ae.Status == http.StatusUnauthorized) || (errors.As(err, &ce) && ce.Code == 4004) {
			return fmt.Errorf("discord gateway: the bot token was refused (DISCORD_BOT_TOKEN revoked or wrong?): %w", err)
		}
		return fmt.Errorf("discord gateway: %w", err)
	}
	select {
	case <-d.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("discord gateway: no READY: %w", ctx.Err())
	}
}

// Close disconnects the gateway and ends Events.
func (d *Discord) Close() error {
	d.once.Do(func() {
		d.cancel()
		close(d.done)
	})
	if err := d.s.Close(); err != nil {
		return fmt.Errorf("discord gateway close: %w", err)
	}
	return nil
}

// Connected reports whether the gateway session is up.
func (d *Discord) Connected() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.connected
}

// Events delivers events from the gateway and the HTTP endpoint until ctx is done.
func (d *Discord) Events(ctx context.Context) <-chan bot.Event {
	out := make(chan bot.Event)
	go func() {
		defer close(out)
		for {
			select {
			case ev := <-d.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			case <-d.done:
				return
			}
		}
	}()
	return out
}

// emit hands ev to Events; it gives up when the adapter closes.
func (d *Discord) emit(ev bot.Event) {
	select {
	case d.events <- ev:
	case <-d.done:
	}
}

func (d *Discord) onReady(_ *discordgo.Session, r *discordgo.Ready) {
	d.mu.Lock()
	if r.User != nil {
		d.botID = r.User.ID
	}
	if r.Application != nil {
		d.appID = r.Application.ID
	}
	d.connected = true
	d.mu.Unlock()
	d.readyOnce.Do(func() { close(d.ready) })
	d.log.Info("discord gateway ready", "session", r.SessionID)
	go d.reconcile(d.ctx)
}

func (d *Discord) onDisconnect(_ *discordgo.Session, _ *discordgo.Disconnect) {
	d.mu.Lock()
	d.connected = false
	d.mu.Unlock()
}

// BotID is the bot's own user id (known after READY).
func (d *Discord) BotID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.botID
}

// AppID is the application id (from READY, or set with SetAppID for HTTP-only use).
func (d *Discord) AppID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.appID
}

// SetAppID sets the application id and the bot's user id when no gateway READY
// tells them (HTTP interactions mode with --discord-gateway=false).
func (d *Discord) SetAppID(appID, botID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.appID = appID
	if botID != "" {
		d.botID = botID
	}
}

// maxAttempts bounds how often one call is retried after 429s.
const maxAttempts = 5

// call runs one REST call with discordgo's own 429 retry off. retry false (the
// interaction window) returns a 429 at once as a bot.RateLimitError; retry true
// waits each retry_after (on the adapter's clock) and tries again, a few times.
func (d *Discord) call(ctx context.Context, method string, retry bool, fn func(opts ...discordgo.RequestOption) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false))
		if d.cfg.Observer != nil {
			d.cfg.Observer.ChatCall(PlatformName, method, err)
		}
		var rl *discordgo.RateLimitError
		if !errors.As(err, &rl) {
			if err != nil {
				return fmt.Errorf("discord %s: %w", method, scrub(err, d.cfg.Token))
			}
			return nil
		}
		if d.cfg.Observer != nil {
			d.cfg.Observer.ChatRateLimited(PlatformName, method)
		}
		after := time.Duration(0)
		if rl.RateLimit != nil && rl.TooManyRequests != nil {
			after = rl.RetryAfter
		}
		if !retry || attempt >= maxAttempts {
			return fmt.Errorf("discord %s: %w", method, bot.RateLimitError{After: after})
		}
		d.log.Debug("discord rate limited; waiting", "method", method, "retry_after", after)
		if err := d.cfg.Sleep(ctx, after); err != nil {
			return fmt.Errorf("discord %s: waiting out a rate limit: %w", method, err)
		}
	}
}

// APIError is a non-2xx answer of Discord other than 429, without the request (whose
// headers carry the token).
type APIError struct {
	Status, Code int
	Message      string
}

// Error says the status and Discord's code and message.
func (e *APIError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("HTTP %d (code %d: %s)", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("HTTP %d", e.Status)
}

// scrub keeps the token out of an error's text (a RESTError prints the request).
func scrub(err error, token string) error {
	var re *discordgo.RESTError
	if errors.As(err, &re) {
		ae := &APIError{Status: re.Response.StatusCode}
		if re.Message != nil {
			ae.Code, ae.Message = re.Message.Code, re.Message.Message
		}
		return ae
	}
	if token != "" && strings.Contains(err.Error(), token) {
		return errors.New(strings.ReplaceAll(err.Error(), token, "[token]"))
	}
	return err
}

// restCode is the Discord JSON error code of err, or 0.
func restCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}
