package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"sepmbot/approvals"
	"sepmbot/bot"
	"sepmbot/bot/discord"
	"sepmbot/config"
	"sepmbot/rotation"
)

// DiscordAuthFlags name the bot and its server: what every Discord command needs.
// The bot token comes from DISCORD_BOT_TOKEN or a file, never from a flag's value.
type DiscordAuthFlags struct {
	DiscordTokenFile string `name:"discord-token-file" type:"path" help:"Discord: file holding the bot token (or set DISCORD_BOT_TOKEN)." env:"DISCORD_BOT_TOKEN_FILE"`
	DiscordGuild     string `name:"discord-guild" help:"Discord: server (guild) id to register /sepm in (at once); empty registers globally (slow to appear)." env:"DISCORD_GUILD_ID"`
}

// DiscordFlags configure the Discord adapter for `run --chat discord` (alone or with
// console and slack).
type DiscordFlags struct {
	DiscordAuthFlags `embed:""`
	DiscordChannel   []string `name:"discord-channel" help:"Discord: channel id where /sepm is accepted and rotations live; repeatable (none: any channel the bot can see)."`
	DiscordRegister  bool     `name:"discord-register" help:"Discord: register /sepm (bulk overwrite) at start." env:"SEPMBOT_DISCORD_REGISTER"`
	DiscordGateway   bool     `name:"discord-gateway" default:"true" negatable:"" help:"Discord: connect the gateway (events, reactions). --no-discord-gateway leaves only the HTTP interactions endpoint (no reaction votes)."`
	DiscordListen    string   `name:"discord-listen" help:"Discord: serve the Interactions Endpoint URL on ADDR at /discord/interactions (needs DISCORD_PUBLIC_KEY). Discord then sends interactions there and no longer to the gateway." env:"SEPMBOT_DISCORD_LISTEN"`
	DiscordPublicKey string   `name:"discord-public-key" help:"Discord: the application's public key (hex) for --discord-listen." env:"DISCORD_PUBLIC_KEY"`
}

// token reads the bot token from DISCORD_BOT_TOKEN or --discord-token-file.
func (f DiscordAuthFlags) token() (string, error) {
	// config.Secret registers the value, so it is redacted wherever it might appear.
	t, err := config.Secret("DISCORD_BOT_TOKEN", f.DiscordTokenFile)
	if err != nil {
		return "", fmt.Errorf("the Discord bot token: %w", err)
	}
	if t = strings.TrimSpace(t); t == "" {
		return "", errors.New("no Discord bot token: set DISCORD_BOT_TOKEN or DISCORD_BOT_TOKEN_FILE")
	}
	return t, nil
}

// chatDeps are the seams tests use (nil fields: production).
type chatDeps struct {
	HTTPClient *http.Client                     // carries every Discord REST call
	Started    func(*running, *discord.Discord) // called once the bot runs (nil: no Discord)
	Listening  func(addr string)                // the Discord HTTP interactions endpoint's address
	Observer   discord.Observer                 // counts Discord API calls and 429s (the admin metrics)
	// SlackSecret reads a Slack token or the signing secret by its variable's name
	// (nil: the environment, secretEnv).
	SlackSecret func(name string) (string, error)
}

// newDiscord builds the Discord platform from the flags and the environment.
func newDiscord(f DiscordAuthFlags, sites []string, cardInterval time.Duration, link *discordEngine, deps chatDeps, log *slog.Logger) (*discord.Discord, error) {
	token, err := f.token()
	if err != nil {
		return nil, err
	}
	cfg := discord.Config{
		Token: token, GuildID: f.DiscordGuild, Sites: sites, HTTPClient: deps.HTTPClient,
		Log: log, CardInterval: cardInterval, Observer: deps.Observer,
	}
	if link != nil {
		cfg.Requests, cfg.Completer, cfg.Messages = link, link, link
	}
	return discord.New(cfg)
}

// discordChat is the Discord platform of a run, built but not yet connected.
type discordChat struct {
	d    *discord.Discord
	link *discordEngine
	home string // the first --discord-channel: where a rotation with no recorded home lives
	srv  *http.Server
}

// discordOutlet builds the Discord adapter when --chat names discord (nil
// otherwise) and adds its channels to --channel. Nothing is sent until start.
func (c *RunCmd) discordOutlet(specs []siteSpec, deps chatDeps, log *slog.Logger) (*discordChat, error) {
	if !slices.Contains(c.Chat, discord.PlatformName) {
		return nil, nil
	}
	f := c.DiscordFlags
	if !f.DiscordGateway && f.DiscordListen == "" {
		return nil, errors.New("--no-discord-gateway needs --discord-listen: nothing would deliver events")
	}
	if f.DiscordListen != "" && f.DiscordPublicKey == "" {
		return nil, errors.New("--discord-listen needs DISCORD_PUBLIC_KEY (the application's public key)")
	}
	link := &discordEngine{}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	d, err := newDiscord(f.DiscordAuthFlags, names, c.CardInterval, link, deps, log)
	if err != nil {
		return nil, err
	}
	for _, ch := range f.DiscordChannel {
		c.BotFlags.Channel = append(c.BotFlags.Channel, discord.PlatformName+":"+ch)
	}
	dc := &discordChat{d: d, link: link}
	if len(f.DiscordChannel) > 0 {
		dc.home = f.DiscordChannel[0]
	}
	return dc, nil
}

// start connects Discord once the sites run (w): the engine's rotations first, so
// the gateway's READY reconciles the votes of open requests; then the registration
// when asked, and the HTTP interactions endpoint when asked.
func (dc *discordChat) start(ctx context.Context, f DiscordFlags, w *running, deps chatDeps, log *slog.Logger) error {
	dc.link.set(w.mux, w.notifier)
	if f.DiscordGateway {
		octx, cancel := context.WithTimeout(ctx, time.Minute)
		err := dc.d.Open(octx)
		cancel()
		if err != nil {
			return err
		}
	}
	if f.DiscordRegister {
		if err := dc.d.Register(ctx, ""); err != nil {
			log.Warn("registering /sepm", "err", err)
		}
	}
	if f.DiscordListen == "" {
		return nil
	}
	key, err := discord.ParsePublicKey(f.DiscordPublicKey)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(discord.InteractionsPath, dc.d.Handler(key))
	ln, err := net.Listen("tcp", f.DiscordListen)
	if err != nil {
		return fmt.Errorf("--discord-listen: %w", err)
	}
	dc.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	go func() { _ = dc.srv.Serve(ln) }()
	if deps.Listening != nil {
		deps.Listening(ln.Addr().String())
	}
	log.Info("Discord interactions endpoint", "addr", ln.Addr().String(), "path", discord.InteractionsPath)
	return nil
}

// close stops the HTTP endpoint and the gateway.
func (dc *discordChat) close() {
	if dc.srv != nil {
		_ = dc.srv.Close()
	}
	_ = dc.d.Close()
}

// discordHelp is what /sepm help adds on Discord.
const discordHelp = `On Discord: type /sepm and pick the subcommand; its options are fields (site, id, step,
reason, --mode and the others), and id and step complete with Tab. On an approval request,
react ✅ to approve or ❌ to deny, or click Approve (it asks you to confirm) or Deny (it asks why).`

// discordEngine gives the adapter what it reads from the engine: the open approval
// requests (for the reconcile) and ids to autocomplete. The engine is set once it
// runs; before that both answer nothing.
type discordEngine struct {
	mu  sync.Mutex
	eng rotationReader
	n   *bot.Notifier
}

// rotationReader reads rotations: an engine, or the sites' mux.
type rotationReader interface {
	List(ctx context.Context) ([]rotation.Rotation, error)
	Get(ctx context.Context, id string) (rotation.View, error)
}

func (e *discordEngine) set(eng rotationReader, n *bot.Notifier) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.eng, e.n = eng, n
}

// ApprovalHome tells the adapter which messages are approval requests.
func (e *discordEngine) ApprovalHome(ctx context.Context, ref string) (bot.Home, bool) {
	e.mu.Lock()
	n := e.n
	e.mu.Unlock()
	if n == nil {
		return bot.Home{}, false
	}
	return n.ApprovalHome(ctx, ref)
}

func (e *discordEngine) get() rotationReader {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.eng
}

// OpenRequests lists the pending approval requests whose message is on Discord.
func (e *discordEngine) OpenRequests(ctx context.Context) ([]discord.OpenRequest, error) {
	eng := e.get()
	if eng == nil {
		return nil, nil
	}
	rots, err := eng.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing rotations: %w", err)
	}
	var out []discord.OpenRequest
	for _, r := range rots {
		if !r.Active() || r.Approval == "" {
			continue
		}
		v, err := eng.Get(ctx, r.ID)
		if err != nil || v.Approval == nil || v.Approval.State != approvals.StatePending {
			continue
		}
		var voted []string
		for _, vote := range v.Approval.Votes {
			if id, ok := strings.CutPrefix(vote.User, discord.PlatformName+":"); ok {
				voted = append(voted, id)
			}
		}
		// Every message that carries the request (a re-post after a restart too).
		for _, raw := range append([]string{v.Approval.MessageRef}, v.Approval.MessageRefs...) {
			ref, ok := bot.ParseRef(raw)
			if !ok || ref.Platform != discord.PlatformName {
				continue
			}
			out = append(out, discord.OpenRequest{Channel: ref.Channel, Message: ref.ID, Voted: voted})
		}
	}
	return out, nil
}

// RotationIDs lists the active rotations, newest first.
func (e *discordEngine) RotationIDs(ctx context.Context) ([]string, error) {
	eng := e.get()
	if eng == nil {
		return nil, nil
	}
	rots, err := eng.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing rotations: %w", err)
	}
	var ids []string
	for i := len(rots) - 1; i >= 0; i-- {
		if rots[i].Active() {
			ids = append(ids, rots[i].ID)
		}
	}
	return ids, nil
}

// StepIDs lists a rotation's steps from the current one on.
func (e *discordEngine) StepIDs(ctx context.Context, id string) ([]string, error) {
	eng := e.get()
	if eng == nil {
		return nil, nil
	}
	v, err := eng.Get(ctx, strings.ToUpper(id))
	if err != nil {
		return nil, nil // an unknown rotation offers no steps
	}
	var ids []string
	for i, s := range v.Rotation.Plan.Steps {
		if i >= v.Rotation.Cursor {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

// DiscordCmd groups the Discord subcommands.
type DiscordCmd struct {
	Register DiscordRegisterCmd `cmd:"" help:"Register /sepm with its subcommands (bulk overwrite) for DISCORD_GUILD_ID, or globally."`
}

// DiscordRegisterCmd registers /sepm.
type DiscordRegisterCmd struct {
	DiscordAuthFlags `embed:""`
	SiteName         string `name:"site-name" default:"site-a" help:"Site names offered as choices (comma-separated)." env:"SEPMBOT_SITE_NAME"`
	deps             chatDeps
}

// Run registers the commands and reports where.
func (c *DiscordRegisterCmd) Run(g *Globals) error {
	d, err := newDiscord(c.DiscordAuthFlags, strings.Split(c.SiteName, ","), 0, nil, c.deps, g.Log)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Register(g.Ctx, ""); err != nil {
		return err
	}
	where := "globally (Discord may take up to an hour to show them)"
	if c.DiscordGuild != "" {
		where = "in server " + c.DiscordGuild
	}
	fmt.Fprintf(g.Out, "registered /sepm %s\n", where)
	return nil
}
