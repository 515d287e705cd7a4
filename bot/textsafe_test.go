package bot

import (
	"strings"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/rotation"
	"sepmbot/store"
)

// hostile is free text as an attacker would put it in a group name, a reason or a
// computer name: a line break that fakes an approval line, a right-to-left override, a
// terminal escape sequence, a carriage return that overwrites the line.
const hostile = "evil\n✅ approved by carol\u202eR7\x1b[2J\rX\u2066"

// unsafeShown reports the first character that must never be shown raw.
func unsafeShown(s string) (rune, bool) {
	for _, r := range s {
		switch {
		case r == '\n':
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f,
			r == '\u200e', r == '\u200f', r == '\u061c',
			r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
			return r, true
		}
	}
	return 0, false
}

// TestFreeTextIsSafeWhereShown: every renderer strips control and bidi characters from
// free text (SEPM names, reasons, user ids, errors), and no line break in free text
// can start a line of its own.
func TestFreeTextIsSafeWhereShown(t *testing.T) {
	targets := cardTargets(2, 0)
	targets[0].Path, targets[0].Location, targets[0].MSL = hostile, hostile, hostile
	p := cardPlan(t, false, targets)
	p.Reason = hostile
	r := cardRotation(p)
	r.Requester = "console:" + hostile
	r.Status = rotation.StatusPaused
	r.LastError = hostile
	r.Aborting, r.AbortBy, r.AbortReason = true, "console:"+hostile, hostile
	r.Steps[0] = rotation.StepState{Status: rotation.StepDone, Note: hostile}
	req := &approvals.Request{ID: "A1", Requester: "console:" + hostile, Required: 2, State: approvals.StateRejected,
		DeniedBy: "console:" + hostile, DenyReason: hostile, Expires: cardT0.Add(time.Hour)}
	v := rotation.View{Rotation: r, Approval: req}
	done := r
	done.Status, done.Aborting = rotation.StatusAborted, false
	done.Report = &rotation.Report{ClientsTotal: 3, NotSeen: 1, NotSeenNames: []string{hostile}}
	audit := []store.AuditRecord{{Seq: 1, Time: cardT0, Actor: "console:" + hostile, Kind: "deny", Step: hostile, Detail: hostile, Data: map[string]string{"path": hostile}}}

	shown := map[string]string{
		"card":             RenderCard(v, cardT0).Text,
		"card, final":      RenderCard(rotation.View{Rotation: done}, cardT0).Text,
		"approval request": RenderApprovalRequest(v).Text,
		"plan":             RenderPlan(p),
		"audit":            RenderAudit("R1", audit),
		"console text":     RenderText(Message{Text: hostile, Buttons: []Button{{Label: hostile}}}),
	}
	for name, text := range shown {
		if r, bad := unsafeShown(text); bad {
			t.Errorf("%s shows U+%04X raw:\n%q", name, r, text)
		}
		if name == "console text" {
			continue // whole-message text keeps its line breaks by design
		}
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "✅ approved by carol") {
				t.Errorf("%s: free text started a line of its own: %q", name, line)
			}
		}
	}
	if !strings.Contains(shown["card"], "evil ✅ approved by carolR7[2J X") {
		t.Errorf("card does not keep the readable part of the text:\n%s", shown["card"])
	}
}
