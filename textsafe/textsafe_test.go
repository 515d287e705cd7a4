package textsafe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLineAndText(t *testing.T) {
	for _, tc := range []struct {
		name, in, line, text string
	}{
		{"plain", "My Company\\Servers / Remote VPN", "My Company\\Servers / Remote VPN", "My Company\\Servers / Remote VPN"},
		{"emoji and joiners stay", "👩‍💻 ✅ 🏳️‍🌈 naïve 東京", "👩‍💻 ✅ 🏳️‍🌈 naïve 東京", "👩‍💻 ✅ 🏳️‍🌈 naïve 東京"},
		{"newline", "a\nb", "a b", "a\nb"},
		{"fake approval line", "ok\n✅ approved by carol", "ok ✅ approved by carol", "ok\n✅ approved by carol"},
		{"crlf", "a\r\nb", "a  b", "a\nb"},
		{"lone cr overwrites", "innocent\rEVIL", "innocent EVIL", "innocentEVIL"},
		{"tab", "a\tb", "a b", "a\tb"},
		{"vt ff", "a\vb\fc", "a b c", "a b c"},
		{"unicode separators", "a\u2028b\u2029c\u0085d", "a b c d", "a\nb\nc\nd"},
		{"ansi escape", "\x1b[31mred\x1b[0m", "[31mred[0m", "[31mred[0m"},
		{"osc title", "\x1b]0;pwned\x07x", "]0;pwnedx", "]0;pwnedx"},
		{"nul bell backspace del", "a\x00b\x07c\x08d\x7fe", "abcde", "abcde"},
		{"c1 controls", "a\u0080b\u009bc\u009dd", "abcd", "abcd"},
		{"rlo", "approve \u202eR7\u202c", "approve R7", "approve R7"},
		{"all bidi", "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061cx", "x", "x"},
		{"invisible format", "\ufeffa\u2060b\u2064c\u206ad\ufff9e", "abcde", "abcde"},
		{"invalid utf8", "a\xffb\xc3", "a\ufffdb\ufffd", "a\ufffdb\ufffd"},
		{"empty", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Line(tc.in); got != tc.line {
				t.Errorf("Line(%q) = %q, want %q", tc.in, got, tc.line)
			}
			if got := Text(tc.in); got != tc.text {
				t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.text)
			}
			if Safe(tc.in) != (tc.in == tc.line) {
				t.Errorf("Safe(%q) = %v", tc.in, Safe(tc.in))
			}
		})
	}
}

// TestEveryUnsafeRuneRemoved walks the ranges the package promises to remove.
func TestEveryUnsafeRuneRemoved(t *testing.T) {
	var ranges = [][2]rune{{0x00, 0x1f}, {0x7f, 0x9f}, {0x200e, 0x200f}, {0x202a, 0x202e}, {0x2066, 0x2069}, {0x061c, 0x061c}}
	for _, rg := range ranges {
		for r := rg[0]; r <= rg[1]; r++ {
			in := "a" + string(r) + "b"
			if got := Line(in); strings.ContainsRune(got, r) {
				t.Errorf("Line keeps U+%04X: %q", r, got)
			}
			if got := Text(in); r != '\n' && r != '\t' && strings.ContainsRune(got, r) {
				t.Errorf("Text keeps U+%04X: %q", r, got)
			}
		}
	}
}

// TestNoAllocationWhenClean: text that needs nothing is returned as is.
func TestNoAllocationWhenClean(t *testing.T) {
	s := "My Company / Default (MSL \"Default Management Server List\") ✅"
	if n := testing.AllocsPerRun(100, func() { _ = Line(s); _ = Text(s) }); n != 0 {
		t.Errorf("%v allocations for clean text", n)
	}
}

func FuzzLine(f *testing.F) {
	for _, s := range []string{"a\nb", "\x1b[2J", "\u202eabc", "a\xffb", "x\r\ny"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{Line(s), Text(s)} {
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out of %q", s)
			}
			for _, r := range out {
				if (unsafeRune(r) && r != '\n' && r != '\t') || r == '\r' {
					t.Fatalf("U+%04X survives in %q", r, out)
				}
			}
			if Text(out) != out {
				t.Fatalf("Text is not idempotent on %q", s)
			}
		}
		l := Line(s)
		if strings.ContainsAny(l, "\n\t") || Line(l) != l || !Safe(l) {
			t.Fatalf("Line(%q) = %q is not one safe line", s, l)
		}
	})
}
