package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sepmbot/approvals"
	"sepmbot/store"
)

// The executor's half of a transition: commit runs Apply on the stored rotation in
// one store transaction, performs the store effects in the same transaction, and,
// only after the commit, performs the outside effects and posts what the rotation's
// outbox owes the channel.

// commit applies ev to rotation id. prep, when set, fills in what the event needs
// from the store (the journal, the approval request) inside the same transaction.
// An ErrStale result means nothing changed; it is returned so callers can tell.
func (e *Engine) commit(ctx context.Context, id string, ev Event, prep func(tx *store.Tx, r *Rotation, ev *Event) error) (Rotation, error) {
	var out Rotation
	var effects []Effect
	now := e.cfg.Now() // read before the transaction: a clock may call back into the engine
	err := e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		r, err := loadTx(tx, id)
		if err != nil {
			return err
		}
		if prep != nil {
			if err := prep(tx, &r, &ev); err != nil {
				return err
			}
		}
		if ev.Approval == nil && r.Approval != "" {
			if req, err := loadApprovalTx(tx, r.Approval); err == nil {
				ev.Approval = &req
			}
		}
		if ev.Kind == EvAbort {
			recs, err := loadJournalTx(tx, r.ID)
			if err != nil {
				return err
			}
			ev.Touched = touched(recs)
		}
		n, effs, err := Apply(r, ev, now)
		if err != nil {
			return err
		}
		for _, f := range effs {
			if err := e.storeEffectTx(tx, n.ID, f, now); err != nil {
				return err
			}
		}
		effects, out = effs, n
		return saveTx(tx, &n)
	})
	if err != nil {
		return Rotation{}, err
	}
	for _, f := range effects {
		switch f.Kind {
		case EffTrust:
			if err := e.cfg.SEPM.Trust(f.FP); err != nil {
				e.log.Warn("trusting a certificate", "rotation", id, "err", err)
			}
		case EffUntrust:
			if u, ok := e.cfg.SEPM.(interface{ Untrust(string) }); ok {
				u.Untrust(f.FP)
			}
		}
	}
	if ev.Kind != EvPosted {
		e.flush(ctx, id)
		e.announce(ctx, out)
	}
	return out, nil
}

func (e *Engine) storeEffectTx(tx *store.Tx, id string, f Effect, now time.Time) error {
	switch f.Kind {
	case EffAudit:
		a := f.Audit
		if _, err := tx.AppendAudit(store.AuditRecord{Time: now.UTC(), Rotation: id, Actor: a.Actor, Kind: a.Kind, Step: a.Step, Detail: a.Detail, Data: a.Data}); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	case EffArmTimer:
		return tx.Put(bucketTimers, id, []byte(f.Deadline.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")))
	case EffDisarmTimer:
		return tx.Delete(bucketTimers, id)
	case EffVoidRequest:
		req, err := loadApprovalTx(tx, f.ID)
		if err != nil {
			return nil // nothing to void
		}
		if req.State == approvals.StatePending || req.State == approvals.StateApproved || req.State == approvals.StateRejected {
			req.State = approvals.StateVoid
			return saveApprovalTx(tx, req)
		}
	case EffSaveRequest:
		return saveApprovalTx(tx, *f.Request)
	}
	return nil
}

// flush posts what the rotation's outbox owes, in order, then removes it. A process
// killed before the removal posts the same messages again after its restart: a
// message may be repeated, never lost. One flush runs per rotation at a time; a
// flush asked for meanwhile makes the running one look again.
func (e *Engine) flush(ctx context.Context, id string) {
	e.mu.Lock()
	if e.flushing[id] {
		e.flushAgain[id] = true
		e.mu.Unlock()
		return
	}
	e.flushing[id] = true
	e.mu.Unlock()
	for {
		var r Rotation
		err := e.cfg.Store.View(ctx, func(tx *store.Tx) error {
			var err error
			r, err = loadTx(tx, id)
			return err
		})
		if err == nil && len(r.Outbox) > 0 {
			last := 0
			for _, o := range r.Outbox {
				e.cfg.Notifier.Post(ctx, id, o.Text)
				last = o.Seq
			}
			if _, err := e.commit(ctx, id, Event{Kind: EvPosted, N: last}, nil); err != nil {
				e.log.Warn("clearing the outbox", "rotation", id, "err", err)
			}
		}
		e.mu.Lock()
		if !e.flushAgain[id] {
			delete(e.flushing, id)
			e.mu.Unlock()
			return
		}
		e.flushAgain[id] = false
		e.mu.Unlock()
	}
}

// isStale reports an event that found the rotation elsewhere (nothing changed).
func isStale(err error) bool { return errors.Is(err, ErrStale) }

// ignoreStale turns ErrStale into nil.
func ignoreStale(err error) error {
	if isStale(err) {
		return nil
	}
	return err
}

// userErr unwraps a refusal for the person who asked.
func userErr(err error) error {
	var ue *UserError
	if errors.As(err, &ue) {
		return errors.New(ue.Msg)
	}
	if isStale(err) {
		return fmt.Errorf("the rotation moved on meanwhile; look again")
	}
	return err
}
