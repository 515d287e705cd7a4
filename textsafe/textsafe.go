// Package textsafe makes free text safe to show: reasons people type, names that come
// from SEPM (groups, locations, management server lists, computers), user ids, and
// SEPM's error messages. Such text is stored raw (the audit keeps it as data, byte for
// byte); every place that shows it to a person (chat, terminal, exports) passes it
// through Line or Text first.
//
// Both remove what can change how the surrounding text reads rather than what it
// says: C0 and C1 control characters (an ESC starts a terminal escape sequence, a CR
// overwrites the line), DEL, the Unicode bidirectional controls (U+061C, U+200E,
// U+200F, U+202A-U+202E, U+2066-U+2069: a right-to-left override can make
// "approve R7" display as something else) and a few invisible format characters
// (U+2060-U+2064, U+206A-U+206F, U+FEFF, U+FFF9-U+FFFB). Invalid UTF-8 becomes U+FFFD.
// Zero-width joiners stay: emoji and several scripts need them. The functions are
// pure and allocate only when something changes.
package textsafe

import (
	"strings"
	"unicode/utf8"
)

// Line returns s made safe for one line of display: line breaks and tabs (\n, \r, \t,
// \v, \f, U+0085, U+2028, U+2029) become one space each, so a name or reason cannot
// start a line of its own (a fake "✅ approved" line); every other unsafe character is
// removed.
func Line(s string) string { return clean(s, false) }

// Text returns s made safe for multi-line display: line breaks are kept as "\n"
// (\r\n and the Unicode separators become "\n", a lone \r is dropped) and tabs are
// kept; every other unsafe character is removed.
func Text(s string) string { return clean(s, true) }

// Safe reports whether s shows as it is on one line (Line(s) == s).
func Safe(s string) bool { return !needsWork(s, false) }

func clean(s string, multiline bool) string {
	if !needsWork(s, multiline) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError && size <= 1 {
			b.WriteRune(utf8.RuneError)
			continue
		}
		switch {
		case r == '\r':
			if !multiline {
				b.WriteByte(' ')
			} else if i < len(s) && s[i] == '\n' {
				continue // \r\n: the \n follows
			}
			// A lone \r in text would return the cursor: dropped.
		case r == '\n' || r == '\u0085' || r == '\u2028' || r == '\u2029':
			if multiline {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		case r == '\t':
			if multiline {
				b.WriteByte('\t')
			} else {
				b.WriteByte(' ')
			}
		case r == '\v' || r == '\f':
			b.WriteByte(' ')
		case unsafeRune(r):
			// removed
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// needsWork reports whether clean would change s.
func needsWork(s string, multiline bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == '\n' || c == '\t' {
				if !multiline {
					return true
				}
			} else if c < 0x20 || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return true
		}
		if r == '\u0085' || r == '\u2028' || r == '\u2029' || unsafeRune(r) {
			return true
		}
		i += size
	}
	return false
}

// unsafeRune reports the characters removed outright: C0 controls other than the
// breaks and tabs handled by clean, DEL, C1 controls, bidi controls and invisible
// format characters.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	case r >= '\u2060' && r <= '\u2064', r >= '\u206a' && r <= '\u206f':
		return true
	case r == '\ufeff', r >= '\ufff9' && r <= '\ufffb':
		return true
	}
	return false
}
