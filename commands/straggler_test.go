package commands

import (
	"strings"
	"testing"
	"time"
)

// TestStragglerParsedStrictly: --straggler takes only whole numbers with the units d,
// h, m, s; anything else is refused with a message, never read as some other window
// (a window under 30 days is approved as part of the action, so its value must be
// exactly what the operator typed).
func TestStragglerParsedStrictly(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want time.Duration
		err  string
	}{
		{"90d", 90 * Day, ""},
		{"29d23h", 29*Day + 23*time.Hour, ""},
		{"5s", 5 * time.Second, ""},
		{"0s", 0, ""},
		{"5", 0, "has no unit"},
		{"5ms", 0, `unknown unit "ms"`},
		{"1.5d", 0, "fraction"},
		{"1,5d", 0, "fraction"},
		{"-1d", 0, "negative"},
		{"+5d", 0, "not a duration"},
		{"5s5s", 0, "largest first"},
		{"\uff15d", 0, "not a duration"}, // a fullwidth digit
		{"5d\u202e", 0, "unknown unit"},
		{"P30D", 0, "not a duration"},
		{"30days", 0, `unknown unit "days"`},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			c, err := Parse("rotate --straggler "+tc.arg, []string{"prod"})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q (got %+v)", err, tc.err, c)
				}
				if strings.ContainsRune(err.Error(), '\u202e') {
					t.Errorf("message %q echoes a bidi control raw", err)
				}
				return
			}
			if err != nil || !c.StragglerSet || c.Straggler != tc.want {
				t.Fatalf("got %v set=%v err=%v, want %v", c.Straggler, c.StragglerSet, err, tc.want)
			}
		})
	}
}

// TestHelpSaysShortStragglerNeedsApproval: the help of rotate says that a window under
// 30 days is approved by two people.
func TestHelpSaysShortStragglerNeedsApproval(t *testing.T) {
	for name, h := range map[string]string{"help": Help(), "help rotate": HelpTopic("rotate")} {
		if !strings.Contains(h, "under 30d") || !strings.Contains(h, "two-person approval") {
			t.Errorf("%s does not say that a straggler window under 30d needs approval:\n%s", name, h)
		}
	}
}
