package rotation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"sepmbot/approvals"
	"sepmbot/sepm"
	"sepmbot/store"
)

// errPermanent marks a step failure that retrying will not fix: the rotation pauses
// with the error and an operator decides.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return &permanentError{err: err} }

// isTransient tells whether a SEPM failure may pass by itself (5xx, timeouts, network).
func isTransient(err error) bool {
	var pe *permanentError
	if errors.As(err, &pe) {
		return false
	}
	var api *sepm.APIError
	if errors.As(err, &api) {
		return api.Status >= 500 || api.Status == 429
	}
	var na *sepm.NotAppliedError
	if errors.As(err, &na) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

const forever = time.Duration(-1)

// drive runs one rotation until it ends or ctx is done. Each pass reads the stored
// rotation and acts on its current step, so a restart resumes exactly where the
// store says the rotation is.
func (e *Engine) drive(ctx context.Context, id string, wake <-chan struct{}) {
	announced := map[string]bool{} // per step: instruction or approval posted by this process
	failures := 0
	refreshed := false
	for ctx.Err() == nil {
		v, err := e.Get(ctx, id)
		if err != nil {
			e.log.Error("loading rotation", "rotation", id, "err", err)
			e.sleep(ctx, wake, 5*time.Second)
			continue
		}
		r := v.Rotation
		if !refreshed {
			e.cfg.Notifier.Update(ctx, v) // refresh the run card after a (re)start
			refreshed = true
		}
		if !r.Active() {
			return
		}
		if r.Status == StatusPaused {
			e.sleep(ctx, wake, forever)
			continue
		}
		step, st, ok := r.Current()
		if !ok {
			if err := e.finish(ctx, r); err != nil {
				e.log.Error("finishing rotation", "rotation", id, "err", err)
				e.sleep(ctx, wake, 5*time.Second)
			}
			continue
		}
		if st.Status == StepPending {
			if err := e.startStep(ctx, r, step); err != nil {
				e.log.Error("starting step", "rotation", id, "step", step.ID, "err", err)
				e.sleep(ctx, wake, time.Second)
			}
			continue
		}
		next, err := e.runStep(ctx, r, step, *st, announced)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if isTransient(err) && failures < 6 {
				backoff := min(time.Duration(1<<failures)*time.Second, time.Minute)
				e.log.Warn("step failed, will retry", "rotation", id, "step", step.ID, "err", err, "retry_in", backoff)
				e.sleep(ctx, wake, backoff)
				continue
			}
			e.pauseOnError(ctx, r.ID, step.ID, r.Aborting, err)
			failures = 0
			continue
		}
		failures = 0
		if next != 0 {
			e.sleep(ctx, wake, next)
		}
	}
}

func (e *Engine) sleep(ctx context.Context, wake <-chan struct{}, d time.Duration) {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
	case <-wake:
	case <-timer:
	}
}

func (e *Engine) pauseOnError(ctx context.Context, id, stepID string, aborting bool, cause error) {
	paused := false
	r, err := e.mutate(ctx, id, func(tx *store.Tx, r *Rotation) error {
		// A failure of a step the rotation has left (an abort committed meanwhile)
		// must not pause the revert.
		if r.Status != StatusRunning || !onStep(r, stepID, aborting) {
			return nil
		}
		paused = true
		r.Status, r.LastError = StatusPaused, cause.Error()
		return e.audit(tx, r.ID, "sepmbot", "step-failed", stepID, cause.Error(), nil)
	})
	if err != nil {
		e.log.Error("pausing after failure", "rotation", id, "err", err)
		return
	}
	if !paused {
		return // nothing committed, nothing to announce
	}
	e.post(ctx, id, fmt.Sprintf("⚠ %s failed: %s. The rotation is paused; fix the cause, then `resume %s` (or `abort %s`).", stepID, cause, id, id))
	e.announce(ctx, r)
}

func (e *Engine) startStep(ctx context.Context, r Rotation, step PlanStep) error {
	now := e.cfg.Now().UTC()
	started := false
	r2, err := e.mutate(ctx, r.ID, func(tx *store.Tx, r *Rotation) error {
		cur, st, ok := r.Current()
		if !ok || cur.ID != step.ID || st.Status != StepPending || r.Status != StatusRunning {
			return nil // moved on meanwhile
		}
		started = true
		st.Status, st.Started = StepActive, now
		if step.Kind == KindWait {
			w := &WaitState{Step: step.ID, Started: now, Deadline: now.Add(time.Duration(step.WaitSeconds) * time.Second), ChangeAt: r.ChangeAt, HeartbeatSeconds: r.Plan.HeartbeatSeconds}
			if w.ChangeAt == 0 {
				w.ChangeAt = now.UnixMilli()
			}
			r.Wait = w
			if err := tx.Put(bucketTimers, r.ID, []byte(w.Deadline.Format(time.RFC3339Nano))); err != nil {
				return err
			}
		}
		return e.audit(tx, r.ID, "sepmbot", "step-started", step.ID, step.Title, nil)
	})
	if err != nil || !started {
		return err // nothing committed, nothing to announce
	}
	msg := fmt.Sprintf("▶ %s: %s", step.ID, step.Title)
	if step.Kind == KindWait && r2.Wait != nil {
		msg += fmt.Sprintf(" (at least until %s)", r2.Wait.Deadline.Format("15:04:05 MST"))
	}
	e.post(ctx, r.ID, msg)
	e.announce(ctx, r2)
	return nil
}

// completeStep marks the current step done (if it still is the current step) and
// moves the cursor; fn may record more in the same transaction.
func (e *Engine) completeStep(ctx context.Context, id, stepID, note string, fn func(tx *store.Tx, r *Rotation) error) error {
	now := e.cfg.Now().UTC()
	moved := false
	r2, err := e.mutate(ctx, id, func(tx *store.Tx, r *Rotation) error {
		cur, st, ok := r.Current()
		if !ok || cur.ID != stepID || st.Status != StepActive {
			return nil
		}
		moved = true
		st.Status, st.Finished = StepDone, now
		if note != "" {
			st.Note = note
		}
		if fn != nil {
			if err := fn(tx, r); err != nil {
				return err
			}
		}
		if cur.Kind == KindWait {
			r.Wait = nil
			if err := tx.Delete(bucketTimers, r.ID); err != nil {
				return err
			}
		}
		r.Cursor++
		return e.audit(tx, r.ID, "sepmbot", "step-done", stepID, note, nil)
	})
	if err != nil {
		return err
	}
	if moved {
		text := "✅ " + stepID + " done"
		if note != "" {
			text += ": " + note
		}
		e.post(ctx, id, text)
		e.announce(ctx, r2)
	}
	return nil
}

func (e *Engine) finish(ctx context.Context, r Rotation) error {
	finished := false
	r2, err := e.mutate(ctx, r.ID, func(tx *store.Tx, r *Rotation) error {
		if !r.Active() {
			return nil
		}
		finished = true
		if r.Aborting {
			r.Status = StatusAborted
		} else {
			r.Status = StatusCompleted
		}
		return e.audit(tx, r.ID, "sepmbot", "rotation-"+r.Status, "", "", nil)
	})
	if err != nil || !finished {
		return err
	}
	msg := fmt.Sprintf("🏁 %s %s.", r2.ID, r2.Status)
	if rep := r2.Report; rep != nil {
		msg += fmt.Sprintf(" %d clients, %d not seen since the change, %d offline.", rep.ClientsTotal, rep.NotSeen, rep.Offline)
	}
	if r2.Status == StatusCompleted {
		if fp := r2.NewCerts[r2.APIServer]; fp != "" && r2.APIServer != "" {
			msg += fmt.Sprintf(" The API now presents %s: update --sepm-fingerprint to it.", fp)
			if old := r2.OldCerts[r2.APIServer]; old != "" {
				if u, ok := e.cfg.SEPM.(interface{ Untrust(string) }); ok {
					u.Untrust(old)
				}
			}
		}
		msg += " Archive the new disaster-recovery file (Server Private Key Backup\\recovery_*.zip)."
	}
	e.post(ctx, r2.ID, msg)
	e.announce(ctx, r2)
	return nil
}

// runStep acts on an active step. It returns how long to sleep before the next pass
// (0: at once; forever: until woken).
func (e *Engine) runStep(ctx context.Context, r Rotation, step PlanStep, st StepState, announced map[string]bool) (time.Duration, error) {
	switch step.Action {
	case ActHTTPCopy:
		if st.DoneBy != "" {
			return 0, e.completeStep(ctx, r.ID, step.ID, "HTTP copies created by "+st.DoneBy+" (the assignment step verifies the names)", nil)
		}
		if !announced[step.ID] {
			announced[step.ID] = true
			e.post(ctx, r.ID, e.httpCopyInstructions(r, step))
		}
		return forever, nil
	case ActAssignHTTP, ActDisableSecure, ActEnableSecure, ActRestoreMSL:
		return 0, e.applySettings(ctx, r, step)
	case ActApproval:
		return e.runApproval(ctx, r, step, announced)
	case ActCert:
		return e.runCert(ctx, r, step, st, announced)
	case ActWait:
		return e.runWait(ctx, r, step, st)
	case ActStraggler:
		return e.runStraggler(ctx, r, step)
	case ActReport:
		rep, err := e.report(ctx, r)
		if err != nil {
			return 0, err
		}
		note := fmt.Sprintf("%d of %d clients not seen since the change (%d offline)", rep.NotSeen, rep.ClientsTotal, rep.Offline)
		if len(rep.NotSeenNames) > 0 {
			note += ": " + strings.Join(rep.NotSeenNames, ", ")
		}
		return 0, e.completeStep(ctx, r.ID, step.ID, note, func(_ *store.Tx, r *Rotation) error {
			r.Report = &rep
			return nil
		})
	}
	return 0, permanent(fmt.Errorf("unknown step action %q", step.Action))
}

func (e *Engine) httpCopyInstructions(r Rotation, step PlanStep) string {
	msls := map[string]bool{}
	for _, t := range r.Plan.GroupsToChange {
		if t.MSL != "" {
			msls[t.MSL] = true
		}
	}
	names := make([]string, 0, len(msls))
	for n := range msls {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "👷 %s (seed steps 1-4), in the SEPM console: Policies > Policy Components > Management Server Lists. For each list below: Tasks > Copy the list, then Paste the list; edit the copy: choose \"Use HTTP protocol\", and for every server under Management Servers, Edit > Customize HTTP port %d. Name the copy exactly as shown. OK, OK.\n", step.ID, r.Plan.HTTPPort)
	for _, n := range names {
		fmt.Fprintf(&b, "  • %q → %q\n", n, HTTPCopyName(n, r.Plan.HTTPPort))
	}
	fmt.Fprintf(&b, "Then say `done %s %s`. The bot assigns the copies (step 5) through the API and reads them back.", r.ID, step.ID)
	return b.String()
}

// desired returns the settings a target must have after an auto step, and a
// description; ok=false when the step leaves the target alone.
func desired(r Rotation, action string, t Target) (sepm.Configuration, string, func(sepm.Settings) bool, bool) {
	switch action {
	case ActAssignHTTP:
		if t.MSL == "" {
			return sepm.Configuration{}, "", nil, false
		}
		name := HTTPCopyName(t.MSL, r.Plan.HTTPPort)
		return mslPatch(name), "assign MSL " + name, func(s sepm.Settings) bool { return mslOf(s) == name }, true
	case ActRestoreMSL:
		if t.MSL == "" {
			return sepm.Configuration{}, "", nil, false
		}
		return mslPatch(t.MSL), "assign MSL " + t.MSL, func(s sepm.Settings) bool { return mslOf(s) == t.MSL }, true
	case ActDisableSecure:
		if !t.Secure {
			return sepm.Configuration{}, "", nil, false
		}
		return securePatch(false), "secure communication off", func(s sepm.Settings) bool { return !secureOf(s) }, true
	case ActEnableSecure:
		if !t.Secure {
			return sepm.Configuration{}, "", nil, false // it was off before the rotation: leave it as found
		}
		return securePatch(true), "secure communication on", secureOf, true
	}
	return sepm.Configuration{}, "", nil, false
}

func mslPatch(name string) sepm.Configuration {
	return sepm.Configuration{CommunicationSettings: &sepm.CommunicationSettings{SemServer: &sepm.ServerListSummary{Name: name}}}
}

func securePatch(on bool) sepm.Configuration {
	return sepm.Configuration{GeneralSettings: &sepm.GeneralSettings{SecuritySettings: &sepm.SecuritySettings{SecureCommunications: &on}}}
}

// applySettings is observe-then-act: for every target it reads the settings, skips
// what is already as wanted (audited as such), and PATCHes the rest one by one, each
// change audited after SEPM confirmed it by read-back.
func (e *Engine) applySettings(ctx context.Context, r Rotation, step PlanStep) error {
	if step.Action == ActDisableSecure {
		binds, err := e.checkApprovalStillBinds(ctx, r, step)
		if err != nil || !binds {
			return err // !binds: the plan changed and approval is asked again
		}
	}
	start := e.cfg.Now().UTC()
	changed, skipped := 0, 0
	for _, t := range r.Plan.GroupsToChange {
		patch, what, isDone, ok := desired(r, step.Action, t)
		if !ok {
			continue
		}
		// r is what the driver read before the step; an abort (or a plan change)
		// committed since then wins: no further change for this step.
		if cur, err := e.stillOnStep(ctx, r, step.ID); err != nil || !cur {
			return err
		}
		cur, err := e.cfg.SEPM.LocationSettings(ctx, t.GroupID, t.LocationID)
		if err != nil {
			return fmt.Errorf("reading %s / %s: %w", t.Path, t.Location, err)
		}
		data := map[string]string{"group": t.GroupID, "location": t.LocationID, "path": t.Path + " / " + t.Location}
		if isDone(cur) {
			skipped++
			if err := e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
				return e.audit(tx, r.ID, "sepmbot", "sepm-already", step.ID, what, data)
			}); err != nil {
				return err
			}
			continue
		}
		if _, err := e.cfg.SEPM.PatchLocationSettings(ctx, t.GroupID, t.LocationID, patch); err != nil {
			var api *sepm.APIError
			if errors.As(err, &api) && api.Status >= 400 && api.Status < 500 {
				return permanent(fmt.Errorf("SEPM refused %s on %s / %s: %w", what, t.Path, t.Location, err))
			}
			return fmt.Errorf("%s on %s / %s: %w", what, t.Path, t.Location, err)
		}
		changed++
		if err := e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
			return e.audit(tx, r.ID, "sepmbot", "sepm-change", step.ID, what, data)
		}); err != nil {
			return err
		}
	}
	note := fmt.Sprintf("%d changed, %d already so", changed, skipped)
	return e.completeStep(ctx, r.ID, step.ID, note, func(_ *store.Tx, r *Rotation) error {
		if changed > 0 || r.ChangeAt == 0 {
			r.ChangeAt = start.UnixMilli()
		}
		if r.FirstChange == 0 {
			r.FirstChange = start.UnixMilli()
		}
		return nil
	})
}

// checkApprovalStillBinds refuses to disable secure communication unless the current
// approval is approved and bound to exactly the targets SEPM shows now. If the site
// changed, the plan is updated, the votes are void, the cursor goes back to the
// approval step, and it returns false.
func (e *Engine) checkApprovalStillBinds(ctx context.Context, r Rotation, step PlanStep) (bool, error) {
	var req approvals.Request
	if err := e.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		req, err = loadApprovalTx(tx, r.Approval)
		return err
	}); err != nil || req.State != approvals.StateApproved || req.ActionHash != actionHash(r) || req.Rotation != r.ID {
		return false, permanent(fmt.Errorf("secure communication stays on: no valid approval binds this action"))
	}
	if age := e.cfg.Now().Sub(req.DecidedAt); age > e.cfg.ApprovalTTL {
		// Approved, then paused (or failing) for longer than an approval lives: the
		// approvers said yes to a site as it was then. Ask again.
		moved := false
		_, err := e.mutate(ctx, r.ID, func(tx *store.Tx, cur *Rotation) error {
			idx := cur.Plan.StepIndex("approval")
			if !onStep(cur, step.ID, false) || idx < 0 || cur.Cursor <= idx {
				return nil
			}
			moved = true
			if err := rewindTx(tx, cur, idx); err != nil {
				return err
			}
			return e.audit(tx, cur.ID, "sepmbot", "approval-stale", step.ID, fmt.Sprintf("approved %s ago, longer than the approval ttl %s", humanDuration(age), humanDuration(e.cfg.ApprovalTTL)), nil)
		})
		if err != nil || !moved {
			return false, err
		}
		e.post(ctx, r.ID, fmt.Sprintf("⌛ The approval was given %s ago, longer than an approval lives (%s): secure communication stays on and approval is asked again.", humanDuration(age), humanDuration(e.cfg.ApprovalTTL)))
		return false, nil
	}
	groups, err := e.cfg.SEPM.Groups(ctx)
	if err != nil {
		return false, fmt.Errorf("re-reading groups before disabling secure communication: %w", err)
	}
	targets, err := readTargets(ctx, e.cfg.SEPM, groups)
	if err != nil {
		return false, err
	}
	if sameTargets(targets, r.Plan.GroupsToChange) {
		return true, nil
	}
	// The site changed since the plan: votes are void; plan again and ask again.
	// New targets need the HTTP copy of their list (seed step 5: all groups and
	// locations) before secure communication goes off, so the cursor goes back to
	// the assignment (or to the copy when a new list is in use), not to the approval.
	moved := false
	_, err = e.mutate(ctx, r.ID, func(tx *store.Tx, cur *Rotation) error {
		if !onStep(cur, step.ID, false) {
			return nil // aborted or moved on meanwhile: the abort's revert stands
		}
		r := cur
		idx := r.Plan.StepIndex("approval")
		if idx < 0 || r.Cursor <= idx {
			return nil
		}
		merged := mergeTargets(r.Plan.GroupsToChange, targets)
		msls := map[string]bool{}
		for _, t := range r.Plan.GroupsToChange {
			msls[t.MSL] = true
		}
		for i, t := range merged {
			// A new target that already uses the HTTP copy of a known list: its
			// original (restored at the end) is that list, never the HTTP copy.
			for m := range msls {
				if m != "" && t.MSL == HTTPCopyName(m, r.Plan.HTTPPort) {
					merged[i].MSL = m
				}
			}
		}
		if i := r.Plan.StepIndex("assign-http"); i >= 0 && i < idx {
			idx = i
			for _, t := range merged {
				if j := r.Plan.StepIndex("http-msl"); t.MSL != "" && !msls[t.MSL] && j >= 0 && j < idx {
					idx = j
				}
			}
		}
		r.Plan.GroupsToChange = merged
		moved = true
		if err := rewindTx(tx, r, idx); err != nil {
			return err
		}
		return e.audit(tx, r.ID, "sepmbot", "plan-changed", "disable-secure", "the site's groups/locations changed since the approval: votes void", nil)
	})
	if err != nil || !moved {
		return false, err
	}
	e.post(ctx, r.ID, "⚠ The site's groups or locations changed since the approval, so the votes no longer bind the action. The plan now lists the current targets; new ones get the HTTP copy of their list first, then approval is asked again.")
	return false, nil
}

// rewindTx voids the current approval and moves the cursor back to step idx,
// resetting every step from there to the current one.
func rewindTx(tx *store.Tx, r *Rotation, idx int) error {
	if req, err := loadApprovalTx(tx, r.Approval); err == nil {
		req.State = approvals.StateVoid
		if err := saveApprovalTx(tx, req); err != nil {
			return err
		}
	}
	r.Approval = ""
	for i := idx; i <= r.Cursor && i < len(r.Steps); i++ {
		r.Steps[i] = StepState{Status: StepPending}
	}
	r.Cursor = idx
	return nil
}

// stillOnStep reports whether the stored rotation still has stepID as its active
// step in the same phase (forward or reverting) as r, the copy the driver acts on.
func (e *Engine) stillOnStep(ctx context.Context, r Rotation, stepID string) (bool, error) {
	ok := false
	err := e.cfg.Store.View(ctx, func(tx *store.Tx) error {
		cur, err := loadTx(tx, r.ID)
		if err != nil {
			return err
		}
		ok = onStep(&cur, stepID, r.Aborting)
		return nil
	})
	return ok, err
}

func onStep(r *Rotation, stepID string, aborting bool) bool {
	s, st, ok := r.Current()
	return ok && r.Active() && r.Aborting == aborting && s.ID == stepID && st.Status == StepActive
}

func sameTargets(now, planned []Target) bool {
	a := map[string]bool{}
	for _, t := range now {
		a[t.Key()] = true
	}
	if len(a) != len(planned) {
		return false
	}
	for _, t := range planned {
		if !a[t.Key()] {
			return false
		}
	}
	return true
}

// mergeTargets keeps the original snapshot for targets already known (their values
// may already be changed by the rotation) and adds new ones as read now.
func mergeTargets(planned, now []Target) []Target {
	known := map[string]Target{}
	for _, t := range planned {
		known[t.Key()] = t
	}
	var out []Target
	for _, t := range now {
		if k, ok := known[t.Key()]; ok {
			out = append(out, k)
		} else {
			out = append(out, t)
		}
	}
	return out
}

func (e *Engine) runApproval(ctx context.Context, r Rotation, step PlanStep, announced map[string]bool) (time.Duration, error) {
	var req approvals.Request
	have := false
	if r.Approval != "" {
		if err := e.cfg.Store.View(ctx, func(tx *store.Tx) error {
			var err error
			req, err = loadApprovalTx(tx, r.Approval)
			return err
		}); err == nil {
			have = true
		}
	}
	if !have || req.State == approvals.StateVoid {
		now := e.cfg.Now().UTC()
		req = approvals.New(newNonce(), r.ID, r.Requester, actionHash(r), e.cfg.Approvals, e.cfg.ApprovalTTL, now)
		if _, err := e.mutate(ctx, r.ID, func(tx *store.Tx, r *Rotation) error {
			if err := saveApprovalTx(tx, req); err != nil {
				return err
			}
			r.Approval = req.ID
			return e.audit(tx, r.ID, "sepmbot", "approval-requested", step.ID, fmt.Sprintf("%d approvers needed within %s", req.Required, humanDuration(e.cfg.ApprovalTTL)), map[string]string{"request": req.ID, "action_sha256": req.ActionHash})
		}); err != nil {
			return 0, err
		}
		delete(announced, step.ID)
		return 0, nil
	}
	switch req.State {
	case approvals.StateApproved:
		return 0, e.completeStep(ctx, r.ID, step.ID, "approved by "+strings.Join(req.Approvers(), " and "), nil)
	case approvals.StateRejected:
		reason := fmt.Sprintf("denied by %s", req.DeniedBy)
		if req.DenyReason != "" {
			reason += ": " + req.DenyReason
		}
		r2, err := e.mutate(ctx, r.ID, func(tx *store.Tx, r *Rotation) error {
			if r.Aborting {
				return nil
			}
			return e.beginAbortTx(tx, r, req.DeniedBy, reason)
		})
		if err != nil {
			return 0, err
		}
		e.post(ctx, r.ID, "⛔ approval "+reason+"; nothing dangerous was done, reverting what the rotation changed")
		e.announce(ctx, r2)
		return 0, nil
	}
	if req.Expired(e.cfg.Now()) {
		r2, err := e.mutate(ctx, r.ID, func(tx *store.Tx, r *Rotation) error {
			r.Status, r.LastError = StatusPaused, "the approval request expired before enough approvers said yes"
			return e.audit(tx, r.ID, "sepmbot", "approval-expired", step.ID, "", map[string]string{"request": req.ID})
		})
		if err != nil {
			return 0, err
		}
		e.post(ctx, r.ID, fmt.Sprintf("⌛ the approval request expired. `resume %s` asks again.", r.ID))
		e.announce(ctx, r2)
		return 0, nil
	}
	if req.MessageRef == "" || !announced[step.ID] {
		posted, err := e.askApproval(ctx, r.ID, req)
		if posted {
			announced[step.ID] = true
		}
		if err != nil {
			return 0, err
		}
	}
	return max(req.Expires.Sub(e.cfg.Now()), time.Millisecond), nil
}

// askApproval posts the approval request req, records which message it is, and
// reports whether it was posted. Votes wait meanwhile: an approver may react the
// instant the message shows, and that vote must not be refused as one on an unknown
// message.
func (e *Engine) askApproval(ctx context.Context, id string, req approvals.Request) (bool, error) {
	e.asking.Lock()
	defer e.asking.Unlock()
	v, _ := e.Get(ctx, id)
	refs, err := e.cfg.Notifier.RequestApproval(ctx, v)
	if err != nil {
		return false, fmt.Errorf("posting the approval request: %w", err)
	}
	if len(refs) == 0 {
		return false, errors.New("posting the approval request: the chat layer returned no message")
	}
	ref := refs[0] // TODO(safety core): record every ref; votes on any of them count
	if ref == req.MessageRef {
		return true, nil
	}
	return true, e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		cur, err := loadApprovalTx(tx, req.ID)
		if err != nil {
			return err
		}
		cur.MessageRef = ref
		return saveApprovalTx(tx, cur)
	})
}

func (e *Engine) runCert(ctx context.Context, r Rotation, step PlanStep, st StepState, announced map[string]bool) (time.Duration, error) {
	server := step.Server
	want := r.NewCerts[server]
	if st.DoneBy == "" {
		if !announced[step.ID] {
			announced[step.ID] = true
			e.post(ctx, r.ID, e.certInstructions(r, step, want))
		}
		return forever, nil
	}
	addrs := e.probeAddrs(r, server)
	if len(addrs) == 0 {
		return 0, permanent(fmt.Errorf("no address is configured to verify %s (--sepm-server NAME=HOST:PORT)", serverLabel(server)))
	}
	var seen string
	for _, addr := range addrs {
		ci, err := e.cfg.Probe(ctx, addr)
		if err != nil {
			return 0, fmt.Errorf("probing %s at %s: %w", serverLabel(server), addr, err)
		}
		if seen != "" && ci.SHA256 != seen {
			return 0, e.rejectDone(ctx, r, step, fmt.Sprintf("%s presents different certificates on its ports (%s vs %s): wait for the services to restart, then say done again", serverLabel(server), short(seen), short(ci.SHA256)))
		}
		seen = ci.SHA256
	}
	switch {
	case want != "" && seen == want:
		return 0, e.completeStep(ctx, r.ID, step.ID, fmt.Sprintf("%s presents the new certificate %s on %s", serverLabel(server), short(seen), strings.Join(addrs, " and ")), func(_ *store.Tx, r *Rotation) error {
			now := e.cfg.Now().UTC().UnixMilli()
			r.ChangeAt = now
			if r.FirstChange == 0 {
				r.FirstChange = now
			}
			return nil
		})
	case seen == r.OldCerts[server]:
		return 0, e.rejectDone(ctx, r, step, fmt.Sprintf("%s still presents the old certificate %s: update it, then say `done %s %s` again", serverLabel(server), short(seen), r.ID, step.ID))
	case want != "":
		return 0, e.rejectDone(ctx, r, step, fmt.Sprintf("%s presents %s, but the rotation expects %s: not accepted", serverLabel(server), seen, want))
	default:
		_, err := e.mutate(ctx, r.ID, func(tx *store.Tx, r *Rotation) error {
			if _, cur, ok := r.Current(); ok {
				cur.DoneBy = ""
			}
			if r.SeenCerts == nil {
				r.SeenCerts = map[string]string{}
			}
			r.SeenCerts[server] = seen
			return e.audit(tx, r.ID, "sepmbot", "certificate-seen", step.ID, "awaiting confirmation", map[string]string{"sha256": seen})
		})
		if err != nil {
			return 0, err
		}
		e.post(ctx, r.ID, fmt.Sprintf("🔎 %s now presents certificate SHA-256 %s (was %s). If that is the certificate you installed, say `confirm %s %s`.", serverLabel(server), seen, r.OldCerts[server], r.ID, step.ID))
		return forever, nil
	}
}

func (e *Engine) rejectDone(ctx context.Context, r Rotation, step PlanStep, why string) error {
	_, err := e.mutate(ctx, r.ID, func(tx *store.Tx, r *Rotation) error {
		if _, cur, ok := r.Current(); ok {
			cur.DoneBy = ""
		}
		return e.audit(tx, r.ID, "sepmbot", "verification-failed", step.ID, why, nil)
	})
	if err != nil {
		return err
	}
	e.post(ctx, r.ID, "❌ "+why)
	return nil
}

func (e *Engine) probeAddrs(r Rotation, server string) []string {
	var out []string
	for _, s := range e.cfg.Servers {
		if s.Name == server && s.ClientAddr != "" {
			out = append(out, s.ClientAddr)
		}
	}
	if e.cfg.APIAddr != "" && (server == r.APIServer || len(e.cfg.Servers) == 0) {
		out = append(out, e.cfg.APIAddr)
	}
	return out
}

func (e *Engine) certInstructions(r Rotation, step PlanStep, want string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "👷 %s: update the server certificate on %s. In the SEPM console: Admin > Servers > Local Site > %s > Manage Server Certificate > Update Server Certificate, and choose the new JKS keystore, PKCS#12 file, or certificate and RSA private key.", step.ID, serverLabel(step.Server), serverLabel(step.Server))
	if r.Plan.Path == PathMulti {
		b.WriteString(" Update only this server; the others keep their certificate for now.")
	}
	if want != "" {
		fmt.Fprintf(&b, " The bot expects SHA-256 %s.", want)
	} else {
		b.WriteString(" No fingerprint was given (--new-cert-sha256): the bot will show the one it sees and ask you to confirm it.")
	}
	fmt.Fprintf(&b, " Then say `done %s %s`; the bot verifies by TLS handshake on %s.", r.ID, step.ID, strings.Join(e.probeAddrs(r, step.Server), " and "))
	return b.String()
}

// poll sweeps the groups and computers once and measures how many online clients
// have taken their group's current policy since changeAt.
func (e *Engine) poll(ctx context.Context, changeAt int64) (Progress, error) {
	groups, err := e.cfg.SEPM.Groups(ctx)
	if err != nil {
		return Progress{}, fmt.Errorf("reading group serials: %w", err)
	}
	serial := make(map[string]string, len(groups))
	for _, g := range groups {
		serial[g.ID] = g.PolicySerialNumber
	}
	var p Progress
	err = e.cfg.SEPM.EachComputerPage(ctx, sepm.ComputerQuery{PageSize: 1000}, func(page []sepm.Computer) error {
		for _, c := range page {
			if c.OnlineStatus != 1 {
				p.Offline++
				continue
			}
			p.Online++
			if c.ProfileSerialNo == serial[c.Group.ID] && c.LastUpdateTime > changeAt {
				p.OnNewPolicy++
			} else if len(p.Laggards) < 10 {
				p.Laggards = append(p.Laggards, c.ComputerName)
			}
		}
		return nil
	})
	if err != nil {
		return Progress{}, fmt.Errorf("sweeping computers: %w", err)
	}
	p.Observed = e.cfg.Now().UTC()
	return p, nil
}

// Poll measures progress once for an arbitrary change time (exported for benchmarks
// and the status command).
func (e *Engine) Poll(ctx context.Context, changeAt time.Time) (Progress, error) {
	return e.poll(ctx, changeAt.UnixMilli())
}

func (e *Engine) setProgress(id string, p Progress) {
	e.mu.Lock()
	e.progress[id] = &p
	e.mu.Unlock()
}

func (e *Engine) runWait(ctx context.Context, r Rotation, step PlanStep, st StepState) (time.Duration, error) {
	w := r.Wait
	if w == nil || w.Step != step.ID {
		return 0, permanent(errors.New("wait state missing"))
	}
	p, err := e.poll(ctx, w.ChangeAt)
	if err != nil {
		return 0, err
	}
	now := e.cfg.Now()
	hb := time.Duration(max(w.HeartbeatSeconds, 1)) * time.Second
	p.Step = step.ID
	p.HeartbeatsNeeded = 3
	p.HeartbeatsDone = min(3, int(now.Sub(w.Started)/hb))
	p.Left = max(0, w.Deadline.Sub(now))
	e.setProgress(r.ID, p)
	if v, err := e.Get(ctx, r.ID); err == nil {
		e.cfg.Notifier.Update(ctx, v)
	}
	caughtUp := p.OnNewPolicy == p.Online
	if !now.Before(w.Deadline) && (caughtUp || st.Override) {
		note := fmt.Sprintf("%d/%d online clients on the new policy, %d offline", p.OnNewPolicy, p.Online, p.Offline)
		if !caughtUp {
			note += fmt.Sprintf("; ended by %s with %d lagging", st.DoneBy, p.Online-p.OnNewPolicy)
		}
		return 0, e.completeStep(ctx, r.ID, step.ID, note, nil)
	}
	if !now.Before(w.Deadline.Add(3*hb)) && !caughtUp && !w.Warned {
		if _, err := e.mutate(ctx, r.ID, func(tx *store.Tx, r *Rotation) error {
			if r.Wait != nil {
				r.Wait.Warned = true
			}
			return e.audit(tx, r.ID, "sepmbot", "wait-laggards", step.ID, fmt.Sprintf("%d online clients lag", p.Online-p.OnNewPolicy), nil)
		}); err != nil {
			return 0, err
		}
		e.post(ctx, r.ID, fmt.Sprintf("⚠ %d online clients have not taken the new policy three heartbeats after the deadline (%s). The bot keeps waiting; an operator may end the wait with `done %s %s` (audited).", p.Online-p.OnNewPolicy, strings.Join(p.Laggards, ", "), r.ID, step.ID))
	}
	next := e.cfg.PollInterval
	if left := w.Deadline.Sub(now); left > 0 && left < next {
		next = left
	}
	return next, nil
}

// stragglerDue decides what a straggler window owes the channel at now: the one
// reminder at StragglerReminder, and a report every 24 hours.
func stragglerDue(now, started, lastReport time.Time, reminded bool) (remind, report bool) {
	remind = !reminded && !now.Before(started.Add(StragglerReminder))
	last := lastReport
	if last.IsZero() {
		last = started
	}
	report = !now.Before(last.Add(24 * time.Hour))
	return remind, report
}

func (e *Engine) runStraggler(ctx context.Context, r Rotation, step PlanStep) (time.Duration, error) {
	w := r.Wait
	if w == nil {
		return 0, permanent(errors.New("wait state missing"))
	}
	now := e.cfg.Now()
	p := Progress{Step: step.ID, Left: max(0, w.Deadline.Sub(now)), DeadlineOnly: true, Observed: now.UTC()}
	e.setProgress(r.ID, p)
	if !now.Before(w.Deadline) {
		return 0, e.completeStep(ctx, r.ID, step.ID, "straggler window over", nil)
	}
	remind, report := stragglerDue(now, w.Started, w.LastReport, w.Reminded)
	if remind || report {
		rep, err := e.report(ctx, r)
		if err != nil {
			return 0, err
		}
		if _, err := e.mutate(ctx, r.ID, func(tx *store.Tx, r *Rotation) error {
			if r.Wait == nil {
				return nil
			}
			if remind {
				r.Wait.Reminded = true
			}
			if report {
				r.Wait.LastReport = now.UTC()
			}
			return e.audit(tx, r.ID, "sepmbot", "straggler-report", step.ID, fmt.Sprintf("%d not seen", rep.NotSeen), nil)
		}); err != nil {
			return 0, err
		}
		text := fmt.Sprintf("📋 %d of %d clients have not checked in since the first certificate change; %s stays on the old certificate until %s.", rep.NotSeen, rep.ClientsTotal, step.Server, w.Deadline.Format(time.DateOnly))
		if remind {
			text = "⏰ Reminder: the straggler window is a third over. " + text
		}
		e.post(ctx, r.ID, text)
	}
	next := min(w.Deadline.Sub(now), time.Hour)
	return max(next, time.Millisecond), nil
}

// report counts clients not seen since the rotation's first change.
func (e *Engine) report(ctx context.Context, r Rotation) (Report, error) {
	since := r.FirstChange
	if since == 0 {
		since = r.Created.UnixMilli()
	}
	var rep Report
	err := e.cfg.SEPM.EachComputerPage(ctx, sepm.ComputerQuery{PageSize: 1000}, func(page []sepm.Computer) error {
		for _, c := range page {
			rep.ClientsTotal++
			if c.OnlineStatus != 1 {
				rep.Offline++
			}
			if c.LastUpdateTime <= since {
				rep.NotSeen++
				if len(rep.NotSeenNames) < 20 {
					rep.NotSeenNames = append(rep.NotSeenNames, c.ComputerName)
				}
			}
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	return rep, nil
}
