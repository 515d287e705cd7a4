package bot

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// clipLinesNaive is the plain definition ClipLines must match: try every number of
// leading lines, most first.
func clipLinesNaive(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	lines := strings.Split(s, "\n")
	for k := len(lines) - 1; k >= 1; k-- {
		head := strings.Join(lines[:k], "\n")
		tail := "\n" + AndMore(len(lines)-k) + " lines"
		if utf8.RuneCountInString(head)+utf8.RuneCountInString(tail) <= n {
			return head + tail
		}
	}
	return Clip(s, n)
}

func TestClipLinesMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "ü", "SEPM", "✅", "", "long line of text", "\n", "\n\n"}
	for i := range 3000 {
		var b strings.Builder
		for range rng.IntN(60) {
			b.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(3) == 0 {
				b.WriteString("\n")
			}
		}
		s, n := b.String(), rng.IntN(80)
		if got, want := ClipLines(s, n), clipLinesNaive(s, n); got != want {
			t.Fatalf("case %d: ClipLines(%q, %d) = %q, want %q", i, s, n, got, want)
		}
	}
	// Many short lines: the tail's count has more digits than the cut lines.
	s := strings.Repeat("x\n", 5000)
	if got, want := ClipLines(s, 3000), clipLinesNaive(s, 3000); got != want || utf8.RuneCountInString(got) > 3000 {
		t.Fatalf("5000 lines: %d runes, differs: %v", utf8.RuneCountInString(got), got != want)
	}
}

// BenchmarkClipLines: a 200 kB SEPM error of 10,000 lines cut to Slack's section.
func BenchmarkClipLines(b *testing.B) {
	var sb strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&sb, "line %d of a very long SEPM error\n", i)
	}
	s := sb.String()
	for b.Loop() {
		_ = ClipLines(s, 2900)
	}
}
