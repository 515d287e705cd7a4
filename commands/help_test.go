package commands

import (
	"os"
	"strings"
	"testing"
)

// helpExamples returns the example commands listed under "Examples:" in a help text.
func helpExamples(t *testing.T, text string) []string {
	t.Helper()
	_, after, ok := strings.Cut(text, "Examples:\n")
	if !ok {
		t.Fatalf("help text has no Examples section:\n%s", text)
	}
	var out []string
	for _, line := range strings.Split(after, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "/sepm") {
			t.Fatalf("unexpected line in Examples: %q", line)
		}
		out = append(out, line)
	}
	return out
}

// TestHelpListsEveryTableEntry checks that the help text, generated from the table,
// shows every subcommand's usage line, summary and who may run it, and every flag.
func TestHelpListsEveryTableEntry(t *testing.T) {
	h := Help()
	for i := range table {
		s := &table[i]
		for _, want := range []string{s.usage() + "\n", s.summary + " (" + roleWho(s.role) + ")"} {
			if !strings.Contains(h, want) {
				t.Errorf("Help() lacks %q for %s", want, s.name)
			}
		}
		for _, f := range s.flags {
			if !strings.Contains(h, "--"+f.name+" "+f.metavar+"\n      "+f.help) {
				t.Errorf("Help() lacks flag --%s", f.name)
			}
		}
		if len(s.examples) == 0 {
			t.Errorf("%s has no example", s.name)
		}
		for _, ex := range s.examples {
			if !strings.Contains(h, "  "+ex+"\n") {
				t.Errorf("Help() lacks the example %q", ex)
			}
		}
		topic := HelpTopic(s.name)
		if !strings.HasPrefix(topic, s.usage()+"\n") {
			t.Errorf("HelpTopic(%q) does not start with the usage line:\n%s", s.name, topic)
		}
	}
	if HelpTopic("nope") != h {
		t.Errorf("HelpTopic of an unknown name should be the full help")
	}
}

// TestHelpExamplesParse checks that every example in the help text (and in each
// subcommand's topic help) parses, and is an example of the subcommand it documents.
func TestHelpExamplesParse(t *testing.T) {
	all := helpExamples(t, Help())
	n := 0
	for i := range table {
		n += len(table[i].examples)
	}
	if len(all) != n {
		t.Fatalf("Help() lists %d examples, table has %d", len(all), n)
	}
	for _, ex := range all {
		if _, err := Parse(ex, []string{"prod"}); err != nil {
			t.Errorf("help example %q does not parse: %v", ex, err)
		}
	}
	for i := range table {
		s := &table[i]
		for _, ex := range helpExamples(t, HelpTopic(s.name)) {
			c, err := Parse(ex, []string{"prod"})
			if err != nil {
				t.Errorf("HelpTopic(%s) example %q does not parse: %v", s.name, ex, err)
				continue
			}
			if c.Name != s.name {
				t.Errorf("HelpTopic(%s) example %q parses as %s", s.name, ex, c.Name)
			}
		}
	}
}

// TestUsageMatchesGrammar pins the generated usage lines to the documented grammar.
func TestUsageMatchesGrammar(t *testing.T) {
	want := map[string]string{
		"help":    "/sepm help [subcommand]",
		"plan":    "/sepm plan [site] [--mode auto|single|multi] [--min-wait D] [--damaged-but-valid]",
		"rotate":  "/sepm rotate [site] [--mode auto|single|multi] [--min-wait D] [--straggler D] [--new-cert-sha256 FP]... [--damaged-but-valid]",
		"status":  "/sepm status [id]",
		"list":    "/sepm list",
		"approve": "/sepm approve <id>",
		"deny":    "/sepm deny <id> [reason...]",
		"done":    "/sepm done <id> <step> [--accept-orphans N]",
		"confirm": "/sepm confirm <id> <step>",
		"pause":   "/sepm pause <id>",
		"resume":  "/sepm resume <id>",
		"abort":   "/sepm abort <id> [reason...]",
		"audit":   "/sepm audit <id>",
	}
	var got []string
	for i := range table {
		got = append(got, table[i].name)
		if u := Usage(table[i].name); u != want[table[i].name] {
			t.Errorf("Usage(%q) = %q, want %q", table[i].name, u, want[table[i].name])
		}
	}
	if len(got) != len(want) {
		t.Errorf("table has %v, want %d subcommands", got, len(want))
	}
	if Usage(" ROTATE ") != want["rotate"] {
		t.Errorf("Usage is not case-insensitive")
	}
	gen := Usage("nope")
	if !strings.HasPrefix(gen, "/sepm <subcommand>") || !strings.Contains(gen, strings.Join(names(), ", ")) || strings.Contains(gen, "\n") {
		t.Errorf("general usage = %q", gen)
	}
	// The package documentation shows the same grammar.
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range want {
		if !strings.Contains(string(doc), "//\t"+u+"\n") {
			t.Errorf("doc.go does not show %q", u)
		}
	}
}
