package rotation

import (
	"time"

	"sepmbot/approvals"
)

// Rotation status values.
const (
	StatusRunning   = "running"
	StatusPaused    = "paused"
	StatusCompleted = "completed"
	StatusAborted   = "aborted"
)

// Step status values.
const (
	StepPending = "pending"
	StepActive  = "active"
	StepDone    = "done"
	StepSkipped = "skipped" // abandoned by an abort
)

// Rotation is one rotation as kept in the store. Every change to it is one store
// transaction; the engine commits before it announces.
type Rotation struct {
	ID        string      `json:"id"`
	Site      string      `json:"site"`
	Requester string      `json:"requester"`
	Home      string      `json:"home,omitempty"` // where it lives in chat; opaque to the engine
	Created   time.Time   `json:"created"`
	Updated   time.Time   `json:"updated"`
	Options   PlanOptions `json:"options"`
	Plan      Plan        `json:"plan"`
	Status    string      `json:"status"`
	Cursor    int         `json:"cursor"` // index of the current step
	Steps     []StepState `json:"steps"`  // parallel to Plan.Steps

	// Approval is the id of the current approval request (approvals bucket).
	Approval string `json:"approval,omitempty"`

	// Certificates: the fingerprint each server presented at the start, the one it
	// must present after its update (given with --new-cert-sha256 or confirmed by an
	// operator), and one seen but not yet confirmed.
	OldCerts    map[string]string `json:"old_certs"`
	NewCerts    map[string]string `json:"new_certs"`
	SeenCerts   map[string]string `json:"seen_certs,omitempty"`
	APIServer   string            `json:"api_server,omitempty"` // the server whose certificate the API presents
	FirstChange int64             `json:"first_change_ms,omitempty"`
	ChangeAt    int64             `json:"change_at_ms,omitempty"` // epoch ms of the latest SEPM change

	Wait *WaitState `json:"wait,omitempty"`

	Aborting    bool      `json:"aborting,omitempty"`
	AbortBy     string    `json:"abort_by,omitempty"`
	AbortReason string    `json:"abort_reason,omitempty"`
	PausedBy    string    `json:"paused_by,omitempty"`
	PausedAt    time.Time `json:"paused_at,omitzero"` // when it last became paused
	LastError   string    `json:"last_error,omitempty"`
	Report      *Report   `json:"report,omitempty"`

	// Outbox holds the messages a committed transition owes the channel. They are
	// written in the same transaction as the transition and removed once posted, so a
	// process killed in between posts them after its restart.
	Outbox    []Outgoing `json:"outbox,omitempty"`
	OutboxSeq int        `json:"outbox_seq,omitempty"`

	// Exposure: since when (epoch ms) some clients use the HTTP copy of their list,
	// and since when secure communication is off somewhere; 0 = not (any more).
	HTTPSince      int64 `json:"http_since_ms,omitempty"`
	SecureOffSince int64 `json:"secure_off_since_ms,omitempty"`
	// ExpectedEnd is when the plan's steps would end if nobody waited on people.
	ExpectedEnd time.Time `json:"expected_end,omitzero"`
	// LastReminder is when the latest overdue (or paused-while-exposed) reminder went out.
	LastReminder time.Time `json:"last_reminder,omitzero"`

	// CertChanges counts certificate steps that finished (a server now presents its
	// new certificate); LastCertChange is when the latest one did (epoch ms).
	CertChanges    int   `json:"cert_changes,omitempty"`
	LastCertChange int64 `json:"last_cert_change_ms,omitempty"`
	// Drifted is set while the rotation is stopped because SEPM was not as the bot
	// left it; once it is again, the wait before the stopped step starts over.
	Drifted bool `json:"drifted,omitempty"`
}

// Outgoing is one message a committed transition owes the channel.
type Outgoing struct {
	Seq  int    `json:"seq"`
	Text string `json:"text"`
}

// StepState is the state of one step.
type StepState struct {
	Status   string    `json:"status"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Note     string    `json:"note,omitempty"`
	// DoneBy is the operator who said done on a manual step (verification pending or
	// passed), or who overrode a wait.
	DoneBy string `json:"done_by,omitempty"`
	// Override lets a wait end with laggards (an operator's audited decision).
	Override bool `json:"override,omitempty"`
	// AcceptOrphans is how many suspected orphaned clients an operator accepted at
	// this step (`done R1 STEP --accept-orphans N`, audited); the interlock lets the
	// step go on while the count does not exceed it.
	AcceptOrphans int `json:"accept_orphans,omitempty"`
}

// WaitState is the durable part of the current wait.
type WaitState struct {
	Step             string    `json:"step"`
	Started          time.Time `json:"started"`
	Deadline         time.Time `json:"deadline"`
	ChangeAt         int64     `json:"change_at_ms"`
	HeartbeatSeconds int       `json:"heartbeat_seconds"`
	// Straggler window bookkeeping.
	Reminded   bool      `json:"reminded,omitempty"`
	LastReport time.Time `json:"last_report,omitzero"`
	Warned     bool      `json:"warned,omitempty"`
}

// Exposure is how long clients have been exposed, for the run card.
func (r *Rotation) Exposure(now time.Time) (onHTTP, secureOff time.Duration) {
	if r.HTTPSince > 0 {
		onHTTP = now.Sub(time.UnixMilli(r.HTTPSince))
	}
	if r.SecureOffSince > 0 {
		secureOff = now.Sub(time.UnixMilli(r.SecureOffSince))
	}
	return onHTTP, secureOff
}

// Progress is what a wait has observed at its latest poll.
type Progress struct {
	Step             string        `json:"step"`
	HeartbeatsDone   int           `json:"heartbeats_done"` // whole heartbeats elapsed, capped at 3
	HeartbeatsNeeded int           `json:"heartbeats_needed"`
	OnNewPolicy      int           `json:"on_new_policy"`
	Online           int           `json:"online"`
	Offline          int           `json:"offline"`
	Left             time.Duration `json:"left"`
	Laggards         []string      `json:"laggards,omitempty"` // up to 10 names of online clients not yet on the policy
	Observed         time.Time     `json:"observed"`
	DeadlineOnly     bool          `json:"deadline_only,omitempty"` // straggler window: no client criterion
}

// Report closes a rotation. Every client is counted in exactly one of OnNew,
// SuspectedOrphaned, OfflineBefore and NeverSeen.
type Report struct {
	ClientsTotal int `json:"clients_total"`
	// OnNew: checked in after the latest change (the new certificate, or the
	// restored settings after an abort).
	OnNew int `json:"on_new"`
	// SuspectedOrphaned: online and checking in when a server's certificate changed,
	// silent for more than three heartbeats since. They need the console's
	// Communication Update Package (or a manual fix) to come back.
	SuspectedOrphaned      int      `json:"suspected_orphaned"`
	SuspectedOrphanedNames []string `json:"suspected_orphaned_names,omitempty"` // first 20
	// OfflineBefore: not seen since the first change and already away when it was made.
	OfflineBefore int `json:"offline_before"`
	// NeverSeen: no check-in recorded at all.
	NeverSeen int `json:"never_seen"`
	// NotSeen (OfflineBefore + SuspectedOrphaned + NeverSeen) and NotSeenNames are
	// kept for earlier readers.
	NotSeen      int      `json:"not_seen"`
	NotSeenNames []string `json:"not_seen_names,omitempty"` // first 20
	Offline      int      `json:"offline"`                  // offline right now
}

// Clean reports whether the rotation may read as a success: nobody suspected orphaned.
func (r *Report) Clean() bool { return r == nil || r.SuspectedOrphaned == 0 }

// Active reports whether the rotation still has work to do.
func (r *Rotation) Active() bool {
	return r.Status == StatusRunning || r.Status == StatusPaused
}

// Current returns the current step, and false when the rotation is past its last.
func (r *Rotation) Current() (PlanStep, *StepState, bool) {
	if r.Cursor < 0 || r.Cursor >= len(r.Plan.Steps) {
		return PlanStep{}, nil, false
	}
	return r.Plan.Steps[r.Cursor], &r.Steps[r.Cursor], true
}

// View is what the chat layer shows for a rotation: the stored state, the latest
// observed progress of its wait (nil when not waiting), and its approval request.
type View struct {
	Rotation Rotation           `json:"rotation"`
	Progress *Progress          `json:"progress,omitempty"`
	Approval *approvals.Request `json:"approval,omitempty"`
}
