package rotation

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/sepm"
	"sepmbot/sepm/sim"
)

// hidingSite is the SEPM API of a site where the "Remote VPN" location (a real one,
// with its own settings and clients) is invisible until revealed: it stands for a
// location an administrator adds while the rotation is under way. onGroups, when set,
// runs before every groups read (the engine re-reads groups right before it disables
// secure communication).
type hidingSite struct {
	*sepm.Client
	revealed atomic.Bool
	onGroups func()
}

func (h *hidingSite) Locations(ctx context.Context, groupID string) ([]sepm.Location, error) {
	locs, err := h.Client.Locations(ctx, groupID)
	if err != nil || h.revealed.Load() {
		return locs, err
	}
	var out []sepm.Location
	for _, l := range locs {
		if l.Name != "Remote VPN" {
			out = append(out, l)
		}
	}
	return out, nil
}

func (h *hidingSite) Groups(ctx context.Context) ([]sepm.Group, error) {
	if h.onGroups != nil {
		h.onGroups()
	}
	return h.Client.Groups(ctx)
}

func hasRemoteTarget(r Rotation) bool {
	for _, t := range r.Plan.GroupsToChange {
		if t.Location == "Remote VPN" {
			return true
		}
	}
	return false
}

// TestPlanChangeAssignsHTTPCopyToNewTargets: a location that appears after the HTTP
// copies were assigned (seed step 5) but before secure communication goes off must
// get the HTTP copy too before secure communication goes off (KB: the HTTP copy goes
// to all groups and locations); otherwise its 14.x clients keep an HTTPS list and are
// orphaned by the certificate update.
func TestPlanChangeAssignsHTTPCopyToNewTargets(t *testing.T) {
	t.Parallel()
	site := &hidingSite{}
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 200, Servers: 1, Groups: 4, Versions: "14.3=100", Seed: 41}, wrap: func(c *sepm.Client) SEPM {
		site.Client = c
		return site
	}})
	r := g.rotate(PlanOptions{})
	if hasRemoteTarget(r) {
		t.Fatalf("the Remote VPN location is not hidden")
	}
	v, err := (&operator{g: g, id: r.ID, stop: atApproval}).run(g.ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	site.revealed.Store(true) // an administrator adds a location before the votes
	v, err = (&operator{g: g, id: r.ID, stop: atStep("wait-disable", false)}).run(g.ctx, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !hasRemoteTarget(v.Rotation) {
		t.Fatalf("the plan does not list the new location")
	}
	// Secure communication is off now: every target must have its HTTP copy.
	for _, tg := range v.Rotation.Plan.GroupsToChange {
		s, err := g.client.LocationSettings(g.ctx, tg.GroupID, tg.LocationID)
		if err != nil {
			t.Fatal(err)
		}
		if want := HTTPCopyName(tg.MSL, v.Rotation.Plan.HTTPPort); mslOf(s) != want {
			t.Errorf("%s / %s: secure communication off with MSL %q, want the HTTP copy %q", tg.Path, tg.Location, mslOf(s), want)
		}
	}
	if t.Failed() {
		return // with an HTTPS list the certificate update would orphan its clients
	}
	v, err = (&operator{g: g, id: r.ID}).run(g.ctx, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation.Status != StatusCompleted {
		t.Fatalf("status %s: %s", v.Rotation.Status, v.Rotation.LastError)
	}
	if f := fleet(t, g.client); f.Orphaned != 0 {
		t.Errorf("orphaned = %d", f.Orphaned)
	}
	assertRestored(t, g.client, v.Rotation)
}

// TestAbortBeforeDisableSecure: an abort committed while the driver is about to
// disable secure communication (it re-reads the site first) wins: secure
// communication is not turned off after the abort, no new approval is asked for,
// and the abort's revert is not undone by a plan change seen at the same moment.
func TestAbortBeforeDisableSecure(t *testing.T) {
	t.Parallel()
	for i, reveal := range []bool{false, true} {
		name := "same-site"
		if reveal {
			name = "site-changed"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			site := &hidingSite{}
			var eng atomic.Pointer[Engine]
			var fired atomic.Bool
			site.onGroups = func() {
				e := eng.Load()
				if e == nil || fired.Load() {
					return
				}
				v, err := e.Get(context.Background(), "R1")
				if err != nil {
					return
				}
				if s, st, ok := v.Rotation.Current(); !ok || s.Action != ActDisableSecure || st.Status != StepActive {
					return
				}
				fired.Store(true)
				if reveal {
					site.revealed.Store(true)
				}
				if err := e.Abort(context.Background(), "console:alice", "R1", "changed my mind"); err != nil {
					t.Errorf("abort: %v", err)
				}
			}
			g := newRig(t, rigOptions{sim: sim.Options{Clients: 100, Servers: 1, Groups: 4, Versions: "14.3=100", Seed: int64(42 + i)}, wrap: func(c *sepm.Client) SEPM {
				site.Client = c
				return site
			}})
			eng.Store(g.eng)
			r := g.rotate(PlanOptions{})
			v, err := (&operator{g: g, id: r.ID}).run(g.ctx, 60*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !fired.Load() {
				t.Fatalf("the abort never fired")
			}
			if v.Rotation.Status != StatusAborted {
				t.Fatalf("status %s: %s", v.Rotation.Status, v.Rotation.LastError)
			}
			recs, err := g.db.Audit(context.Background(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			aborted := false
			for _, a := range recs {
				if a.Kind == "abort" {
					aborted = true
					continue
				}
				if !aborted {
					continue
				}
				if a.Kind == "sepm-change" && a.Step == "disable-secure" {
					t.Errorf("secure communication disabled after the abort: %+v", a)
				}
				if a.Kind == "approval-requested" || a.Kind == "plan-changed" {
					t.Errorf("after the abort: %s %s", a.Kind, a.Detail)
				}
			}
			for _, s := range v.Rotation.Plan.Steps {
				if s.Action == ActApproval && strings.HasPrefix(s.ID, "revert") {
					t.Errorf("approval step in the revert")
				}
			}
			assertRestored(t, g.client, v.Rotation)
			if f := fleet(t, g.client); f.Orphaned != 0 {
				t.Errorf("orphaned = %d", f.Orphaned)
			}
		})
	}
}

// TestStepStartAnnouncedOnlyWhenCommitted: a pause committed between the driver's
// read of the rotation and its start of the next step means the step did not start;
// the channel must not be told it did (commit before announce).
func TestStepStartAnnouncedOnlyWhenCommitted(t *testing.T) {
	t.Parallel()
	var eng atomic.Pointer[Engine]
	var armed, fired atomic.Bool
	now := func() time.Time {
		// The first clock reading after the approval step's "done" is the driver
		// starting disable-secure: commit a pause right then.
		if armed.CompareAndSwap(true, false) {
			fired.Store(true)
			if err := eng.Load().Pause(context.Background(), "console:alice", "R1"); err != nil {
				t.Errorf("pause: %v", err)
			}
		}
		return time.Now()
	}
	onPost := func(_, text string) {
		if strings.HasPrefix(text, "✅ approval done") {
			armed.Store(true)
		}
	}
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 50, Servers: 1, Groups: 3, Seed: 44}, now: now, onPost: onPost})
	eng.Store(g.eng)
	r := g.rotate(PlanOptions{})
	v, err := (&operator{g: g, id: r.ID, stop: func(v View) bool { return v.Rotation.Status == StatusPaused }}).run(g.ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !fired.Load() || v.Rotation.Status != StatusPaused {
		t.Fatalf("the pause did not happen at the step boundary (status %s)", v.Rotation.Status)
	}
	if err := g.eng.Resume(g.ctx, "console:alice", r.ID); err != nil {
		t.Fatal(err)
	}
	if v, err = (&operator{g: g, id: r.ID}).run(g.ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if v.Rotation.Status != StatusCompleted {
		t.Fatalf("status %s: %s", v.Rotation.Status, v.Rotation.LastError)
	}
	posted := 0
	for _, p := range g.rec.Posts() {
		if strings.Contains(p, "▶ disable-secure:") {
			posted++
		}
	}
	recs, err := g.db.Audit(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, a := range recs {
		if a.Kind == "step-started" && a.Step == "disable-secure" {
			started++
		}
	}
	if posted != started {
		t.Errorf("disable-secure announced as started %d times, committed %d times", posted, started)
	}
}

// TestStaleApprovalAskedAgain: an approval older than the approval ttl when the
// dangerous step is reached (the rotation was paused in between) does not disable
// secure communication; approval is asked again.
func TestStaleApprovalAskedAgain(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64 // how far the engine's clock runs ahead
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 60, Servers: 1, Groups: 3, Seed: 41},
		now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	r := g.rotate(PlanOptions{})
	v := g.reachApproval(r.ID)
	if err := g.eng.Pause(g.ctx, "console:alice", r.ID); err != nil {
		t.Fatal(err)
	}
	first := v.Approval.ID
	for _, u := range []string{"console:bob", "console:carol"} {
		if _, err := g.eng.Vote(g.ctx, Ballot{MessageRef: v.Approval.MessageRef, User: u, Kind: approvals.Approve}); err != nil {
			t.Fatal(err)
		}
	}
	skew.Store(int64(2 * time.Hour)) // two hours later (the ttl is one)
	if err := g.eng.Resume(g.ctx, "console:alice", r.ID); err != nil {
		t.Fatal(err)
	}
	g.awaitNewApproval(r.ID, first)
	if n := g.auditKindsNoDisable(r.ID)["approval-stale"]; n != 1 {
		t.Errorf("approval-stale records: %d", n)
	}
}
