package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"sepmbot/sepm"
	"sepmbot/store"
)

// Interlocks: before every act that could orphan a client (asking for a certificate
// update and accepting it, re-enabling secure communication, restoring the lists,
// moving to the next server), an abort's revert included (revertcheck.go), the bot
// reads SEPM again and compares with its journal;
// it also checks that the clients online when a server's certificate changed have
// checked in again since. A difference pauses the rotation with a message that names
// the target and says what to do; `resume` checks again.

// interlock observes and, on any difference, pauses the rotation (stop = true).
// Observation errors are returned for the driver to retry.
func (e *Engine) interlock(ctx context.Context, r Rotation, step PlanStep) (bool, error) {
	observe := e.observe
	if r.Aborting {
		observe = e.observeRevert // revertcheck.go
	}
	problems, err := observe(ctx, r, step)
	if err != nil {
		return false, err
	}
	if len(problems) > 0 {
		shown := problems
		if len(shown) > 10 {
			shown = append(shown[:10:10], fmt.Sprintf("and %d more", len(problems)-10))
		}
		reason := fmt.Sprintf("SEPM is not as the bot left it (%d difference(s)): %s.", len(problems), strings.Join(shown, "; "))
		_, err := e.commit(ctx, r.ID, Event{Kind: EvInterlock, Step: step.ID, Aborting: r.Aborting, Reason: reason, Drift: true}, nil)
		return true, ignoreStale(err)
	}
	if r.Drifted { // never during an abort (machine.go)
		// SEPM is as the bot left it again, but clients of the changed targets may
		// have taken the other setting meanwhile: the wait before this step starts over.
		to, wait := step.ID, ""
		for i := r.Cursor - 1; i >= 0; i-- {
			if ps := r.Plan.Steps[i]; ps.Kind == KindWait && ps.Action == ActWait {
				to, wait = ps.ID, ps.ID
				break
			}
		}
		msg := fmt.Sprintf("✅ SEPM is as the bot left it again. Clients may have taken the other setting meanwhile, so %s starts over before %s.", wait, step.ID)
		if wait == "" {
			msg = fmt.Sprintf("✅ SEPM is as the bot left it again; %s starts over.", step.ID)
		}
		_, err := e.commit(ctx, r.ID, Event{Kind: EvRewind, Step: step.ID, To: to, Note: "drift-cleared", Reason: msg, KeepApproval: true, Aborting: r.Aborting}, nil)
		return true, ignoreStale(err)
	}
	sus, err := e.suspects(ctx, r)
	if err != nil {
		return false, err
	}
	if len(sus) > acceptedOrphans(r) {
		names := make([]string, 0, 20)
		for i, c := range sus {
			if i == 20 {
				break
			}
			names = append(names, c.Name)
		}
		reason := fmt.Sprintf("%d clients are suspected orphaned: they were online and checking in when the certificate changed and have been silent for more than three heartbeats since (%s). The bot does not re-enable secure communication, restore the lists or move to the next server while they are cut off. Recover them from the SEPM console (Help > Communication Update Package Deployment: deploy a Communication Update Package to them, or replace their sylink.xml), or check they are simply away; then `resume %s`. To go on anyway: `done %s %s --accept-orphans %d` (audited).", len(sus), strings.Join(names, ", "), r.ID, r.ID, step.ID, len(sus))
		_, err := e.commit(ctx, r.ID, Event{Kind: EvInterlock, Step: step.ID, Aborting: r.Aborting, Reason: reason}, nil)
		return true, ignoreStale(err)
	}
	return false, nil
}

// acceptedOrphans is the most suspected orphans an operator accepted in this
// rotation (audited); the interlock stops again when more appear.
func acceptedOrphans(r Rotation) int {
	n := 0
	for _, st := range r.Steps {
		n = max(n, st.AcceptOrphans)
	}
	return n
}

// observe re-reads every server certificate and every target and lists what differs
// from what the journal (and the plan's snapshot for untouched targets) says.
func (e *Engine) observe(ctx context.Context, r Rotation, step PlanStep) ([]string, error) {
	problems, err := e.certProblems(ctx, step, func(name string) []string {
		if step.Action == ActCert && step.Server == name {
			return nil // this step's own server: the operator may be updating it now; runCert verifies it
		}
		if certDone(r, name) {
			return []string{r.NewCerts[name]}
		}
		return []string{r.OldCerts[name]}
	}, "bot", "; clients on secure communication that took the old one may be cut off")
	if err != nil {
		return nil, err
	}
	groups, err := e.cfg.SEPM.Groups(ctx)
	var ut *sepm.UntrustedCertError
	if errors.As(err, &ut) && !(step.Action == ActCert && step.Server == r.APIServer && r.NewCerts[step.Server] == "") {
		// The bot trusts the old and the expected new certificate: anything else on
		// the API is a change nobody announced (or not the SEPM it was).
		problems = append(problems, untrustedAPI(r, ut))
		return problems, nil
	}
	if err != nil {
		return nil, fmt.Errorf("re-reading groups before %s: %w", step.ID, err)
	}
	now, err := readTargets(ctx, e.cfg.SEPM, groups)
	if err != nil {
		return nil, fmt.Errorf("re-reading settings before %s: %w", step.ID, err)
	}
	recs, err := e.journal(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	exp := expected(recs)
	byKey := map[string]Target{}
	for _, t := range now {
		byKey[t.Key()] = t
	}
	planned := map[string]bool{}
	for _, t := range r.Plan.GroupsToChange {
		planned[t.Key()] = true
		cur, ok := byKey[t.Key()]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s no longer exists in SEPM (it is in the plan): check the group in Clients; `abort %s` reverts the rest", targetLabel(t), r.ID))
			continue
		}
		if x, ok := exp[FieldSecure+" "+t.Key()]; ok && !x.matches(boolString(cur.Secure)) {
			problems = append(problems, fmt.Sprintf("%s: secure communication is %s, but the bot left it %s. Put it back in Clients > %s > Policies > General Settings > Security Settings and wait three heartbeats, or `abort %s`", targetLabel(t), onOff(cur.Secure), onOff(x.Value == "true"), t.Path, r.ID))
		} else if !ok && cur.Secure != t.Secure {
			problems = append(problems, fmt.Sprintf("%s: secure communication is %s, but it was %s when the rotation started and the bot did not change it. Put it back in Clients > %s > Policies > General Settings > Security Settings, or `abort %s`", targetLabel(t), onOff(cur.Secure), onOff(t.Secure), t.Path, r.ID))
		}
		if x, ok := exp[FieldMSL+" "+t.Key()]; ok && !x.matches(cur.MSL) {
			problems = append(problems, fmt.Sprintf("%s: uses management server list %q, but the bot assigned %q. Assign %q again (Policies > Policy Components > Management Server Lists > Assign) and wait three heartbeats, or `abort %s`", targetLabel(t), cur.MSL, x.Value, x.Value, r.ID))
		} else if !ok && cur.MSL != t.MSL {
			problems = append(problems, fmt.Sprintf("%s: uses management server list %q, but it used %q when the rotation started and the bot did not change it. Assign %q again, or `abort %s`", targetLabel(t), cur.MSL, t.MSL, t.MSL, r.ID))
		}
	}
	for _, t := range now {
		if !planned[t.Key()] {
			problems = append(problems, fmt.Sprintf("%s appeared since the plan (not covered by it or its approval): `abort %s` and rotate again so the plan includes it", targetLabel(t), r.ID))
		}
	}
	return problems, nil
}

// certProblems probes every server's client port and lists those that present
// none of want(server name) (nil: not checked; empty values are unknown and
// match anything), naming who expects it (the bot, the revert) and what follows.
func (e *Engine) certProblems(ctx context.Context, step PlanStep, want func(name string) []string, who, consequence string) ([]string, error) {
	var problems []string
	for _, s := range e.cfg.Servers {
		w := want(s.Name)
		if s.ClientAddr == "" || w == nil {
			continue
		}
		ci, err := e.cfg.Probe(ctx, s.ClientAddr)
		if err != nil {
			return nil, fmt.Errorf("probing %s at %s before %s: %w", s.Name, s.ClientAddr, step.ID, err)
		}
		if !oneOf(ci.SHA256, w) {
			problems = append(problems, fmt.Sprintf("server %s presents certificate %s, but the %s expects %s: the certificate changed out of turn (or the server was restored or reinstalled). Check Admin > Servers > %s > Manage Server Certificate%s", s.Name, short(ci.SHA256), who, shortAll(w), s.Name, consequence))
		}
	}
	return problems, nil
}

// untrustedAPI says that the SEPM API presents a certificate the bot does not trust
// (neither the old nor the expected new one), and, outside an abort, how to go on
// if it is the one the operator meant to install.
func untrustedAPI(r Rotation, ut *sepm.UntrustedCertError) string {
	msg := fmt.Sprintf("the SEPM API presents certificate %s (%s), which is neither the old nor the expected new one: a server certificate changed out of turn, or the API address now reaches another server. Check Admin > Servers > Manage Server Certificate", short(ut.Presented), ut.Subject)
	if !r.Aborting {
		msg += fmt.Sprintf("; if it is the certificate you meant to install, `abort %s` and rotate again with --new-cert-sha256 %s", r.ID, ut.Presented)
	}
	return msg
}

func stepStatus(r Rotation, id string) string {
	if i := r.Plan.StepIndex(id); i >= 0 && i < len(r.Steps) {
		return r.Steps[i].Status
	}
	return ""
}

// certDone reports whether the certificate step of server finished.
func certDone(r Rotation, server string) bool {
	for i, s := range r.Plan.Steps {
		if s.Action == ActCert && s.Server == server && i < len(r.Steps) && r.Steps[i].Status == StepDone {
			return true
		}
	}
	return false
}

// watch is who was online and checking in when a server's certificate changed.
type watch struct {
	Step    string          `json:"step"`
	At      int64           `json:"at_ms"`
	HB      int             `json:"heartbeat_seconds"`
	Clients []watchedClient `json:"clients"`
}

type watchedClient struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func watchKey(rot, step string) string { return "watch:" + rot + ":" + step }

// recordWatch sweeps the clients once when a certificate change is verified and
// records those online and checking in (a check-in within three heartbeats).
func (e *Engine) recordWatch(ctx context.Context, r Rotation, step PlanStep, at time.Time) error {
	hb := max(r.Plan.HeartbeatSeconds, 1)
	since := at.Add(-3 * time.Duration(hb) * time.Second).UnixMilli()
	w := watch{Step: step.ID, At: at.UnixMilli(), HB: hb}
	err := e.cfg.SEPM.EachComputerPage(ctx, sepm.ComputerQuery{PageSize: 1000}, func(page []sepm.Computer) error {
		for _, c := range page {
			if c.OnlineStatus == 1 && c.LastUpdateTime >= since {
				w.Clients = append(w.Clients, watchedClient{ID: c.UniqueID, Name: c.ComputerName})
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing the clients online at the certificate change: %w", err)
	}
	raw, err := json.Marshal(w)
	if err != nil {
		return err
	}
	if err := e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		return tx.Put(bucketMeta, watchKey(r.ID, step.ID), raw)
	}); err != nil {
		return &storeError{err: err}
	}
	return nil
}

func (e *Engine) watches(ctx context.Context, id string) ([]watch, error) {
	var out []watch
	err := e.cfg.Store.View(ctx, func(tx *store.Tx) error {
		return tx.ForEachPrefix(bucketMeta, watchKey(id, ""), func(_ string, v []byte) error {
			var w watch
			if err := json.Unmarshal(v, &w); err != nil {
				return fmt.Errorf("decode watch: %w", err)
			}
			out = append(out, w)
			return nil
		})
	})
	if err != nil {
		return nil, &storeError{err: err}
	}
	return out, nil
}

// suspect is a client suspected orphaned.
type suspect struct{ ID, Name string }

// suspects lists the watched clients that have not checked in since their
// certificate change and have been silent for more than three heartbeats.
func (e *Engine) suspects(ctx context.Context, r Rotation) ([]suspect, error) {
	ws, err := e.watches(ctx, r.ID)
	if err != nil || len(ws) == 0 {
		return nil, err
	}
	last := map[string]int64{}
	err = e.cfg.SEPM.EachComputerPage(ctx, sepm.ComputerQuery{PageSize: 1000}, func(page []sepm.Computer) error {
		for _, c := range page {
			last[c.UniqueID] = c.LastUpdateTime
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checking that clients checked in after the certificate change: %w", err)
	}
	return suspectsOf(ws, last, e.cfg.Now().UnixMilli()), nil
}

// suspectsOf is the pure rule: watched at a change, no check-in since it, and silent
// for more than three heartbeats.
func suspectsOf(ws []watch, last map[string]int64, nowMs int64) []suspect {
	seen := map[string]bool{}
	var out []suspect
	for _, w := range ws {
		limit := int64(3*w.HB) * 1000
		for _, c := range w.Clients {
			lu, ok := last[c.ID]
			if !ok || seen[c.ID] {
				continue // gone from SEPM (deleted) or already counted
			}
			if lu <= w.At && nowMs-lu > limit {
				seen[c.ID] = true
				out = append(out, suspect{ID: c.ID, Name: c.Name})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
