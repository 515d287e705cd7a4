package bot

import (
	"fmt"
	"time"
)

// Message is the platform-neutral content of a message: every part is optional, and
// each adapter renders the parts it has (console text, Slack Block Kit, Discord embeds
// and components), enforcing its platform's limits with Limits and Fit.
//
// No part carries platform markup: text is plain apart from the bot's own small
// markdown subset (*bold*, `code`, line breaks). Renderers neutralise everything else
// (EscapeSlack, EscapeDiscord), so a group name, a SEPM error or a user's reason can
// never mention @everyone or hide a link.
type Message struct {
	// Title is the header: "R1 · site-a · single-server path".
	Title string
	// Status is one line under the title: "running · requested by alice".
	Status string
	// Text is the body: paragraphs separated by line breaks.
	Text string
	// Fields are label/value pairs (the platforms show them side by side).
	Fields []Field
	// List is a bullet list under the body (the groups an approval changes);
	// renderers cap it with "…and N more".
	List []string
	// Steps is a rotation's step list.
	Steps []Step
	// Progress is the current wait: its deadline and its coverage.
	Progress *Progress
	// Context lines are the small print at the end: votes, errors, the report.
	Context []string
	// Buttons are the actions under the message.
	Buttons []Button
	// Visibility says who sees an answer (the default is the whole channel).
	Visibility Visibility
	// Placeholder marks an acknowledgement with nothing to say yet ("working on it"):
	// platforms that need no acknowledgement within a deadline drop it.
	Placeholder bool
}

// Visibility says who sees a message.
type Visibility int

// Visibilities.
const (
	// VisibleChannel: everyone in the channel the event came from.
	VisibleChannel Visibility = iota
	// VisibleUser: only the user who caused the event (ephemeral where the platform
	// can; never posted in the channel).
	VisibleUser
)

// Field is one label/value pair.
type Field struct {
	Label, Value string
}

// StepState is the state of one step on a card.
type StepState string

// Step states.
const (
	StepPending StepState = "pending"
	StepActive  StepState = "active"
	StepDone    StepState = "done"
	StepSkipped StepState = "skipped"
	StepFailed  StepState = "failed" // active, but the rotation paused on its error
)

// Step is one line of a step list.
type Step struct {
	State   StepState
	Number  int    // 1-based position in the plan
	Title   string // what the step does
	ID      string // the id people type: `done R1 http-msl`
	Detail  string // its result, or what it waits for
	Current bool   // the step the rotation is at
}

// Progress is a wait's two separate figures: time (elapsed of the minimum wait,
// the deadline) and coverage (clients that checked in since the change, of those
// online). Either may be absent.
type Progress struct {
	// Label names the wait: "wait 2 of 4", "straggler window".
	Label string
	// Elapsed of Total is the time figure; Total 0 means there is none.
	Elapsed, Total time.Duration
	// Deadline is when the minimum wait ends (zero: unknown).
	Deadline time.Time
	// Done of Of is the coverage figure; Of 0 means there is none.
	Done, Of int
	// Unit names what Done counts: "clients checked in".
	Unit string
	// Notes are lines that belong to the wait (offline clients, laggards).
	Notes []string
}

// Line renders p on one line, e.g.
// "wait 2 of 4 · ⏳ 1h12m of 24h elapsed (5%) · 8,412/9,000 clients checked in (93%)".
// Durations round to the nearest unit shown; percentages round down, so 100% means
// all of it.
func (p Progress) Line() string {
	s := p.Label
	add := func(part string) {
		if s != "" {
			s += " · "
		}
		s += part
	}
	if p.Total > 0 {
		el := min(max(p.Elapsed, 0), p.Total)
		add(fmt.Sprintf("⏳ %s of %s elapsed (%d%%)", Duration(el), Duration(p.Total), int(el*100/p.Total)))
	}
	if p.Of > 0 {
		done := min(max(p.Done, 0), p.Of)
		unit := p.Unit
		if unit == "" {
			unit = "done"
		}
		add(fmt.Sprintf("%s/%s %s (%d%%)", thousands(done), thousands(p.Of), unit, done*100/p.Of))
	}
	return s
}

// Button is one clickable action. Value carries what the click means (the approval
// request's nonce), ActionID what to do.
type Button struct {
	ActionID string // "approve" or "deny"
	Value    string
	Label    string
	Style    string // "primary", "danger" or ""
	// Confirm, when set, is asked before the click counts ("Turn secure
	// communication off in 12 groups of site-a for at least 30m?").
	Confirm string
	// Disabled buttons are shown greyed (Discord) or left out (Slack, console): a
	// decided approval request keeps no live buttons.
	Disabled bool
}

// Duration prints a duration for people, rounded to the nearest unit shown:
// "0s", "42s", "2m" (for 1m55s), "1h12m", "24h", "3d 4h". Seconds show only under a
// minute, minutes only under two days.
func Duration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if s := d.Round(time.Second); s < time.Minute {
		return fmt.Sprintf("%ds", s/time.Second)
	}
	if m := d.Round(time.Minute); m < time.Hour {
		return fmt.Sprintf("%dm", m/time.Minute)
	} else if m < 48*time.Hour {
		h, mm := m/time.Hour, m%time.Hour/time.Minute
		if mm == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%02dm", h, mm)
	}
	h := d.Round(time.Hour)
	days, hours := h/(24*time.Hour), h%(24*time.Hour)/time.Hour
	if hours == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd %dh", days, hours)
}

// Deadline prints an absolute time for people, relative to now: with seconds when it
// is less than an hour away ("14:21:05 UTC"), with the date otherwise
// ("2025-03-05 14:21 UTC").
func Deadline(t, now time.Time) string {
	if d := t.Sub(now); d < time.Hour && d > -time.Hour {
		return t.UTC().Format("15:04:05 UTC")
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
