package rotation

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"sepmbot/approvals"
	"sepmbot/sepm"
	"sepmbot/sepm/sim"
)

// growingSite is the SEPM API of a site where someone adds a location with its own
// settings to the root group while the rotation waits for its approval.
type growingSite struct {
	*sepm.Client
	grown  atomic.Bool
	rootID string
}

const newLocationID = "NEWLOCATION0000000000000000000000"

func (g *growingSite) Locations(ctx context.Context, groupID string) ([]sepm.Location, error) {
	locs, err := g.Client.Locations(ctx, groupID)
	if err == nil && g.grown.Load() && groupID == g.rootID {
		locs = append(locs, sepm.Location{ID: newLocationID, Name: "New Office"})
	}
	return locs, err
}

func (g *growingSite) LocationSettings(ctx context.Context, groupID, locationID string) (sepm.Settings, error) {
	if locationID == newLocationID {
		locs, err := g.Client.Locations(ctx, groupID)
		if err != nil || len(locs) == 0 {
			return sepm.Settings{}, errors.New("no location to copy")
		}
		return g.Client.LocationSettings(ctx, groupID, locs[0].ID)
	}
	return g.Client.LocationSettings(ctx, groupID, locationID)
}

// TestApprovalVoidWhenPlanChanges: votes bind the exact action. When the site's
// groups/locations change between the approval and the dangerous step, secure
// communication stays on, the votes are void, and approval is asked again.
func TestApprovalVoidWhenPlanChanges(t *testing.T) {
	t.Parallel()
	var site *growingSite
	g := newRig(t, rigOptions{sim: sim.Options{Clients: 100, Servers: 1, Groups: 4, Seed: 18}, wrap: func(c *sepm.Client) SEPM {
		site = &growingSite{Client: c}
		return site
	}})
	groups, err := g.client.Groups(g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, gr := range groups {
		if gr.Path() == "My Company" {
			site.rootID = gr.ID
		}
	}
	if site.rootID == "" {
		t.Fatalf("no root group among %d groups", len(groups))
	}
	r := g.rotate(PlanOptions{})
	first := *g.reachApproval(r.ID).Approval
	if _, err := g.eng.Vote(g.ctx, Ballot{MessageRef: first.MessageRef, User: "console:bob", Kind: approvals.Approve}); err != nil {
		t.Fatal(err)
	}
	site.grown.Store(true) // the site changes before the second vote
	if _, err := g.eng.Vote(g.ctx, Ballot{MessageRef: first.MessageRef, User: "console:carol", Kind: approvals.Approve}); err != nil {
		t.Fatal(err)
	}
	// The engine notices and asks again.
	v := g.awaitNewApproval(r.ID, first.ID)
	if s, _, _ := v.Rotation.Current(); s.Action != ActApproval {
		t.Errorf("current step %s, want the approval again", s.ID)
	}
	found := false
	for _, tg := range v.Rotation.Plan.GroupsToChange {
		found = found || tg.LocationID == newLocationID
	}
	if !found {
		t.Errorf("the plan does not list the new location")
	}
	if v.Approval.ActionHash == first.ActionHash {
		t.Errorf("the new request is bound to the old action")
	}
	if n := g.auditKindsNoDisable(r.ID)["plan-changed"]; n != 1 {
		t.Errorf("plan-changed audit records: %d", n)
	}
	// A vote on the old request is refused.
	_, err = g.eng.Vote(g.ctx, Ballot{MessageRef: first.MessageRef, User: "console:dave", Kind: approvals.Approve})
	var ref *approvals.Refusal
	if !errors.As(err, &ref) {
		t.Errorf("vote on the void request: %v", err)
	}
	for _, tg := range v.Rotation.Plan.GroupsToChange {
		if tg.LocationID == newLocationID {
			continue
		}
		s, err := g.client.LocationSettings(g.ctx, tg.GroupID, tg.LocationID)
		if err != nil {
			t.Fatal(err)
		}
		if !secureOf(s) && tg.Secure {
			t.Errorf("%s / %s: secure communication is off without a valid approval", tg.Path, tg.Location)
		}
	}
}
