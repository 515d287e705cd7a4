package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"sepmbot/bot"
	"sepmbot/bot/console"
	"sepmbot/rotation"
	"sepmbot/sepm"
	"sepmbot/store"
)

// BotFlags are the bot's own settings, shared by run and demo.
type BotFlags struct {
	SiteName     string        `name:"site-name" default:"site-a" help:"Name of the site." env:"SEPMBOT_SITE_NAME"`
	Operators    []string      `help:"Operators (platform:id, comma-separated): may plan, rotate, done, pause, resume, abort." env:"SEPMBOT_OPERATORS"`
	Approvers    []string      `help:"Approvers (platform:id): may approve and deny." env:"SEPMBOT_APPROVERS"`
	Viewers      []string      `help:"Viewers (platform:id, or '*' for everyone in the channel): status, list, audit, help." env:"SEPMBOT_VIEWERS"`
	Approvals    int           `default:"2" help:"Distinct approvers needed before secure communication goes off." env:"SEPMBOT_APPROVALS"`
	ApprovalTTL  time.Duration `name:"approval-ttl" default:"1h" help:"How long an approval request stays open."`
	PollInterval time.Duration `name:"poll-interval" default:"30s" help:"Least time between two progress sweeps of the computers list."`
	CardInterval time.Duration `name:"card-interval" default:"10s" help:"Least time between two edits of a run card."`
	Channel      []string      `name:"channel" help:"Where /sepm is accepted and rotations live: platform:channel, repeatable (e.g. slack:C0123ABC); a platform not named accepts it anywhere." env:"SEPMBOT_CHANNELS"`
	Link         []string      `name:"link" help:"One person's accounts on several platforms (platform:id=platform:id): their votes count from any of them, once. Without a link a vote counts only from the platform a rotation lives on."`
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
	if n := roles.ApproverCount(); n < f.Approvals {
		return roles, fmt.Errorf("refusing to start: %d approvers configured (--approvers) but --approvals %d required; nobody could ever approve", n, f.Approvals)
	}
	return roles, nil
}

// wiring is everything a running bot is made of.
type wiring struct {
	engine   *rotation.Engine
	notifier *bot.Notifier
	router   *bot.Router
}

// startBot builds the engine, notifier and router on one platform and resumes every
// stored rotation. The caller serves the router and closes the notifier.
func startBot(ctx context.Context, f BotFlags, roles bot.Roles, client *sepm.Client, db *store.DB, p bot.Platform, apiAddr string, servers []rotation.ServerRef, log *slog.Logger) (*wiring, error) {
	channels, links, err := f.places()
	if err != nil {
		return nil, err
	}
	n := bot.NewNotifier(db, log, bot.Outlet{Platform: p, DefaultChannel: "sepm", Pacing: bot.Pacing{CardInterval: f.CardInterval}})
	probe := rotation.Prober(sepm.ProbeCertificate)
	eng, err := rotation.NewEngine(rotation.Config{
		Store: db, SEPM: client, Probe: probe, Notifier: n, Site: f.SiteName, APIAddr: apiAddr, Servers: servers,
		Approvals: f.Approvals, ApprovalTTL: f.ApprovalTTL, PollInterval: f.PollInterval, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	if err := eng.Start(ctx); err != nil {
		return nil, fmt.Errorf("resuming rotations: %w", err)
	}
	r := &bot.Router{Engine: eng, Deliveries: db, Roles: roles, Sites: []string{f.SiteName}, Channels: channels, Links: links, Messages: n, Log: log}
	return &wiring{engine: eng, notifier: n, router: r}, nil
}

// RunCmd runs the bot.
type RunCmd struct {
	SEPMFlags    `embed:""`
	BotFlags     `embed:""`
	Chat         string `default:"console" enum:"console,discord" help:"Chat platform (console, discord)." env:"SEPMBOT_CHAT"`
	DiscordFlags `embed:""`
	Data         string `required:"" type:"path" help:"Folder for the bbolt file." env:"SEPMBOT_DATA"`
	As           string `default:"operator" help:"Console: the user of lines without @user."`
}

// Run starts the bot and serves until interrupted or, on the console, end of input.
func (c *RunCmd) Run(g *Globals) error {
	roles, err := c.roles()
	if err != nil {
		return err
	}
	client, err := c.client(g.Log)
	if err != nil {
		return err
	}
	servers, err := c.servers()
	if err != nil {
		return err
	}
	apiAddr, err := c.apiAddr()
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
	if chatHas(c.Chat, "discord") {
		return c.runDiscord(ctx, g, roles, client, db, apiAddr, servers, discordDeps{})
	}
	con := console.New(g.In, g.Out, console.Options{As: c.As, SeqFile: filepath.Join(c.Data, "console.seq")})
	w, err := startBot(ctx, c.BotFlags, roles, client, db, con, apiAddr, servers, g.Log)
	if err != nil {
		return err
	}
	w.router.HelpExtra = console.Help
	fmt.Fprintf(g.Out, "sepmbot %s on the console for %s; type `/sepm help`.\n", shortVersion(), c.SiteName)
	w.router.Serve(ctx, con) // returns at end of input
	if ctx.Err() == nil {
		// Input ended (a pipe, or Ctrl-D): keep driving rotations until interrupted.
		<-g.Ctx.Done()
	}
	cancel()
	w.engine.Wait()
	w.notifier.Close()
	return nil
}
