package rotation

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"sepmbot/sepm"
	"sepmbot/store"
)

// change is one field of one target an auto step sets.
type change struct {
	t     Target
	field string // FieldSecure or FieldMSL
	want  string
	what  string
}

func (c change) patch() sepm.Configuration {
	if c.field == FieldSecure {
		return securePatch(c.want == "true")
	}
	return mslPatch(c.want)
}

func valueOf(s sepm.Settings, field string) string {
	if field == FieldSecure {
		return boolString(secureOf(s))
	}
	return mslOf(s)
}

// changes lists what an auto step sets. Forward steps work from the plan's snapshot;
// an abort's revert steps work from the change journal: they put back the value each
// target had before the rotation first touched it, and touch nothing else.
func changes(r Rotation, step PlanStep, recs []JournalRecord) []change {
	var out []change
	if r.Aborting && strings.HasPrefix(step.ID, "revert-") {
		field := FieldSecure
		if step.Action == ActRestoreMSL {
			field = FieldMSL
		}
		orig := originals(recs, field)
		keys := make([]string, 0, len(orig))
		for k := range orig {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			o := orig[k]
			t := Target{GroupID: o.GroupID, LocationID: o.LocationID, Path: o.Path}
			what := "assign MSL " + o.Value
			if field == FieldSecure {
				what = "secure communication " + onOff(o.Value == "true")
			}
			out = append(out, change{t: t, field: field, want: o.Value, what: what})
		}
		return out
	}
	for _, t := range r.Plan.GroupsToChange {
		switch step.Action {
		case ActAssignHTTP:
			if t.MSL != "" {
				name := HTTPCopyName(t.MSL, r.Plan.HTTPPort)
				out = append(out, change{t: t, field: FieldMSL, want: name, what: "assign MSL " + name})
			}
		case ActRestoreMSL:
			if t.MSL != "" {
				out = append(out, change{t: t, field: FieldMSL, want: t.MSL, what: "assign MSL " + t.MSL})
			}
		case ActDisableSecure:
			if t.Secure {
				out = append(out, change{t: t, field: FieldSecure, want: "false", what: "secure communication off"})
			}
		case ActEnableSecure:
			if t.Secure { // off before the rotation: leave it as found
				out = append(out, change{t: t, field: FieldSecure, want: "true", what: "secure communication on"})
			}
		}
	}
	return out
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func mslPatch(name string) sepm.Configuration {
	return sepm.Configuration{CommunicationSettings: &sepm.CommunicationSettings{SemServer: &sepm.ServerListSummary{Name: name}}}
}

func securePatch(on bool) sepm.Configuration {
	return sepm.Configuration{GeneralSettings: &sepm.GeneralSettings{SecuritySettings: &sepm.SecuritySettings{SecureCommunications: &on}}}
}

func (e *Engine) journal(ctx context.Context, id string) ([]JournalRecord, error) {
	var recs []JournalRecord
	err := e.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		recs, err = loadJournalTx(tx, id)
		return err
	})
	if err != nil {
		return nil, &storeError{err: err}
	}
	return recs, nil
}

// openIntent is the latest record for the step, target and field when it has no result.
func openIntent(recs []JournalRecord, step string, c change) (JournalRecord, bool) {
	for i := len(recs) - 1; i >= 0; i-- {
		j := recs[i]
		if j.Step == step && j.Field == c.field && j.TargetKey() == c.t.Key() {
			return j, j.State == JournalIntent
		}
	}
	return JournalRecord{}, false
}

// applySettings is observe-then-act, journalled: for every target it reads the
// settings; what is already as wanted is audited as such (or, when the journal holds
// an open intent for it, as the change that landed just before a restart); for the
// rest it commits an intent, PATCHes, and commits the result once SEPM confirmed it
// by read-back.
func (e *Engine) applySettings(ctx context.Context, r Rotation, step PlanStep) error {
	if step.Action == ActDisableSecure {
		binds, err := e.checkApprovalStillBinds(ctx, r, step)
		if err != nil || !binds {
			return err // !binds: the rotation went back; approval is asked again
		}
	}
	recs, err := e.journal(ctx, r.ID)
	if err != nil {
		return err
	}
	start := e.cfg.Now().UTC()
	changed, skipped := 0, 0
	missing := map[string]bool{} // step 5: HTTP copies SEPM does not know
	for _, c := range changes(r, step, recs) {
		// r is what the driver read before the step; an abort (or a plan change)
		// committed since then wins: no further change for this step.
		if cur, err := e.stillOnStep(ctx, r, step.ID); err != nil || !cur {
			return err
		}
		cur, err := e.cfg.SEPM.LocationSettings(ctx, c.t.GroupID, c.t.LocationID)
		if err != nil {
			return fmt.Errorf("reading %s: %w", targetLabel(c.t), err)
		}
		if c.field == FieldSecure && !secureKnown(cur) {
			// A missing field would read as "off": never take it for "already so".
			return permanent(fmt.Errorf("SEPM's settings of %s carry no secure_communications field, so the bot cannot tell whether secure communication is on; check the group in the console (Clients > Policies > General Settings > Security Settings), then resume", targetLabel(c.t)))
		}
		data := map[string]string{"group": c.t.GroupID, "location": c.t.LocationID, "path": targetLabel(c.t), "field": c.field, "new": c.want}
		now := valueOf(cur, c.field)
		open, hasOpen := openIntent(recs, step.ID, c)
		if now == c.want {
			err := e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
				if hasOpen {
					// The intent was committed, the PATCH landed, the process died
					// before the result: it is this rotation's change, made once.
					changed++
					data["old"] = open.Old
					if err := journalResultTx(tx, open, JournalApplied, "confirmed by reading SEPM after a restart", e.cfg.Now().UTC()); err != nil {
						return err
					}
					return e.audit(tx, r.ID, "sepmbot", "sepm-change", step.ID, c.what+" (applied before a restart; confirmed by read-back)", data)
				}
				skipped++
				return e.audit(tx, r.ID, "sepmbot", "sepm-already", step.ID, c.what, data)
			})
			if err != nil {
				return &storeError{err: err}
			}
			continue
		}
		data["old"] = now
		var rec JournalRecord
		err = e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
			if hasOpen {
				if err := journalResultTx(tx, open, JournalNotTaken, "SEPM shows the old value: the change never landed", e.cfg.Now().UTC()); err != nil {
					return err
				}
			}
			old := now
			if hasOpen {
				old = open.Old
			}
			var err error
			rec, err = journalIntentTx(tx, JournalRecord{Rotation: r.ID, Step: step.ID, GroupID: c.t.GroupID, LocationID: c.t.LocationID, Path: targetLabel(c.t), Field: c.field, Old: old, New: c.want, Intent: e.cfg.Now().UTC()})
			return err
		})
		if err != nil {
			return &storeError{err: err}
		}
		if _, err := e.cfg.SEPM.PatchLocationSettings(ctx, c.t.GroupID, c.t.LocationID, c.patch()); err != nil {
			var api *sepm.APIError
			if errors.As(err, &api) && api.Status >= 400 && api.Status < 500 && !authRejected(err) {
				if serr := e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
					return journalResultTx(tx, rec, JournalRefused, api.Message, e.cfg.Now().UTC())
				}); serr != nil {
					return &storeError{err: serr}
				}
				if step.Action == ActAssignHTTP && strings.Contains(strings.ToLower(api.Message), "does not exist") {
					missing[c.want] = true
					continue
				}
				return permanent(fmt.Errorf("SEPM refused %s on %s: %w", c.what, targetLabel(c.t), err))
			}
			return fmt.Errorf("%s on %s: %w", c.what, targetLabel(c.t), err)
		}
		changed++
		if err := e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
			if err := journalResultTx(tx, rec, JournalApplied, "", e.cfg.Now().UTC()); err != nil {
				return err
			}
			return e.audit(tx, r.ID, "sepmbot", "sepm-change", step.ID, c.what, data)
		}); err != nil {
			return &storeError{err: err}
		}
	}
	if len(missing) > 0 {
		return e.missingCopies(ctx, r, step, missing)
	}
	ev := Event{Note: fmt.Sprintf("%d changed, %d already so", changed, skipped)}
	if changed > 0 || r.ChangeAt == 0 {
		ev.ChangeAt = start.UnixMilli()
	}
	switch step.Action {
	case ActAssignHTTP:
		ev.HTTPSince = start.UnixMilli()
	case ActDisableSecure:
		ev.SecureOffSince = start.UnixMilli()
	case ActEnableSecure:
		ev.SecureOffSince = -1
	case ActRestoreMSL:
		ev.HTTPSince = -1
	}
	return e.complete(ctx, r, step.ID, ev)
}

// missingCopies returns step 1 to waiting when SEPM does not know some HTTP copies
// (no SEPM API lists management server lists, so step 5's own assignment is the check).
func (e *Engine) missingCopies(ctx context.Context, r Rotation, step PlanStep, missing map[string]bool) error {
	names := make([]string, 0, len(missing))
	for n := range missing {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	to := r.Plan.StepIndex("http-msl")
	if to < 0 {
		return permanent(fmt.Errorf("SEPM has no management server list named %s", strings.Join(names, ", ")))
	}
	msg := fmt.Sprintf("⚠ %s: SEPM has no management server list named %s, so step 5 cannot assign it. Broadcom steps 1-4 go back to waiting: in the SEPM console create the HTTP copy with exactly that name (Policies > Policy Components > Management Server Lists > Tasks > Copy, Paste, edit the copy to use HTTP), then say `done %s http-msl`. Targets already moved to an HTTP copy stay as they are; the bot re-checks every one.", step.ID, strings.Join(names, ", "), r.ID)
	_, err := e.commit(ctx, r.ID, Event{Kind: EvRewind, Step: step.ID, To: "http-msl", Note: "msl-missing", Reason: msg}, nil)
	return err
}

func targetLabel(t Target) string {
	if t.Location == "" {
		return t.Path
	}
	return t.Path + " / " + t.Location
}
