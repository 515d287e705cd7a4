package commands

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics; that every error is a *UsageError with a
// non-empty one-line message and a one-line usage; and that every accepted command is
// well formed and reads back from its canonical String() unchanged.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"", "/sepm", "help", "help rotate", "--help", "-h plan", "rotate -h",
		"plan", "plan prod --mode multi --min-wait 10m", "plan --mode=single",
		"rotate prod --mode multi --straggler 60d --new-cert-sha256 sepm-01=" + fpAColons,
		"rotate --new-cert-sha256=" + fpA + " --new-cert-sha256 b=" + fpB,
		"rotate \u2014mode single \u2013min-wait 1h",
		"status", "status r007", "list", "approve R7", "deny R7 not now", "deny R7 --x",
		"done R7 http-msl", "confirm R7 cert-sepm-01", "pause R7", "resume R7",
		"abort R7 because", "audit R7",
		"rotat", "R7", "prod", "plan staging", "plan --mode", "plan --min-wait 90",
		"plan --min-wait -5m", "rotate --damaged-but-valid --mode single", "rotate --straggler 99999999999999999999d",
		"rotate --new-cert-sha256 abc", "status 7", "done R7", "list all",
		"deny R7 \x00\u2028\n line", "/sepm /sepm", "plan ——mode multi",
	}
	for _, s := range seeds {
		f.Add(s, true)
		f.Add(s, false)
	}
	for i := range table {
		for _, ex := range table[i].examples {
			f.Add(ex, true)
		}
	}
	f.Fuzz(func(t *testing.T, text string, single bool) {
		sites := []string{"prod", "Lab-2"}
		if single {
			sites = sites[:1]
		}
		c, err := Parse(text, sites)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("Parse(%q) error %T %v, want *UsageError", text, err, err)
			}
			if ue.Msg == "" || strings.ContainsAny(ue.Msg, "\n\r") || ue.Error() != ue.Msg {
				t.Fatalf("Parse(%q) message %q, want one non-empty line", text, ue.Msg)
			}
			if ue.Usage == "" || strings.ContainsAny(ue.Usage, "\n\r") {
				t.Fatalf("Parse(%q) usage %q, want one non-empty line", text, ue.Usage)
			}
			if !reflect.DeepEqual(c, Command{}) {
				t.Fatalf("Parse(%q) returned %+v with an error", text, c)
			}
			return
		}
		s := lookup(c.Name)
		if s == nil {
			t.Fatalf("Parse(%q) = %+v: unknown name", text, c)
		}
		if r := c.Role(); r != Viewer && r != Approver && r != Operator {
			t.Fatalf("Parse(%q) role %v", text, r)
		}
		if c.ID != "" {
			if id, ok := normalizeID(c.ID); !ok || id != c.ID {
				t.Fatalf("Parse(%q) id %q not canonical", text, c.ID)
			}
		}
		if c.Step != "" && !validStep(c.Step) {
			t.Fatalf("Parse(%q) step %q invalid", text, c.Step)
		}
		if (c.Name == "plan" || c.Name == "rotate") != (c.Site != "") {
			t.Fatalf("Parse(%q) site %q for %s", text, c.Site, c.Name)
		}
		if c.MinWait < 0 || c.Straggler < 0 || !utf8.ValidString(c.Mode) {
			t.Fatalf("Parse(%q) = %+v", text, c)
		}
		for _, p := range c.NewCerts {
			if n, err := NormalizeFingerprint(p.SHA256); err != nil || n != p.SHA256 {
				t.Fatalf("Parse(%q) pin %q not normalised", text, p.SHA256)
			}
		}
		again, err := Parse(c.String(), sites)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("Parse(%q) = %+v; its String %q reads back as %+v, %v", text, c, c.String(), again, err)
		}
	})
}
