package rotation

import (
	"fmt"
	"strings"

	"sepmbot/approvals"
)

// revertSteps is the abort's revert, from what the journal says was touched.
// certMayChange: a certificate changed, or may be changing (the abort interrupted a
// certificate step); the first revert wait then keeps the certificate wait's floor
// so clients take the new certificate while secure communication is still off.
func revertSteps(t Touched, hb int, floor int64, certMayChange bool) []PlanStep {
	three := int64(3 * max(hb, 1))
	first := three
	if certMayChange {
		first = max(floor, three)
	}
	var out []PlanStep
	if t.Secure {
		out = append(out,
			PlanStep{ID: "revert-wait-1", Title: "Wait for clients to take the current policy before secure communication returns", Kind: KindWait, SeedStep: "abort", Action: ActWait, WaitSeconds: first},
			PlanStep{ID: "revert-enable-secure", Title: "Re-enable secure communication where the rotation turned it off", Kind: KindAuto, SeedStep: "abort", Action: ActEnableSecure},
		)
		if t.MSL {
			out = append(out, PlanStep{ID: "revert-wait-2", Title: "Wait at least three heartbeats", Kind: KindWait, SeedStep: "abort", Action: ActWait, WaitSeconds: three})
		}
	}
	if t.MSL {
		out = append(out, PlanStep{ID: "revert-restore-msl", Title: "Re-assign the original management server lists where the rotation changed them", Kind: KindAuto, SeedStep: "abort", Action: ActRestoreMSL})
	}
	if t.Secure || t.MSL {
		out = append(out, PlanStep{ID: "revert-wait-3", Title: "Wait for clients to take the original settings", Kind: KindWait, SeedStep: "abort", Action: ActWait, WaitSeconds: three})
	}
	return append(out, PlanStep{ID: "revert-report", Title: "Report where the site stands", Kind: KindAuto, SeedStep: "abort", Action: ActReport})
}

func (m *machine) abort(ev Event) error {
	r := m.r
	if !r.Active() {
		return refuseUser("%s is already %s", r.ID, r.Status)
	}
	if r.Aborting {
		return refuseUser("%s is already aborting", r.ID)
	}
	interrupted, _, _ := r.Current()
	certMayChange := r.CertChanges > 0 || interrupted.Action == ActCert
	hb := ev.HeartbeatSeconds
	if hb <= 0 {
		hb = r.Plan.HeartbeatSeconds
	}
	revert := revertSteps(ev.Touched, hb, r.Plan.WaitSeconds, certMayChange)
	for i := r.Cursor; i < len(r.Steps); i++ {
		if r.Steps[i].Status != StepDone {
			r.Steps[i].Status = StepSkipped
			r.Steps[i].Finished = m.now
		}
	}
	keep := min(r.Cursor+1, len(r.Plan.Steps)) // the interrupted step stays as history
	r.Plan.Steps = append(r.Plan.Steps[:keep:keep], revert...)
	r.Steps = r.Steps[:keep:keep]
	for range revert {
		r.Steps = append(r.Steps, StepState{Status: StepPending})
	}
	r.Cursor = keep
	if r.Wait != nil {
		r.Wait = nil
		m.effects = append(m.effects, Effect{Kind: EffDisarmTimer})
	}
	r.Aborting, r.AbortBy, r.AbortReason = true, ev.Actor, ev.Reason
	r.Drifted = false // a revert is never rewound (EvInterlock)
	r.Status, r.PausedBy, r.LastError = StatusRunning, "", ""
	if r.Approval != "" && ev.Approval != nil && ev.Approval.State == approvals.StatePending {
		m.effects = append(m.effects, Effect{Kind: EffVoidRequest, ID: r.Approval})
	}
	m.audit(ev.Actor, "abort", "", ev.Reason, map[string]string{"revert_steps": fmt.Sprint(len(revert)), "touched_secure": fmt.Sprint(ev.Touched.Secure), "touched_msl": fmt.Sprint(ev.Touched.MSL)})
	m.post("⏹ abort by %s%s: reverting what the change journal says the rotation touched (%d steps)", ev.Actor, reasonSuffix(ev.Reason), len(revert))
	if interrupted.Action == ActCert && r.Plan.Path == PathSingle {
		m.post("⚠ If you already updated the certificate on %s, that is fine: clients take it during the first revert wait. Do not update it once secure communication is back on.", serverLabel(interrupted.Server))
	}
	return nil
}

func (m *machine) end() error {
	r := m.r
	if !r.Active() {
		return ErrStale
	}
	if _, _, ok := r.Current(); ok {
		return ErrStale
	}
	if r.Aborting {
		r.Status = StatusAborted
	} else {
		r.Status = StatusCompleted
	}
	m.audit("sepmbot", "rotation-"+r.Status, "", "", nil)
	rep := r.Report
	msg := fmt.Sprintf("🏁 %s %s.", r.ID, r.Status)
	if rep != nil && !rep.Clean() {
		msg = fmt.Sprintf("🚨 %s %s, but NOT cleanly: %d clients are suspected orphaned (%s). Recover them in the SEPM console: Clients > select the clients > Run a command / create a Communication Update Package (Help > Communication Update Package Deployment) and deploy it to them.", r.ID, r.Status, rep.SuspectedOrphaned, strings.Join(rep.SuspectedOrphanedNames, ", "))
	}
	if rep != nil {
		msg += " " + rep.Summary()
	}
	if r.Status == StatusCompleted {
		if fp := r.NewCerts[r.APIServer]; fp != "" && r.APIServer != "" {
			msg += fmt.Sprintf(" The API now presents %s: update --sepm-fingerprint to it.", fp)
			if old := r.OldCerts[r.APIServer]; old != "" {
				m.effects = append(m.effects, Effect{Kind: EffUntrust, FP: old})
			}
		}
		msg += " Archive the new disaster-recovery file (Server Private Key Backup\\recovery_*.zip)."
	}
	m.post("%s", msg)
	return nil
}

// Summary is the report in one sentence.
func (rep Report) Summary() string {
	return fmt.Sprintf("%d clients: %d on the new settings, %d suspected orphaned, %d offline since before the change, %d never seen.", rep.ClientsTotal, rep.OnNew, rep.SuspectedOrphaned, rep.OfflineBefore, rep.NeverSeen)
}

// clone returns a deep copy of what Apply may change.
func (r Rotation) clone() Rotation {
	c := r
	c.Plan.Steps = append([]PlanStep(nil), r.Plan.Steps...)
	c.Plan.GroupsToChange = append([]Target(nil), r.Plan.GroupsToChange...)
	c.Steps = append([]StepState(nil), r.Steps...)
	c.Outbox = append([]Outgoing(nil), r.Outbox...)
	c.OldCerts = cloneMap(r.OldCerts)
	c.NewCerts = cloneMap(r.NewCerts)
	c.SeenCerts = cloneMap(r.SeenCerts)
	if r.Wait != nil {
		w := *r.Wait
		c.Wait = &w
	}
	if r.Report != nil {
		rep := *r.Report
		c.Report = &rep
	}
	return c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
