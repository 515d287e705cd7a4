package bot

import (
	"fmt"
	"strings"
	"time"

	"sepmbot/rotation"
	"sepmbot/store"
)

// RenderPlan prints a plan for people: the path and why, what changes, every step.
func RenderPlan(p rotation.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*Plan for %s: %s-server path.*\n", p.Site, p.Path)
	fmt.Fprintf(&b, "Why: %s.\n", p.Reason)
	fmt.Fprintf(&b, "Manager %s; servers: %s; %d clients (%d on 14.2.x).\n", p.ManagerVersion, strings.Join(p.Servers, ", "), p.ClientsTotal, p.Clients142)
	fmt.Fprintf(&b, "Longest heartbeat %ds; each wait at least %s.\n", p.HeartbeatSeconds, (time.Duration(p.WaitSeconds) * time.Second).String())
	fmt.Fprintf(&b, "Groups and locations the rotation changes (%d):\n", len(p.GroupsToChange))
	for _, t := range p.GroupsToChange {
		fmt.Fprintf(&b, "  • %s / %s (MSL %q, secure communication %s, heartbeat %ds)\n", t.Path, t.Location, t.MSL, onOff(t.Secure), t.HeartbeatSeconds)
	}
	b.WriteString("Steps:\n")
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "  %2d. [%s] `%s` %s (%s)\n", i+1, s.Kind, s.ID, s.Title, BroadcomStep(s.SeedStep))
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "Note: %s\n", n)
	}
	return strings.TrimRight(b.String(), "\n")
}

// PlanMessage is the plan as a chat message: the same content as RenderPlan, with
// the groups as a list and the steps as a step list, so each platform cuts a long
// site to its limits ("…and N more") instead of failing.
func PlanMessage(p rotation.Plan) Message {
	m := Message{Title: fmt.Sprintf("Plan for %s: %s-server path", p.Site, p.Path)}
	m.Text = fmt.Sprintf("Why: %s.\nManager %s; servers: %s; %d clients (%d on 14.2.x).\nLongest heartbeat %ds; each wait at least %s.\nGroups and locations the rotation changes (%d):",
		strings.TrimSuffix(p.Reason, "."), p.ManagerVersion, strings.Join(p.Servers, ", "), p.ClientsTotal, p.Clients142, p.HeartbeatSeconds, Duration(time.Duration(p.WaitSeconds)*time.Second), len(p.GroupsToChange))
	for _, t := range p.GroupsToChange {
		m.List = append(m.List, fmt.Sprintf("%s / %s (MSL %q, secure communication %s, heartbeat %ds)", t.Path, t.Location, t.MSL, onOff(t.Secure), t.HeartbeatSeconds))
	}
	for i, s := range p.Steps {
		m.Steps = append(m.Steps, Step{State: StepPending, Number: i + 1, Title: s.Title, ID: s.ID, Detail: BroadcomStep(s.SeedStep)})
	}
	for _, n := range p.Notes {
		m.Context = append(m.Context, "Note: "+n)
	}
	return m
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// RenderAudit prints a rotation's audit trail, one record a line.
func RenderAudit(id string, recs []store.AuditRecord) string {
	if len(recs) == 0 {
		return "no audit records for " + id
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Audit of %s* (%d records)\n", id, len(recs))
	for _, a := range recs {
		fmt.Fprintf(&b, "%s #%d %s %s", a.Time.UTC().Format("2006-01-02 15:04:05Z"), a.Seq, a.Actor, AuditKind(a.Kind))
		if a.Step != "" {
			fmt.Fprintf(&b, " [%s]", a.Step)
		}
		if a.Detail != "" {
			fmt.Fprintf(&b, ": %s", a.Detail)
		}
		if p := a.Data["path"]; p != "" {
			fmt.Fprintf(&b, " (%s)", p)
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}

// BroadcomStep names a plan step's place in Broadcom's procedure ("Update the server
// certificate on the management server without interrupting communications with the
// client"), by the page's own numbers: "1-4" -> "Broadcom steps 1-4".
func BroadcomStep(s string) string {
	switch {
	case s == "":
		return "not in Broadcom's steps"
	case s == "after 9":
		return "after Broadcom step 9"
	case s == "offline clients":
		return "Broadcom: offline clients"
	case s == "abort":
		return "revert"
	case strings.ContainsAny(s, "-,"):
		return "Broadcom steps " + s
	case strings.Trim(s, "0123456789") == "":
		return "Broadcom step " + s
	}
	return "Broadcom: " + s
}

// auditNouns are the readable names of the audit kinds the engine has written.
var auditNouns = map[string]string{
	"step-done":   "step-finished",
	"vote-voted":  "vote",
	"vote-repeat": "vote",
}

// AuditKind is the readable noun of an audit kind: every "vote-*" is a vote (its
// detail says what it did), "step-done" a finished step.
func AuditKind(kind string) string {
	if n, ok := auditNouns[kind]; ok {
		return n
	}
	if strings.HasPrefix(kind, "vote-") {
		return "vote"
	}
	return kind
}
