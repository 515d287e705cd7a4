package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/slack-go/slack"

	"sepmbot/bot"
	"sepmbot/config"
	"sepmbot/sepm"
	"sepmbot/store"
)

// ConfigCmd groups the config subcommands.
type ConfigCmd struct {
	Check ConfigCheckCmd `cmd:"" help:"Validate everything the bot needs and print one line per problem; exit non-zero on any."`
}

// ConfigCheckCmd validates the configuration the bot would run with.
type ConfigCheckCmd struct {
	SEPMFlags `embed:""`
	BotFlags  `embed:""`
	Chat      []string `default:"console" enum:"console,slack,discord" help:"Chat platforms to check (their tokens are tried against the platform)." env:"SEPMBOT_CHAT"`
	// SlackAPIURL and the Discord token file: where the chat checks go.
	SlackAPIURL      string        `name:"slack-api-url" default:"https://slack.com/api/" help:"Slack Web API base URL." env:"SLACK_API_URL"`
	DiscordTokenFile string        `name:"discord-token-file" type:"path" help:"Discord: file holding the bot token (or set DISCORD_BOT_TOKEN)." env:"DISCORD_BOT_TOKEN_FILE"`
	discordClient    *http.Client  // tests: the fake Discord`
	Data             string        `required:"" type:"path" help:"Folder for the bbolt file." env:"SEPMBOT_DATA"`
	Timeout          time.Duration `default:"30s" help:"How long the whole check may take."`
}

// checkReport collects the lines of a check.
type checkReport struct {
	ok, notes, problems []string
}

func (r *checkReport) okf(format string, a ...any) { r.ok = append(r.ok, fmt.Sprintf(format, a...)) }
func (r *checkReport) note(format string, a ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, a...))
}
func (r *checkReport) fail(format string, a ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, a...))
}
func (r *checkReport) failErr(prefix string, e error) { r.fail("%s: %v", prefix, e) }

// Run checks roles, the data folder, every site and the chat tokens.
func (c *ConfigCheckCmd) Run(g *Globals) error {
	ctx, cancel := context.WithTimeout(g.Ctx, c.Timeout)
	defer cancel()
	var rep checkReport
	c.checkRoles(&rep)
	checkDataFolder(&rep, c.Data)
	cs, fs, err := siteFlags(g, c.SEPMFlags, c.SiteName)
	if err != nil {
		rep.failErr("sites", err)
	}
	groups := config.LockGroups(cs)
	for i, sf := range fs {
		checkSite(ctx, g, &rep, cs[i].Name, sf, groups[cs[i].Name])
	}
	c.checkChat(ctx, &rep)
	for _, l := range rep.ok {
		fmt.Fprintln(g.Out, "ok:      "+redact(l))
	}
	for _, l := range rep.notes {
		fmt.Fprintln(g.Out, "note:    "+redact(l))
	}
	for _, l := range rep.problems {
		fmt.Fprintln(g.Out, "PROBLEM: "+redact(l))
	}
	if n := len(rep.problems); n > 0 {
		return fmt.Errorf("config check: %d problem(s)", n)
	}
	fmt.Fprintln(g.Out, "config check: OK")
	return nil
}

// checkRoles: roles parse, none empty, and every operator finds enough approvers
// other than themself.
func (c *ConfigCheckCmd) checkRoles(rep *checkReport) {
	roles, err := bot.ParseRoles(c.Operators, c.Approvers, c.Viewers)
	if err != nil {
		rep.failErr("roles", err)
		return
	}
	if c.Approvals < 1 {
		rep.fail("--approvals %d: must be at least 1", c.Approvals)
	}
	if len(roles.Operators) == 0 {
		rep.fail("no operators configured (--operators / SEPMBOT_OPERATORS): nobody could start a rotation")
	}
	if len(roles.Approvers) == 0 {
		rep.fail("no approvers configured (--approvers / SEPMBOT_APPROVERS): nobody could approve disabling secure communication")
		return
	}
	if len(roles.Viewers) == 0 {
		rep.note("no viewers configured (--viewers): only operators and approvers can read status")
	}
	tooFew := len(roles.Approvers) < c.Approvals
	short := tooFew
	if tooFew {
		rep.fail("%d approver(s) configured (--approvers) but --approvals %d required: nobody could ever approve", len(roles.Approvers), c.Approvals)
	}
	for _, op := range roles.Operators {
		others := 0
		for _, a := range roles.Approvers {
			if a != op {
				others++
			}
		}
		if !tooFew && others < c.Approvals {
			short = true
			rep.fail("when %s requests a rotation, only %d other approver(s) remain but --approvals is %d: the requester never counts", op, others, c.Approvals)
		}
	}
	if !short {
		rep.okf("roles: %d operator(s), %d approver(s) (%d needed, none the requester), %d viewer entr(ies)", len(roles.Operators), len(roles.Approvers), c.Approvals, len(roles.Viewers))
	}
}

// checkDataFolder: the folder exists or can be made, and a file can be written in it.
func checkDataFolder(rep *checkReport, dir string) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		rep.fail("data folder %s cannot be created: %v", dir, errors.Unwrap(err))
		return
	}
	f, err := os.CreateTemp(dir, ".sepmbot-check-*")
	if err != nil {
		rep.fail("data folder %s is not writable: %v", dir, unwrapPath(err))
		return
	}
	name := f.Name()
	_, werr := f.Write([]byte("check"))
	serr := f.Sync()
	f.Close()
	os.Remove(name)
	if werr != nil || serr != nil {
		rep.fail("data folder %s: writing a file failed: %v", dir, errors.Join(werr, serr))
		return
	}
	path := filepath.Join(dir, "sepmbot.db")
	if _, err := os.Stat(path); err != nil {
		rep.okf("data folder %s: writable (no data file yet)", dir)
		return
	}
	db, err := store.OpenReadOnly(path)
	switch {
	case errors.Is(err, store.ErrLocked):
		rep.okf("data folder %s: writable; its data file is held by a running bot", dir)
	case err != nil:
		rep.failErr("data file "+path, err)
	default:
		db.Close()
		rep.okf("data folder %s: writable; data file opens", dir)
	}
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkSite: the client builds, SEPM answers over a trusted connection, the
// credentials are accepted, the user may read what a rotation reads, the servers'
// client ports answer, and the replication status reads.
func checkSite(ctx context.Context, g *Globals, rep *checkReport, name string, sf SEPMFlags, configured []string) {
	at := "site " + name
	cfg, err := sf.clientConfig(g.Log)
	if err != nil {
		rep.failErr(at, err)
		return
	}
	cfg.MaxRetries = -1 // a check reports, it does not insist
	cfg.Timeout = 10 * time.Second
	client, err := sepm.New(cfg)
	if err != nil {
		rep.failErr(at, err)
		return
	}
	apiAddr, err := sf.apiAddr()
	if err != nil {
		rep.failErr(at, err)
		return
	}
	servers, err := sf.servers()
	if err != nil {
		rep.failErr(at, err)
	}
	if err := client.Login(ctx); err != nil {
		rep.fail("%s: %s", at, explainSEPM(ctx, err, sf, apiAddr))
		return
	}
	defer func() { _ = client.Logout(context.WithoutCancel(ctx)) }()
	rep.okf("%s: SEPM at %s trusted, user %s logged in", at, sf.SEPMURL, sf.SEPMUser)
	v, err := client.Version(ctx)
	if err != nil {
		rep.fail("%s: reading the version: %s", at, explainSEPM(ctx, err, sf, apiAddr))
	} else {
		rep.okf("%s: SEPM %s (API %s)", at, v.Version, v.APIVersion)
	}
	reads := []struct {
		what string
		call func() error
	}{
		{"groups and location settings", func() error {
			groups, err := client.Groups(ctx)
			if err != nil || len(groups) == 0 {
				return err
			}
			locs, err := client.Locations(ctx, groups[0].ID)
			if err != nil || len(locs) == 0 {
				return err
			}
			_, err = client.LocationSettings(ctx, groups[0].ID, locs[0].ID)
			return err
		}},
		{"management servers", func() error { _, err := client.AdminServers(ctx); return err }},
		{"computers", func() error {
			stop := errors.New("one page is enough")
			err := client.EachComputerPage(ctx, sepm.ComputerQuery{}, func([]sepm.Computer) error { return stop })
			if errors.Is(err, stop) {
				return nil
			}
			return err
		}},
		{"client versions", func() error { _, err := client.ClientVersions(ctx); return err }},
	}
	var denied []string
	for _, r := range reads {
		if err := r.call(); err != nil {
			var ae *sepm.APIError
			if errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403) {
				denied = append(denied, r.what)
				continue
			}
			rep.fail("%s: reading %s: %v", at, r.what, err)
		}
	}
	if len(denied) > 0 {
		rep.fail("%s: user %s may not read %s: a rotation needs a system administrator", at, sf.SEPMUser, strings.Join(denied, ", "))
	} else {
		rep.okf("%s: user %s may read groups, location settings, servers, computers and client versions (write rights are only used during a rotation and not tested here)", at, sf.SEPMUser)
	}
	st, err := client.ReplicationStatus(ctx)
	if err != nil {
		rep.fail("%s: reading the replication status: %v", at, err)
	} else if n := len(st.ReplicationStatus.ReplicationPartnerStatusList); n > 0 {
		var partners []string
		for _, p := range st.ReplicationStatus.ReplicationPartnerStatusList {
			partners = append(partners, p.Name)
		}
		if len(configured) == 0 {
			rep.note("%s: SEPM replicates with %s, but no replication-partners are configured for it: if another configured site is that partner, name it so one rotation runs at a time across both", at, strings.Join(partners, ", "))
		} else {
			rep.okf("%s: replicates with %s; lock shared with %s", at, strings.Join(partners, ", "), strings.Join(configured, ", "))
		}
	} else {
		rep.okf("%s: no replication partner", at)
	}
	for _, s := range servers {
		ci, err := sepm.ProbeCertificate(ctx, s.ClientAddr)
		if err != nil {
			rep.fail("%s: server %s: client port %s does not answer TLS: %v", at, s.Name, s.ClientAddr, err)
			continue
		}
		rep.okf("%s: server %s at %s presents %s", at, s.Name, s.ClientAddr, ci.SHA256)
	}
	if len(servers) == 0 {
		rep.note("%s: no --sepm-server given: certificate steps are verified on the API port only", at)
	}
}

// explainSEPM turns a failed first call into what to fix.
func explainSEPM(ctx context.Context, err error, sf SEPMFlags, apiAddr string) string {
	var ae *sepm.APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case 401, 403:
			src := "SEPMBOT_SEPM_PASSWORD"
			if sf.passwordEnv != "" {
				src = sf.passwordEnv
			}
			if sf.SEPMPasswordFile != "" {
				src = sf.SEPMPasswordFile
			}
			return fmt.Sprintf("SEPM refused the credentials of user %q (HTTP %d): check the password (from %s), the user and the domain", sf.SEPMUser, ae.Status, src)
		}
		return err.Error()
	}
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	msg := err.Error()
	if errors.As(err, &unknownCA) || errors.As(err, &hostErr) || strings.Contains(msg, "certificate") || strings.Contains(msg, "x509") || strings.Contains(msg, "fingerprint") {
		seen := ""
		if ci, perr := sepm.ProbeCertificate(ctx, apiAddr); perr == nil {
			seen = fmt.Sprintf("; it presents SHA-256 %s (%s): if that is your SEPM's certificate, give --sepm-fingerprint %s or its CA with --sepm-ca", ci.SHA256, ci.Subject, ci.SHA256)
		}
		return fmt.Sprintf("the SEPM API certificate at %s is not trusted: %v%s", apiAddr, err, seen)
	}
	return fmt.Sprintf("SEPM at %s unreachable: %v", sf.SEPMURL, err)
}

// checkChat tries the chat tokens against their platforms: Slack's auth.test (and,
// for Socket Mode, apps.connections.open with the app-level token), Discord's
// application. A platform named in --chat without its token is a problem; a token
// set for a platform not named is checked too. Errors carry the platform's error
// code, never the token.
func (c *ConfigCheckCmd) checkChat(ctx context.Context, rep *checkReport) {
	rep.okf("chat: %s", strings.Join(c.Chat, ", "))
	slackBot, err := config.Secret("SLACK_BOT_TOKEN", "")
	if err != nil {
		rep.fail("slack: %v", err)
	}
	slackApp, err := config.Secret("SLACK_APP_TOKEN", "")
	if err != nil {
		rep.fail("slack: %v", err)
	}
	switch {
	case slackBot != "":
		api := c.SlackAPIURL
		if !strings.HasSuffix(api, "/") {
			api += "/"
		}
		sc := slack.New(slackBot, slack.OptionAPIURL(api), slack.OptionAppLevelToken(slackApp))
		if id, err := sc.AuthTestContext(ctx); err != nil {
			rep.fail("slack: Slack refused SLACK_BOT_TOKEN (auth.test: %s): install the app again and copy its Bot User OAuth Token", config.Secrets.Redact(err.Error()))
		} else {
			rep.okf("slack: the bot token works: bot %s in workspace %s (%s)", id.UserID, id.Team, id.TeamID)
		}
		if slackApp != "" {
			if _, _, err := sc.StartSocketModeContext(ctx); err != nil {
				rep.fail("slack: Slack refused SLACK_APP_TOKEN (apps.connections.open: %s): it needs the connections:write scope", config.Secrets.Redact(err.Error()))
			} else {
				rep.okf("slack: the app-level token opens Socket Mode")
			}
		}
	case slices.Contains(c.Chat, "slack"):
		rep.fail("slack: --chat slack but SLACK_BOT_TOKEN (or SLACK_BOT_TOKEN_FILE) is not set")
	}
	dtok, err := config.Secret("DISCORD_BOT_TOKEN", c.DiscordTokenFile)
	if err != nil {
		rep.fail("discord: %v", err)
	}
	switch {
	case dtok != "":
		s, err := discordgo.New("Bot " + dtok)
		if err != nil {
			rep.fail("discord: %s", config.Secrets.Redact(err.Error()))
			break
		}
		if c.discordClient != nil {
			s.Client = c.discordClient
		}
		if app, err := s.Application("@me"); err != nil {
			rep.fail("discord: Discord refused DISCORD_BOT_TOKEN (%s): copy the bot token from the application's Bot page", config.Secrets.Redact(err.Error()))
		} else {
			rep.okf("discord: the bot token works: application %s (%s)", app.Name, app.ID)
		}
	case slices.Contains(c.Chat, "discord"):
		rep.fail("discord: --chat discord but DISCORD_BOT_TOKEN (or DISCORD_BOT_TOKEN_FILE) is not set")
	}
}
