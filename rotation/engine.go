package rotation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"sepmbot/approvals"
	"sepmbot/sepm"
	"sepmbot/store"
)

// Store buckets the engine uses.
const (
	bucketRotations = "rotations"
	bucketApprovals = "approvals"
	bucketTimers    = "timers"
	bucketMeta      = "meta"
)

// Notifier is how the engine reports to people. The chat layer implements it; every
// call happens after the change it reports has been committed to the store.
type Notifier interface {
	// Update shows the rotation's latest state (its run card). It is called after each
	// committed transition and after each progress poll, so implementations coalesce
	// edits; it must not block for long.
	Update(ctx context.Context, v View)
	// Post adds a message to the rotation's thread: a step transition, an instruction
	// for the operator, a vote, a warning.
	Post(ctx context.Context, rotationID, text string)
	// RequestApproval posts the approval request where the rotation lives (v.Rotation.Home,
	// and wherever else the chat layer shows it) and returns the reference of every
	// message that carries it. The references are opaque to the engine (the chat layer
	// qualifies them by platform and channel); a vote on any of them counts, a vote on
	// any other message is refused. It may be called again for the same request (after
	// a restart): the new references add to the old ones.
	RequestApproval(ctx context.Context, v View) (messageRefs []string, err error)
}

// Prober does a TLS handshake with addr and returns the presented certificate;
// sepm.ProbeCertificate is the real one.
type Prober func(ctx context.Context, addr string) (sepm.CertInfo, error)

// Config configures an Engine.
type Config struct {
	Store    *store.DB
	SEPM     SEPM
	Probe    Prober
	Notifier Notifier
	Site     string
	// APIAddr is host:port of the SEPM REST API (8446); it presents the same
	// certificate as its server, so certificate steps probe it too.
	APIAddr string
	// Servers are the site's management servers with their client-port addresses.
	Servers []ServerRef
	// Approvals is how many distinct approvers must say yes (default 2).
	Approvals int
	// ApprovalTTL is how long an approval request stays open (default 1h).
	ApprovalTTL time.Duration
	// IsApprover tells whether a user may approve; the chat layer resolves roles.
	IsApprover func(user string) bool
	// Roles, when set, is asked again at the dangerous step whether each counted
	// voter still holds the approver role (the chat layer resolves groups behind it).
	// Without it IsApprover is asked.
	Roles Roles
	// LockSites are the sites that share this site's one-rotation-at-a-time lock
	// (replication partners). Several engines, one per site, may share one store:
	// each resumes and lists only its own site's rotations.
	LockSites []string
	// OverdueAfter is how long past the plan's expected end the bot waits before it
	// reminds the operators every 24h that clients are exposed (default 24h).
	OverdueAfter time.Duration
	// PollInterval paces wait polls: at most one poll per interval, each reading
	// only the computers changed since the last one (full sweeps at a wait's start
	// and in its final window; default 30s; the demo and tests use about a second).
	PollInterval time.Duration
	Logger       *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Engine drives rotations. Its methods are safe for concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	flushing   map[string]bool // rotation id -> a flush of its outbox is running
	flushAgain map[string]bool // a flush was asked for while one ran
	ctx        context.Context
	started    map[string]bool // rotations resumed by Start (not created by this process)
	// noWaitFloor is a test-only switch: waits end as soon as the online clients caught
	// up. The tests use it to prove that the simulator orphans clients after a short wait.
	noWaitFloor bool
	// recheckRoles: a resolver was given (Config.Roles or Config.IsApprover), so the
	// gate asks it again at the dangerous step.
	recheckRoles bool
	drivers      map[string]chan struct{} // rotation id -> wake channel
	progress     map[string]*Progress
	wg           sync.WaitGroup

	// asking is held while an approval request is posted and its message reference
	// recorded, and read-held while a vote is cast: approvers see the request the
	// moment it is posted, and their vote must find which request the message is.
	asking sync.RWMutex
}

// NewEngine returns an engine; call Start to resume stored rotations.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.SEPM == nil || cfg.Notifier == nil {
		return nil, errors.New("rotation: engine needs a store, a SEPM client and a notifier")
	}
	if cfg.Probe == nil {
		cfg.Probe = sepm.ProbeCertificate
	}
	if cfg.Approvals <= 0 {
		cfg.Approvals = 2
	}
	if cfg.ApprovalTTL <= 0 {
		cfg.ApprovalTTL = time.Hour
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	recheck := cfg.Roles != nil || cfg.IsApprover != nil
	if cfg.IsApprover == nil {
		cfg.IsApprover = func(string) bool { return false }
	}
	if cfg.OverdueAfter <= 0 {
		cfg.OverdueAfter = 24 * time.Hour
	}
	return &Engine{cfg: cfg, recheckRoles: recheck, log: cfg.Logger, drivers: map[string]chan struct{}{}, progress: map[string]*Progress{}, started: map[string]bool{}, flushing: map[string]bool{}, flushAgain: map[string]bool{}}, nil
}

// Start reloads every rotation from the store, re-trusts the certificates active
// rotations expect, refreshes their run cards and resumes them (timers re-armed from
// their stored deadlines). Drivers run until ctx is done.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	e.ctx = ctx
	e.mu.Unlock()
	rots, err := e.List(ctx)
	if err != nil {
		return err
	}
	for _, r := range rots {
		if !r.Active() {
			continue
		}
		e.trustRotation(r)
		e.log.Info("resuming rotation", "rotation", r.ID, "status", r.Status, "cursor", r.Cursor)
		e.mu.Lock()
		e.started[r.ID] = true
		e.mu.Unlock()
		e.spawn(r.ID)
	}
	return nil
}

// Wait blocks until every driver has stopped (after Start's context is done).
func (e *Engine) Wait() { e.wg.Wait() }

func (e *Engine) spawn(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == nil {
		return
	}
	if _, ok := e.drivers[id]; ok {
		return
	}
	wake := make(chan struct{}, 1)
	e.drivers[id] = wake
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() {
			e.mu.Lock()
			delete(e.drivers, id)
			e.mu.Unlock()
		}()
		e.drive(e.ctx, id, wake)
	}()
}

func (e *Engine) wake(id string) {
	e.mu.Lock()
	ch, ok := e.drivers[id]
	e.mu.Unlock()
	if !ok {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (e *Engine) trustRotation(r Rotation) {
	var fps []string
	for _, fp := range r.NewCerts {
		fps = append(fps, fp)
	}
	if len(fps) > 0 {
		if err := e.cfg.SEPM.Trust(fps...); err != nil {
			e.log.Warn("trusting expected certificates", "rotation", r.ID, "err", err)
		}
	}
}

// ---- reading ----

// Get returns a rotation with its latest progress and approval request.
func (e *Engine) Get(ctx context.Context, id string) (View, error) {
	id = strings.ToUpper(strings.TrimSpace(id))
	var v View
	err := e.cfg.Store.View(ctx, func(tx *store.Tx) error {
		r, err := loadTx(tx, id)
		if err != nil {
			return err
		}
		v.Rotation = r
		if r.Approval != "" {
			req, err := loadApprovalTx(tx, r.Approval)
			if err == nil {
				v.Approval = &req
			}
		}
		return nil
	})
	if err != nil {
		return View{}, err
	}
	e.mu.Lock()
	if p := e.progress[id]; p != nil && v.Rotation.Wait != nil && p.Step == v.Rotation.Wait.Step {
		cp := *p
		v.Progress = &cp
	}
	e.mu.Unlock()
	return v, nil
}

// List returns every stored rotation of this engine's site, oldest first.
func (e *Engine) List(ctx context.Context) ([]Rotation, error) {
	var out []Rotation
	err := e.cfg.Store.View(ctx, func(tx *store.Tx) error {
		all, err := listTx(tx)
		for _, r := range all {
			if r.Site == e.cfg.Site {
				out = append(out, r)
			}
		}
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

// Audit returns the audit trail of one rotation.
func (e *Engine) Audit(ctx context.Context, id string) ([]store.AuditRecord, error) {
	id = strings.ToUpper(strings.TrimSpace(id))
	if _, err := e.Get(ctx, id); err != nil {
		return nil, err
	}
	return e.cfg.Store.Audit(ctx, id)
}

func listTx(tx *store.Tx) ([]Rotation, error) {
	var out []Rotation
	err := tx.ForEach(bucketRotations, func(_ string, val []byte) error {
		var r Rotation
		if err := json.Unmarshal(val, &r); err != nil {
			return fmt.Errorf("decode rotation: %w", err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// ErrNotFound is returned for an unknown rotation id.
var ErrNotFound = errors.New("no such rotation")

func loadTx(tx *store.Tx, id string) (Rotation, error) {
	raw := tx.Get(bucketRotations, id)
	if raw == nil {
		return Rotation{}, fmt.Errorf("rotation %s: %w", id, ErrNotFound)
	}
	var r Rotation
	if err := json.Unmarshal(raw, &r); err != nil {
		return Rotation{}, fmt.Errorf("rotation %s: decode: %w", id, err)
	}
	return r, nil
}

func saveTx(tx *store.Tx, r *Rotation) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("rotation %s: encode: %w", r.ID, err)
	}
	return tx.Put(bucketRotations, r.ID, raw)
}

func loadApprovalTx(tx *store.Tx, id string) (approvals.Request, error) {
	raw := tx.Get(bucketApprovals, id)
	if raw == nil {
		return approvals.Request{}, fmt.Errorf("approval %s: not found", id)
	}
	var req approvals.Request
	if err := json.Unmarshal(raw, &req); err != nil {
		return approvals.Request{}, fmt.Errorf("approval %s: decode: %w", id, err)
	}
	return req, nil
}

func saveApprovalTx(tx *store.Tx, req approvals.Request) error {
	raw, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("approval %s: encode: %w", req.ID, err)
	}
	for _, ref := range append([]string{req.MessageRef}, req.MessageRefs...) {
		if ref == "" {
			continue
		}
		if err := tx.Put(bucketMeta, "ref:"+ref, []byte(req.ID)); err != nil {
			return err
		}
	}
	return tx.Put(bucketApprovals, req.ID, raw)
}

func (e *Engine) audit(tx *store.Tx, rot, actor, kind, step, detail string, data map[string]string) error {
	_, err := tx.AppendAudit(store.AuditRecord{Time: e.cfg.Now().UTC(), Rotation: rot, Actor: actor, Kind: kind, Step: step, Detail: detail, Data: data})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// mutate runs fn on the stored rotation inside one write transaction and saves it.
func (e *Engine) mutate(ctx context.Context, id string, fn func(tx *store.Tx, r *Rotation) error) (Rotation, error) {
	var out Rotation
	err := e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		r, err := loadTx(tx, id)
		if err != nil {
			return err
		}
		if err := fn(tx, &r); err != nil {
			return err
		}
		r.Updated = e.cfg.Now().UTC()
		out = r
		return saveTx(tx, &r)
	})
	return out, err
}

// announce refreshes the run card with the committed state.
func (e *Engine) announce(ctx context.Context, r Rotation) {
	v, err := e.Get(ctx, r.ID)
	if err != nil {
		v = View{Rotation: r}
	}
	e.cfg.Notifier.Update(ctx, v)
}

func (e *Engine) post(ctx context.Context, id, text string) {
	e.cfg.Notifier.Post(ctx, id, text)
}

// ---- commands ----

// Done records an operator's "done" for a manual step (the driver then verifies it),
// or ends a wait whose minimum has passed but whose clients lag (audited override).
func (e *Engine) Done(ctx context.Context, user, id, stepID string) (string, error) {
	id = strings.ToUpper(strings.TrimSpace(id))
	r, err := e.commit(ctx, id, Event{Kind: EvDone, Actor: user, Step: stepID}, nil)
	if err != nil {
		return "", userErr(err)
	}
	e.wake(id)
	if s, st, ok := r.Current(); ok && s.Kind == KindWait && st.Override {
		return fmt.Sprintf("%s ends %s with clients still lagging (override recorded)", user, s.ID), nil
	}
	return fmt.Sprintf("noted: %s says %s is done; verifying", user, stepID), nil
}

// AcceptOrphans records an operator's audited decision to go on past the orphan
// interlock at step stepID with up to n suspected orphaned clients
// (`done R1 STEP --accept-orphans N`).
func (e *Engine) AcceptOrphans(ctx context.Context, user, id, stepID string, n int) (string, error) {
	id = strings.ToUpper(strings.TrimSpace(id))
	if _, err := e.commit(ctx, id, Event{Kind: EvAcceptOrphans, Actor: user, Step: stepID, N: n}, nil); err != nil {
		return "", userErr(err)
	}
	e.wake(id)
	return fmt.Sprintf("%s accepts up to %d suspected orphaned clients at %s (audited)", user, n, stepID), nil
}

// Confirm trusts the certificate a server now presents when no fingerprint was given
// in advance: the operator vouches that it is the one they installed (audited).
func (e *Engine) Confirm(ctx context.Context, user, id, stepID string) (string, error) {
	id = strings.ToUpper(strings.TrimSpace(id))
	var fp string
	_, err := e.commit(ctx, id, Event{Kind: EvConfirm, Actor: user, Step: stepID}, func(_ *store.Tx, r *Rotation, _ *Event) error {
		if s, _, ok := r.Current(); ok {
			fp = r.SeenCerts[s.Server]
		}
		return nil
	})
	if err != nil {
		return "", userErr(err)
	}
	e.wake(id)
	return fmt.Sprintf("%s confirmed certificate %s for %s; verifying", user, short(fp), stepID), nil
}

// Pause stops a rotation at its next step boundary; waits keep their deadlines.
func (e *Engine) Pause(ctx context.Context, user, id string) error {
	id = strings.ToUpper(strings.TrimSpace(id))
	if _, err := e.commit(ctx, id, Event{Kind: EvPause, Actor: user}, nil); err != nil {
		return userErr(err)
	}
	e.wake(id)
	return nil
}

// Resume continues a paused rotation. An approval that expired or was denied is
// asked again; a failed step is tried again; an interlock observes SEPM again.
func (e *Engine) Resume(ctx context.Context, user, id string) error {
	id = strings.ToUpper(strings.TrimSpace(id))
	if v, err := e.Get(ctx, id); err == nil && v.Rotation.Status == StatusPaused && strings.Contains(v.Rotation.LastError, "rejected the bot's credentials") {
		// After a refusal the client does not log in by itself (the account would
		// lock): one attempt now, on the operator's word.
		if l, ok := e.cfg.SEPM.(interface{ Login(context.Context) error }); ok {
			if err := l.Login(ctx); err != nil {
				return fmt.Errorf("%s stays paused: SEPM still refuses the bot's credentials (%v); fix the account or the password first", id, err)
			}
		}
	}
	if _, err := e.commit(ctx, id, Event{Kind: EvResume, Actor: user}, nil); err != nil {
		return userErr(err)
	}
	e.spawn(id)
	e.wake(id)
	return nil
}

// Abort stops the forward steps and reverts safely, from what the change journal
// says the rotation touched: when secure communication may be off, it waits for
// clients to take the current policy (and any new certificate), re-enables secure
// communication where the rotation turned it off, waits, re-assigns the original
// MSLs where it changed them, waits, and reports. It never leaves secure
// communication off.
func (e *Engine) Abort(ctx context.Context, user, id, reason string) error {
	id = strings.ToUpper(strings.TrimSpace(id))
	if _, err := e.commit(ctx, id, Event{Kind: EvAbort, Actor: user, Reason: reason}, nil); err != nil {
		return userErr(err)
	}
	e.spawn(id)
	e.wake(id)
	return nil
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// ---- helpers ----

func newNonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16] + "…"
	}
	return fp
}

func serverLabel(name string) string {
	if name == "" {
		return "the server"
	}
	return name
}
