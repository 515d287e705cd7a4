package bot

import (
	"fmt"
	"strings"
	"time"

	"sepmbot/approvals"
	"sepmbot/rotation"
)

// secureTargets are the groups/locations whose secure communication the approval
// turns off.
func secureTargets(r rotation.Rotation) []string {
	var out []string
	for _, t := range r.Plan.GroupsToChange {
		if t.Secure {
			out = append(out, t.Path+" / "+t.Location)
		}
	}
	return out
}

// offAtLeast is the least time secure communication stays off: the waits between
// disabling and re-enabling it (the certificate update comes on top).
func offAtLeast(p rotation.Plan) time.Duration {
	var d time.Duration
	in := false
	for _, s := range p.Steps {
		switch s.Action {
		case rotation.ActDisableSecure:
			in = true
		case rotation.ActEnableSecure:
			in = false
		case rotation.ActWait:
			if in {
				d += time.Duration(s.WaitSeconds) * time.Second
			}
		}
	}
	return d
}

func approvalTitle(r rotation.Rotation) string {
	return fmt.Sprintf("🔐 Approval needed: %s · %s", r.ID, r.Site)
}

// RenderApprovalRequest builds the message approvers react to (✅ approve, ❌ deny)
// or click: exactly what will be done, who asks, how many approvals are needed, when
// the request expires, and that the requester cannot approve it. The Approve button
// asks for confirmation with what is approved.
func RenderApprovalRequest(v rotation.View) Message {
	r := v.Rotation
	targets := secureTargets(r)
	requester, required := approvalParties(v)
	m := Message{
		Title: approvalTitle(r),
		Text:  fmt.Sprintf("%s asks to turn *secure communication off* in %d %s:", displayUser(requester), len(targets), plural(len(targets), "group/location", "groups/locations")),
		List:  targets,
	}
	off := offAtLeast(r.Plan)
	m.Context = append(m.Context,
		fmt.Sprintf("Clients keep working without it while the server certificate is replaced; it stays off for at least %s plus the certificate update, then the rotation turns it back on.", Duration(off)),
		fmt.Sprintf("Needs %d %s from people other than %s: the requester cannot approve.", required, plural(required, "approval", "approvals"), displayUser(requester)))
	if a := v.Approval; a != nil {
		m.Context = append(m.Context, fmt.Sprintf("Expires at %s.", hhmm(a.Expires)))
	}
	m.Context = append(m.Context, fmt.Sprintf("React ✅ to approve or ❌ to deny, click a button, or say `approve %s` / `deny %s <reason>`.", r.ID, r.ID))
	if a := v.Approval; a != nil && a.ID != "" {
		m.Buttons = []Button{
			{ActionID: "approve", Value: a.ID, Label: "Approve", Style: "primary",
				Confirm: fmt.Sprintf("Turn secure communication off in %d %s of %s for at least %s (%s)?", len(targets), plural(len(targets), "group/location", "groups/locations"), r.Site, Duration(off), r.ID)},
			{ActionID: "deny", Value: a.ID, Label: "Deny", Style: "danger"},
		}
	}
	return m
}

func approvalParties(v rotation.View) (requester string, required int) {
	requester, required = v.Rotation.Requester, approvals.DefaultRequired
	if a := v.Approval; a != nil {
		if a.Requester != "" {
			requester = a.Requester
		}
		if a.Required > 0 {
			required = a.Required
		}
	}
	return requester, required
}

// ApprovalDecided reports whether the view's approval request is decided (approved,
// denied, expired or withdrawn): its message then shows the verdict, no live buttons.
func ApprovalDecided(v rotation.View, now time.Time) bool {
	a := v.Approval
	return a != nil && (a.State != approvals.StatePending || a.Expired(now))
}

// RenderApprovalDecided builds what the approval request's message becomes once
// decided: the verdict first, what was asked, and the buttons disabled.
func RenderApprovalDecided(v rotation.View, now time.Time) Message {
	r := v.Rotation
	targets := secureTargets(r)
	requester, _ := approvalParties(v)
	m := Message{
		Title: fmt.Sprintf("🔐 Approval for %s · %s: %s", r.ID, r.Site, verdict(v, now)),
		Text:  fmt.Sprintf("%s asked to turn *secure communication off* in %d %s:", displayUser(requester), len(targets), plural(len(targets), "group/location", "groups/locations")),
		List:  targets,
	}
	if a := v.Approval; a != nil {
		if voters := a.Approvers(); len(voters) > 0 {
			names := make([]string, len(voters))
			for i, u := range voters {
				names[i] = displayUser(u)
			}
			m.Context = append(m.Context, "approved by "+strings.Join(names, " and "))
		}
		if !a.DecidedAt.IsZero() {
			m.Context = append(m.Context, "decided at "+a.DecidedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
		}
		m.Buttons = []Button{
			{ActionID: "approve", Value: a.ID, Label: "Approve", Style: "primary", Disabled: true},
			{ActionID: "deny", Value: a.ID, Label: "Deny", Style: "danger", Disabled: true},
		}
	}
	m.Context = append(m.Context, "Votes on this message no longer count.")
	return m
}

// verdict is the decided request's outcome in a few words.
func verdict(v rotation.View, now time.Time) string {
	a := v.Approval
	if a == nil {
		return "no request"
	}
	switch {
	case a.State == approvals.StateApproved:
		return "✅ approved"
	case a.State == approvals.StateRejected:
		s := "❌ denied by " + displayUser(a.DeniedBy)
		if a.DenyReason != "" {
			s += ": " + a.DenyReason
		}
		return s
	case a.State == approvals.StateExpired, a.State == approvals.StatePending && a.Expired(now):
		return "⌛ expired at " + hhmm(a.Expires)
	case a.State == approvals.StateVoid:
		return "withdrawn (the plan changed or the rotation ended)"
	}
	return string(a.State)
}
