package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"sepmbot/admin"
	"sepmbot/bot"
	"sepmbot/config"
	"sepmbot/logs"
	"sepmbot/rotation"
	"sepmbot/sepm"
	"sepmbot/sites"
	"sepmbot/store"
)

// siteSpec is one SEPM site the bot runs, connected.
type siteSpec struct {
	Name     string
	Client   *sepm.Client
	APIAddr  string
	Servers  []rotation.ServerRef
	LockWith []string
	// Own roles and channels of the site (empty: the global ones).
	Operators, Approvers, Viewers, Channels []string
}

// siteFlags returns the SEPM settings of every configured site: the config file's
// sites, or the one site of the --sepm-* flags.
func siteFlags(g *Globals, f SEPMFlags, siteName string) ([]config.Site, []SEPMFlags, error) {
	if g.File == nil || g.File.Sites == nil {
		return []config.Site{{Name: siteName}}, []SEPMFlags{f}, nil
	}
	if f.SEPMURL != "" {
		return nil, nil, fmt.Errorf("--sepm-url (SEPMBOT_SEPM_URL) and the sites of %s both name a SEPM: give one or the other", g.File.Path)
	}
	if probs := config.CheckSites(g.File.Sites); len(probs) > 0 {
		return nil, nil, fmt.Errorf("config file %s:\n  %s", g.File.Path, strings.Join(probs, "\n  "))
	}
	if len(g.File.Sites) == 0 {
		return nil, nil, fmt.Errorf("config file %s: sites is empty", g.File.Path)
	}
	var out []SEPMFlags
	for _, s := range g.File.Sites {
		sf := SEPMFlags{
			SEPMURL: s.URL, SEPMUser: s.User, SEPMDomain: s.Domain, SEPMPasswordFile: s.PasswordFile,
			SEPMCA: s.CA, SEPMFingerprint: s.Fingerprints, SEPMServer: s.Servers, SEPMInsecure: s.Insecure,
			passwordEnv: s.PasswordVar(),
		}
		if len(g.File.Sites) == 1 && s.PasswordEnv == "" {
			sf.passwordEnv = "" // one site: SEPMBOT_SEPM_PASSWORD_<NAME> or SEPMBOT_SEPM_PASSWORD
			sf.passwordAlt = s.PasswordVar()
		}
		out = append(out, sf)
	}
	return g.File.Sites, out, nil
}

// connectSites builds each site's SEPM client.
func connectSites(g *Globals, f SEPMFlags, siteName string) ([]siteSpec, error) {
	cs, fs, err := siteFlags(g, f, siteName)
	if err != nil {
		return nil, err
	}
	groups := config.LockGroups(cs)
	var out []siteSpec
	for i, sf := range fs {
		at := ""
		if len(fs) > 1 || g.File != nil && g.File.Sites != nil {
			at = "site " + cs[i].Name + ": "
		}
		client, err := sf.client(g.Log)
		if err != nil {
			return nil, fmt.Errorf("%s%w", at, err)
		}
		servers, err := sf.servers()
		if err != nil {
			return nil, fmt.Errorf("%s%w", at, err)
		}
		apiAddr, err := sf.apiAddr()
		if err != nil {
			return nil, fmt.Errorf("%s%w", at, err)
		}
		c := cs[i]
		out = append(out, siteSpec{Name: c.Name, Client: client, APIAddr: apiAddr, Servers: servers, LockWith: groups[c.Name],
			Operators: c.Operators, Approvers: c.Approvers, Viewers: c.Viewers, Channels: c.Channels})
	}
	return out, nil
}

// siteRoles returns the router's roles: the global ones plus every site's own (each
// site's own lists are enforced again by the mux), after checking that every site
// has enough approvers.
func siteRoles(f BotFlags, specs []siteSpec) (bot.Roles, error) {
	ops, apps, views := slices.Clone(f.Operators), slices.Clone(f.Approvers), slices.Clone(f.Viewers)
	for _, s := range specs {
		ops, apps, views = append(ops, s.Operators...), append(apps, s.Approvers...), append(views, s.Viewers...)
		if len(s.Approvers) > 0 {
			r, err := bot.ParseRoles(nil, s.Approvers, nil)
			if err != nil {
				return r, fmt.Errorf("site %s: %w", s.Name, err)
			}
			if r.ApproverCount() < f.Approvals {
				return r, fmt.Errorf("refusing to start: site %s has %d approvers but --approvals %d required; nobody could ever approve", s.Name, r.ApproverCount(), f.Approvals)
			}
		}
	}
	g := f
	g.Operators, g.Approvers, g.Viewers = ops, apps, views
	return g.roles()
}

// running is a started bot: one engine per site behind a mux, one notifier, the
// router, and the admin listener.
type running struct {
	engines   []*rotation.Engine
	mux       *sites.Mux
	notifier  *bot.Notifier
	router    *bot.Router
	platform  bot.Platform   // the first chat platform, instrumented: serve the router on it
	platforms []bot.Platform // every chat platform, instrumented, in the order of chats (run: console, Slack, Discord)
	admin     *admin.Server
	adminURL  string // "" when not listening
}

// first is the first site's engine (the demo has one site).
func (r *running) first() *rotation.Engine { return r.engines[0] }

// wait blocks until every engine's drivers stopped (after the context is done).
func (r *running) wait() {
	for _, e := range r.engines {
		e.Wait()
	}
}

// groupLister is a chat platform that can tell a user's groups now (Slack's user
// groups), for the approver re-check at the dangerous step.
type groupLister interface {
	GroupsOf(ctx context.Context, user string) []string
}

// memberRoles is a chat platform that looks a member's roles up now (Discord).
type memberRoles interface {
	MemberRoles(ctx context.Context, user string) ([]string, error)
}

// chatGroups answers, for the approver re-check at the dangerous step, which groups
// a user of a platform belongs to now: Slack's user groups, Discord's member roles.
// A platform that cannot tell is an error, so a voter named only through a group is
// not counted on a guess.
func chatGroups(chats []chatOutlet) func(ctx context.Context, platform, id string) ([]string, error) {
	return func(ctx context.Context, platform, id string) ([]string, error) {
		for _, c := range chats {
			if c.Platform.Name() != platform {
				continue
			}
			switch gl := c.Platform.(type) {
			case groupLister:
				return gl.GroupsOf(ctx, id), nil
			case memberRoles:
				return gl.MemberRoles(ctx, id)
			}
		}
		return nil, fmt.Errorf("%s: no chat platform resolves its groups", platform)
	}
}

// chatOutlet is one chat platform the bot runs on, and where a rotation with no
// recorded home lives there.
type chatOutlet struct {
	Platform       bot.Platform
	DefaultChannel string
}

// startSites builds one engine per site over db, resumes every stored rotation,
// and starts the admin listener on adminListen ("" for none).
func startSites(ctx context.Context, g *Globals, f BotFlags, roles bot.Roles, specs []siteSpec, db *store.DB, chats []chatOutlet, adminListen string) (*running, error) {
	adminToken, err := secretEnv(admin.TokenEnv) // read before anything starts
	if err != nil {
		return nil, err
	}
	log := g.Log
	metrics := g.Metrics
	if metrics == nil {
		metrics = admin.NewMetrics(log)
	}
	channels, links, err := f.places()
	if err != nil {
		return nil, err
	}
	if len(chats) == 0 {
		return nil, fmt.Errorf("no chat platform")
	}
	var outs []bot.Outlet
	var plats []bot.Platform
	var adminChats []admin.Chat
	for _, c := range chats {
		chat := metrics.InstrumentPlatform(c.Platform, config.Secrets)
		ch := c.DefaultChannel
		if ch == "" {
			ch = "sepm"
		}
		outs = append(outs, bot.Outlet{Platform: chat, DefaultChannel: ch, Pacing: bot.Pacing{CardInterval: f.CardInterval}})
		plats = append(plats, chat)
		adminChats = append(adminChats, chat)
	}
	n := bot.NewNotifier(db, log, outs...)
	steps := g.Steps
	if steps == nil {
		steps = &logs.Steps{}
	}
	notify := &stepNotifier{Notifier: n, steps: steps, log: log}
	run := &running{notifier: n, platform: plats[0], platforms: plats}
	var muxSites []sites.Site
	var insts []*admin.SEPM
	byName := map[string]admin.Rotations{}
	// The role resolver answers, for the engine, whether a voter still holds the
	// approver role now.
	resolver := roles.Resolver()
	resolver.Groups = chatGroups(chats)

	for _, s := range specs {
		inst := metrics.InstrumentSEPM(s.Name, s.Client)
		insts = append(insts, inst)
		eng, err := rotation.NewEngine(rotation.Config{
			Store: db, SEPM: inst, Probe: rotation.Prober(sepm.ProbeCertificate), Notifier: notify, Site: s.Name, APIAddr: s.APIAddr, Servers: s.Servers,
			Approvals: f.Approvals, ApprovalTTL: f.ApprovalTTL, PollInterval: f.PollInterval, Logger: log.With("site", s.Name),
			IsApprover: func(u string) bool { ok, err := resolver.IsApprover(ctx, u); return ok && err == nil },
			Roles:      resolver, LockSites: s.LockWith, OverdueAfter: f.OverdueAfter,
		})
		if err != nil {
			return nil, fmt.Errorf("site %s: %w", s.Name, err)
		}
		run.engines = append(run.engines, eng)
		metrics.AddSite(s.Name, eng)
		byName[s.Name] = eng
		muxSites = append(muxSites, sites.Site{Name: s.Name, Engine: eng, LockWith: s.LockWith,
			Operators: s.Operators, Approvers: s.Approvers, Channels: s.Channels})
	}
	mux, err := sites.New(db, muxSites)
	if err != nil {
		return nil, err
	}
	run.mux = mux
	for i, eng := range run.engines {
		// Lines logged while resuming already carry each rotation's step.
		if rots, err := eng.List(ctx); err == nil {
			for _, r := range rots {
				notify.track(rotation.View{Rotation: r})
			}
		}
		if err := eng.Start(ctx); err != nil {
			return nil, fmt.Errorf("site %s: resuming rotations: %w", specs[i].Name, err)
		}
	}
	run.router = &bot.Router{Engine: mux, Deliveries: db, Roles: roles, Approvals: f.Approvals, Sites: mux.Names(), Channels: channels, Links: links, Messages: n, Log: log}
	run.admin = &admin.Server{Metrics: metrics, Store: db, Chats: adminChats, SEPM: insts, Engines: byName, Log: log, Token: adminToken}
	interval := max(f.PollInterval, time.Second)
	for _, inst := range insts {
		go inst.Watch(ctx, interval)
	}
	if adminListen != "" {
		addr, _, err := admin.Listen(ctx, adminListen, run.admin.Handler(), log)
		if err != nil {
			// The rotation matters more than its metrics: say so loudly and go on.
			log.Error("admin listener not started: /healthz, /readyz and /metrics are unavailable", "addr", adminListen, "err", err)
		} else {
			run.adminURL = "http://" + addr
			log.Info("admin listener", "url", run.adminURL)
		}
	}
	return run, nil
}

// stepNotifier remembers each rotation's current step for the log handler, and
// logs every thread message with the rotation and its step.
type stepNotifier struct {
	*bot.Notifier
	steps *logs.Steps
	log   *slog.Logger
}

func (n *stepNotifier) track(v rotation.View) {
	r := v.Rotation
	if step, _, ok := r.Current(); ok && r.Active() {
		n.steps.Set(r.ID, step.ID)
	} else {
		n.steps.Set(r.ID, "")
	}
}

// Update implements rotation.Notifier.
func (n *stepNotifier) Update(ctx context.Context, v rotation.View) {
	n.track(v)
	n.Notifier.Update(ctx, v)
}

// Post implements rotation.Notifier.
func (n *stepNotifier) Post(ctx context.Context, id, text string) {
	n.log.Info("rotation: "+firstLine(text), "rotation", id)
	n.Notifier.Post(ctx, id, text)
}

// RequestApproval implements rotation.Notifier.
func (n *stepNotifier) RequestApproval(ctx context.Context, v rotation.View) ([]string, error) {
	n.track(v)
	n.log.Info("rotation: approval requested", "rotation", v.Rotation.ID)
	return n.Notifier.RequestApproval(ctx, v)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// pickSite returns the SEPM settings of the site named name: the config file's
// site of that name, or the --sepm-* flags when the file names no sites.
func pickSite(g *Globals, f SEPMFlags, name string) (SEPMFlags, error) {
	cs, fs, err := siteFlags(g, f, name)
	if err != nil {
		return f, err
	}
	if g.File == nil || g.File.Sites == nil {
		return fs[0], nil
	}
	var names []string
	for i, c := range cs {
		if strings.EqualFold(c.Name, name) {
			return fs[i], nil
		}
		names = append(names, c.Name)
	}
	return f, fmt.Errorf("--site-name %q is not a site of %s (%s)", name, g.File.Path, strings.Join(names, ", "))
}
