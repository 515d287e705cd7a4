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
	n := bot.NewNotifier(p, "sepm", db, f.CardInterval, log)
	probe := rotation.Prober(sepm.ProbeCertificate)
	eng, err := rotation.NewEngine(rotation.Config{
		Store: db, SEPM: client, Probe: probe, Notifier: n, Site: f.SiteName, APIAddr: apiAddr, Servers: servers,
		Approvals: f.Approvals, ApprovalTTL: f.ApprovalTTL, PollInterval: f.PollInterval, Logger: log,
		Roles: bot.ApproverCheck{Roles: roles},
	})
	if err != nil {
		return nil, err
	}
	if err := eng.Start(ctx); err != nil {
		return nil, fmt.Errorf("resuming rotations: %w", err)
	}
	r := &bot.Router{Engine: eng, Deliveries: db, Roles: roles, Sites: []string{f.SiteName}, Log: log}
	return &wiring{engine: eng, notifier: n, router: r}, nil
}

// RunCmd runs the bot.
type RunCmd struct {
	SEPMFlags `embed:""`
	BotFlags  `embed:""`
	Chat      string `default:"console" enum:"console" help:"Chat platform (console; Slack and Discord adapters come next)." env:"SEPMBOT_CHAT"`
	Data      string `required:"" type:"path" help:"Folder for the bbolt file." env:"SEPMBOT_DATA"`
	As        string `default:"operator" help:"Console: the user of lines without @user."`
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
	con := console.New(g.In, g.Out, console.Options{As: c.As, SeqFile: filepath.Join(c.Data, "console.seq")})
	w, err := startBot(ctx, c.BotFlags, roles, client, db, con, apiAddr, servers, g.Log)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Out, "sepmbot %s on the console for %s; type `/sepm help`.\n", version, c.SiteName)
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
