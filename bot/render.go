package bot

import (
	"fmt"
	"strings"
	"time"

	"sepmbot/rotation"
	"sepmbot/store"
	"sepmbot/textsafe"
)

// RenderPlan prints a plan for people: the path and why, what changes, every step.
func RenderPlan(p rotation.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*Plan for %s: %s-server path.*\n", p.Site, p.Path)
	fmt.Fprintf(&b, "Why: %s.\n", textsafe.Line(p.Reason))
	fmt.Fprintf(&b, "Manager %s; servers: %s; %d clients (%d on 14.2.x).\n", textsafe.Line(p.ManagerVersion), textsafe.Line(strings.Join(p.Servers, ", ")), p.ClientsTotal, p.Clients142)
	fmt.Fprintf(&b, "Longest heartbeat %ds; each wait at least %s.\n", p.HeartbeatSeconds, (time.Duration(p.WaitSeconds) * time.Second).String())
	fmt.Fprintf(&b, "Groups and locations the rotation changes (%d):\n", len(p.GroupsToChange))
	for _, t := range p.GroupsToChange {
		fmt.Fprintf(&b, "  • %s / %s (MSL %q, secure communication %s, heartbeat %ds)\n", textsafe.Line(t.Path), textsafe.Line(t.Location), textsafe.Line(t.MSL), onOff(t.Secure), t.HeartbeatSeconds)
	}
	b.WriteString("Steps:\n")
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "  %2d. [%s] `%s` %s (seed %s)\n", i+1, s.Kind, s.ID, s.Title, s.SeedStep)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "Note: %s\n", n)
	}
	return strings.TrimRight(b.String(), "\n")
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
		// Audit records keep free text raw (data); it is made safe only here, to show.
		fmt.Fprintf(&b, "%s #%d %s %s", a.Time.UTC().Format("2006-01-02 15:04:05Z"), a.Seq, textsafe.Line(a.Actor), textsafe.Line(a.Kind))
		if a.Step != "" {
			fmt.Fprintf(&b, " [%s]", textsafe.Line(a.Step))
		}
		if a.Detail != "" {
			fmt.Fprintf(&b, ": %s", textsafe.Line(a.Detail))
		}
		if p := a.Data["path"]; p != "" {
			fmt.Fprintf(&b, " (%s)", textsafe.Line(p))
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}
