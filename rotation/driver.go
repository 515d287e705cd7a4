package rotation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"sepmbot/sepm"
	"sepmbot/store"
)

// permanentError marks a step failure that retrying will not fix: the rotation pauses
// with the error and an operator decides.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return &permanentError{err: err} }

// authRejected reports SEPM refusing the bot's credentials (a 401 from
// identity/authenticate). Retrying would lock the service account: stop at once.
func authRejected(err error) bool {
	if errors.Is(err, errAuthRejected) {
		return true
	}
	var ar interface{ AuthRejected() bool }
	if errors.As(err, &ar) && ar.AuthRejected() {
		return true
	}
	var api *sepm.APIError
	return errors.As(err, &api) && api.Status == 401 && strings.Contains(api.Path, "identity/authenticate")
}

// isTransient tells whether a SEPM failure may pass by itself (5xx, timeouts, network).
func isTransient(err error) bool {
	var pe *permanentError
	if errors.As(err, &pe) || authRejected(err) {
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

// storeError marks a failure of the store itself (the driver backs off, capped,
// instead of pausing: pausing needs the store too).
type storeError struct{ err error }

func (s *storeError) Error() string { return "store: " + s.err.Error() }
func (s *storeError) Unwrap() error { return s.err }

const forever = time.Duration(-1)

// maxStoreBackoff caps the driver's back-off while the store fails.
const maxStoreBackoff = 30 * time.Second

// driver is one rotation's executor state that lives only in this process.
type driver struct {
	announced map[string]bool // per step: instruction or approval posted by this process
	observed  map[string]bool // per step: the interlock passed just before it started
	outage    outage
	wait      *waitTrack // the current wait's progress tracker
}

// drive runs one rotation until it ends or ctx is done. Each pass reads the stored
// rotation and acts on its current step, so a restart resumes exactly where the
// store says the rotation is.
func (e *Engine) drive(ctx context.Context, id string, wake <-chan struct{}) {
	d := &driver{announced: map[string]bool{}, observed: map[string]bool{}}
	failures, storeFailures := 0, 0
	refreshed := false
	for ctx.Err() == nil {
		v, err := e.Get(ctx, id)
		if err != nil {
			storeFailures++
			backoff := storeBackoff(storeFailures)
			e.log.Error("loading rotation", "rotation", id, "err", err, "retry_in", backoff)
			e.sleep(ctx, wake, backoff)
			continue
		}
		r := v.Rotation
		if !refreshed {
			refreshed = true
			e.flush(ctx, id) // what a killed process committed but did not post
			e.mu.Lock()
			resumed := e.started[id]
			delete(e.started, id)
			e.mu.Unlock()
			if resumed && r.Active() {
				e.post(ctx, id, resumedText(r))
			}
			e.cfg.Notifier.Update(ctx, v) // refresh the run card after a (re)start
		}
		if !r.Active() {
			return
		}
		next, err := e.remindIfExposed(ctx, r)
		if err != nil {
			e.log.Warn("exposure reminder", "rotation", id, "err", err)
			next = time.Minute
		}
		if r.Status == StatusPaused {
			e.sleep(ctx, wake, next)
			continue
		}
		next, err = e.pass(ctx, r, d)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var se *storeError
			if errors.As(err, &se) || isStoreErr(err) {
				storeFailures++
				backoff := storeBackoff(storeFailures)
				e.log.Error("store failing", "rotation", id, "err", err, "retry_in", backoff)
				e.sleep(ctx, wake, backoff)
				continue
			}
			failures++
			step, _, _ := r.Current()
			if isTransient(err) && failures < 6 {
				backoff := min(time.Duration(1<<failures)*time.Second, time.Minute)
				e.log.Warn("step failed, will retry", "rotation", id, "step", step.ID, "err", err, "retry_in", backoff)
				e.sleep(ctx, wake, backoff)
				continue
			}
			reason := err.Error()
			if authRejected(err) {
				reason = "SEPM rejected the bot's credentials (401 from identity/authenticate). The bot stopped trying at once so the service account does not lock; fix the password or the account, then resume: " + err.Error()
			}
			if _, cerr := e.commit(ctx, id, Event{Kind: EvFail, Step: step.ID, Aborting: r.Aborting, Reason: reason}, nil); cerr != nil && !isStale(cerr) {
				storeFailures++
				e.log.Error("pausing after failure", "rotation", id, "err", cerr)
				e.sleep(ctx, wake, storeBackoff(storeFailures))
			}
			failures = 0
			continue
		}
		failures, storeFailures = 0, 0
		if next != 0 {
			e.sleep(ctx, wake, next)
		}
	}
}

// storeBackoff is how long the driver waits after the n-th store failure in a row:
// doubling from 200 ms, capped at maxStoreBackoff.
func storeBackoff(n int) time.Duration {
	return min(time.Duration(1<<min(max(n, 1), 10))*100*time.Millisecond, maxStoreBackoff)
}

// errAuthRejected stands in for sepm.ErrAuthRejected until the client exports it.
var errAuthRejected = errors.New("sepm: authentication rejected")

func isStoreErr(err error) bool {
	return errors.Is(err, store.ErrNoBucket) || strings.HasPrefix(err.Error(), "store:")
}

func resumedText(r Rotation) string {
	s, st, ok := r.Current()
	if !ok {
		return fmt.Sprintf("🔄 resumed %s after a restart: finishing", r.ID)
	}
	msg := fmt.Sprintf("🔄 resumed %s after a restart at step %s (%s, %s)", r.ID, s.ID, st.Status, r.Status)
	if r.Wait != nil && r.Wait.Step == s.ID {
		msg += fmt.Sprintf("; the wait runs at least until %s", r.Wait.Deadline.Format("2006-01-02 15:04:05 MST"))
	}
	return msg
}

// pass performs one step of the rotation's current state.
func (e *Engine) pass(ctx context.Context, r Rotation, d *driver) (time.Duration, error) {
	step, st, ok := r.Current()
	if !ok {
		return 0, ignoreStale(e.end(ctx, r))
	}
	if st.Status == StepPending {
		delete(d.announced, step.ID) // a step started again (after a rewind) is announced again
		delete(d.observed, step.ID)
		if dangerous(step) {
			// Observe before the step is even announced: nobody is asked to act, and
			// nothing is changed, while SEPM differs from what the bot left (an
			// abort's revert steps too: they re-enable and re-assign).
			if stop, err := e.interlock(ctx, r, step); err != nil || stop {
				return 0, ignoreStale(err)
			}
			d.observed[step.ID] = true
		}
		_, err := e.commit(ctx, r.ID, Event{Kind: EvStart, Step: step.ID, Aborting: r.Aborting, NoFloor: e.noWaitFloor}, nil)
		return 0, ignoreStale(err)
	}
	next, err := e.runStep(ctx, r, step, *st, d)
	return next, ignoreStale(err)
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

// complete finishes step stepID of r (if it still is the current step in r's phase).
func (e *Engine) complete(ctx context.Context, r Rotation, stepID string, ev Event) error {
	ev.Kind, ev.Step, ev.Aborting = EvFinish, stepID, r.Aborting
	_, err := e.commit(ctx, r.ID, ev, nil)
	return err
}

func (e *Engine) end(ctx context.Context, r Rotation) error {
	_, err := e.commit(ctx, r.ID, Event{Kind: EvEnd}, nil)
	return err
}

// runStep acts on an active step. It returns how long to sleep before the next pass
// (0: at once; forever: until woken).
func (e *Engine) runStep(ctx context.Context, r Rotation, step PlanStep, st StepState, d *driver) (time.Duration, error) {
	switch step.Action {
	case ActHTTPCopy:
		if st.DoneBy != "" {
			return 0, e.complete(ctx, r, step.ID, Event{Note: "HTTP copies created by " + st.DoneBy + " (the assignment step verifies the names)"})
		}
		if !d.announced[step.ID] {
			d.announced[step.ID] = true
			e.post(ctx, r.ID, e.httpCopyInstructions(r, step))
		}
		return forever, nil
	case ActEnableSecure, ActRestoreMSL:
		if !d.observed[step.ID] { // resumed mid-step (restart): observe again
			if stop, err := e.interlock(ctx, r, step); err != nil || stop {
				return 0, err
			}
			d.observed[step.ID] = true
		}
		return 0, e.applySettings(ctx, r, step)
	case ActAssignHTTP, ActDisableSecure:
		return 0, e.applySettings(ctx, r, step)
	case ActApproval:
		return e.runApproval(ctx, r, step, d)
	case ActCert:
		return e.runCert(ctx, r, step, st, d)
	case ActWait:
		return e.runWait(ctx, r, step, st, d)
	case ActStraggler:
		return e.runStraggler(ctx, r, step)
	case ActReport:
		rep, err := e.report(ctx, r)
		if err != nil {
			return 0, err
		}
		return 0, e.complete(ctx, r, step.ID, Event{Note: rep.Summary() + namesSuffix(rep), Report: &rep})
	}
	return 0, permanent(fmt.Errorf("unknown step action %q", step.Action))
}

// dangerous reports a step before which the interlocks observe SEPM.
func dangerous(s PlanStep) bool {
	return s.Action == ActCert || s.Action == ActEnableSecure || s.Action == ActRestoreMSL
}

func namesSuffix(rep Report) string {
	var b strings.Builder
	if len(rep.SuspectedOrphanedNames) > 0 {
		fmt.Fprintf(&b, " Suspected orphaned: %s.", strings.Join(rep.SuspectedOrphanedNames, ", "))
	}
	if len(rep.NotSeenNames) > 0 {
		fmt.Fprintf(&b, " Not seen since the change: %s.", strings.Join(rep.NotSeenNames, ", "))
	}
	return b.String()
}

func (e *Engine) httpCopyInstructions(r Rotation, step PlanStep) string {
	names := r.Plan.Lists()
	var b strings.Builder
	fmt.Fprintf(&b, "👷 %s (Broadcom steps 1-4), in the SEPM console: Policies > Policy Components > Management Server Lists. For each list below: Tasks > Copy the list, then Paste the list; edit the copy: choose \"Use HTTP protocol\", and for every server under Management Servers, Edit > Customize HTTP port %d. Name the copy exactly as shown. OK, OK.\n", step.ID, r.Plan.HTTPPort)
	for _, n := range names {
		fmt.Fprintf(&b, "  • %q → %q\n", n, HTTPCopyName(n, r.Plan.HTTPPort))
	}
	fmt.Fprintf(&b, "Then say `done %s %s`. The bot assigns the copies (step 5) through the API and reads them back.", r.ID, step.ID)
	return b.String()
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
