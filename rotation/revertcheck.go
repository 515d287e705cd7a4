package rotation

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"sepmbot/sepm"
)

// observeRevert is observe for an abort's revert, before it re-enables secure
// communication or re-assigns the original lists. The revert touches only what the
// change journal says the rotation touched, so it checks those, and the
// certificates:
//   - every server presents the certificate the revert expects: the new one where
//     its certificate step finished, the old one elsewhere, and either on the
//     server whose certificate step the abort interrupted (the operator may have
//     updated it; its clients take it during the first revert wait). Anything else
//     would cut off the clients secure communication is about to return to;
//   - the SEPM API presents a certificate the bot trusts;
//   - every target the rotation changed holds what the bot left or what it had
//     before the rotation (a colleague may have put it back already, which the
//     revert then takes as done). A third value is a change nobody announced.
//
// The suspected-orphans check runs after it, as for the forward steps.
func (e *Engine) observeRevert(ctx context.Context, r Rotation, step PlanStep) ([]string, error) {
	interrupted := interruptedCert(r)
	problems, err := e.certProblems(ctx, step, func(name string) []string {
		switch {
		case certDone(r, name):
			return []string{r.NewCerts[name]}
		case name == interrupted:
			return []string{r.OldCerts[name], r.NewCerts[name]}
		}
		return []string{r.OldCerts[name]}
	}, "revert", " before secure communication returns: clients that do not hold the certificate the server presents are cut off once it is on")
	if err != nil {
		return nil, err
	}
	if _, err := e.cfg.SEPM.Groups(ctx); err != nil {
		var ut *sepm.UntrustedCertError
		if errors.As(err, &ut) {
			return append(problems, untrustedAPI(r, ut)), nil
		}
		return nil, fmt.Errorf("re-reading groups before %s: %w", step.ID, err)
	}
	recs, err := e.journal(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	exp := expected(recs)
	type touched struct {
		t      Target
		fields map[string]original
	}
	byKey := map[string]*touched{}
	for _, field := range []string{FieldSecure, FieldMSL} {
		for k, o := range originals(recs, field) {
			if byKey[k] == nil {
				byKey[k] = &touched{t: Target{GroupID: o.GroupID, LocationID: o.LocationID, Path: o.Path}, fields: map[string]original{}}
			}
			byKey[k].fields[field] = o
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		tc := byKey[k]
		cur, err := e.cfg.SEPM.LocationSettings(ctx, tc.t.GroupID, tc.t.LocationID)
		if err != nil {
			return nil, fmt.Errorf("re-reading %s before %s: %w", targetLabel(tc.t), step.ID, err)
		}
		if o, ok := tc.fields[FieldSecure]; ok {
			if !secureKnown(cur) {
				problems = append(problems, fmt.Sprintf("%s: SEPM's settings carry no secure_communications field, so the bot cannot tell whether secure communication is on; check it in Clients > %s > Policies > General Settings > Security Settings", targetLabel(tc.t), tc.t.Path))
			} else if now := boolString(secureOf(cur)); !exp[FieldSecure+" "+k].matches(now) && now != o.Value {
				problems = append(problems, fmt.Sprintf("%s: secure communication is %s, which is neither what the bot left nor what it was before the rotation", targetLabel(tc.t), onOff(now == "true")))
			}
		}
		if o, ok := tc.fields[FieldMSL]; ok {
			if now := mslOf(cur); !exp[FieldMSL+" "+k].matches(now) && now != o.Value {
				problems = append(problems, fmt.Sprintf("%s: uses management server list %q, neither what the bot assigned (%s) nor the original %q: assign one of them again (Policies > Policy Components > Management Server Lists > Assign)", targetLabel(tc.t), now, quoteAll(exp[FieldMSL+" "+k]), o.Value))
			}
		}
	}
	return problems, nil
}

// interruptedCert is the server whose certificate step the abort interrupted ("" if
// the abort interrupted another step): the step kept as history just before the
// first revert step.
func interruptedCert(r Rotation) string {
	for i, s := range r.Plan.Steps {
		if strings.HasPrefix(s.ID, "revert-") {
			if i > 0 && r.Plan.Steps[i-1].Action == ActCert {
				return r.Plan.Steps[i-1].Server
			}
			return ""
		}
	}
	return ""
}

// oneOf reports whether v is one of the known values of set (with none known,
// there is nothing to compare with, and nothing to say).
func oneOf(v string, set []string) bool {
	known := false
	for _, s := range set {
		if s == "" {
			continue
		}
		known = true
		if v == s {
			return true
		}
	}
	return !known
}

func shortAll(set []string) string {
	var out []string
	for _, s := range set {
		if s != "" {
			out = append(out, short(s))
		}
	}
	return strings.Join(out, " or ")
}

func quoteAll(x expectation) string {
	if x.Or != "" {
		return fmt.Sprintf("%q or %q", x.Value, x.Or)
	}
	return fmt.Sprintf("%q", x.Value)
}
