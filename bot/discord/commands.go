package discord

import (
	"context"
	"fmt"
	"strings"

	"github.com/bwmarrin/discordgo"
)

// option kinds of /sepm's subcommands, in the order the text command takes them.
type optSpec struct {
	name, desc string
	kind       discordgo.ApplicationCommandOptionType
	required   bool
	auto       bool     // autocomplete (rotation or step ids)
	choices    []string // fixed choices
	flag       bool     // rendered as --name value (or --name for a boolean)
}

type subSpec struct {
	name, desc string
	opts       []optSpec
}

var (
	optSite = func(sites []string) optSpec {
		o := optSpec{name: "site", desc: "the SEPM site", kind: discordgo.ApplicationCommandOptionString}
		if len(sites) <= 25 {
			o.choices = sites
		}
		return o
	}
	optID       = optSpec{name: "id", desc: "the rotation, e.g. R7", kind: discordgo.ApplicationCommandOptionString, required: true, auto: true}
	optIDOpt    = optSpec{name: "id", desc: "the rotation, e.g. R7 (none: every active one)", kind: discordgo.ApplicationCommandOptionString, auto: true}
	optStep     = optSpec{name: "step", desc: "the step id, e.g. http-msl", kind: discordgo.ApplicationCommandOptionString, required: true, auto: true}
	optReason   = optSpec{name: "reason", desc: "why (kept in the audit trail)", kind: discordgo.ApplicationCommandOptionString}
	optReasonRq = optSpec{name: "reason", desc: "why (kept in the audit trail)", kind: discordgo.ApplicationCommandOptionString, required: true}
	optMode     = optSpec{name: "mode", desc: "procedure: auto (chosen from the site), single or multi", kind: discordgo.ApplicationCommandOptionString, choices: []string{"auto", "single", "multi"}, flag: true}
	optMinWait  = optSpec{name: "min-wait", desc: "floor of every heartbeat wait, e.g. 30m or 24h", kind: discordgo.ApplicationCommandOptionString, flag: true}
	optStraggle = optSpec{name: "straggler", desc: "multi-server path: how long the last server keeps the old certificate, e.g. 90d", kind: discordgo.ApplicationCommandOptionString, flag: true}
	optCert     = optSpec{name: "new-cert-sha256", desc: "SHA-256 of the new certificate, or NAME=FP; several separated by spaces", kind: discordgo.ApplicationCommandOptionString, flag: true}
	optDamaged  = optSpec{name: "damaged-but-valid", desc: "the current certificate is damaged but still valid", kind: discordgo.ApplicationCommandOptionBoolean, flag: true}
)

// subcommands mirrors the /sepm grammar (commands package); the text each builds is
// parsed by commands.Parse like any other platform's.
func subcommands(sites []string) []subSpec {
	return []subSpec{
		{name: "help", desc: "show the help, or the usage of one subcommand", opts: []optSpec{{name: "subcommand", desc: "a subcommand", kind: discordgo.ApplicationCommandOptionString,
			choices: []string{"plan", "rotate", "status", "list", "approve", "deny", "done", "confirm", "pause", "resume", "abort", "audit"}}}},
		{name: "plan", desc: "read the site and show the rotation plan, changing nothing", opts: []optSpec{optSite(sites), optMode, optMinWait, optDamaged}},
		{name: "rotate", desc: "start a rotation; asks two approvers before secure communication goes off", opts: []optSpec{optSite(sites), optMode, optMinWait, optStraggle, optCert, optDamaged}},
		{name: "status", desc: "progress of one rotation, or of every active one", opts: []optSpec{optIDOpt}},
		{name: "list", desc: "list rotations, newest first"},
		{name: "approve", desc: "approve disabling secure communication for a rotation", opts: []optSpec{optID}},
		{name: "deny", desc: "deny a rotation's approval request", opts: []optSpec{optID, optReason}},
		{name: "done", desc: "report a manual step as done; the bot verifies it", opts: []optSpec{optID, optStep}},
		{name: "confirm", desc: "confirm what the bot asks you to check (e.g. the fingerprint it sees)", opts: []optSpec{optID, optStep}},
		{name: "pause", desc: "pause a rotation before its next step", opts: []optSpec{optID}},
		{name: "resume", desc: "resume a paused rotation", opts: []optSpec{optID}},
		{name: "abort", desc: "abort: restore secure communication and the server lists safely", opts: []optSpec{optID, optReasonRq}},
		{name: "audit", desc: "the audit trail of a rotation", opts: []optSpec{optID}},
	}
}

// Commands is /sepm as Discord application commands: one command, a subcommand
// per verb, typed options; usable in servers only (dm_permission false).
func Commands(sites []string) []*discordgo.ApplicationCommand {
	dm := false
	var subs []*discordgo.ApplicationCommandOption
	for _, sc := range subcommands(sites) {
		sub := &discordgo.ApplicationCommandOption{Type: discordgo.ApplicationCommandOptionSubCommand, Name: sc.name, Description: cut(sc.desc, 100)}
		for _, o := range sc.opts {
			opt := &discordgo.ApplicationCommandOption{Type: o.kind, Name: o.name, Description: cut(o.desc, 100), Required: o.required, Autocomplete: o.auto}
			for _, c := range o.choices {
				opt.Choices = append(opt.Choices, &discordgo.ApplicationCommandOptionChoice{Name: c, Value: c})
			}
			sub.Options = append(sub.Options, opt)
		}
		subs = append(subs, sub)
	}
	return []*discordgo.ApplicationCommand{{
		Name: "sepm", Description: "SEPM server-certificate rotation", Type: discordgo.ChatApplicationCommand,
		DMPermission: &dm, Options: subs,
	}}
}

// Register overwrites the application's commands with /sepm (bulk overwrite: PUT),
// for the configured guild or globally. appID "" uses the one READY reported.
func (d *Discord) Register(ctx context.Context, appID string) error {
	if appID == "" {
		appID = d.AppID()
	}
	if appID == "" {
		var err error
		if appID, err = d.applicationID(ctx); err != nil {
			return err
		}
	}
	var n int
	err := d.call(ctx, "commands.overwrite", true, func(opts ...discordgo.RequestOption) error {
		out, err := d.s.ApplicationCommandBulkOverwrite(appID, d.cfg.GuildID, Commands(d.cfg.Sites), opts...)
		n = len(out)
		return err
	})
	if err != nil {
		return fmt.Errorf("registering /sepm: %w", err)
	}
	d.log.Info("registered /sepm", "guild", d.cfg.GuildID, "commands", n)
	return nil
}

// applicationID reads the bot's application id (GET /oauth2/applications/@me).
func (d *Discord) applicationID(ctx context.Context) (string, error) {
	var id string
	err := d.call(ctx, "application.get", true, func(opts ...discordgo.RequestOption) error {
		app, err := d.s.Application("@me")
		if err == nil {
			id = app.ID
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("reading the application id: %w", err)
	}
	return id, nil
}

// commandText turns an application command into the text /sepm grammar: the
// subcommand, its positional options in order, then its flags.
func commandText(data discordgo.ApplicationCommandInteractionData, sites []string) (string, error) {
	if data.Name != "sepm" || len(data.Options) != 1 || data.Options[0].Type != discordgo.ApplicationCommandOptionSubCommand {
		return "", fmt.Errorf("unknown command %q", data.Name)
	}
	sub := data.Options[0]
	var spec *subSpec
	for _, sc := range subcommands(sites) {
		if sc.name == sub.Name {
			spec = &sc
			break
		}
	}
	if spec == nil {
		return "", fmt.Errorf("unknown subcommand %q", sub.Name)
	}
	given := map[string]*discordgo.ApplicationCommandInteractionDataOption{}
	for _, o := range sub.Options {
		given[o.Name] = o
	}
	parts := []string{"/sepm", spec.name}
	var flags []string
	for _, o := range spec.opts {
		v, ok := given[o.name]
		if !ok {
			continue
		}
		switch o.kind {
		case discordgo.ApplicationCommandOptionBoolean:
			if b, _ := v.Value.(bool); b {
				flags = append(flags, "--"+o.name)
			}
		default:
			s := oneLine(fmt.Sprint(v.Value))
			if s == "" {
				continue
			}
			switch {
			case o.name == "new-cert-sha256":
				for _, fp := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
					flags = append(flags, "--"+o.name, fp)
				}
			case o.flag:
				flags = append(flags, "--"+o.name, s)
			default:
				parts = append(parts, s)
			}
		}
	}
	return strings.Join(append(parts, flags...), " "), nil
}

// oneLine replaces control characters (line breaks included) by spaces and trims.
func oneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s))
}
