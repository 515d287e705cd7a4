package discord

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/bwmarrin/discordgo"

	"sepmbot/commands"
)

// option kinds of /sepm's subcommands, in the order the text command takes them.
type optSpec struct {
	name, desc string
	kind       discordgo.ApplicationCommandOptionType
	required   bool
	auto       bool     // autocomplete (rotation or step ids)
	choices    []string // fixed choices
	flag       bool     // rendered as --name value (or --name for a boolean)
	repeat     bool     // a repeatable flag: values separated by spaces or commas
	meta       string   // the usage line's metavar: "N", "D", "FP"
}

type subSpec struct {
	name, desc string
	opts       []optSpec
}

// subDesc are the subcommands, in help order, with a Discord-sized description.
var subDesc = []struct{ name, desc string }{
	{"help", "show the help, or the usage of one subcommand"},
	{"plan", "read the site and show the rotation plan, changing nothing"},
	{"rotate", "start a rotation; asks two approvers before secure communication goes off"},
	{"status", "progress of one rotation, or of every active one"},
	{"list", "list rotations, newest first"},
	{"approve", "approve disabling secure communication for a rotation"},
	{"deny", "deny a rotation's approval request"},
	{"done", "report a manual step as done; the bot verifies it"},
	{"confirm", "confirm what the bot asks you to check (e.g. the fingerprint it sees)"},
	{"pause", "pause a rotation before its next step"},
	{"resume", "resume a paused rotation"},
	{"abort", "abort: restore secure communication and the server lists safely"},
	{"audit", "the audit trail of a rotation"},
}

// optDesc describes the options people know; others say where to read more.
var optDesc = map[string]string{
	"subcommand":        "a subcommand",
	"site":              "the SEPM site",
	"id":                "the rotation, e.g. R7",
	"step":              "the step id, e.g. http-msl",
	"reason":            "why (kept in the audit trail)",
	"mode":              "procedure: auto (chosen from the site), single or multi",
	"min-wait":          "floor of every heartbeat wait, e.g. 30m or 24h",
	"straggler":         "multi-server path: how long the last server keeps the old certificate, e.g. 90d",
	"new-cert-sha256":   "SHA-256 of the new certificate, or NAME=FP; several separated by spaces",
	"damaged-but-valid": "the current certificate is damaged but still valid",
}

// subcommands is the /sepm grammar as Discord options, read from the commands
// package's usage lines ("/sepm done <id> <step> [--accept-orphans N]"), so a flag
// added there appears here too; the text each builds is parsed by commands.Parse
// like any other platform's.
func subcommands(sites []string) []subSpec {
	var out []subSpec
	for _, sd := range subDesc {
		out = append(out, subSpec{name: sd.name, desc: sd.desc, opts: usageOptions(sd.name, commands.Usage(sd.name), sites)})
	}
	return out
}

// usageOptions turns a usage line into options: <x> a required positional, [x] an
// optional one, [x...] the rest of the line, [--f V] a flag with a value (choices
// when V is a|b|c), [--f] a boolean flag, a trailing "..." a repeatable flag.
func usageOptions(sub, usage string, sites []string) []optSpec {
	tok := strings.Fields(usage)
	if len(tok) < 2 {
		return nil
	}
	tok = tok[2:] // "/sepm", the subcommand
	var req, opt []optSpec
	for k := 0; k < len(tok); k++ {
		t := tok[k]
		o := optSpec{kind: discordgo.ApplicationCommandOptionString}
		switch {
		case strings.HasPrefix(t, "[--"):
			o.flag = true
			o.name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(t, "[--"), "..."), "]")
			if !strings.HasSuffix(strings.TrimSuffix(t, "..."), "]") && k+1 < len(tok) {
				k++
				meta := strings.TrimSuffix(tok[k], "...")
				o.repeat = strings.HasSuffix(tok[k], "...")
				o.meta = strings.TrimSuffix(meta, "]")
				switch {
				case strings.Contains(o.meta, "|"):
					o.choices = strings.Split(o.meta, "|")
				case o.meta == "N":
					o.kind = discordgo.ApplicationCommandOptionInteger
				}
			} else {
				o.kind = discordgo.ApplicationCommandOptionBoolean
			}
		case strings.HasPrefix(t, "<"):
			o.name, o.required = strings.Trim(t, "<>"), true
		case strings.HasPrefix(t, "["):
			o.name = strings.TrimSuffix(strings.Trim(t, "[]"), "...")
		default:
			continue
		}
		o.desc = optDesc[o.name]
		if o.desc == "" {
			o.desc = "see /sepm help " + sub
		}
		switch o.name {
		case "id", "step":
			o.auto = true
			if o.name == "id" && !o.required {
				o.desc += " (none: every active one)"
			}
		case "site":
			if len(sites) <= 25 {
				o.choices = sites
			}
		case "subcommand":
			for _, sd := range subDesc[1:] {
				o.choices = append(o.choices, sd.name)
			}
		}
		if o.required {
			req = append(req, o)
		} else {
			opt = append(opt, o) // Discord wants required options first
		}
	}
	return append(req, opt...)
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
	return commandTextWith(data, subcommands(sites))
}

func commandTextWith(data discordgo.ApplicationCommandInteractionData, subs []subSpec) (string, error) {
	if data.Name != "sepm" || len(data.Options) != 1 || data.Options[0].Type != discordgo.ApplicationCommandOptionSubCommand {
		return "", fmt.Errorf("unknown command %q", data.Name)
	}
	sub := data.Options[0]
	var spec *subSpec
	for _, sc := range subs {
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
		case discordgo.ApplicationCommandOptionInteger:
			if n, ok := v.Value.(float64); ok {
				flags = append(flags, "--"+o.name, strconv.FormatFloat(n, 'f', -1, 64))
			}
		default:
			s := oneLine(fmt.Sprint(v.Value))
			if s == "" {
				continue
			}
			switch {
			case o.repeat:
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
