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
	"time"
	"unicode"

	"sepmbot/admin"
	"sepmbot/bot"
	"sepmbot/bot/console"
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
	PollInterval time.Duration `name:"poll-interval" default:"30s" help:"Least time between two progress sweeps of the computers list." env:"SEPMBOT_POLL_INTERVAL"`
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
	Chat         []string `default:"console" enum:"console,slack,discord" help:"Chat platforms: console and slack, several at once; discord runs alone." env:"SEPMBOT_CHAT"`
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
	onConsole := slices.Contains(c.Chat, "console")
	who := ""
	if onConsole {
		if who, err = c.consoleUser(); err != nil {
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
	ctx, cancel := context.WithCancel(g.Ctx)
	defer cancel()
	if slices.Contains(c.Chat, "discord") {
		if len(c.Chat) > 1 {
			return errors.New("--chat discord runs alone in this version: give --chat discord without console or slack (run a second bot on another data folder for another platform)")
		}
		if g.Metrics == nil {
			g.Metrics = admin.NewMetrics(g.Log)
		}
		return c.runDiscord(ctx, g, roles, specs, db, discordDeps{Observer: g.Metrics})
	}
	var chats []chatOutlet
	if onConsole {
		chats = append(chats, chatOutlet{Platform: console.New(g.In, g.Out, console.Options{As: who, SeqFile: filepath.Join(c.Data, "console.seq")})})
	}
	if g.Metrics == nil {
		g.Metrics = admin.NewMetrics(g.Log)
	}
	sl, err := c.slackOutlet(ctx, db, roles, slackMetrics{g.Metrics}, g.Log)
	if err != nil {
		return err
	}
	if sl != nil {
		chats = append(chats, chatOutlet{Platform: sl, DefaultChannel: c.SlackFlags.defaultChannel()})
	}
	if len(chats) == 0 {
		return errors.New("--chat names no platform")
	}
	w, err := startSites(ctx, g, c.BotFlags, roles, specs, db, chats, c.AdminListen)
	if err != nil {
		return err
	}
	// Every platform but the console is served in the background; one that stops on
	// its own (a revoked token) stops the bot.
	stopped := make(chan struct{}, len(w.platforms))
	for i, p := range w.platforms {
		if onConsole && i == 0 {
			continue
		}
		go func() { w.router.Serve(ctx, p); stopped <- struct{}{} }()
	}
	sites := strings.Join(w.mux.Names(), ", ")
	if sl != nil {
		mode := "Socket Mode"
		if c.SlackListen != "" {
			mode = "HTTP mode on " + sl.Addr()
		}
		fmt.Fprintf(g.Out, "sepmbot %s on Slack (%s, workspace %s) for %s.\n", shortVersion(), mode, sl.Team(), sites)
	}
	if onConsole {
		w.router.HelpExtra = console.Help
		fmt.Fprintf(g.Out, "sepmbot %s on the console for %s, as console:%s (one person: @user prefixes are refused); type `/sepm help`.\n", shortVersion(), sites, who)
		w.router.Serve(ctx, w.platforms[0]) // returns at end of input
	}
	if ctx.Err() == nil {
		// Input ended (a pipe, or Ctrl-D), or no console: keep driving rotations until
		// interrupted or a platform stops the bot.
		select {
		case <-g.Ctx.Done():
		case <-stopped:
		}
	}
	var stopErr error
	if sl != nil {
		stopErr = sl.Err()
	}
	g.Log.Info("stopping: letting the step in progress commit, then closing the store")
	cancel()
	w.wait()
	w.notifier.Close()
	if sl != nil {
		sl.Wait()
	}
	if stopErr != nil {
		return fmt.Errorf("slack stopped the bot: %w", stopErr)
	}
	return nil
}
