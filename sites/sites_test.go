package sites

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"sepmbot/approvals"
	"sepmbot/rotation"
	"sepmbot/store"
)

// fakeEngine records calls; Rotate stores a rotation of its site.
type fakeEngine struct {
	Engine
	site  string
	db    *store.DB
	mu    sync.Mutex
	calls []string
}

func (f *fakeEngine) note(s string) { f.mu.Lock(); f.calls = append(f.calls, s); f.mu.Unlock() }

func (f *fakeEngine) Rotate(ctx context.Context, user, home string, _ rotation.PlanOptions) (rotation.Rotation, error) {
	f.note("rotate")
	var r rotation.Rotation
	err := f.db.Update(ctx, func(tx *store.Tx) error {
		n, err := tx.NextSeq(store.BucketRotations)
		if err != nil {
			return err
		}
		r = rotation.Rotation{ID: "R" + string(rune('0'+n)), Site: f.site, Status: rotation.StatusRunning, Requester: user, Home: home}
		raw, _ := json.Marshal(r)
		return tx.Put(store.BucketRotations, r.ID, raw)
	})
	return r, err
}

func (f *fakeEngine) Done(_ context.Context, _, id, _ string) (string, error) {
	f.note("done " + id)
	return "ok", nil
}

func (f *fakeEngine) Vote(_ context.Context, b rotation.Ballot) (approvals.Outcome, error) {
	f.note("vote " + b.MessageRef)
	return approvals.Outcome{}, nil
}

func setup(t *testing.T) (*Mux, map[string]*fakeEngine, *store.DB) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "sepmbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	engs := map[string]*fakeEngine{}
	var list []Site
	for _, s := range []Site{
		{Name: "site-a", LockWith: []string{"site-b"}},
		{Name: "site-b", LockWith: []string{"site-a"}, Channels: []string{"slack:CB"}},
		{Name: "site-c", Operators: []string{"slack:UC"}},
	} {
		e := &fakeEngine{site: s.Name, db: db}
		engs[s.Name] = e
		s.Engine = e
		list = append(list, s)
	}
	m, err := New(db, list)
	if err != nil {
		t.Fatal(err)
	}
	return m, engs, db
}

// TestLockSpansReplicationPartners: with a rotation active on site-a, site-b (its
// partner) refuses and site-c (independent) starts.
func TestLockSpansReplicationPartners(t *testing.T) {
	m, engs, _ := setup(t)
	ctx := context.Background()
	a, _ := m.ForSite("site-a")
	if _, err := a.Rotate(ctx, "slack:U1", "slack|CA", rotation.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	b, _ := m.ForSite("SITE-B")
	_, err := b.Rotate(ctx, "slack:U1", "slack|CB", rotation.PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "one rotation at a time across replication partners") {
		t.Fatalf("partner started: %v", err)
	}
	if len(engs["site-b"].calls) != 0 {
		t.Errorf("site-b engine was called: %v", engs["site-b"].calls)
	}
	c, _ := m.ForSite("site-c")
	if _, err := c.Rotate(ctx, "slack:UC", "slack|CX", rotation.PlanOptions{}); err != nil {
		t.Errorf("independent site refused: %v", err)
	}
}

// TestConcurrentPartnerRotates: two partners asked at once start one rotation.
func TestConcurrentPartnerRotates(t *testing.T) {
	m, engs, _ := setup(t)
	a, _ := m.ForSite("site-a")
	b, _ := m.ForSite("site-b")
	var wg sync.WaitGroup
	for _, e := range []Engine{a, b} {
		wg.Go(func() { _, _ = e.Rotate(context.Background(), "slack:U1", "slack|CB", rotation.PlanOptions{}) })
	}
	wg.Wait()
	if n := len(engs["site-a"].calls) + len(engs["site-b"].calls); n != 1 {
		t.Errorf("%d rotations started across partners", n)
	}
}

// TestRoutesByRotationAndChecksSiteRules: calls on a rotation go to its site's
// engine; channels and site operators are enforced; unnamed plan/rotate with
// several sites asks for the site.
func TestRoutesByRotationAndChecksSiteRules(t *testing.T) {
	m, engs, db := setup(t)
	ctx := context.Background()
	b, _ := m.ForSite("site-b")
	if _, err := b.Rotate(ctx, "slack:U1", "slack|CA", rotation.PlanOptions{}); err == nil || !strings.Contains(err.Error(), "start only in slack:CB") {
		t.Errorf("wrong channel: %v", err)
	}
	c, _ := m.ForSite("site-c")
	if _, err := c.Rotate(ctx, "slack:U1", "slack|CX", rotation.PlanOptions{}); err == nil || !strings.Contains(err.Error(), "not an operator of site-c") {
		t.Errorf("site operator: %v", err)
	}
	r, err := c.Rotate(ctx, "slack:UC", "slack|CX", rotation.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Done(ctx, "slack:UC", strings.ToLower(r.ID), "x"); err != nil {
		t.Fatal(err)
	}
	if got := engs["site-c"].calls; len(got) != 2 || got[1] != "done "+strings.ToLower(r.ID) {
		t.Errorf("site-c calls %v", got)
	}
	if _, err := m.Done(ctx, "slack:U1", r.ID, "x"); err == nil {
		t.Error("a non-operator of site-c said done")
	}
	// A vote on a message goes to the site whose request carries it.
	req := approvals.Request{ID: "n1", Rotation: r.ID, MessageRef: "slack|CX|171.2"}
	raw, _ := json.Marshal(req)
	if err := db.Update(ctx, func(tx *store.Tx) error { return tx.Put(store.BucketApprovals, req.ID, raw) }); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Vote(ctx, rotation.Ballot{MessageRef: "slack|CX|171.2", User: "slack:U9"}); err != nil {
		t.Fatal(err)
	}
	if got := engs["site-c"].calls; got[len(got)-1] != "vote slack|CX|171.2" {
		t.Errorf("vote went elsewhere: %v", got)
	}
	if _, err := m.Vote(ctx, rotation.Ballot{MessageRef: "nope", User: "slack:U9"}); err == nil {
		t.Error("a vote on an unknown message was routed")
	}
	if _, err := m.Rotate(ctx, "slack:U1", "slack|CA", rotation.PlanOptions{}); err == nil || !strings.Contains(err.Error(), "name the site") {
		t.Errorf("unnamed rotate: %v", err)
	}
	if _, err := m.RotateSite(ctx, "site-x", "slack:U1", "slack|CA", rotation.PlanOptions{}); err == nil || !strings.Contains(err.Error(), `no site "site-x"`) {
		t.Errorf("unknown site: %v", err)
	}
	before := len(engs["site-a"].calls)
	if _, err := m.RotateSite(ctx, "Site-A", "slack:U1", "slack|CA", rotation.PlanOptions{}); err != nil || len(engs["site-a"].calls) != before+1 {
		t.Errorf("RotateSite did not reach site-a: %v", err)
	}
}

func (f *fakeEngine) AcceptOrphans(_ context.Context, _, id, step string, n int) (string, error) {
	f.note(fmt.Sprintf("accept-orphans %s %s %d", id, step, n))
	return "ok", nil
}

// TestAcceptOrphansGoesToTheRotationsSite: `done R1 STEP --accept-orphans N` reaches
// the engine of the site the rotation belongs to, and no other.
func TestAcceptOrphansGoesToTheRotationsSite(t *testing.T) {
	m, engs, _ := setup(t)
	ctx := context.Background()
	c, _ := m.ForSite("site-c")
	r, err := c.Rotate(ctx, "slack:UC", "slack|CX", rotation.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AcceptOrphans(ctx, "slack:UC", r.ID, "enable-secure", 3); err != nil {
		t.Fatal(err)
	}
	if got := engs["site-c"].calls; len(got) != 2 || got[1] != "accept-orphans "+r.ID+" enable-secure 3" {
		t.Errorf("site-c calls %v", got)
	}
	if len(engs["site-a"].calls)+len(engs["site-b"].calls) != 0 {
		t.Errorf("other sites called: %v %v", engs["site-a"].calls, engs["site-b"].calls)
	}
}
