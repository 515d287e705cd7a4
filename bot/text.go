package bot

import (
	"fmt"
	"strings"
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

// RenderText is the plain-text form of a message, within ConsoleLimits: the console
// prints it, and chat adapters can use it as their notification fallback.
func RenderText(m Message) string { return RenderTextWith(m, ConsoleLimits) }

// RenderTextWith renders m as plain text within lim: title and status on the first
// line, the body, fields, the list, the steps, the progress, the context lines, and
// the live buttons as "[Approve] [Deny]".
func RenderTextWith(m Message, lim Limits) string {
	var lines []string
	add := func(s string) { lines = append(lines, s) }
	clip := func(s string) string { return Clip(s, lim.Line) }

	head := ""
	if m.Title != "" {
		head = "*" + Clip(m.Title, lim.Title) + "*"
	}
	if m.Status != "" {
		if head != "" {
			head += " · "
		}
		head += clip(m.Status)
	}
	if head != "" {
		add(head)
	}
	if m.Text != "" {
		add(ClipLines(strings.TrimRight(m.Text, "\n"), lim.Text))
	}
	fields := m.Fields
	if lim.Fields > 0 && len(fields) > lim.Fields {
		fields = fields[:lim.Fields]
	}
	for _, f := range fields {
		add(clip(f.Label + ": " + f.Value))
	}
	for _, item := range Fit(m.List, lim.List) {
		add("  • " + clip(item))
	}
	steps := make([]string, 0, len(m.Steps))
	for _, s := range m.Steps {
		steps = append(steps, clip(StepLine(s)))
	}
	for _, s := range Fit(steps, lim.Steps) {
		if strings.HasPrefix(s, "…and ") {
			s += " steps"
		}
		add(s)
	}
	if p := m.Progress; p != nil {
		if l := p.Line(); l != "" {
			add(clip(l))
		}
		for _, n := range p.Notes {
			add(clip(n))
		}
	}
	for _, c := range Fit(m.Context, lim.Context) {
		add(clip(c))
	}
	var labels []string
	for _, b := range m.Buttons {
		if !b.Disabled {
			labels = append(labels, "["+Clip(b.Label, lim.ButtonLabel)+"]")
		}
	}
	if lim.Buttons > 0 && len(labels) > lim.Buttons {
		labels = labels[:lim.Buttons]
	}
	if len(labels) > 0 {
		add(strings.Join(labels, " "))
	}
	return strings.Join(lines, "\n")
}
