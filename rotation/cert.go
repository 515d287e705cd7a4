package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"sepmbot/sepm"
)

func (e *Engine) runCert(ctx context.Context, r Rotation, step PlanStep, st StepState, d *driver) (time.Duration, error) {
	server := step.Server
	want := r.NewCerts[server]
	if st.DoneBy == "" {
		if !d.announced[step.ID] {
			// Before asking for the update (and, on the multi path, before moving to
			// the next server): SEPM must be as the bot left it, nobody orphaned. The
			// check ran just before the step started, unless this process resumed it.
			var stop bool
			var err error
			if !d.observed[step.ID] {
				stop, err = e.interlock(ctx, r, step)
			}
			var ut *sepm.UntrustedCertError
			if errors.As(err, &ut) && step.Server == r.APIServer && r.NewCerts[step.Server] == "" {
				// The API presents this step's server certificate, already updated and
				// not yet confirmed: SEPM cannot be read until the operator confirms it;
				// the check runs again before the update is accepted.
				stop, err = false, nil
			}
			if err != nil || stop {
				return 0, err
			}
			d.announced[step.ID] = true
			e.post(ctx, r.ID, e.certInstructions(r, step, want))
		}
		return forever, nil
	}
	addrs := e.probeAddrs(r, server)
	if len(addrs) == 0 {
		return 0, permanent(fmt.Errorf("no address is configured to verify %s (--sepm-server NAME=HOST:PORT)", serverLabel(server)))
	}
	var seen string
	for _, addr := range addrs {
		ci, err := e.cfg.Probe(ctx, addr)
		if err != nil {
			return 0, fmt.Errorf("probing %s at %s: %w", serverLabel(server), addr, err)
		}
		if seen != "" && ci.SHA256 != seen {
			return 0, e.rejectDone(ctx, r, step, fmt.Sprintf("%s presents different certificates on its ports (%s vs %s): wait for the services to restart, then say done again", serverLabel(server), short(seen), short(ci.SHA256)))
		}
		seen = ci.SHA256
	}
	switch {
	case want != "" && seen == want:
		// The operator says done and the server shows it: observe everything else
		// again before accepting it.
		if stop, err := e.interlock(ctx, r, step); err != nil || stop {
			return 0, err
		}
		at := e.cfg.Now().UTC()
		if err := e.recordWatch(ctx, r, step, at); err != nil {
			return 0, err
		}
		return 0, e.complete(ctx, r, step.ID, Event{Note: fmt.Sprintf("%s presents the new certificate %s on %s", serverLabel(server), short(seen), strings.Join(addrs, " and ")), ChangeAt: at.UnixMilli(), CertChange: true})
	case seen == r.OldCerts[server]:
		return 0, e.rejectDone(ctx, r, step, fmt.Sprintf("%s still presents the old certificate %s: update it, then say `done %s %s` again", serverLabel(server), short(seen), r.ID, step.ID))
	case want != "":
		return 0, e.rejectDone(ctx, r, step, fmt.Sprintf("%s presents %s, but the rotation expects %s: not accepted", serverLabel(server), seen, want))
	default:
		_, err := e.commit(ctx, r.ID, Event{Kind: EvCertSeen, Step: step.ID, Aborting: r.Aborting, FP: seen}, nil)
		return forever, err
	}
}

func (e *Engine) rejectDone(ctx context.Context, r Rotation, step PlanStep, why string) error {
	_, err := e.commit(ctx, r.ID, Event{Kind: EvRejectDone, Step: step.ID, Aborting: r.Aborting, Reason: why}, nil)
	return err
}
