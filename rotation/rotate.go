package rotation

import (
	"context"
	"fmt"
	"strings"

	"sepmbot/store"
)

// Plan reads the site and plans a rotation without starting one.
func (e *Engine) Plan(ctx context.Context, opts PlanOptions) (Plan, Inventory, error) {
	inv, err := ReadInventory(ctx, e.cfg.SEPM, e.cfg.Site, e.cfg.Servers)
	if err != nil {
		return Plan{}, inv, err
	}
	p, err := MakePlan(inv, opts)
	return p, inv, err
}

// Rotate plans and starts a rotation for the site, requested by user. It refuses
// while another rotation of the site is active.
//
// home is where the rotation lives in chat (opaque to the engine: the chat layer
// records its platform and channel there); its card, thread and approval request go
// there.
func (e *Engine) Rotate(ctx context.Context, user, home string, opts PlanOptions) (Rotation, error) {
	if err := e.refuseIfActive(ctx, nil); err != nil {
		return Rotation{}, err // early answer; the check that counts runs in the creating transaction
	}
	plan, _, err := e.Plan(ctx, opts)
	if err != nil {
		return Rotation{}, err
	}
	for name := range opts.NewCerts {
		if name != "" && plan.StepIndex("cert-"+name) < 0 {
			return Rotation{}, fmt.Errorf("--new-cert-sha256 names server %q, which is not one of %s", name, strings.Join(plan.Servers, ", "))
		}
	}
	// Snapshot the certificates every server presents now, and find the API's server.
	old := map[string]string{}
	apiServer := ""
	var apiFP string
	if e.cfg.APIAddr != "" {
		ci, err := e.cfg.Probe(ctx, e.cfg.APIAddr)
		if err != nil {
			return Rotation{}, fmt.Errorf("probing the SEPM API certificate at %s: %w", e.cfg.APIAddr, err)
		}
		apiFP = ci.SHA256
	}
	for _, s := range e.cfg.Servers {
		if s.ClientAddr == "" {
			continue
		}
		ci, err := e.cfg.Probe(ctx, s.ClientAddr)
		if err != nil {
			return Rotation{}, fmt.Errorf("probing %s at %s: %w", s.Name, s.ClientAddr, err)
		}
		old[s.Name] = ci.SHA256
		if ci.SHA256 == apiFP && apiServer == "" {
			apiServer = s.Name
		}
	}
	if len(e.cfg.Servers) == 0 && apiFP != "" {
		old[""] = apiFP
	}
	newCerts := map[string]string{}
	for name, fp := range opts.NewCerts {
		if name == "" {
			// One fingerprint for every server (a shared certificate) or a single-server site.
			for _, s := range plan.Servers {
				newCerts[s] = fp
			}
			if len(plan.Servers) == 0 {
				newCerts[""] = fp
			}
			continue
		}
		newCerts[name] = fp
	}
	for name, fp := range newCerts {
		if old[name] == fp {
			return Rotation{}, fmt.Errorf("%s already presents certificate %s: nothing to rotate", serverLabel(name), short(fp))
		}
	}
	now := e.cfg.Now().UTC()
	var out Rotation
	err = e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		if err := e.refuseIfActive(ctx, tx); err != nil {
			return err
		}
		seq, err := tx.NextSeq(bucketRotations)
		if err != nil {
			return err
		}
		r := Rotation{
			ID: fmt.Sprintf("R%d", seq), Site: e.cfg.Site, Requester: user, Home: home, Created: now, Updated: now,
			Options: opts, Plan: plan, Status: StatusRunning, Steps: make([]StepState, len(plan.Steps)),
			OldCerts: old, NewCerts: newCerts, APIServer: apiServer, ExpectedEnd: now.Add(plan.expectedDuration()),
		}
		for i := range r.Steps {
			r.Steps[i].Status = StepPending
		}
		if err := e.audit(tx, r.ID, user, "rotation-started", "", fmt.Sprintf("%s path: %s", plan.Path, plan.Reason), map[string]string{"targets": fmt.Sprint(len(plan.GroupsToChange))}); err != nil {
			return err
		}
		out = r
		return saveTx(tx, &r)
	})
	if err != nil {
		return Rotation{}, fmt.Errorf("starting rotation: %w", err)
	}
	e.trustRotation(out)
	e.announce(ctx, out)
	e.spawn(out.ID)
	return out, nil
}

// refuseIfActive refuses while a rotation of this site or of a site sharing its lock
// is active. With tx nil it reads a snapshot (an early, friendly answer); Rotate
// checks again inside the transaction that creates the rotation, so two concurrent
// requests cannot both pass.
func (e *Engine) refuseIfActive(ctx context.Context, tx *store.Tx) error {
	check := func(tx *store.Tx) error {
		all, err := listTx(tx)
		if err != nil {
			return err
		}
		for _, r := range all {
			if r.Active() && e.sharesLock(r.Site) {
				return fmt.Errorf("rotation %s of %s is still %s: finish or abort it first (one rotation at a time for %s)", r.ID, r.Site, r.Status, strings.Join(e.lockSites(), ", "))
			}
		}
		return nil
	}
	if tx != nil {
		return check(tx)
	}
	return e.cfg.Store.View(ctx, check)
}

func (e *Engine) lockSites() []string {
	out := []string{e.cfg.Site}
	for _, s := range e.cfg.LockSites {
		if s != "" && s != e.cfg.Site {
			out = append(out, s)
		}
	}
	return out
}

func (e *Engine) sharesLock(site string) bool {
	for _, s := range e.lockSites() {
		if strings.EqualFold(s, site) {
			return true
		}
	}
	return false
}
