package bot

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"sepmbot/approvals"
	"sepmbot/rotation"
	"sepmbot/textsafe"
)

// Step state marks on the run card.
const (
	markPending = "○"
	markActive  = "▶"
	markDone    = "✅"
	markSkipped = "⏭"
)

// barCells is the width of the progress bar.
const barCells = 9

// approvalListMax is how many groups/locations an approval request lists by name.
const approvalListMax = 15

// reportNamesMax is how many not-seen clients the final report lists by name.
const reportNamesMax = 20

// RenderCard renders a rotation's run card: the one message per rotation that the
// bot edits in place. The output depends only on (v, now).
func RenderCard(v rotation.View, now time.Time) Message {
	r := v.Rotation
	var b strings.Builder

	// Header and reason.
	fmt.Fprintf(&b, "*%s* · %s · %s · %s", r.ID, r.Site, pathLabel(r.Plan.Path), cardStatus(r))
	if r.Requester != "" {
		fmt.Fprintf(&b, " · requested by %s", displayUser(r.Requester))
	}
	b.WriteByte('\n')
	if r.Plan.Reason != "" {
		fmt.Fprintf(&b, "Why: %s.\n", textsafe.Line(strings.TrimSuffix(r.Plan.Reason, ".")))
	}

	// Steps.
	for i, s := range r.Plan.Steps {
		var st rotation.StepState
		if i < len(r.Steps) {
			st = r.Steps[i]
		}
		current := i == r.Cursor && r.Active()
		b.WriteString(stepLine(r, i, s, st, current))
		b.WriteByte('\n')
	}

	// The current wait.
	if p := v.Progress; p != nil && r.Active() && currentIsWait(r, p) {
		b.WriteString(RenderProgress(*p))
		b.WriteByte('\n')
		if !p.DeadlineOnly {
			if p.Offline > 0 {
				fmt.Fprintf(&b, "offline: %s clients (not waited for; they take the policy when they return and are listed in the report)\n", thousands(p.Offline))
			}
			if lag := p.Online - p.OnNewPolicy; lag > 0 && p.Left <= 0 && len(p.Laggards) > 0 {
				fmt.Fprintf(&b, "lagging: %s%s\n", textsafe.Line(strings.Join(p.Laggards, ", ")), andMore(lag-len(p.Laggards)))
			}
		}
	}

	// The approval request.
	if a := v.Approval; a != nil {
		if line := approvalLine(*a, now); line != "" {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	if singleApprover(v) {
		b.WriteString(singleApproverLine + "\n")
	}

	// Paused, aborting, last error.
	if r.Aborting && r.Active() {
		fmt.Fprintf(&b, "⏹ aborting (by %s%s): reverting safely\n", displayUser(r.AbortBy), reasonText(r.AbortReason))
	}
	if r.Status == rotation.StatusPaused {
		switch {
		case r.LastError != "":
			fmt.Fprintf(&b, "⚠ paused: %s · fix the cause, then `resume %s` (or `abort %s`)\n", textsafe.Line(r.LastError), r.ID, r.ID)
		case r.PausedBy != "":
			fmt.Fprintf(&b, "⏸ paused by %s · `resume %s` to continue\n", displayUser(r.PausedBy), r.ID)
		default:
			fmt.Fprintf(&b, "⏸ paused · `resume %s` to continue\n", r.ID)
		}
	} else if r.LastError != "" && r.Active() {
		fmt.Fprintf(&b, "last error: %s\n", textsafe.Line(r.LastError))
	}

	// The end.
	if !r.Active() {
		b.WriteString(finalLines(r))
	}
	return Message{Text: strings.TrimRight(b.String(), "\n")}
}

// cardStatus is the status word of the header.
func cardStatus(r rotation.Rotation) string {
	if r.Aborting && r.Status == rotation.StatusRunning {
		return "aborting"
	}
	if r.Aborting && r.Status == rotation.StatusPaused {
		return "paused while aborting"
	}
	return r.Status
}

func pathLabel(path string) string {
	if path == "" {
		return "unknown path"
	}
	return path + "-server path"
}

// currentIsWait reports whether p belongs to the rotation's current step (a stale
// progress of an earlier wait is not shown).
func currentIsWait(r rotation.Rotation, p *rotation.Progress) bool {
	step, st, ok := r.Current()
	if !ok || step.Kind != rotation.KindWait || st.Status != rotation.StepActive {
		return false
	}
	return p.Step == "" || p.Step == step.ID
}

// stepLine renders one step: mark, number, title, id, and what it waits for.
func stepLine(r rotation.Rotation, i int, s rotation.PlanStep, st rotation.StepState, current bool) string {
	mark := markPending
	switch st.Status {
	case rotation.StepActive:
		mark = markActive
	case rotation.StepDone:
		mark = markDone
	case rotation.StepSkipped:
		mark = markSkipped
	}
	title := fmt.Sprintf("%d. %s", i+1, s.Title)
	if current {
		title = "*" + title + "*"
	}
	line := fmt.Sprintf("%s %s · `%s`", mark, title, s.ID)
	switch st.Status {
	case rotation.StepDone:
		if st.Note != "" {
			line += " · " + textsafe.Line(st.Note)
		}
	case rotation.StepSkipped:
		line += " · skipped"
	case rotation.StepActive:
		line += activeSuffix(r, s, st)
	}
	return line
}

// activeSuffix says what an active step is waiting for.
func activeSuffix(r rotation.Rotation, s rotation.PlanStep, st rotation.StepState) string {
	switch s.Kind {
	case rotation.KindManual:
		if st.DoneBy != "" {
			return fmt.Sprintf(" · %s said done; verifying", displayUser(st.DoneBy))
		}
		if s.Action == rotation.ActCert {
			if seen := r.SeenCerts[s.Server]; seen != "" {
				return fmt.Sprintf(" · waiting for the operator to confirm certificate %s: `confirm %s %s`", shortFP(seen), r.ID, s.ID)
			}
		}
		return fmt.Sprintf(" · waiting for the operator: `done %s %s` when finished", r.ID, s.ID)
	case rotation.KindApproval:
		return " · waiting for approval"
	case rotation.KindWait:
		if st.Override && st.DoneBy != "" {
			return fmt.Sprintf(" · ended early by %s at the deadline", displayUser(st.DoneBy))
		}
		if r.Wait != nil && r.Wait.Step == s.ID && !r.Wait.Deadline.IsZero() {
			return " · until at least " + r.Wait.Deadline.UTC().Format("2006-01-02 15:04 UTC")
		}
	}
	return ""
}

// approvalLine renders the state of the approval request on the card.
func approvalLine(a approvals.Request, now time.Time) string {
	voters := a.Approvers()
	required := a.Required
	if required < 1 {
		required = approvals.DefaultRequired
	}
	parts := []string{fmt.Sprintf("approval: %d of %d", len(voters), required)}
	for _, u := range voters {
		parts = append(parts, displayUser(u)+" ✅")
	}
	switch a.State {
	case approvals.StateApproved:
		parts = append(parts, "approved")
	case approvals.StateRejected:
		d := "❌ denied by " + displayUser(a.DeniedBy)
		if a.DenyReason != "" {
			d += ": " + textsafe.Line(a.DenyReason)
		}
		parts = append(parts, d)
	case approvals.StateExpired:
		parts = append(parts, "expired at "+hhmm(a.Expires))
	case approvals.StateVoid:
		parts = append(parts, "withdrawn")
	case approvals.StatePending:
		if a.Expired(now) {
			parts = append(parts, "expired at "+hhmm(a.Expires))
			break
		}
		parts = append(parts, fmt.Sprintf("waiting for %d more", a.Remaining()), "expires "+hhmm(a.Expires))
	default:
		parts = append(parts, string(a.State))
	}
	return strings.Join(parts, " · ")
}

// singleApproverLine is how the card and the approval request say that one approver
// is enough (--approvals 1 --allow-single-approver).
const singleApproverLine = "⚠ single approver: this bot runs with --approvals 1 --allow-single-approver, so one person other than the requester can approve turning secure communication off"

// singleApprover reports whether the rotation needs only one approval.
func singleApprover(v rotation.View) bool {
	if a := v.Approval; a != nil && a.Required > 0 {
		return a.Required < 2
	}
	return v.Rotation.Options.SingleApprover
}

// finalLines renders the end of a completed or aborted rotation.
func finalLines(r rotation.Rotation) string {
	var b strings.Builder
	switch {
	case r.Report != nil && !r.Report.Clean():
		// Never a success: clients are cut off (rotation.Report's safety contract).
		fmt.Fprintf(&b, "🚨 %s, NOT cleanly: %s clients suspected orphaned", r.Status, thousands(r.Report.SuspectedOrphaned))
	case r.Status == rotation.StatusCompleted:
		b.WriteString("🏁 completed")
	case r.Status == rotation.StatusAborted:
		fmt.Fprintf(&b, "🏁 aborted by %s%s; reverted", displayUser(r.AbortBy), reasonText(r.AbortReason))
	default:
		fmt.Fprintf(&b, "🏁 %s", r.Status)
	}
	if rep := r.Report; rep != nil {
		fmt.Fprintf(&b, " · %s clients · %s not seen since the change · %s offline\n", thousands(rep.ClientsTotal), thousands(rep.NotSeen), thousands(rep.Offline))
		if rep.OnNew+rep.SuspectedOrphaned+rep.OfflineBefore+rep.NeverSeen == rep.ClientsTotal && rep.ClientsTotal > 0 {
			fmt.Fprintf(&b, "%s on the new certificate · %s suspected orphaned · %s offline since before the change · %s never seen\n", thousands(rep.OnNew), thousands(rep.SuspectedOrphaned), thousands(rep.OfflineBefore), thousands(rep.NeverSeen))
		}
		if len(rep.SuspectedOrphanedNames) > 0 {
			fmt.Fprintf(&b, "suspected orphaned: %s%s\n", strings.Join(rep.SuspectedOrphanedNames, ", "), andMore(rep.SuspectedOrphaned-len(rep.SuspectedOrphanedNames)))
		}
		if len(rep.NotSeenNames) > 0 {
			names := rep.NotSeenNames
			if len(names) > reportNamesMax {
				names = names[:reportNamesMax]
			}
			fmt.Fprintf(&b, "not seen: %s%s\n", textsafe.Line(strings.Join(names, ", ")), andMore(rep.NotSeen-len(names)))
		}
	} else {
		b.WriteString(" · no report\n")
	}
	return b.String()
}

// RenderApprovalRequest renders the message approvers react to (✅ approve, ❌ deny)
// or click: exactly what will be done, who asks, how many approvals are needed, when
// the request expires, and that the requester cannot approve it.
func RenderApprovalRequest(v rotation.View) Message {
	r := v.Rotation
	var targets []rotation.Target
	for _, t := range r.Plan.GroupsToChange {
		if t.Secure {
			targets = append(targets, t)
		}
	}
	requester := r.Requester
	required := approvals.DefaultRequired
	if a := v.Approval; a != nil {
		if a.Requester != "" {
			requester = a.Requester
		}
		if a.Required > 0 {
			required = a.Required
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "🔐 *Approval needed: %s* · %s\n", r.ID, r.Site)
	fmt.Fprintf(&b, "%s asks to turn *secure communication off* in %d %s:\n", displayUser(requester), len(targets), plural(len(targets), "group/location", "groups/locations"))
	for i, t := range targets {
		if i == approvalListMax {
			fmt.Fprintf(&b, "  and %d more\n", len(targets)-approvalListMax)
			break
		}
		fmt.Fprintf(&b, "  • %s / %s\n", textsafe.Line(t.Path), textsafe.Line(t.Location))
	}
	b.WriteString("Clients keep working without it while the server certificate is replaced; the rotation turns it back on afterwards.\n")
	fmt.Fprintf(&b, "Needs %d %s from people other than %s: the requester cannot approve.\n", required, plural(required, "approval", "approvals"), displayUser(requester))
	if singleApprover(v) {
		b.WriteString(singleApproverLine + "\n")
	}
	if a := v.Approval; a != nil {
		fmt.Fprintf(&b, "Expires at %s.\n", hhmm(a.Expires))
	}
	fmt.Fprintf(&b, "React ✅ to approve or ❌ to deny, click a button, or say `approve %s` / `deny %s <reason>`.", r.ID, r.ID)
	m := Message{Text: b.String()}
	if a := v.Approval; a != nil && a.ID != "" {
		m.Buttons = []Button{
			{ActionID: "approve", Value: a.ID, Label: "Approve", Style: "primary"},
			{ActionID: "deny", Value: a.ID, Label: "Deny", Style: "danger"},
		}
	}
	return m
}

// RenderProgress renders a wait's progress line, e.g.
// "heartbeat 2/3 ▓▓▓▓▓▓▓▓░ 8,412/9,000 on new policy (93%) · 4m left", or for a
// straggler window "straggler window · 89d 23h left". The bar is filled by the share
// of online clients on the new policy (rounded down).
func RenderProgress(p rotation.Progress) string {
	if p.DeadlineOnly {
		return "straggler window · " + compactDuration(p.Left) + " left"
	}
	pct := 100
	filled := barCells
	if p.Online > 0 {
		on := min(max(p.OnNewPolicy, 0), p.Online)
		pct = on * 100 / p.Online
		filled = on * barCells / p.Online
	}
	bar := strings.Repeat("▓", filled) + strings.Repeat("░", barCells-filled)
	return fmt.Sprintf("heartbeat %d/%d %s %s/%s on new policy (%d%%) · %s left",
		p.HeartbeatsDone, p.HeartbeatsNeeded, bar, thousands(p.OnNewPolicy), thousands(p.Online), pct, compactDuration(p.Left))
}

// RenderText is the console text form of a message: the text, then its buttons on
// one line as "[Approve] [Deny]". The result is safe for a terminal (textsafe.Text):
// whatever free text a message carries, no control or bidi character reaches it.
func RenderText(m Message) string {
	if len(m.Buttons) == 0 {
		return textsafe.Text(m.Text)
	}
	labels := make([]string, len(m.Buttons))
	for i, btn := range m.Buttons {
		labels[i] = "[" + textsafe.Line(btn.Label) + "]"
	}
	return textsafe.Text(strings.TrimRight(m.Text, "\n") + "\n" + strings.Join(labels, " "))
}

// compactDuration prints a time left: "0s", "12s", "4m", "1h05m", "89d 23h".
// Seconds are shown only under a minute, minutes only under a day.
func compactDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	// Round up to whole seconds so that "0s" means the time is over.
	secs := int64((d + time.Second - 1) / time.Second)
	switch {
	case secs < 60:
		return fmt.Sprintf("%ds", secs)
	case secs < 3600:
		return fmt.Sprintf("%dm", secs/60)
	case secs < 86400:
		return fmt.Sprintf("%dh%02dm", secs/3600, secs%3600/60)
	default:
		return fmt.Sprintf("%dd %dh", secs/86400, secs%86400/3600)
	}
}

// thousands prints n with comma thousands separators: 9000 -> "9,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// displayUser shows a platform-qualified user key without its platform prefix
// ("console:alice" -> "alice"); the card lives on one platform. The key is made safe
// to show (textsafe.Line).
func displayUser(key string) string {
	if key == "" {
		return "someone"
	}
	if _, rest, ok := strings.Cut(key, ":"); ok && rest != "" {
		return textsafe.Line(rest)
	}
	return textsafe.Line(key)
}

func hhmm(t time.Time) string { return t.UTC().Format("15:04") + " UTC" }

func shortFP(fp string) string {
	if len(fp) > 16 {
		return fp[:16] + "…"
	}
	return fp
}

func reasonText(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + textsafe.Line(reason)
}

func andMore(k int) string {
	if k <= 0 {
		return ""
	}
	return fmt.Sprintf(" and %d more", k)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
