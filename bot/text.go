package bot

import (
	"fmt"
	"strings"
	"unicode"
)

// Step state marks, shared by every renderer.
const (
	markPending = "○"
	markActive  = "▶"
	markDone    = "✅"
	markSkipped = "⏭"
	markFailed  = "⚠"
)

// Mark is the symbol of a step state.
func Mark(s StepState) string {
	switch s {
	case StepActive:
		return markActive
	case StepDone:
		return markDone
	case StepSkipped:
		return markSkipped
	case StepFailed:
		return markFailed
	}
	return markPending
}

// StepLine renders one step on one line: "▶ *5. Wait at least three heartbeats* ·
// `wait-disable` · until 14:21:05 UTC".
func StepLine(s Step) string {
	title := s.Title
	if s.Number > 0 {
		title = fmt.Sprintf("%d. %s", s.Number, s.Title)
	}
	if s.Current {
		title = "*" + title + "*"
	}
	line := Mark(s.State) + " " + title
	if s.ID != "" {
		line += " · `" + s.ID + "`"
	}
	if s.Detail != "" {
		line += " · " + s.Detail
	}
	return line
}

// Fitted returns m made safe and cut to lim, ready for a renderer to lay out part by
// part: every text printable (Printable) and passed through escape (EscapeSlack,
// EscapeDiscord, or nil for none), each part clipped, the list, steps, fields,
// context lines and buttons cut with "…and N more". Disabled buttons are kept (a
// renderer greys or drops them).
func Fitted(m Message, lim Limits, escape func(string) string) Message {
	if escape == nil {
		escape = func(s string) string { return s }
	}
	line := func(s string) string { return escape(Clip(Printable(s, false), lim.Line)) }
	out := Message{Visibility: m.Visibility, Placeholder: m.Placeholder}
	out.Title = escape(Clip(Printable(m.Title, false), lim.Title))
	out.Status = line(m.Status)
	out.Text = escape(ClipLines(Printable(strings.TrimRight(m.Text, "\n"), true), lim.Text))
	fields := m.Fields
	if lim.Fields > 0 && len(fields) > lim.Fields {
		fields = fields[:lim.Fields]
	}
	for _, f := range fields {
		out.Fields = append(out.Fields, Field{Label: line(f.Label), Value: line(f.Value)})
	}
	for _, item := range Fit(m.List, lim.List) {
		out.List = append(out.List, line(item))
	}
	steps := m.Steps
	if lim.Steps > 0 && len(steps) > lim.Steps {
		steps = append(append([]Step(nil), steps[:lim.Steps-1]...), Step{State: StepPending, Title: AndMore(len(steps)-(lim.Steps-1)) + " steps"})
	}
	for _, s := range steps {
		s.Title, s.ID, s.Detail = line(s.Title), line(s.ID), line(s.Detail)
		out.Steps = append(out.Steps, s)
	}
	if p := m.Progress; p != nil {
		cp := *p
		cp.Label = line(p.Label)
		cp.Unit = line(p.Unit)
		cp.Notes = nil
		for _, n := range Fit(p.Notes, lim.Context) {
			cp.Notes = append(cp.Notes, line(n))
		}
		out.Progress = &cp
	}
	for _, c := range Fit(m.Context, lim.Context) {
		out.Context = append(out.Context, line(c))
	}
	for i, b := range m.Buttons {
		if lim.Buttons > 0 && i == lim.Buttons {
			break
		}
		b.Label = escape(Clip(Printable(b.Label, false), lim.ButtonLabel))
		b.Confirm = escape(Clip(Printable(b.Confirm, false), lim.Line))
		out.Buttons = append(out.Buttons, b)
	}
	return out
}

// RenderText is the plain-text form of a message, within ConsoleLimits: the console
// prints it, and chat adapters can use it as their notification fallback.
func RenderText(m Message) string { return RenderTextWith(m, ConsoleLimits) }

// RenderTextWith renders m as plain text within lim: title and status on the first
// line, the body, fields, the list, the steps, the progress, the context lines, and
// the live buttons as "[Approve] [Deny]".
func RenderTextWith(m Message, lim Limits) string {
	m = Fitted(m, lim, nil)
	var lines []string
	add := func(s string) { lines = append(lines, s) }
	head := ""
	if m.Title != "" {
		head = "*" + m.Title + "*"
	}
	if m.Status != "" {
		if head != "" {
			head += " · "
		}
		head += m.Status
	}
	if head != "" {
		add(head)
	}
	if m.Text != "" {
		add(m.Text)
	}
	for _, f := range m.Fields {
		add(f.Label + ": " + f.Value)
	}
	for _, item := range m.List {
		add("  • " + item)
	}
	for _, s := range m.Steps {
		add(Clip(StepLine(s), lim.Line))
	}
	if p := m.Progress; p != nil {
		if l := p.Line(); l != "" {
			add(Clip(l, lim.Line))
		}
		lines = append(lines, p.Notes...)
	}
	lines = append(lines, m.Context...)
	var labels []string
	for _, b := range m.Buttons {
		if !b.Disabled {
			labels = append(labels, "["+b.Label+"]")
		}
	}
	if len(labels) > 0 {
		add(strings.Join(labels, " "))
	}
	return strings.Join(lines, "\n")
}

// Printable drops what a terminal or a chat client would act on instead of show:
// control characters (a tab becomes a space; a line break stays only where
// keepNewlines) and the bidi controls that reorder text (U+202A-U+202E,
// U+2066-U+2069, LRM, RLM, ALM). Text from SEPM or a user passes through it in every
// renderer.
func Printable(s string, keepNewlines bool) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' && keepNewlines:
			return r
		case r == '\t':
			return ' '
		case unicode.IsControl(r):
			return -1
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
			return -1
		}
		return r
	}, s)
}
