package rotation

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"sepmbot/approvals"
)

// The pure transition layer: Apply takes a rotation, an event and the time, and
// returns the new rotation and the effects the executor must perform. It does no I/O
// and reads no clock. Every change of a rotation's status, cursor or steps (rewinds
// and aborts included) is made here and nowhere else; the driver persists the result
// in one transaction and then performs the effects.

// EventKind names what happened.
type EventKind string

// Events.
const (
	EvStart         EventKind = "start"          // the executor starts the current pending step
	EvFinish        EventKind = "finish"         // the current step finished (Note)
	EvFail          EventKind = "fail"           // the current step failed for good (Reason)
	EvInterlock     EventKind = "interlock"      // an observation before a dangerous act differs (Reason)
	EvPause         EventKind = "pause"          // an operator pauses
	EvResume        EventKind = "resume"         // an operator resumes
	EvAbort         EventKind = "abort"          // an operator (or the bot) aborts
	EvRewind        EventKind = "rewind"         // go back to step To (Reason), votes void
	EvDeny          EventKind = "deny"           // the approval request was rejected
	EvExpired       EventKind = "expired"        // the approval request ran out of time
	EvApprovalAsked EventKind = "approval-asked" // a new approval request (Request) replaces the old
	EvDone          EventKind = "done"           // an operator says a manual step is done, or ends a wait
	EvAcceptOrphans EventKind = "accept-orphans" // an operator accepts N suspected orphaned clients
	EvConfirm       EventKind = "confirm"        // an operator confirms the certificate a server presents
	EvCertSeen      EventKind = "cert-seen"      // a server presents an unexpected certificate (FP)
	EvRejectDone    EventKind = "reject-done"    // verification of a "done" failed (Reason)
	EvEnd           EventKind = "end"            // past the last step: completed or aborted
	EvRemind        EventKind = "remind"         // an exposure reminder went out (Reason is its text)
	EvPosted        EventKind = "posted"         // the outbox up to Seq was posted
)

// Event is one input of Apply. Only the fields its kind uses are read.
type Event struct {
	Kind   EventKind
	Step   string // the step the event is about; "" = the current one
	Actor  string
	Reason string
	Note   string
	To     string // EvRewind: the step to go back to
	FP     string // EvConfirm, EvCertSeen: a certificate fingerprint
	N      int    // EvAcceptOrphans: how many; EvPosted: the last posted Seq
	// Aborting is the phase the executor observed the step in; a step event from the
	// other phase (an abort committed meanwhile) is stale.
	Aborting bool
	// Touched is what the change journal says the rotation changed (EvAbort builds
	// the revert from it, never from step status).
	Touched Touched
	// Approval is the rotation's current approval request, when the event needs it.
	Approval *approvals.Request
	// Request is the new request of EvApprovalAsked.
	Request *approvals.Request
	// Finish details: a SEPM change time (ChangeAt, epoch ms; 0 = none), a
	// certificate change, and the final report.
	ChangeAt   int64
	CertChange bool
	Report     *Report
	// Exposure bookkeeping set by the change steps (epoch ms; -1 clears).
	HTTPSince, SecureOffSince int64
	// HeartbeatSeconds: EvAbort's revert waits are three of them.
	HeartbeatSeconds int
	// Targets, for EvRewind, replace the plan's targets (the site changed); nil keeps them.
	Targets []Target
	// NoFloor arms a wait with no minimum (EvStart). Only the tests that prove a short
	// wait orphans clients set it; the engine never does.
	NoFloor bool
	// Drift marks an EvInterlock about SEPM's state (not about orphans).
	Drift bool
	// KeepApproval: an EvRewind that does not void the approval (it goes back to a
	// wait after the dangerous step was done).
	KeepApproval bool
}

// Touched summarises the change journal of a rotation.
type Touched struct {
	Secure bool // secure communication was (or may have been) changed somewhere
	MSL    bool // a management server list assignment was (or may have been) changed
}

// EffectKind names what the executor must do after the commit.
type EffectKind string

// Effects. Posts are not effects: they go to the rotation's Outbox (state), so a
// committed transition cannot lose its announcement.
const (
	EffAudit       EffectKind = "audit"        // append an audit record (same transaction)
	EffArmTimer    EffectKind = "arm-timer"    // store the wait's absolute deadline (same transaction)
	EffDisarmTimer EffectKind = "disarm-timer" // remove it (same transaction)
	EffVoidRequest EffectKind = "void-request" // mark the approval request ID void (same transaction)
	EffSaveRequest EffectKind = "save-request" // store Request (same transaction)
	EffTrust       EffectKind = "trust"        // trust certificate FP for the SEPM API (after the commit)
	EffUntrust     EffectKind = "untrust"      // stop trusting FP (after the commit)
)

// Effect is one thing to do.
type Effect struct {
	Kind     EffectKind
	Audit    AuditEntry
	Deadline time.Time
	ID       string
	Request  *approvals.Request
	FP       string
}

// AuditEntry is an audit record as the pure layer describes it.
type AuditEntry struct {
	Actor, Kind, Step, Detail string
	Data                      map[string]string
}

// ErrStale is returned by Apply when the event is about a step the rotation has left
// (it moved on, was paused, or an abort was committed meanwhile): nothing changes.
var ErrStale = errors.New("rotation: the event is about a step the rotation has left")

// UserError is a refusal to show the person who asked; nothing changed.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

func refuseUser(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}

// Apply is the transition function. r is not modified.
func Apply(r Rotation, ev Event, now time.Time) (Rotation, []Effect, error) {
	n := r.clone()
	m := &machine{r: &n, now: now.UTC()}
	if err := m.apply(ev); err != nil {
		return r, nil, err
	}
	if len(m.effects) > 0 || ev.Kind != EvPosted {
		n.Updated = m.now
	}
	if n.Status == StatusPaused && r.Status != StatusPaused {
		n.PausedAt = m.now
	}
	return n, m.effects, nil
}

type machine struct {
	r       *Rotation
	now     time.Time
	effects []Effect
}

func (m *machine) post(format string, args ...any) {
	m.r.OutboxSeq++
	m.r.Outbox = append(m.r.Outbox, Outgoing{Seq: m.r.OutboxSeq, Text: fmt.Sprintf(format, args...)})
}

func (m *machine) audit(actor, kind, step, detail string, data map[string]string) {
	m.effects = append(m.effects, Effect{Kind: EffAudit, Audit: AuditEntry{Actor: actor, Kind: kind, Step: step, Detail: detail, Data: data}})
}

// current returns the current step when it is ev's step, active, in ev's phase.
func (m *machine) onActive(ev Event) (PlanStep, *StepState, error) {
	s, st, ok := m.r.Current()
	if !ok || !m.r.Active() || st.Status != StepActive || m.r.Aborting != ev.Aborting || (ev.Step != "" && s.ID != ev.Step) {
		return PlanStep{}, nil, ErrStale
	}
	return s, st, nil
}

// onCurrent is onActive, but a pending current step counts too (the interlocks run
// before a dangerous step starts).
func (m *machine) onCurrent(ev Event) (PlanStep, *StepState, error) {
	s, st, ok := m.r.Current()
	if !ok || !m.r.Active() || (st.Status != StepActive && st.Status != StepPending) || m.r.Aborting != ev.Aborting || (ev.Step != "" && s.ID != ev.Step) {
		return PlanStep{}, nil, ErrStale
	}
	return s, st, nil
}

func (m *machine) apply(ev Event) error {
	r := m.r
	switch ev.Kind {
	case EvPosted:
		keep := r.Outbox[:0]
		for _, o := range r.Outbox {
			if o.Seq > ev.N {
				keep = append(keep, o)
			}
		}
		r.Outbox = keep
		return nil
	case EvStart:
		return m.start(ev)
	case EvFinish:
		return m.finish(ev)
	case EvFail, EvInterlock:
		s, _, err := m.onCurrent(ev) // a step may fail (or stop) before it starts: its interlock
		if err != nil || r.Status != StatusRunning {
			return ErrStale
		}
		r.Status, r.LastError = StatusPaused, ev.Reason
		if ev.Kind == EvFail {
			m.audit("sepmbot", "step-failed", s.ID, ev.Reason, nil)
			m.post("⚠ %s failed: %s. The rotation is paused; fix the cause, then `resume %s` (or `abort %s`).", s.ID, ev.Reason, r.ID, r.ID)
		} else {
			// A revert is never rewound when SEPM is put back: it only sets the
			// original values, and `resume` observes again (EvRewind refuses it).
			r.Drifted = r.Drifted || (ev.Drift && !r.Aborting)
			m.audit("sepmbot", "interlock", s.ID, ev.Reason, nil)
			if r.Aborting {
				m.post("🛑 %s stopped before %s: %s The revert is paused; `resume %s` checks again.", r.ID, s.ID, ev.Reason, r.ID)
			} else {
				m.post("🛑 %s stopped before %s: %s The rotation is paused; `resume %s` checks again, `abort %s` reverts.", r.ID, s.ID, ev.Reason, r.ID, r.ID)
			}
		}
		return nil
	case EvPause:
		if r.Status != StatusRunning {
			return refuseUser("%s is %s, not running", r.ID, r.Status)
		}
		r.Status, r.PausedBy = StatusPaused, ev.Actor
		m.audit(ev.Actor, "paused", "", "", nil)
		m.post("⏸ paused by %s", ev.Actor)
		return nil
	case EvResume:
		if r.Status != StatusPaused {
			return refuseUser("%s is %s, not paused", r.ID, r.Status)
		}
		r.Status, r.PausedBy, r.LastError = StatusRunning, "", ""
		if s, _, ok := r.Current(); ok && s.Action == ActApproval && r.Approval != "" && ev.Approval != nil {
			a := ev.Approval
			if a.State == approvals.StateRejected || a.State == approvals.StateVoid || (a.State != approvals.StateApproved && a.Expired(m.now)) {
				m.effects = append(m.effects, Effect{Kind: EffVoidRequest, ID: r.Approval})
				r.Approval = "" // ask again with a new request
			}
		}
		m.audit(ev.Actor, "resumed", "", "", nil)
		m.post("▶ resumed by %s", ev.Actor)
		return nil
	case EvAbort:
		return m.abort(ev)
	case EvRewind:
		if _, _, err := m.onCurrent(ev); err != nil {
			return err
		}
		if r.Aborting {
			return errors.New("rotation: an abort's revert never goes back")
		}
		idx := r.Plan.StepIndex(ev.To)
		if idx < 0 || idx > r.Cursor {
			return fmt.Errorf("rotation: rewind to %q: not a step before the current one", ev.To)
		}
		approval := r.Approval
		m.rewind(idx)
		if ev.KeepApproval {
			r.Approval = approval
			kept := m.effects[:0]
			for _, f := range m.effects {
				if f.Kind != EffVoidRequest {
					kept = append(kept, f)
				}
			}
			m.effects = kept
		}
		r.Drifted = false
		if ev.Targets != nil {
			r.Plan.GroupsToChange = append([]Target(nil), ev.Targets...)
		}
		m.audit("sepmbot", ev.Note, ev.Step, ev.Reason, nil)
		m.post("%s", ev.Reason)
		return nil
	case EvDeny:
		s, _, err := m.onActive(ev)
		if err != nil || s.Action != ActApproval || r.Status != StatusRunning {
			return ErrStale
		}
		r.Status, r.LastError = StatusPaused, "approval "+ev.Reason
		m.audit(ev.Actor, "approval-denied", s.ID, ev.Reason, nil)
		m.post("⛔ approval %s. Nothing dangerous was done: secure communication is as it was. The rotation is paused at %s: `resume %s` asks for approval again, `abort %s` reverts what the rotation changed.", ev.Reason, s.ID, r.ID, r.ID)
		return nil
	case EvExpired:
		s, _, err := m.onActive(ev)
		if err != nil || r.Status != StatusRunning {
			return ErrStale
		}
		r.Status, r.LastError = StatusPaused, "the approval request expired before enough approvers said yes"
		m.audit("sepmbot", "approval-expired", s.ID, "", map[string]string{"request": r.Approval})
		m.post("⌛ the approval request expired. `resume %s` asks again.", r.ID)
		return nil
	case EvApprovalAsked:
		s, _, err := m.onActive(ev)
		if err != nil || ev.Request == nil {
			return ErrStale
		}
		req := *ev.Request
		m.effects = append(m.effects, Effect{Kind: EffSaveRequest, Request: &req})
		r.Approval = req.ID
		m.audit("sepmbot", "approval-requested", s.ID, fmt.Sprintf("%d approvers needed", req.Required), map[string]string{"request": req.ID, "action_sha256": req.ActionHash})
		return nil
	case EvDone:
		return m.done(ev)
	case EvAcceptOrphans:
		s, st, err := m.currentFor(ev.Step)
		if err != nil {
			return err
		}
		if ev.N < 0 {
			return refuseUser("--accept-orphans takes a count of clients, not %d", ev.N)
		}
		st.AcceptOrphans = ev.N
		m.audit(ev.Actor, "orphans-accepted", s.ID, fmt.Sprintf("accepts up to %d suspected orphaned clients", ev.N), map[string]string{"count": fmt.Sprint(ev.N), "reason": ev.Reason})
		m.post("⚠ %s accepts up to %d suspected orphaned clients at %s (audited); they stay cut off until recovered in the console.", ev.Actor, ev.N, s.ID)
		if r.Status == StatusPaused && strings.Contains(r.LastError, "suspected orphaned") {
			r.Status, r.PausedBy, r.LastError = StatusRunning, "", ""
		}
		return nil
	case EvConfirm:
		s, st, err := m.activeFor(ev.Step)
		if err != nil {
			return err
		}
		if s.Action != ActCert {
			return refuseUser("%s is not a certificate step", s.ID)
		}
		fp := r.SeenCerts[s.Server]
		if fp == "" {
			return refuseUser("%s: no new certificate is waiting for confirmation; say done after the update first", s.ID)
		}
		if r.NewCerts == nil {
			r.NewCerts = map[string]string{}
		}
		r.NewCerts[s.Server] = fp
		delete(r.SeenCerts, s.Server)
		st.DoneBy = ev.Actor
		m.audit(ev.Actor, "certificate-confirmed", s.ID, "operator confirmed the presented certificate", map[string]string{"sha256": fp})
		m.effects = append(m.effects, Effect{Kind: EffTrust, FP: fp})
		return nil
	case EvCertSeen:
		s, st, err := m.onActive(ev)
		if err != nil {
			return err
		}
		st.DoneBy = ""
		if r.SeenCerts == nil {
			r.SeenCerts = map[string]string{}
		}
		r.SeenCerts[s.Server] = ev.FP
		m.audit("sepmbot", "certificate-seen", s.ID, "awaiting confirmation", map[string]string{"sha256": ev.FP})
		m.post("🔎 %s now presents certificate SHA-256 %s (was %s). If that is the certificate you installed, say `confirm %s %s`.", serverLabel(s.Server), ev.FP, r.OldCerts[s.Server], r.ID, s.ID)
		return nil
	case EvRejectDone:
		s, st, err := m.onActive(ev)
		if err != nil {
			return err
		}
		st.DoneBy = ""
		m.audit("sepmbot", "verification-failed", s.ID, ev.Reason, nil)
		m.post("❌ %s", ev.Reason)
		return nil
	case EvEnd:
		return m.end()
	case EvRemind:
		r.LastReminder = m.now
		m.audit("sepmbot", "exposure-reminder", "", ev.Reason, nil)
		m.post("%s", ev.Reason)
		return nil
	}
	return fmt.Errorf("rotation: unknown event %q", ev.Kind)
}

func (m *machine) start(ev Event) error {
	r := m.r
	s, st, ok := r.Current()
	if !ok || st.Status != StepPending || r.Status != StatusRunning || r.Aborting != ev.Aborting || (ev.Step != "" && s.ID != ev.Step) {
		return ErrStale
	}
	st.Status, st.Started = StepActive, m.now
	msg := fmt.Sprintf("▶ %s: %s", s.ID, s.Title)
	if s.Kind == KindWait {
		w := &WaitState{Step: s.ID, Started: m.now, Deadline: m.now.Add(time.Duration(s.WaitSeconds) * time.Second), ChangeAt: r.ChangeAt, HeartbeatSeconds: r.Plan.HeartbeatSeconds}
		if ev.NoFloor {
			w.Deadline = m.now
		}
		if w.ChangeAt == 0 {
			w.ChangeAt = m.now.UnixMilli()
		}
		r.Wait = w
		m.effects = append(m.effects, Effect{Kind: EffArmTimer, Deadline: w.Deadline})
		msg += fmt.Sprintf(" (at least until %s)", w.Deadline.Format("2006-01-02 15:04:05 MST"))
	}
	m.audit("sepmbot", "step-started", s.ID, s.Title, nil)
	m.post("%s", msg)
	return nil
}

func (m *machine) finish(ev Event) error {
	r := m.r
	s, st, err := m.onActive(ev)
	if err != nil {
		return err
	}
	if s.Kind == KindWait && r.Wait != nil && m.now.Before(r.Wait.Deadline) {
		// The floor is absolute: no observation ends a wait before its deadline.
		return fmt.Errorf("rotation: %s cannot finish before its deadline %s", s.ID, r.Wait.Deadline.Format(time.RFC3339))
	}
	st.Status, st.Finished = StepDone, m.now
	if ev.Note != "" {
		st.Note = ev.Note
	}
	if ev.ChangeAt != 0 {
		r.ChangeAt = ev.ChangeAt
		if r.FirstChange == 0 {
			r.FirstChange = ev.ChangeAt
		}
	}
	if ev.CertChange {
		r.CertChanges++
		r.LastCertChange = ev.ChangeAt
	}
	switch {
	case ev.HTTPSince > 0 && r.HTTPSince == 0:
		r.HTTPSince = ev.HTTPSince
	case ev.HTTPSince < 0:
		r.HTTPSince = 0
	}
	switch {
	case ev.SecureOffSince > 0 && r.SecureOffSince == 0:
		r.SecureOffSince = ev.SecureOffSince
	case ev.SecureOffSince < 0:
		r.SecureOffSince = 0
	}
	if ev.Report != nil {
		rep := *ev.Report
		r.Report = &rep
	}
	if s.Kind == KindWait {
		r.Wait = nil
		m.effects = append(m.effects, Effect{Kind: EffDisarmTimer})
	}
	r.Cursor++
	m.audit("sepmbot", "step-done", s.ID, ev.Note, nil)
	text := "✅ " + s.ID + " done"
	if ev.Note != "" {
		text += ": " + ev.Note
	}
	m.post("%s", text)
	return nil
}

// currentFor is the current step, active or about to start, when it is stepID (an
// interlock stops a dangerous step before it starts).
func (m *machine) currentFor(stepID string) (PlanStep, *StepState, error) {
	r := m.r
	if !r.Active() {
		return PlanStep{}, nil, refuseUser("%s is %s", r.ID, r.Status)
	}
	s, st, ok := r.Current()
	if !ok {
		return PlanStep{}, nil, refuseUser("%s has no current step", r.ID)
	}
	if !strings.EqualFold(s.ID, stepID) {
		return PlanStep{}, nil, refuseUser("%s is not the current step of %s (the current step is %s)", stepID, r.ID, s.ID)
	}
	return s, st, nil
}

// activeFor is the current active step when it is stepID (operators' commands).
func (m *machine) activeFor(stepID string) (PlanStep, *StepState, error) {
	r := m.r
	if !r.Active() {
		return PlanStep{}, nil, refuseUser("%s is %s", r.ID, r.Status)
	}
	s, st, ok := r.Current()
	if !ok || st.Status != StepActive {
		return PlanStep{}, nil, refuseUser("%s has no active step", r.ID)
	}
	if !strings.EqualFold(s.ID, stepID) {
		return PlanStep{}, nil, refuseUser("%s is not the current step of %s (the current step is %s)", stepID, r.ID, s.ID)
	}
	return s, st, nil
}

func (m *machine) done(ev Event) error {
	r := m.r
	s, st, err := m.activeFor(ev.Step)
	if err != nil {
		return err
	}
	switch s.Kind {
	case KindManual:
		if st.DoneBy != "" {
			return refuseUser("%s already said done for %s; verifying", st.DoneBy, s.ID)
		}
		st.DoneBy = ev.Actor
		m.audit(ev.Actor, "operator-done", s.ID, s.Title, nil)
		m.post("noted: %s says %s is done; verifying", ev.Actor, s.ID)
		return nil
	case KindWait:
		if r.Wait == nil || m.now.Before(r.Wait.Deadline) {
			return refuseUser("%s cannot end before its minimum wait: three heartbeats (or --min-wait) protect the clients", s.ID)
		}
		if s.Action == ActStraggler {
			return refuseUser("%s is a straggler window; use abort to stop it", s.ID)
		}
		st.Override, st.DoneBy = true, ev.Actor
		m.audit(ev.Actor, "wait-override", s.ID, "wait ended by operator with laggards", nil)
		m.post("%s ends %s with clients still lagging (override recorded)", ev.Actor, s.ID)
		return nil
	}
	return refuseUser("%s is an %s step: the bot does it, nobody needs to say done", s.ID, s.Kind)
}

// rewind voids the current approval and moves the cursor back to idx, resetting
// every step from there to the current one.
func (m *machine) rewind(idx int) {
	r := m.r
	if r.Approval != "" {
		m.effects = append(m.effects, Effect{Kind: EffVoidRequest, ID: r.Approval})
	}
	r.Approval = ""
	for i := idx; i <= r.Cursor && i < len(r.Steps); i++ {
		r.Steps[i] = StepState{Status: StepPending}
	}
	r.Cursor = idx
	if r.Wait != nil {
		r.Wait = nil
		m.effects = append(m.effects, Effect{Kind: EffDisarmTimer})
	}
}
