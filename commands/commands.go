package commands

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Role is what a command needs of the user who runs it. The zero Role is invalid and
// is satisfied by nobody. See the package documentation for the permission model.
type Role int

// Roles. Operator and Approver are not ordered: neither implies the other.
const (
	Viewer   Role = iota + 1 // may read: help, status, list, audit
	Approver                 // may approve and deny
	Operator                 // may plan, rotate, done, confirm, pause, resume, abort
)

// String returns "viewer", "approver" or "operator".
func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Approver:
		return "approver"
	case Operator:
		return "operator"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// SatisfiedBy reports whether a user holding the roles held may run a command that
// needs r: Viewer is satisfied by any valid role (operators and approvers may read too);
// Operator only by Operator; Approver only by Approver. An invalid r is never satisfied.
func (r Role) SatisfiedBy(held ...Role) bool {
	for _, h := range held {
		switch {
		case h != Viewer && h != Approver && h != Operator:
			continue
		case r == Viewer, h == r && (r == Approver || r == Operator):
			return true
		}
	}
	return false
}

// CertPin is one --new-cert-sha256 value: the expected SHA-256 fingerprint of a new
// server certificate (lowercase hex, no colons), for the named server, or for the
// server(s) being rotated when Server is "".
type CertPin struct {
	Server string
	SHA256 string
}

// Command is a parsed, validated `/sepm` command. Only the fields the subcommand takes
// are set.
type Command struct {
	Name         string        // subcommand: help, plan, rotate, status, list, approve, deny, done, confirm, pause, resume, abort, audit
	Site         string        // plan, rotate: the site, spelled as configured (never empty for them)
	ID           string        // rotation id, upper case ("R7"); optional for status
	Step         string        // done, confirm: the step id as typed
	Reason       string        // deny, abort: the rest of the line, joined by single spaces
	Mode         string        // plan, rotate: "" (auto), "single" or "multi"
	MinWait      time.Duration // plan, rotate: --min-wait, valid when MinWaitSet
	Straggler    time.Duration // rotate: --straggler, valid when StragglerSet
	MinWaitSet   bool
	StragglerSet bool
	NewCerts     []CertPin // rotate: every --new-cert-sha256, in the order given; nil when none
	Damaged      bool      // plan, rotate: --damaged-but-valid (the certificate is damaged but valid)
	Topic        string    // help: the subcommand asked about, lower case; "" for the full help
	// AcceptOrphans is done's --accept-orphans N, valid when AcceptOrphansSet.
	AcceptOrphans    int
	AcceptOrphansSet bool
}

// Role returns the role the command needs (see the package documentation). A Command
// whose Name is not a subcommand needs Operator, so that viewers cannot run it.
func (c Command) Role() Role {
	if s := lookup(c.Name); s != nil {
		return s.role
	}
	return Operator
}

// String returns the canonical text of the command, which Parse reads back to the same
// Command (with the same sites): the site is always spelled out, flags use the
// "--flag value" form, durations are formatted by FormatDuration.
func (c Command) String() string {
	parts := []string{"/sepm", c.Name}
	add := func(s string) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	add(c.Topic)
	add(c.Site)
	add(c.ID)
	add(c.Step)
	if c.Mode != "" {
		parts = append(parts, "--mode", c.Mode)
	}
	if c.MinWaitSet {
		parts = append(parts, "--min-wait", FormatDuration(c.MinWait))
	}
	if c.StragglerSet {
		parts = append(parts, "--straggler", FormatDuration(c.Straggler))
	}
	for _, p := range c.NewCerts {
		v := p.SHA256
		if p.Server != "" {
			v = p.Server + "=" + v
		}
		parts = append(parts, "--new-cert-sha256", v)
	}
	if c.Damaged {
		parts = append(parts, "--damaged-but-valid")
	}
	if c.AcceptOrphansSet {
		parts = append(parts, "--accept-orphans", strconv.Itoa(c.AcceptOrphans))
	}
	add(c.Reason)
	return strings.Join(parts, " ")
}

// UsageError is the error Parse returns for input it cannot accept. Error returns Msg
// only; the caller shows Usage on the next line.
type UsageError struct {
	Msg   string // one clear sentence, one line, user input quoted and shortened
	Usage string // the usage line of the subcommand concerned, or the general one
}

// Error returns the one-line message.
func (e *UsageError) Error() string { return e.Msg }

// MaxReason is the longest reason (in characters) deny and abort accept.
const MaxReason = 1000

const (
	maxIDDigits  = 18  // fits in a uint64 with room to spare
	maxStepLen   = 64  // step ids are short words
	maxServerLen = 253 // a DNS name
	maxQuoted    = 40  // characters of user input echoed in a message
)

// Parse reads one `/sepm` command. The leading "/sepm" is optional; words are split on
// whitespace. sites are the configured site names: a site word must be one of them
// (case-insensitive; the configured spelling is returned), and may be left out only
// when exactly one is configured. Empty text (or "/sepm" alone) is the help command.
// Every error is a *UsageError.
func Parse(text string, sites []string) (Command, error) {
	toks := strings.Fields(text)
	if len(toks) > 0 && strings.EqualFold(toks[0], "/sepm") {
		toks = toks[1:]
	}
	if len(toks) == 0 || isHelpFlag(toks[0]) {
		if len(toks) > 1 {
			return Parse(strings.Join(append([]string{"help"}, toks[1:]...), " "), sites)
		}
		return Command{Name: "help"}, nil
	}
	s := lookup(strings.ToLower(toks[0]))
	if s == nil {
		return Command{}, unknownSubcommand(toks[0], sites)
	}
	return s.parse(toks[1:], cleanSites(sites))
}

// cleanSites drops empty names.
func cleanSites(sites []string) []string {
	out := make([]string, 0, len(sites))
	for _, s := range sites {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parse reads the words after the subcommand name.
func (s *subcommand) parse(rest []string, sites []string) (Command, error) {
	c := Command{Name: s.name}
	fixed := len(s.args) // positional arguments before any reason
	hasReason := fixed > 0 && s.args[fixed-1].kind == argReason
	if hasReason {
		fixed--
	}
	var pos []string
	seen := map[string]bool{}
	i := 0
	for ; i < len(rest); i++ {
		if hasReason && len(pos) == fixed {
			break // the rest of the line is the reason, taken verbatim
		}
		t := rest[i]
		if isHelpFlag(t) {
			return Command{Name: "help", Topic: s.name}, nil
		}
		if isFlagWord(t) {
			if len(s.flags) == 0 {
				return Command{}, s.errorf("%s takes no flags, but got %s", s.name, quote(t))
			}
			n, err := s.parseFlag(&c, rest[i:], seen)
			if err != nil {
				return Command{}, err
			}
			i += n - 1
			continue
		}
		pos = append(pos, t)
	}
	if len(pos) > fixed {
		return Command{}, s.errorf("%s", s.extraMsg(pos[fixed]))
	}
	for k := 0; k < fixed; k++ {
		a := s.args[k]
		if k >= len(pos) {
			if a.kind == argSite {
				site, err := s.defaultSite(sites)
				if err != nil {
					return Command{}, err
				}
				c.Site = site
				continue
			}
			if !a.optional {
				return Command{}, s.errorf("%s", s.missingMsg(a))
			}
			continue
		}
		if err := s.setArg(&c, a, pos[k], sites); err != nil {
			return Command{}, err
		}
	}
	if hasReason {
		c.Reason = strings.Join(rest[i:], " ")
		if n := utf8.RuneCountInString(c.Reason); n > MaxReason {
			return Command{}, s.errorf("the reason is too long (%d characters; at most %d)", n, MaxReason)
		}
	}
	return c, nil
}

// errorf builds a *UsageError carrying the subcommand's usage line.
func (s *subcommand) errorf(format string, a ...any) *UsageError {
	return &UsageError{Msg: oneLine(fmt.Sprintf(format, a...)), Usage: s.usage()}
}

// extraMsg says that word is one argument too many.
func (s *subcommand) extraMsg(word string) string {
	var takes string
	switch n := len(s.args); {
	case n == 0:
		takes = "takes no arguments"
	case n == 1 && s.args[0].optional:
		takes = "takes at most one " + s.args[0].name
	default:
		var want []string
		for _, a := range s.args {
			want = append(want, a.usage())
		}
		takes = "takes " + strings.Join(want, " ")
	}
	return fmt.Sprintf("%s %s, but %s was left over", s.name, takes, quote(word))
}

// missingMsg says a required argument is missing.
func (s *subcommand) missingMsg(a arg) string {
	switch a.kind {
	case argID:
		return fmt.Sprintf("%s needs a rotation id, such as %q", s.name, s.name+" R7")
	case argStep:
		return fmt.Sprintf("%s needs a step id after the rotation id, such as %q", s.name, s.name+" R7 cert-sepm-01")
	}
	return fmt.Sprintf("%s needs %s", s.name, a.usage())
}

// defaultSite resolves an omitted site.
func (s *subcommand) defaultSite(sites []string) (string, error) {
	switch len(sites) {
	case 0:
		return "", s.errorf("no site is configured, so there is nothing to %s", s.name)
	case 1:
		return sites[0], nil
	}
	return "", s.errorf("which site? %d sites are configured, name one of: %s", len(sites), strings.Join(sites, ", "))
}

// setArg validates one positional argument and stores it in c.
func (s *subcommand) setArg(c *Command, a arg, word string, sites []string) error {
	switch a.kind {
	case argTopic:
		t := lookup(strings.ToLower(word))
		if t == nil {
			msg := fmt.Sprintf("there is no subcommand %s to explain", quote(word))
			if sug := suggest(word, names()); sug != "" {
				msg += "; did you mean " + sug + "?"
			}
			return s.errorf("%s", msg)
		}
		c.Topic = t.name
	case argSite:
		for _, site := range sites {
			if strings.EqualFold(site, word) {
				c.Site = site
				return nil
			}
		}
		if len(sites) == 0 {
			return s.errorf("unknown site %s: no site is configured", quote(word))
		}
		msg := fmt.Sprintf("unknown site %s; known sites: %s", quote(word), strings.Join(sites, ", "))
		if sug := suggest(word, sites); sug != "" {
			msg = fmt.Sprintf("unknown site %s; did you mean %s? (known sites: %s)", quote(word), sug, strings.Join(sites, ", "))
		}
		return s.errorf("%s", msg)
	case argID:
		id, ok := normalizeID(word)
		if !ok {
			return s.errorf("%s is not a rotation id; rotation ids look like R7", quote(word))
		}
		c.ID = id
	case argStep:
		if !validStep(word) {
			return s.errorf("%s is not a step id; step ids are letters, digits, '-', '_' and '.', such as cert-sepm-01", quote(word))
		}
		c.Step = word
	}
	return nil
}

// parseFlag reads the flag at words[0] (and its value, possibly words[1]) into c and
// returns how many words it used.
func (s *subcommand) parseFlag(c *Command, words []string, seen map[string]bool) (int, error) {
	t := fixDashes(words[0])
	if !strings.HasPrefix(t, "--") {
		return 0, s.errorf("%s is not a flag %s takes; flags start with \"--\", such as --%s", quote(words[0]), s.name, s.flags[0].name)
	}
	name, val, hasVal := strings.Cut(t[2:], "=")
	name = strings.ToLower(name)
	f := s.flag(name)
	if f == nil {
		return 0, s.unknownFlag(name)
	}
	if f.kind == flagDamaged {
		if hasVal {
			return 0, s.errorf("--%s takes no value; give it alone", f.name)
		}
		if seen[f.name] {
			return 0, s.errorf("--%s was given twice; give it once", f.name)
		}
		seen[f.name] = true
		c.Damaged = true
		return 1, nil
	}
	used := 1
	if !hasVal {
		if len(words) < 2 || strings.HasPrefix(fixDashes(words[1]), "--") {
			return 0, s.errorf("--%s needs a value (%s), such as %s", f.name, f.metavar, flagExample(f))
		}
		val = words[1]
		used = 2
	}
	if val == "" {
		return 0, s.errorf("--%s needs a value (%s), such as %s", f.name, f.metavar, flagExample(f))
	}
	if seen[f.name] && !f.repeatable {
		return 0, s.errorf("--%s was given twice; give it once", f.name)
	}
	seen[f.name] = true
	switch f.kind {
	case flagMode:
		switch m := strings.ToLower(val); m {
		case "auto":
			c.Mode = ""
		case "single", "multi":
			c.Mode = m
		default:
			msg := fmt.Sprintf("--mode must be auto, single or multi, not %s", quote(val))
			if sug := suggest(m, []string{"auto", "single", "multi"}); sug != "" {
				msg += "; did you mean " + sug + "?"
			}
			return 0, s.errorf("%s", msg)
		}
	case flagCount:
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 || n > 10_000_000 {
			return 0, s.errorf("--%s takes a count of clients (0 or more), not %s", f.name, quote(val))
		}
		c.AcceptOrphans, c.AcceptOrphansSet = n, true
	case flagMinWait, flagStraggle:
		d, err := ParseDuration(val)
		if err != nil {
			return 0, s.errorf("--%s: %v", f.name, err)
		}
		if f.kind == flagMinWait {
			c.MinWait, c.MinWaitSet = d, true
		} else {
			c.Straggler, c.StragglerSet = d, true
		}
	case flagCertPin:
		pin, err := parsePin(val)
		if err != nil {
			return 0, s.errorf("--%s: %v", f.name, err)
		}
		for _, p := range c.NewCerts {
			if p.Server == pin.Server {
				if pin.Server == "" {
					return 0, s.errorf("--%s was given twice without a server name; name each server with NAME=FP", f.name)
				}
				return 0, s.errorf("--%s was given twice for server %s", f.name, quote(pin.Server))
			}
		}
		c.NewCerts = append(c.NewCerts, pin)
	}
	return used, nil
}

// unknownFlag explains a flag the subcommand does not take.
func (s *subcommand) unknownFlag(name string) *UsageError {
	var own []string
	for _, f := range s.flags {
		own = append(own, f.name)
	}
	if sug := suggest(name, own); sug != "" {
		return s.errorf("%s has no flag %s; did you mean --%s?", s.name, quote("--"+name), sug)
	}
	for i := range table {
		if f := table[i].flag(name); f != nil {
			return s.errorf("%s does not take --%s (%s does)", s.name, name, table[i].name)
		}
	}
	return s.errorf("%s has no flag %s; its flags are --%s", s.name, quote("--"+name), strings.Join(own, ", --"))
}

// flagExample gives an example value for a flag.
func flagExample(f *flag) string {
	switch f.kind {
	case flagMode:
		return "--mode single"
	case flagMinWait:
		return "--min-wait 30m"
	case flagStraggle:
		return "--straggler 90d"
	case flagDamaged:
		return "--damaged-but-valid"
	case flagCount:
		return "--accept-orphans 3"
	}
	return "--new-cert-sha256 sepm-01=<64 hex digits>"
}

// unknownSubcommand explains a first word that is not a subcommand.
func unknownSubcommand(word string, sites []string) *UsageError {
	msg := fmt.Sprintf("unknown subcommand %s", quote(word))
	switch id, isID := normalizeID(word); {
	case isID:
		msg += fmt.Sprintf("; did you mean status %s?", id)
	case slices.ContainsFunc(cleanSites(sites), func(s string) bool { return strings.EqualFold(s, word) }):
		msg += fmt.Sprintf("; did you mean plan %s?", word)
	default:
		if sug := suggest(word, names()); sug != "" {
			msg += "; did you mean " + sug + "?"
		} else {
			msg += "; try help"
		}
	}
	return &UsageError{Msg: oneLine(msg), Usage: generalUsage()}
}

// isHelpFlag reports whether word asks for help ("--help", "-h", "—help").
func isHelpFlag(word string) bool {
	w := strings.ToLower(fixDashes(word))
	return w == "--help" || w == "-h"
}

// isFlagWord reports whether word looks like a flag.
func isFlagWord(word string) bool {
	return strings.HasPrefix(word, "-") || strings.HasPrefix(word, "\u2014") || strings.HasPrefix(word, "\u2013")
}

// fixDashes turns a leading em or en dash (what chat clients auto-correct "--" to)
// into "--".
func fixDashes(word string) string {
	for _, d := range []string{"\u2014", "\u2013"} {
		if rest, ok := strings.CutPrefix(word, d); ok {
			return "--" + strings.TrimPrefix(rest, "-")
		}
	}
	return word
}

// normalizeID checks a rotation id ("R7", any case, leading zeros dropped) and returns
// it upper case.
func normalizeID(word string) (string, bool) {
	if len(word) < 2 || (word[0] != 'R' && word[0] != 'r') {
		return "", false
	}
	digits := word[1:]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", false
		}
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		digits = "0"
	}
	if len(digits) > maxIDDigits {
		return "", false
	}
	return "R" + digits, true
}

// validStep checks a step id: letters, digits, '_', '-', '.', starting with a letter,
// digit or '_', at most maxStepLen long.
func validStep(word string) bool {
	if word == "" || len(word) > maxStepLen || word[0] == '-' || word[0] == '.' {
		return false
	}
	for i := 0; i < len(word); i++ {
		if !isNameByte(word[i]) {
			return false
		}
	}
	return true
}

// isNameByte reports whether b may appear in a step id or server name.
func isNameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-' || b == '.'
}

// parsePin reads FP or NAME=FP.
func parsePin(val string) (CertPin, error) {
	var pin CertPin
	fp := val
	if name, rest, ok := strings.Cut(val, "="); ok {
		if name == "" || len(name) > maxServerLen || name[0] == '-' || name[0] == '.' ||
			strings.IndexFunc(name, func(r rune) bool { return r >= utf8.RuneSelf || !isNameByte(byte(r)) }) >= 0 {
			return pin, fmt.Errorf("%s is not a server name; use NAME=FP with a name such as sepm-01", quote(name))
		}
		pin.Server, fp = name, rest
	}
	norm, err := NormalizeFingerprint(fp)
	if err != nil {
		return pin, err
	}
	pin.SHA256 = norm
	return pin, nil
}

// NormalizeFingerprint checks a SHA-256 fingerprint (64 hex digits, any case, colons
// optional) and returns it lowercase without colons.
func NormalizeFingerprint(s string) (string, error) {
	h := strings.ReplaceAll(s, ":", "")
	for i := 0; i < len(h); i++ {
		if !isHex(h[i]) {
			return "", fmt.Errorf("%s is not a SHA-256 fingerprint: it may hold only hex digits and colons", quote(s))
		}
	}
	if len(h) != 64 {
		return "", fmt.Errorf("%s is not a SHA-256 fingerprint: it needs 64 hex digits, not %d", quote(s), len(h))
	}
	return strings.ToLower(h), nil
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

// quote quotes user input for a message, shortened to maxQuoted characters, with every
// control character escaped so the message stays on one line.
func quote(s string) string {
	if utf8.RuneCountInString(s) > maxQuoted {
		r := []rune(s)
		return fmt.Sprintf("%q…", string(r[:maxQuoted]))
	}
	return fmt.Sprintf("%q", s)
}

// oneLine guarantees a message is one line (it should be already: user input is quoted).
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		switch r {
		case '\n', '\r', '\v', '\f', '\u0085', '\u2028', '\u2029':
			return true
		}
		return false
	}), " ")
}
