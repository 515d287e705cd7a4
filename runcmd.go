package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"sepmbot/bot"
	"sepmbot/bot/console"
	"sepmbot/rotation"
	"sepmbot/sepm"
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
	ApprovalTTL  time.Duration `name:"approval-ttl" default:"1h" help:"How long an approval request stays open."`
	PollInterval time.Duration `name:"poll-interval" default:"30s" help:"Least time between two progress sweeps of the computers list."`
	CardInterval time.Duration `name:"card-interval" default:"10s" help:"Least time between two edits of a run card."`

	// AllowSingleApprover accepts --approvals 1; the card and the approval request say so.
	AllowSingleApprover bool `name:"allow-single-approver" help:"Accept --approvals 1: one person other than the requester may approve turning secure communication off (the card says so)." env:"SEPMBOT_ALLOW_SINGLE_APPROVER"`
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
	// The role resolver answers, for the engine, whether a voter still holds the
	// approver role now (rotation.Config.Roles takes it once the engine has that field).
	resolver := roles.Resolver()
	probe := rotation.Prober(sepm.ProbeCertificate)
	eng, err := rotation.NewEngine(rotation.Config{
		Store: db, SEPM: client, Probe: probe, Notifier: n, Site: f.SiteName, APIAddr: apiAddr, Servers: servers,
		Approvals: f.Approvals, ApprovalTTL: f.ApprovalTTL, PollInterval: f.PollInterval, Logger: log,
		IsApprover: func(u string) bool { ok, err := resolver.IsApprover(ctx, u); return ok && err == nil },
		Roles:      resolver, // re-asked at the dangerous step for each counted voter
	})
	if err != nil {
		return nil, err
	}
	if err := eng.Start(ctx); err != nil {
		return nil, fmt.Errorf("resuming rotations: %w", err)
	}
	r := &bot.Router{Engine: eng, Deliveries: db, Roles: roles, Approvals: f.Approvals, Sites: []string{f.SiteName}, Log: log}
	return &wiring{engine: eng, notifier: n, router: r}, nil
}

// RunCmd runs the bot.
type RunCmd struct {
	SEPMFlags `embed:""`
	BotFlags  `embed:""`
	Chat      string `default:"console" enum:"console" help:"Chat platform (console; Slack and Discord adapters come next)." env:"SEPMBOT_CHAT"`
	Data      string `required:"" type:"path" help:"Folder for the bbolt file." env:"SEPMBOT_DATA"`

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
func (c *RunCmd) Run(g *Globals) error {
	roles, err := c.roles()
	if err != nil {
		return err
	}
	who, err := c.consoleUser()
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
	con := console.New(g.In, g.Out, console.Options{As: who, SeqFile: filepath.Join(c.Data, "console.seq")})
	w, err := startBot(ctx, c.BotFlags, roles, client, db, con, apiAddr, servers, g.Log)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Out, "sepmbot %s on the console for %s, as console:%s (one person: @user prefixes are refused); type `/sepm help`.\n", version, c.SiteName, who)
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
