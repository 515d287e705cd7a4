package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"sepmbot/admin"
	"sepmbot/bot"
	"sepmbot/bot/console"
	"sepmbot/bot/discord"
	"sepmbot/store"
	"sepmbot/textsafe"
)

// BotFlags are the bot's own settings, shared by run and demo.
type BotFlags struct {
	SiteName     string        `name:"site-name" default:"site-a" help:"Name of the site." env:"SEPMBOT_SITE_NAME"`
	Operators    []string      `help:"Operators (platform:id, comma-separated): may plan, rotate, done, pause, resume, abort." env:"SEPMBOT_OPERATORS"`
	Approvers    []string      `help:"Approvers (platform:id): may approve and deny." env:"SEPMBOT_APPROVERS"`
	Viewers      []string      `help:"Viewers (platform:id, or '*' for everyone in the channel): status, list, audit, help." env:"SEPMBOT_VIEWERS"`
	Approvals    int           `default:"2" help:"Distinct approvers needed before secure communication goes off." env:"SEPMBOT_APPROVALS"`
	ApprovalTTL  time.Duration `name:"approval-ttl" default:"1h" help:"How long an approval request stays open." env:"SEPMBOT_APPROVAL_TTL"`
	PollInterval time.Duration `name:"poll-interval" default:"30s" help:"Time between two progress polls during a wait (full computers sweeps at its start and end; in between only the computers changed since the last poll)." env:"SEPMBOT_POLL_INTERVAL"`
	CardInterval time.Duration `name:"card-interval" default:"10s" help:"Least time between two edits of a run card." env:"SEPMBOT_CARD_INTERVAL"`

	OverdueAfter time.Duration `name:"overdue-after" default:"24h" help:"Past a rotation's expected end by this much, with clients on HTTP or secure communication off, the bot reminds the operators every 24h." env:"SEPMBOT_OVERDUE_AFTER"`

	// AllowSingleApprover accepts --approvals 1; the card and the approval request say so.
	AllowSingleApprover bool     `name:"allow-single-approver" help:"Accept --approvals 1: one person other than the requester may approve turning secure communication off (the card says so)." env:"SEPMBOT_ALLOW_SINGLE_APPROVER"`
	Channel             []string `name:"channel" help:"Where /sepm is accepted and rotations live: platform:channel, repeatable (e.g. slack:C0123ABC); a platform not named accepts it anywhere." env:"SEPMBOT_CHANNELS"`
	Link                []string `name:"link" help:"One person's accounts on several platforms (platform:id=platform:id): their votes count from any of them, once. Without a link a vote counts only from the platform a rotation lives on."`
}

// places parses --channel and --link.
func (f BotFlags) places() (bot.Channels, bot.Links, error) {
	ch, err := bot.ParseChannels(f.Channel)
	if err != nil {
		return nil, nil, err
	}
	links, err := bot.ParseLinks(f.Link)
	return ch, links, err
}

func (f BotFlags) roles() (bot.Roles, error) {
	roles, err := bot.ParseRoles(f.Operators, f.Approvers, f.Viewers)
	if err != nil {
		return roles, err
	}
	if f.Approvals < 1 {
		return roles, errors.New("--approvals must be at least 1")
	}
	if f.Approvals < 2 && !f.AllowSingleApprover {
		return roles, fmt.Errorf("refusing to start: --approvals %d lets one person approve turning secure communication off; the two-person rule is the default. Give --allow-single-approver to accept it (the card and the approval request then say so)", f.Approvals)
	}
	if n := roles.ApproverCount(); n < f.Approvals {
		return roles, fmt.Errorf("refusing to start: %d approvers configured (--approvers) but --approvals %d required; nobody could ever approve", n, f.Approvals)
	}
	return roles, nil
}

// RunCmd runs the bot.
type RunCmd struct {
	SEPMFlags    `embed:""`
	BotFlags     `embed:""`
	Chat         []string `default:"console" enum:"console,slack,discord" help:"Chat platforms, one or several at once (console,slack,discord). A rotation lives on the platform it was started from: its card and approval request go there, and votes count only from there (or from accounts linked with --link)." env:"SEPMBOT_CHAT"`
	SlackFlags   `embed:""`
	DiscordFlags `embed:""`
	Data         string `required:"" type:"path" help:"Folder for the bbolt file." env:"SEPMBOT_DATA"`
	AdminListen  string `name:"admin-listen" default:"127.0.0.1:9090" help:"Admin listener (/healthz, /readyz, /metrics); empty for none." env:"SEPMBOT_ADMIN_LISTEN"`

	// ConsoleUser is the console's one person.
	ConsoleUser string `name:"console-user" help:"Console: the one person at this terminal (default: the OS user). Every line is theirs, as console:NAME; @user prefixes are refused (only 'sepmbot demo' speaks as several users)." env:"SEPMBOT_CONSOLE_USER"`
}

// consoleUser is the console's one identity: --console-user, else the OS user.
func (c *RunCmd) consoleUser() (string, error) {
	name := c.ConsoleUser
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		if name == "" {
			name = os.Getenv("USER")
		}
		if name == "" {
			return "", errors.New("--console-user: the OS user is unknown; name the person at this terminal with --console-user NAME")
		}
	}
	if strings.HasPrefix(name, "@") || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) || !textsafe.Safe(name) {
		return "", fmt.Errorf("--console-user %q: a user name, without @, spaces or control characters", name)
	}
	return name, nil
}

// Run starts the bot and serves until interrupted or, on the console, end of input.
// On SIGTERM or SIGINT it stops taking events, lets the step in progress commit,
// flushes the card edits and closes the store; a restart resumes every rotation.
func (c *RunCmd) Run(g *Globals) error {
	specs, err := connectSites(g, c.SEPMFlags, c.SiteName)
	if err != nil {
		return err
	}
	if slices.Contains(c.Chat, "console") {
		if _, err := c.consoleUser(); err != nil {
			return err
		}
	}
	roles, err := siteRoles(c.BotFlags, specs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Data, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	db, err := store.Open(filepath.Join(c.Data, "sepmbot.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	if g.Metrics == nil {
		g.Metrics = admin.NewMetrics(g.Log)
	}
	return c.serve(g.Ctx, g, roles, specs, db, chatDeps{Observer: g.Metrics})
}

// serve runs the bot on every platform --chat names, behind one router and one
// notifier, until ctx is done, the console's input ends (then until ctx is done) or
// a platform stops on its own. Each rotation lives on the platform (and channel) it
// was started from: its card, thread and approval request go there, and votes count
// only from there (or from accounts linked with --link); status and list answer on
// every platform.
func (c *RunCmd) serve(ctx context.Context, g *Globals, roles bot.Roles, specs []siteSpec, db *store.DB, deps chatDeps) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if len(c.Chat) == 0 {
		return errors.New("--chat names no platform")
	}
	if g.Metrics == nil {
		g.Metrics = admin.NewMetrics(g.Log)
	}
	if deps.Observer == nil {
		deps.Observer = g.Metrics // Discord's API calls and 429s, beside Slack's
	}
	var chats []chatOutlet
	help := map[string]string{} // what /sepm help adds, per platform
	onConsole := slices.Contains(c.Chat, "console")
	who := ""
	if onConsole {
		var err error
		if who, err = c.consoleUser(); err != nil {
			return err
		}
		chats = append(chats, chatOutlet{Platform: console.New(g.In, g.Out, console.Options{As: who, SeqFile: filepath.Join(c.Data, "console.seq")})})
		help["console"] = console.Help
	}
	// Discord is built (offline) before Slack starts, so a flag mistake stops the
	// bot before anything connects.
	dc, err := c.discordOutlet(specs, deps, g.Log)
	if err != nil {
		return err
	}
	if dc != nil {
		defer dc.close()
	}
	sl, err := c.slackOutlet(ctx, db, roles, slackMetrics{g.Metrics}, deps.SlackSecret, g.Log)
	if err != nil {
		return err
	}
	if sl != nil {
		chats = append(chats, chatOutlet{Platform: sl, DefaultChannel: c.SlackFlags.defaultChannel()})
	}
	if dc != nil {
		chats = append(chats, chatOutlet{Platform: dc.d, DefaultChannel: dc.home})
		help[discord.PlatformName] = discordHelp
	}
	w, err := startSites(ctx, g, c.BotFlags, roles, specs, db, chats, c.AdminListen)
	if err != nil {
		if sl != nil {
			cancel()
			sl.Wait()
		}
		return err
	}
	// One router per platform: the same settings (a Router holds no state), each
	// with its own platform's help.
	routerOf := func(p bot.Platform) *bot.Router {
		rt := *w.router
		rt.HelpExtra = help[p.Name()]
		return &rt
	}
	// Every platform but the console is served in the background; one that stops on
	// its own (a revoked token) stops the bot.
	var served sync.WaitGroup
	stopped := make(chan struct{}, len(w.platforms))
	for i, p := range w.platforms {
		if onConsole && i == 0 {
			continue
		}
		served.Go(func() { routerOf(p).Serve(ctx, p); stopped <- struct{}{} })
	}
	// stop lets the step in progress commit, flushes the cards and the posts, then
	// lets the platforms go.
	stop := func() {
		g.Log.Info("stopping: letting the step in progress commit, then closing the store")
		cancel()
		served.Wait()
		w.wait()
		w.notifier.Close()
		if sl != nil {
			sl.Wait()
		}
		if dc != nil {
			dc.close()
		}
	}
	if dc != nil {
		if err := dc.start(ctx, c.DiscordFlags, w, deps, g.Log); err != nil {
			stop()
			return err
		}
	}
	sites := strings.Join(w.mux.Names(), ", ")
	if sl != nil {
		mode := "Socket Mode"
		if c.SlackListen != "" {
			mode = "HTTP mode on " + sl.Addr()
		}
		fmt.Fprintf(g.Out, "sepmbot %s on Slack (%s, workspace %s) for %s.\n", shortVersion(), mode, sl.Team(), sites)
	}
	if dc != nil {
		fmt.Fprintf(g.Out, "sepmbot %s on Discord for %s.\n", shortVersion(), sites)
	}
	if deps.Started != nil {
		var d *discord.Discord
		if dc != nil {
			d = dc.d
		}
		deps.Started(w, d)
	}
	if onConsole {
		fmt.Fprintf(g.Out, "sepmbot %s on the console for %s, as console:%s (one person: @user prefixes are refused); type `/sepm help`.\n", shortVersion(), sites, who)
		routerOf(w.platforms[0]).Serve(ctx, w.platforms[0]) // returns at end of input
	}
	if ctx.Err() == nil {
		// Input ended (a pipe, or Ctrl-D), or no console: keep driving rotations until
		// interrupted or a platform stops the bot.
		select {
		case <-ctx.Done():
		case <-stopped:
		}
	}
	stop()
	if sl != nil {
		if err := sl.Err(); err != nil {
			return fmt.Errorf("slack stopped the bot: %w", err)
		}
	}
	return nil
}
