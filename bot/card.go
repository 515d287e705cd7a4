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

// reportNamesMax is how many not-seen clients the final report lists by name.
const reportNamesMax = 20

// coverageUnit names what a wait's coverage figure counts: clients that checked in
// (took the change) since the change the wait follows.
const coverageUnit = "clients checked in"

// RenderCard builds a rotation's run card: the one message per rotation that the bot
// edits in place. The result depends only on (v, now).
func RenderCard(v rotation.View, now time.Time) Message {
	r := v.Rotation
	m := Message{
		Title:  fmt.Sprintf("%s · %s · %s", r.ID, r.Site, pathLabel(r.Plan.Path)),
		Status: cardStatus(r),
	}
	if r.Requester != "" {
		m.Status += " · requested by " + displayUser(r.Requester)
	}
	if r.Plan.Reason != "" {
		m.Text = fmt.Sprintf("Why: %s.", textsafe.Line(strings.TrimSuffix(r.Plan.Reason, "."))) // free text: one line
	}

	for i, s := range r.Plan.Steps {
		var st rotation.StepState
		if i < len(r.Steps) {
			st = r.Steps[i]
		}
		m.Steps = append(m.Steps, cardStep(r, i, s, st, now))
	}
	m.Progress = waitProgress(r, v.Progress, now)

	if a := v.Approval; a != nil {
		if line := approvalLine(*a, now); line != "" {
			m.Context = append(m.Context, line)
		}
	}
	if singleApprover(v) {
		m.Context = append(m.Context, singleApproverLine)
	}
	if line := exposureLine(r, now); line != "" {
		m.Context = append(m.Context, line)
	}
	if r.Aborting && r.Active() {
		m.Context = append(m.Context, fmt.Sprintf("⏹ aborting (by %s%s): reverting safely", displayUser(r.AbortBy), reasonText(r.AbortReason)))
	}
	if r.Status == rotation.StatusPaused {
		switch {
		case r.LastError != "":
			m.Context = append(m.Context, fmt.Sprintf("⚠ paused: %s · fix the cause, then `resume %s` (or `abort %s`)", r.LastError, r.ID, r.ID))
		case r.PausedBy != "":
			m.Context = append(m.Context, fmt.Sprintf("⏸ paused by %s · `resume %s` to continue", displayUser(r.PausedBy), r.ID))
		default:
			m.Context = append(m.Context, fmt.Sprintf("⏸ paused · `resume %s` to continue", r.ID))
		}
	} else if r.LastError != "" && r.Active() {
		m.Context = append(m.Context, "last error: "+r.LastError)
	}
	if !r.Active() {
		m.Context = append(m.Context, finalLines(r)...)
	}
	return m
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

// cardStep renders one step: state, number, title, id, and its result or what it
// waits for.
func cardStep(r rotation.Rotation, i int, s rotation.PlanStep, st rotation.StepState, now time.Time) Step {
	out := Step{Number: i + 1, Title: s.Title, ID: s.ID, State: StepPending, Current: i == r.Cursor && r.Active()}
	switch st.Status {
	case rotation.StepActive:
		out.State = StepActive
		if r.Status == rotation.StatusPaused && r.LastError != "" && out.Current {
			out.State = StepFailed
		}
		out.Detail = activeDetail(r, s, st, now)
	case rotation.StepDone:
		out.State, out.Detail = StepDone, st.Note
	case rotation.StepSkipped:
		out.State, out.Detail = StepSkipped, "skipped"
	}
	return out
}

// activeDetail says what an active step is waiting for.
func activeDetail(r rotation.Rotation, s rotation.PlanStep, st rotation.StepState, now time.Time) string {
	switch s.Kind {
	case rotation.KindManual:
		if st.DoneBy != "" {
			return fmt.Sprintf("%s said done; verifying", displayUser(st.DoneBy))
		}
		if s.Action == rotation.ActCert {
			if seen := r.SeenCerts[s.Server]; seen != "" {
				return fmt.Sprintf("waiting for the operator to confirm certificate %s: `confirm %s %s`", shortFP(seen), r.ID, s.ID)
			}
		}
		return fmt.Sprintf("waiting for the operator: `done %s %s` when finished", r.ID, s.ID)
	case rotation.KindApproval:
		return "waiting for approval"
	case rotation.KindWait:
		if st.Override && st.DoneBy != "" {
			return fmt.Sprintf("ended early by %s at the deadline", displayUser(st.DoneBy))
		}
		if r.Wait != nil && r.Wait.Step == s.ID && !r.Wait.Deadline.IsZero() {
			return "until at least " + Deadline(r.Wait.Deadline, now)
		}
	}
	return ""
}

// waitProgress is the progress element of the current wait (nil when not waiting):
// the time figure from the stored deadline, the coverage figure from the latest poll
// (a poll of an earlier wait is not shown).
func waitProgress(r rotation.Rotation, p *rotation.Progress, now time.Time) *Progress {
	step, st, ok := r.Current()
	if !ok || !r.Active() || step.Kind != rotation.KindWait || st.Status != rotation.StepActive {
		return nil
	}
	if p != nil && p.Step != "" && p.Step != step.ID {
		p = nil
	}
	out := &Progress{}
	straggler := step.Action == rotation.ActStraggler || (p != nil && p.DeadlineOnly)
	if straggler {
		out.Label = "straggler window"
	} else {
		k, n := waitIndex(r)
		out.Label = fmt.Sprintf("wait %d of %d", k, n)
	}
	if w := r.Wait; w != nil && w.Step == step.ID && !w.Deadline.IsZero() && !w.Started.IsZero() {
		out.Total, out.Elapsed, out.Deadline = w.Deadline.Sub(w.Started), now.Sub(w.Started), w.Deadline
	}
	if p == nil {
		return out
	}
	if out.Total <= 0 && p.Left > 0 {
		out.Label += " · " + Duration(p.Left) + " left"
	}
	if straggler {
		return out
	}
	if p.Online > 0 {
		out.Done, out.Of, out.Unit = p.OnNewPolicy, p.Online, coverageUnit
	} else {
		out.Notes = append(out.Notes, "no client online: nothing to wait for but the time")
	}
	if p.Offline > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("offline: %s clients (not waited for; they check in when they return and are listed in the report)", thousands(p.Offline)))
	}
	if lag := p.Online - p.OnNewPolicy; lag > 0 && p.Left <= 0 && len(p.Laggards) > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("lagging: %s%s", strings.Join(p.Laggards, ", "), andMore(lag-len(p.Laggards))))
	}
	return out
}

// waitIndex returns the current wait's position k among the plan's n heartbeat waits.
func waitIndex(r rotation.Rotation) (k, n int) {
	for i, s := range r.Plan.Steps {
		if s.Action != rotation.ActWait {
			continue
		}
		n++
		if i <= r.Cursor {
			k = n
		}
	}
	return k, n
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
			d += ": " + a.DenyReason
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

// finalLines renders the end of a completed or aborted rotation.
func finalLines(r rotation.Rotation) []string {
	var head string
	switch {
	case r.Report != nil && !r.Report.Clean():
		// Never a success: clients are cut off (rotation.Report's safety contract).
		head = fmt.Sprintf("🚨 %s, NOT cleanly: %s clients suspected orphaned", r.Status, thousands(r.Report.SuspectedOrphaned))
	case r.Status == rotation.StatusCompleted:
		head = "🏁 completed"
	case r.Status == rotation.StatusAborted:
		head = fmt.Sprintf("🏁 aborted by %s%s; reverted", displayUser(r.AbortBy), reasonText(r.AbortReason))
	default:
		head = "🏁 " + r.Status
	}
	rep := r.Report
	if rep == nil {
		return []string{head + " · no report"}
	}
	out := []string{fmt.Sprintf("%s · %s clients · %s not seen since the change · %s offline", head, thousands(rep.ClientsTotal), thousands(rep.NotSeen), thousands(rep.Offline))}
	if rep.OnNew+rep.SuspectedOrphaned+rep.OfflineBefore+rep.NeverSeen == rep.ClientsTotal && rep.ClientsTotal > 0 {
		out = append(out, fmt.Sprintf("%s on the new certificate · %s suspected orphaned · %s offline since before the change · %s never seen", thousands(rep.OnNew), thousands(rep.SuspectedOrphaned), thousands(rep.OfflineBefore), thousands(rep.NeverSeen)))
	}
	if len(rep.SuspectedOrphanedNames) > 0 {
		out = append(out, fmt.Sprintf("suspected orphaned: %s%s", strings.Join(rep.SuspectedOrphanedNames, ", "), andMore(rep.SuspectedOrphaned-len(rep.SuspectedOrphanedNames))))
	}
	if len(rep.NotSeenNames) > 0 {
		names := rep.NotSeenNames
		if len(names) > reportNamesMax {
			names = names[:reportNamesMax]
		}
		out = append(out, fmt.Sprintf("not seen: %s%s", strings.Join(names, ", "), andMore(rep.NotSeen-len(names))))
	}
	return out
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
// ("console:alice" -> "alice"); the card lives on one platform.
func displayUser(key string) string {
	if key == "" {
		return "someone"
	}
	if _, rest, ok := strings.Cut(key, ":"); ok && rest != "" {
		return rest
	}
	return key
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
	return ": " + reason
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

// exposureLine says how long the site has been exposed while the rotation is not
// over: clients on the HTTP copies of the lists, secure communication off.
func exposureLine(r rotation.Rotation, now time.Time) string {
	if !r.Active() {
		return ""
	}
	onHTTP, off := r.Exposure(now)
	// Whole minutes: the card changes (and is edited) at most once a minute for it.
	minutes := func(d time.Duration) string {
		if d < time.Minute {
			return "under a minute"
		}
		return Duration(d.Truncate(time.Minute))
	}
	var parts []string
	if onHTTP > 0 {
		parts = append(parts, "clients on the HTTP lists for "+minutes(onHTTP))
	}
	if off > 0 {
		parts = append(parts, "secure communication off for "+minutes(off))
	}
	if len(parts) == 0 {
		return ""
	}
	return "⏱ exposure: " + strings.Join(parts, " · ")
}
