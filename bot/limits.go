package bot

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits are what one platform accepts in one message; renderers cut to them so a
// long plan or a site with hundreds of groups is shortened with "…and N more", never
// refused by the platform's API. Lengths count runes; 0 means no limit.
type Limits struct {
	Title       int // the title line
	Text        int // the body
	Line        int // one list item, step, field value or context line
	List        int // list items
	Steps       int // step lines
	Fields      int // fields
	Context     int // context lines
	Buttons     int // buttons
	ButtonLabel int // one button's label
}

// ConsoleLimits keep a terminal card readable.
var ConsoleLimits = Limits{Title: 200, Text: 16000, Line: 300, List: 15, Steps: 60, Fields: 10, Context: 20, Buttons: 5, ButtonLabel: 40}

// SlackLimits are Block Kit's documented limits, with margin for the renderer's own
// markup: header text 150, section text 3,000, 10 fields of 2,000, button text 75,
// 50 blocks per message (the steps and list share section blocks, so they are cut
// well before 50).
var SlackLimits = Limits{Title: 150, Text: 2900, Line: 1900, List: 25, Steps: 40, Fields: 10, Context: 10, Buttons: 5, ButtonLabel: 75}

// DiscordLimits are the embed and component limits: title 256, description 4,096,
// 25 fields (value 1,024), footer 2,048, 6,000 characters per message in all, 5
// buttons per row with labels of 80.
var DiscordLimits = Limits{Title: 256, Text: 3500, Line: 1000, List: 25, Steps: 40, Fields: 25, Context: 10, Buttons: 5, ButtonLabel: 80}

// AndMore is the line that stands for n items cut: "…and 185 more".
func AndMore(n int) string { return fmt.Sprintf("…and %d more", n) }

// Fit keeps at most n items: when there are more, the first n-1 and an AndMore line
// for the rest. n <= 0 keeps everything.
func Fit(items []string, n int) []string {
	if n <= 0 || len(items) <= n {
		return items
	}
	if n == 1 {
		return []string{AndMore(len(items))}
	}
	out := append([]string(nil), items[:n-1]...)
	return append(out, AndMore(len(items)-(n-1)))
}

// Clip cuts s to at most n runes, ending with "…" when cut. n <= 0 keeps s.
func Clip(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}

// ClipLines cuts a multi-line text to at most n runes, cutting whole lines first and
// saying how many lines were cut: a long SEPM error keeps its beginning readable.
// Linear in the text's length: it counts each line once.
func ClipLines(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	lines := strings.Split(s, "\n")
	k, end := FitLines(lines, n)
	if k == 0 {
		return Clip(s, n)
	}
	return s[:end] + "\n" + AndMore(len(lines)-k) + " lines"
}

// FitLines says how many leading lines of a text that does not fit in n runes to
// keep so that they, a line break and AndMore(cut)+" lines" fit in n: k lines,
// ending at byte end of strings.Join(lines, "\n"). k is 0 when not even one line
// fits with the tail. Lines are counted once each (linear).
func FitLines(lines []string, n int) (k, end int) {
	// prefix[i] = runes of lines[:i] joined; bytes likewise.
	runesTo, bytesTo := 0, 0
	type cut struct{ runes, bytes int }
	pre := make([]cut, 0, len(lines))
	for i, l := range lines {
		if i > 0 {
			runesTo++
			bytesTo++
		}
		runesTo += utf8.RuneCountInString(l)
		bytesTo += len(l)
		pre = append(pre, cut{runesTo, bytesTo})
		if runesTo > n {
			break // later lines cannot be kept
		}
	}
	for k := min(len(pre), len(lines)-1); k >= 1; k-- {
		tail := 1 + utf8.RuneCountInString(AndMore(len(lines)-k)) + len(" lines")
		if pre[k-1].runes+tail <= n {
			return k, pre[k-1].bytes
		}
	}
	return 0, 0
}
