package commands

import (
	"fmt"
	"strings"
)

// argKind is what a positional argument holds.
type argKind int

const (
	argTopic  argKind = iota + 1 // a subcommand name (help topic)
	argSite                      // a configured site name
	argID                        // a rotation id (R7)
	argStep                      // a step id (cert-sepm-01)
	argReason                    // the rest of the line
)

// arg is one positional argument of a subcommand.
type arg struct {
	name     string // shown in usage: "site", "id", "step", "reason", "subcommand"
	kind     argKind
	optional bool
}

// usage renders the argument the way the usage line shows it.
func (a arg) usage() string {
	switch {
	case a.kind == argReason:
		return "[" + a.name + "...]"
	case a.optional:
		return "[" + a.name + "]"
	default:
		return "<" + a.name + ">"
	}
}

// flagKind is what a flag's value holds.
type flagKind int

const (
	flagMode     flagKind = iota + 1 // auto|single|multi
	flagMinWait                      // a duration
	flagStraggle                     // a duration
	flagCertPin                      // FP or NAME=FP, repeatable
	flagDamaged                      // a switch: takes no value
	flagCount                        // a count of clients (0 or more)
)

// flag is one flag a subcommand accepts.
type flag struct {
	name       string // without the leading "--"
	metavar    string // shown in usage
	kind       flagKind
	repeatable bool
	help       string // one line for the help text
}

// usage renders the flag the way the usage line shows it.
func (f flag) usage() string {
	if f.kind == flagDamaged {
		return "[--" + f.name + "]"
	}
	s := "[--" + f.name + " " + f.metavar + "]"
	if f.repeatable {
		s += "..."
	}
	return s
}

var (
	flagModeSpec = flag{name: "mode", metavar: "auto|single|multi", kind: flagMode,
		help: "procedure to follow: single (seed steps 1-9, secure communication off while the certificate changes), multi (steps 10-13, one server at a time under failover or load balancing), or auto (the default: chosen from the site)"}
	flagMinWaitSpec = flag{name: "min-wait", metavar: "D", kind: flagMinWait,
		help: "floor of every heartbeat wait: each wait lasts at least D, or three heartbeats of the affected groups if that is longer"}
	flagStragglerSpec = flag{name: "straggler", metavar: "D", kind: flagStraggle,
		help: "multi-server path: how long the last server stays on the old certificate so away clients can come back (default 90d; whole d/h/m/s units, such as 60d); a window under 30d shortens the protection for away clients, so it is part of what approvers approve: it needs the two-person approval before the first certificate update"}
	flagCertSpec = flag{name: "new-cert-sha256", metavar: "FP", kind: flagCertPin, repeatable: true,
		help: "SHA-256 fingerprint of the new certificate, or NAME=FP for one server; the bot trusts it and verifies each update against it (repeatable)"}
	flagAcceptOrphansSpec = flag{name: "accept-orphans", metavar: "N", kind: flagCount,
		help: "done: go on past the orphan interlock with up to N clients suspected orphaned (audited; they stay cut off until recovered in the console)"}
	flagDamagedSpec = flag{name: "damaged-but-valid", kind: flagDamaged,
		help: "the current certificate is damaged but still valid: the plan then stops and recommends disaster recovery instead of a rotation"}
)

// subcommand is one entry of the table that drives parsing, help and permissions.
type subcommand struct {
	name     string
	args     []arg
	flags    []flag
	role     Role
	summary  string   // one line
	examples []string // each must parse with a single configured site named "prod"
}

// usage is the one-line usage of the subcommand, generated from its args and flags.
func (s *subcommand) usage() string {
	parts := []string{"/sepm", s.name}
	for _, a := range s.args {
		parts = append(parts, a.usage())
	}
	for _, f := range s.flags {
		parts = append(parts, f.usage())
	}
	return strings.Join(parts, " ")
}

// flag returns the subcommand's flag with the given name, or nil.
func (s *subcommand) flag(name string) *flag {
	for i := range s.flags {
		if s.flags[i].name == name {
			return &s.flags[i]
		}
	}
	return nil
}

// exampleFP is a well-formed fingerprint used in the examples.
const exampleFP = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// table is the single source of truth for the grammar, the help text and the role each
// subcommand needs. Order is the order of the help text.
var table = []subcommand{
	{
		name: "help", role: Viewer,
		args:     []arg{{name: "subcommand", kind: argTopic, optional: true}},
		summary:  "show this help, or the usage of one subcommand",
		examples: []string{"/sepm help", "/sepm help rotate"},
	},
	{
		name: "plan", role: Operator,
		args:     []arg{{name: "site", kind: argSite, optional: true}},
		flags:    []flag{flagModeSpec, flagMinWaitSpec, flagDamagedSpec},
		summary:  "read the site and show the rotation plan, changing nothing",
		examples: []string{"/sepm plan", "/sepm plan prod --mode multi --min-wait 10m"},
	},
	{
		name: "rotate", role: Operator,
		args:    []arg{{name: "site", kind: argSite, optional: true}},
		flags:   []flag{flagModeSpec, flagMinWaitSpec, flagStragglerSpec, flagCertSpec, flagDamagedSpec},
		summary: "start a rotation: plan the site, then run the steps, asking for approval before secure communication goes off",
		examples: []string{
			"/sepm rotate prod --new-cert-sha256 " + exampleFP,
			"/sepm rotate --mode=multi --straggler 60d --new-cert-sha256 sepm-01=" + exampleFP,
		},
	},
	{
		name: "status", role: Viewer,
		args:     []arg{{name: "id", kind: argID, optional: true}},
		summary:  "show the progress of one rotation, or of every active rotation",
		examples: []string{"/sepm status", "/sepm status R7"},
	},
	{
		name: "list", role: Viewer,
		summary:  "list rotations, newest first",
		examples: []string{"/sepm list"},
	},
	{
		name: "approve", role: Approver,
		args:     []arg{{name: "id", kind: argID}},
		summary:  "approve disabling secure communication for a rotation (two people must approve, neither the requester)",
		examples: []string{"/sepm approve R7"},
	},
	{
		name: "deny", role: Approver,
		args:     []arg{{name: "id", kind: argID}, {name: "reason", kind: argReason}},
		summary:  "deny a rotation's approval request; the rotation stops before anything is disabled",
		examples: []string{"/sepm deny R7 not during the change freeze"},
	},
	{
		name: "done", role: Operator,
		args:     []arg{{name: "id", kind: argID}, {name: "step", kind: argStep}},
		flags:    []flag{flagAcceptOrphansSpec},
		summary:  "report a manual step as done; the bot verifies it before moving on",
		examples: []string{"/sepm done R7 http-msl", "/sepm done R7 cert-sepm-01", "/sepm done R7 enable-secure --accept-orphans 3"},
	},
	{
		name: "confirm", role: Operator,
		args:     []arg{{name: "id", kind: argID}, {name: "step", kind: argStep}},
		summary:  "confirm what the bot asks you to check, such as the certificate fingerprint it now sees",
		examples: []string{"/sepm confirm R7 cert-sepm-01"},
	},
	{
		name: "pause", role: Operator,
		args:     []arg{{name: "id", kind: argID}},
		summary:  "pause a rotation before its next step (waits keep their deadlines)",
		examples: []string{"/sepm pause R7"},
	},
	{
		name: "resume", role: Operator,
		args:     []arg{{name: "id", kind: argID}},
		summary:  "resume a paused rotation",
		examples: []string{"/sepm resume R7"},
	},
	{
		name: "abort", role: Operator,
		args:     []arg{{name: "id", kind: argID}, {name: "reason", kind: argReason}},
		summary:  "abort a rotation: restore secure communication and the original server lists in the safe order",
		examples: []string{"/sepm abort R7 clients on 12.1 still offline"},
	},
	{
		name: "audit", role: Viewer,
		args:     []arg{{name: "id", kind: argID}},
		summary:  "show the audit trail of a rotation: who did what, when",
		examples: []string{"/sepm audit R7"},
	},
}

// lookup returns the table entry with the given (lower-case) name, or nil.
func lookup(name string) *subcommand {
	for i := range table {
		if table[i].name == name {
			return &table[i]
		}
	}
	return nil
}

// names lists the subcommand names in table order.
func names() []string {
	out := make([]string, len(table))
	for i := range table {
		out[i] = table[i].name
	}
	return out
}

// generalUsage is the usage line shown when no subcommand is concerned.
func generalUsage() string {
	return "/sepm <subcommand> [arguments]; subcommands: " + strings.Join(names(), ", ") + " (\"/sepm help\" explains each)"
}

// Usage returns the one-line usage of the named subcommand (case-insensitive), such as
// "/sepm done <id> <step>", or the general usage line when name is not a subcommand.
func Usage(name string) string {
	if s := lookup(strings.ToLower(strings.TrimSpace(name))); s != nil {
		return s.usage()
	}
	return generalUsage()
}

// roleWho says in words who may run a subcommand needing r.
func roleWho(r Role) string {
	switch r {
	case Operator:
		return "operators"
	case Approver:
		return "approvers"
	case Viewer:
		return "anyone allowed to read"
	}
	return "nobody"
}

// Help returns the full help text, generated from the command table: every subcommand
// with its usage, summary and who may run it, the flags, the argument formats, the
// permission model and examples. Plain text, lines of moderate length.
func Help() string {
	var b strings.Builder
	b.WriteString("sepmbot rotates SEPM server certificates from chat (the leading /sepm may be left out).\n\n")
	b.WriteString("Subcommands:\n")
	for i := range table {
		s := &table[i]
		fmt.Fprintf(&b, "  %s\n      %s (%s)\n", s.usage(), s.summary, roleWho(s.role))
	}
	b.WriteString("\nFlags (\"--flag value\" or \"--flag=value\"):\n")
	seen := map[string]bool{}
	for i := range table {
		for _, f := range table[i].flags {
			if seen[f.name] {
				continue
			}
			seen[f.name] = true
			fmt.Fprintf(&b, "  --%s %s\n      %s\n", f.name, f.metavar, f.help)
		}
	}
	b.WriteString("\n")
	b.WriteString(argumentsHelp)
	b.WriteString("\n")
	b.WriteString(permissionsHelp)
	b.WriteString("\nExamples:\n")
	for i := range table {
		for _, ex := range table[i].examples {
			fmt.Fprintf(&b, "  %s\n", ex)
		}
	}
	return b.String()
}

const argumentsHelp = `Arguments:
  site        one of the configured sites; may be left out when only one is configured
  id          a rotation id such as R7
  step        a step id from the rotation's plan, such as http-msl or cert-sepm-01
  D           a duration in days, hours, minutes and seconds, largest first: 90d, 2d12h, 1h30m, 45s
  FP          a SHA-256 certificate fingerprint, 64 hex digits, colons optional; NAME=FP names the server
  reason      free text to the end of the line, kept in the audit trail
`

const permissionsHelp = `Who may do what:
  operators   plan, rotate, done, confirm, pause, resume, abort
  approvers   approve, deny
  everyone allowed to read (operators and approvers too): help, status, list, audit
  Operator and approver are separate roles; a requester never approves their own rotation.
`

// HelpTopic returns the help for one subcommand (case-insensitive): its usage line,
// summary, who may run it, its flags and examples. For an unknown name it returns Help().
func HelpTopic(name string) string {
	s := lookup(strings.ToLower(strings.TrimSpace(name)))
	if s == nil {
		return Help()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n  %s (%s)\n", s.usage(), s.summary, roleWho(s.role))
	if len(s.flags) > 0 {
		b.WriteString("Flags:\n")
		for _, f := range s.flags {
			fmt.Fprintf(&b, "  --%s %s\n      %s\n", f.name, f.metavar, f.help)
		}
	}
	if len(s.examples) > 0 {
		b.WriteString("Examples:\n")
		for _, ex := range s.examples {
			fmt.Fprintf(&b, "  %s\n", ex)
		}
	}
	return b.String()
}
