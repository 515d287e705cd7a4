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
	"sepmbot/store"
)

// DiscordAuthFlags name the bot and its server: what every Discord command needs.
// The bot token comes from DISCORD_BOT_TOKEN or a file, never from a flag's value.
type DiscordAuthFlags struct {
	DiscordTokenFile string `name:"discord-token-file" type:"path" help:"Discord: file holding the bot token (or set DISCORD_BOT_TOKEN)." env:"DISCORD_BOT_TOKEN_FILE"`
	DiscordGuild     string `name:"discord-guild" help:"Discord: server (guild) id to register /sepm in (at once); empty registers globally (slow to appear)." env:"DISCORD_GUILD_ID"`
}

// DiscordFlags configure the Discord adapter for `run --chat discord`.
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

// discordDeps are the seams tests use (nil fields: production).
type discordDeps struct {
	HTTPClient *http.Client                     // carries every REST call
	Started    func(*running, *discord.Discord) // called once the bot runs
	Listening  func(addr string)                // the HTTP interactions endpoint's address
	Observer   discord.Observer                 // counts API calls and 429s (the admin metrics)
}

// newDiscord builds the Discord platform from the flags and the environment.
func newDiscord(f DiscordAuthFlags, sites []string, cardInterval time.Duration, link *discordEngine, deps discordDeps, log *slog.Logger) (*discord.Discord, error) {
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

// runDiscord runs the bot on Discord until ctx is done: the engine first (stored
// rotations resume), then the gateway (its READY reconciles the votes of open
// requests), the registration when asked, the HTTP endpoint when asked.
func (c *RunCmd) runDiscord(ctx context.Context, g *Globals, roles bot.Roles, specs []siteSpec, db *store.DB, deps discordDeps) error {
	f := c.DiscordFlags
	if !f.DiscordGateway && f.DiscordListen == "" {
		return errors.New("--no-discord-gateway needs --discord-listen: nothing would deliver events")
	}
	if f.DiscordListen != "" && f.DiscordPublicKey == "" {
		return errors.New("--discord-listen needs DISCORD_PUBLIC_KEY (the application's public key)")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	link := &discordEngine{}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	d, err := newDiscord(f.DiscordAuthFlags, names, c.CardInterval, link, deps, g.Log)
	if err != nil {
		return err
	}
	defer d.Close()
	flags := c.BotFlags
	for _, ch := range f.DiscordChannel {
		flags.Channel = append(flags.Channel, discord.PlatformName+":"+ch)
	}
	home := ""
	if len(f.DiscordChannel) > 0 {
		home = f.DiscordChannel[0]
	}
	w, err := startSites(ctx, g, flags, roles, specs, db, []chatOutlet{{Platform: d, DefaultChannel: home}}, c.AdminListen)
	if err != nil {
		return err
	}
	link.set(w.mux, w.notifier)
	w.router.HelpExtra = discordHelp
	served := make(chan struct{})
	go func() { w.router.Serve(ctx, w.platform); close(served) }()
	stop := func() {
		cancel()
		<-served
		w.wait()
		w.notifier.Close()
	}
	if f.DiscordGateway {
		octx, cancel := context.WithTimeout(ctx, time.Minute)
		err := d.Open(octx)
		cancel()
		if err != nil {
			_ = d.Close()
			stop()
			return err
		}
	}
	if f.DiscordRegister {
		if err := d.Register(ctx, ""); err != nil {
			g.Log.Warn("registering /sepm", "err", err)
		}
	}
	if f.DiscordListen != "" {
		key, err := discord.ParsePublicKey(f.DiscordPublicKey)
		if err != nil {
			_ = d.Close()
			stop()
			return err
		}
		mux := http.NewServeMux()
		mux.Handle(discord.InteractionsPath, d.Handler(key))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
		ln, err := net.Listen("tcp", f.DiscordListen)
		if err != nil {
			_ = d.Close()
			stop()
			return fmt.Errorf("--discord-listen: %w", err)
		}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		if deps.Listening != nil {
			deps.Listening(ln.Addr().String())
		}
		g.Log.Info("Discord interactions endpoint", "addr", ln.Addr().String(), "path", discord.InteractionsPath)
	}
	fmt.Fprintf(g.Out, "sepmbot %s on Discord for %s.\n", shortVersion(), strings.Join(names, ", "))
	if deps.Started != nil {
		deps.Started(w, d)
	}
	<-ctx.Done()
	_ = d.Close()
	stop()
	return nil
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

// chatHas reports whether --chat names platform, whether it is one value or a list
// (several platforms at once).
func chatHas(chat any, platform string) bool {
	switch c := chat.(type) {
	case string:
		return slices.Contains(strings.Split(c, ","), platform)
	case []string:
		return slices.Contains(c, platform)
	}
	return false
}

// DiscordCmd groups the Discord subcommands.
type DiscordCmd struct {
	Register DiscordRegisterCmd `cmd:"" help:"Register /sepm with its subcommands (bulk overwrite) for DISCORD_GUILD_ID, or globally."`
}

// DiscordRegisterCmd registers /sepm.
type DiscordRegisterCmd struct {
	DiscordAuthFlags `embed:""`
	SiteName         string `name:"site-name" default:"site-a" help:"Site names offered as choices (comma-separated)." env:"SEPMBOT_SITE_NAME"`
	deps             discordDeps
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
