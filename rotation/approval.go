package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"sepmbot/approvals"
	"sepmbot/store"
)

// Roles resolves, at the dangerous step, whether a user still holds the approver
// role. The chat layer implements it (groups and all); rotation/ does not change
// when it does.
type Roles interface {
	IsApprover(ctx context.Context, user string) (bool, error)
}

func (e *Engine) stillApprover(ctx context.Context, user string) (bool, error) {
	if !e.recheckRoles {
		return true, nil // no resolver configured: the chat layer's check at vote time stands
	}
	if e.cfg.Roles != nil {
		return e.cfg.Roles.IsApprover(ctx, user)
	}
	return e.cfg.IsApprover(user), nil
}

func (e *Engine) loadApproval(ctx context.Context, id string) (approvals.Request, error) {
	var req approvals.Request
	err := e.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		req, err = loadApprovalTx(tx, id)
		return err
	})
	return req, err
}

// checkApprovalStillBinds refuses the dangerous step unless the current approval is
// approved, young enough, bound to exactly this action, every counted voter still an
// approver, and the targets SEPM shows now the approved ones. Otherwise the rotation
// goes back (the pure layer's rewind) and it returns false.
func (e *Engine) checkApprovalStillBinds(ctx context.Context, r Rotation, step PlanStep) (bool, error) {
	req, err := e.loadApproval(ctx, r.Approval)
	if err != nil || req.State != approvals.StateApproved || req.ActionHash != actionHash(r) || req.Rotation != r.ID {
		return false, permanent(fmt.Errorf("secure communication stays on: no valid approval binds this action"))
	}
	rewind := func(to, kind, why string, targets []Target) (bool, error) {
		_, err := e.commit(ctx, r.ID, Event{Kind: EvRewind, Step: step.ID, To: to, Note: kind, Reason: why, Targets: targets}, nil)
		return false, ignoreStale(err)
	}
	if age := e.cfg.Now().Sub(req.DecidedAt); age > e.cfg.ApprovalTTL {
		// Approved, then paused (or failing) for longer than an approval lives: the
		// approvers said yes to a site as it was then. Ask again.
		return rewind("approval", "approval-stale", fmt.Sprintf("⌛ The approval was given %s ago, longer than an approval lives (%s): secure communication stays on and approval is asked again.", humanDuration(age), humanDuration(e.cfg.ApprovalTTL)), nil)
	}
	for _, u := range req.Approvers() {
		ok, err := e.stillApprover(ctx, u)
		if err != nil {
			return false, fmt.Errorf("checking that %s still holds the approver role: %w", u, err)
		}
		if !ok {
			return rewind("approval", "approver-revoked", fmt.Sprintf("⚠ %s approved, but no longer holds the approver role: that vote no longer counts. Secure communication stays on and approval is asked again.", u), nil)
		}
	}
	if step.Action != ActDisableSecure {
		return true, nil
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
	// New targets need the HTTP copy of their list (Broadcom step 5: all groups and
	// locations) before secure communication goes off, so the cursor goes back to
	// the assignment (or to the copy when a new list is in use), not to the approval.
	merged := mergeTargets(r.Plan.GroupsToChange, targets)
	msls := map[string]bool{}
	for _, t := range r.Plan.GroupsToChange {
		msls[t.MSL] = true
	}
	to := "approval"
	for i, t := range merged {
		// A new target that already uses the HTTP copy of a known list: its original
		// (restored at the end) is that list, never the HTTP copy.
		for m := range msls {
			if m != "" && t.MSL == HTTPCopyName(m, r.Plan.HTTPPort) {
				merged[i].MSL = m
			}
		}
	}
	if r.Plan.StepIndex("assign-http") >= 0 {
		to = "assign-http"
		for _, t := range merged {
			if t.MSL != "" && !msls[t.MSL] && r.Plan.StepIndex("http-msl") >= 0 {
				to = "http-msl"
			}
		}
	}
	return rewind(to, "plan-changed", "⚠ The site's groups or locations changed since the approval, so the votes no longer bind the action. The plan now lists the current targets; new ones get the HTTP copy of their list first, then approval is asked again.", merged)
}

func (e *Engine) runApproval(ctx context.Context, r Rotation, step PlanStep, d *driver) (time.Duration, error) {
	var req approvals.Request
	have := false
	if r.Approval != "" {
		if q, err := e.loadApproval(ctx, r.Approval); err == nil {
			req, have = q, true
		}
	}
	if !have || req.State == approvals.StateVoid {
		q := approvals.New(newNonce(), r.ID, r.Requester, actionHash(r), e.cfg.Approvals, e.cfg.ApprovalTTL, e.cfg.Now().UTC())
		if _, err := e.commit(ctx, r.ID, Event{Kind: EvApprovalAsked, Step: step.ID, Request: &q}, nil); err != nil {
			return 0, err
		}
		delete(d.announced, step.ID)
		return 0, nil
	}
	switch req.State {
	case approvals.StateApproved:
		if r.Plan.Path == PathMulti {
			// The multi path asks approval only for a short straggler window; the
			// gate still checks that each voter holds the role.
			if ok, err := e.checkApprovalStillBinds(ctx, r, step); err != nil || !ok {
				return 0, err
			}
		}
		return 0, e.complete(ctx, r, step.ID, Event{Note: "approved by " + strings.Join(req.Approvers(), " and ")})
	case approvals.StateRejected:
		reason := fmt.Sprintf("denied by %s", req.DeniedBy)
		if req.DenyReason != "" {
			reason += ": " + req.DenyReason
		}
		_, err := e.commit(ctx, r.ID, Event{Kind: EvDeny, Step: step.ID, Actor: req.DeniedBy, Reason: reason}, nil)
		return 0, err
	}
	if req.Expired(e.cfg.Now()) {
		_, err := e.commit(ctx, r.ID, Event{Kind: EvExpired, Step: step.ID}, nil)
		return 0, err
	}
	if req.MessageRef == "" || !d.announced[step.ID] {
		posted, err := e.askApproval(ctx, r.ID, req)
		if posted {
			d.announced[step.ID] = true
		}
		if err != nil {
			return 0, err
		}
	}
	return max(req.Expires.Sub(e.cfg.Now()), time.Millisecond), nil
}

// askApproval posts the approval request req and records every message that carries
// it (a re-post after a restart adds to the earlier ones: votes on any count). Votes
// wait meanwhile: an approver may react the instant the message shows, and that vote
// must not be refused as one on an unknown message.
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
	return true, e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		cur, err := loadApprovalTx(tx, req.ID)
		if err != nil {
			return err
		}
		for _, ref := range refs {
			switch {
			case ref == "" || cur.Carries(ref):
			case cur.MessageRef == "":
				cur.MessageRef = ref
			default:
				cur.MessageRefs = append(cur.MessageRefs, ref)
			}
		}
		return saveApprovalTx(tx, cur)
	})
}

// Ballot is one vote as the chat layer sees it.
type Ballot struct {
	Rotation   string // from "approve R1" ("" for a reaction or a button)
	RequestID  string // nonce from a button
	MessageRef string // message reacted to or clicked
	User       string
	// IsApprover is the caller's resolution of the user's roles (groups included);
	// Config.IsApprover is consulted too.
	IsApprover bool
	Kind       approvals.BallotKind
	Reason     string
}

// Vote casts a ballot on a rotation's approval request. A refused ballot returns an
// *approvals.Refusal (or another error) and changes nothing.
func (e *Engine) Vote(ctx context.Context, b Ballot) (approvals.Outcome, error) {
	var out approvals.Outcome
	var rotID string
	e.asking.RLock() // a request being posted has its message reference recorded first
	err := e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		reqID := b.RequestID
		if reqID == "" && b.MessageRef != "" {
			reqID = string(tx.Get(bucketMeta, "ref:"+b.MessageRef))
			if reqID == "" {
				return &approvals.Refusal{Code: "wrong-message", Reason: "that message is not an approval request"}
			}
		}
		if reqID == "" {
			id := strings.ToUpper(b.Rotation)
			r, err := loadTx(tx, id)
			if err != nil {
				return err
			}
			if r.Approval == "" {
				return &approvals.Refusal{Code: "wrong-request", Reason: fmt.Sprintf("no approval is pending for %s", id)}
			}
			reqID = r.Approval
		}
		req, err := loadApprovalTx(tx, reqID)
		if err != nil {
			return &approvals.Refusal{Code: "wrong-request", Reason: "unknown approval request"}
		}
		if b.Rotation != "" && !strings.EqualFold(b.Rotation, req.Rotation) {
			return &approvals.Refusal{Code: "wrong-request", Reason: fmt.Sprintf("that approval request belongs to %s, not %s", req.Rotation, strings.ToUpper(b.Rotation))}
		}
		r, err := loadTx(tx, req.Rotation)
		if err != nil {
			return err
		}
		if r.Approval != req.ID {
			return &approvals.Refusal{Code: "wrong-request", Reason: "that approval request is no longer current (the plan changed or it expired); vote on the new one"}
		}
		ballot := approvals.Ballot{
			User: b.User, IsApprover: b.IsApprover || e.cfg.IsApprover(b.User), Kind: b.Kind, RequestID: b.RequestID,
			MessageRef: b.MessageRef, ActionHash: actionHash(r), Reason: b.Reason, At: e.cfg.Now().UTC(),
		}
		o, err := approvals.Cast(req, ballot)
		if err != nil {
			return err
		}
		if err := saveApprovalTx(tx, o.Request); err != nil {
			return err
		}
		if err := e.audit(tx, r.ID, b.User, "vote-"+o.Kind, "approval", o.Message, map[string]string{"request": req.ID, "action_sha256": req.ActionHash}); err != nil {
			return err
		}
		out, rotID = o, r.ID
		return nil
	})
	e.asking.RUnlock()
	if err != nil {
		return approvals.Outcome{}, err
	}
	e.post(ctx, rotID, out.Message)
	if r, err := e.Get(ctx, rotID); err == nil {
		e.cfg.Notifier.Update(ctx, r)
	}
	e.wake(rotID)
	return out, nil
}

// action is what the approval is bound to: everything that makes the window risky.
// The site, the path, the exact targets, the setting written, the new certificate
// fingerprints given with --new-cert-sha256 (or that an operator will confirm them),
// --min-wait and the straggler window. A change to any of them voids the approval.
func action(r Rotation) approvals.Action {
	a := approvals.Action{Rotation: r.ID, Settings: map[string]string{
		"general_settings.security_settings.secure_communications": "false",
		"site":           r.Site,
		"path":           r.Plan.Path,
		"min_wait":       r.Options.MinWait.String(),
		"straggler_secs": fmt.Sprint(r.Plan.StragglerSeconds),
	}}
	if r.Plan.Path == PathMulti {
		a.Settings["general_settings.security_settings.secure_communications"] = "unchanged"
	}
	if len(r.Options.NewCerts) == 0 {
		a.Settings["new_certificates"] = "confirmed by an operator when seen"
	}
	for name, fp := range r.Options.NewCerts {
		a.Settings["new_certificate "+name] = strings.ToLower(fp)
	}
	for _, t := range r.Plan.GroupsToChange {
		if t.Secure {
			a.Targets = append(a.Targets, approvals.Target{GroupID: t.GroupID, LocationID: t.LocationID})
		}
	}
	return a
}

func actionHash(r Rotation) string { return approvals.HashAction(action(r)) }
