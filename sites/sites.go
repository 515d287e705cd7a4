// Package sites runs several SEPM sites in one bot: one rotation engine per site
// over one store, and a Mux that gives the chat router one engine that sends each
// call to the right site's engine.
//
// Guarantees:
//
//   - A call naming a rotation (status, done, vote, abort, ...) goes to the engine of
//     the site the stored rotation belongs to; a vote on a message goes to the site
//     whose approval request carries that message.
//   - One rotation at a time across replication partners: Rotate refuses while any
//     site of the same lock group has an active rotation, and Rotates of one lock
//     group are serialised so two cannot both pass the check.
//   - A site with its own roles or channels is enforced here: a rotation starts only
//     from one of the site's channels, and operator actions and votes on its
//     rotations need the site's own role (by user id: group-based roles need the
//     router, which knows group membership).
package sites

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"sepmbot/approvals"
	"sepmbot/bot"
	"sepmbot/rotation"
	"sepmbot/store"
)

// Engine is one site's engine: what the chat router needs (bot.Engine);
// *rotation.Engine implements it.
type Engine = bot.Engine

// Reader reads the store; *store.DB implements it.
type Reader interface {
	View(ctx context.Context, fn func(tx *store.Tx) error) error
}

// Site is one site in the mux.
type Site struct {
	Name   string
	Engine Engine
	// LockWith are the sites sharing this site's one-rotation-at-a-time lock.
	LockWith []string
	// Operators and Approvers, when not empty, restrict this site's rotations to
	// these user keys (platform:id).
	Operators, Approvers []string
	// Channels, when not empty, are the homes ("platform|channel" or
	// "platform:channel") a rotation of this site may start from.
	Channels []string
}

// Mux sends each engine call to the right site. It implements bot.Engine.
type Mux struct {
	store Reader
	sites []Site
	by    map[string]*Site // lower-case name
	locks map[string]*sync.Mutex
}

// New returns a mux over sites (at least one), reading rotations from st.
func New(st Reader, sites []Site) (*Mux, error) {
	if len(sites) == 0 {
		return nil, errors.New("sites: no site")
	}
	m := &Mux{store: st, sites: sites, by: map[string]*Site{}, locks: map[string]*sync.Mutex{}}
	for i := range m.sites {
		s := &m.sites[i]
		k := strings.ToLower(s.Name)
		if _, dup := m.by[k]; dup {
			return nil, fmt.Errorf("sites: %s named twice", s.Name)
		}
		m.by[k] = s
	}
	// One mutex per lock group: the group's smallest name keys it.
	for i := range m.sites {
		s := &m.sites[i]
		group := append([]string{s.Name}, s.LockWith...)
		slices.Sort(group)
		if m.locks[group[0]] == nil {
			m.locks[group[0]] = &sync.Mutex{}
		}
		m.locks[s.Name] = m.locks[group[0]]
	}
	return m, nil
}

// Names returns the site names, as configured.
func (m *Mux) Names() []string {
	out := make([]string, 0, len(m.sites))
	for _, s := range m.sites {
		out = append(out, s.Name)
	}
	return out
}

// ForSite returns the engine of site (any case), or false.
func (m *Mux) ForSite(site string) (Engine, bool) {
	s, ok := m.by[strings.ToLower(site)]
	if !ok {
		return nil, false
	}
	return &siteEngine{Mux: m, m: m, s: s}, true
}

// PlanSite plans a rotation of the named site. The chat router calls it (and
// RotateSite) with the command's site when the engine has these methods.
func (m *Mux) PlanSite(ctx context.Context, site string, opts rotation.PlanOptions) (rotation.Plan, rotation.Inventory, error) {
	e, ok := m.ForSite(site)
	if !ok {
		return rotation.Plan{}, rotation.Inventory{}, fmt.Errorf("no site %q (sites: %s)", site, strings.Join(m.Names(), ", "))
	}
	return e.Plan(ctx, opts)
}

// RotateSite starts a rotation of the named site (partner lock, channels and site
// operators checked).
func (m *Mux) RotateSite(ctx context.Context, site, user, home string, opts rotation.PlanOptions) (rotation.Rotation, error) {
	s, ok := m.by[strings.ToLower(site)]
	if !ok {
		return rotation.Rotation{}, fmt.Errorf("no site %q (sites: %s)", site, strings.Join(m.Names(), ", "))
	}
	return m.rotate(ctx, s, user, home, opts)
}

// only returns the one site, or an error when there are several: calls that do not
// name a site cannot be routed then.
func (m *Mux) only() (*Site, error) {
	if len(m.sites) == 1 {
		return &m.sites[0], nil
	}
	return nil, fmt.Errorf("several sites are configured (%s) and the call did not say which: nothing done; name the site", strings.Join(m.Names(), ", "))
}

// Plan implements bot.Engine for a single site; with several, use ForSite.
func (m *Mux) Plan(ctx context.Context, opts rotation.PlanOptions) (rotation.Plan, rotation.Inventory, error) {
	s, err := m.only()
	if err != nil {
		return rotation.Plan{}, rotation.Inventory{}, err
	}
	return s.Engine.Plan(ctx, opts)
}

// Rotate implements bot.Engine for a single site; with several, use ForSite.
func (m *Mux) Rotate(ctx context.Context, user, home string, opts rotation.PlanOptions) (rotation.Rotation, error) {
	s, err := m.only()
	if err != nil {
		return rotation.Rotation{}, err
	}
	return m.rotate(ctx, s, user, home, opts)
}

func (m *Mux) rotate(ctx context.Context, s *Site, user, home string, opts rotation.PlanOptions) (rotation.Rotation, error) {
	if len(s.Channels) > 0 && !slices.ContainsFunc(s.Channels, func(c string) bool { return sameHome(c, home) }) {
		return rotation.Rotation{}, fmt.Errorf("rotations of %s start only in %s", s.Name, strings.Join(s.Channels, ", "))
	}
	if len(s.Operators) > 0 && !slices.Contains(s.Operators, user) {
		return rotation.Rotation{}, fmt.Errorf("refused: %s is not an operator of %s", user, s.Name)
	}
	mu := m.locks[s.Name]
	mu.Lock()
	defer mu.Unlock()
	if len(s.LockWith) > 0 {
		rots, err := m.all(ctx)
		if err != nil {
			return rotation.Rotation{}, err
		}
		for _, r := range rots {
			if r.Active() && slices.ContainsFunc(s.LockWith, func(p string) bool { return strings.EqualFold(p, r.Site) }) {
				return rotation.Rotation{}, fmt.Errorf("rotation %s of %s is still %s, and %s replicates with %s: one rotation at a time across replication partners; finish or abort it first", r.ID, r.Site, r.Status, r.Site, s.Name)
			}
		}
	}
	return s.Engine.Rotate(ctx, user, home, opts)
}

// sameHome compares a configured channel ("slack:C1" or "slack|C1") with a home.
func sameHome(channel, home string) bool {
	norm := func(s string) string { return strings.Replace(s, ":", "|", 1) }
	return strings.EqualFold(norm(channel), norm(home))
}

// all reads every stored rotation (every site), oldest first.
func (m *Mux) all(ctx context.Context) ([]rotation.Rotation, error) {
	var out []rotation.Rotation
	err := m.store.View(ctx, func(tx *store.Tx) error {
		return tx.ForEach(store.BucketRotations, func(_ string, v []byte) error {
			var r rotation.Rotation
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode rotation: %w", err)
			}
			out = append(out, r)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

// siteOf returns the site of a stored rotation.
func (m *Mux) siteOf(ctx context.Context, id string) (*Site, error) {
	if len(m.sites) == 1 {
		return &m.sites[0], nil
	}
	id = strings.ToUpper(strings.TrimSpace(id))
	var site string
	err := m.store.View(ctx, func(tx *store.Tx) error {
		raw := tx.Get(store.BucketRotations, id)
		if raw == nil {
			return fmt.Errorf("rotation %s: %w", id, rotation.ErrNotFound)
		}
		var r struct {
			Site string `json:"site"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("rotation %s: decode: %w", id, err)
		}
		site = r.Site
		return nil
	})
	if err != nil {
		return nil, err
	}
	s, ok := m.by[strings.ToLower(site)]
	if !ok {
		return nil, fmt.Errorf("rotation %s belongs to site %q, which is no longer configured", id, site)
	}
	return s, nil
}

// Get implements bot.Engine.
func (m *Mux) Get(ctx context.Context, id string) (rotation.View, error) {
	s, err := m.siteOf(ctx, id)
	if err != nil {
		return rotation.View{}, err
	}
	return s.Engine.Get(ctx, id)
}

// List implements bot.Engine: every site's rotations, oldest first.
func (m *Mux) List(ctx context.Context) ([]rotation.Rotation, error) {
	if len(m.sites) == 1 {
		return m.sites[0].Engine.List(ctx)
	}
	var out []rotation.Rotation
	seen := map[string]bool{}
	for _, s := range m.sites {
		rots, err := s.Engine.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		for _, r := range rots {
			if !seen[r.ID] { // today's engine lists every site's rotations
				seen[r.ID] = true
				out = append(out, r)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// Vote implements bot.Engine: the ballot goes to the site of the rotation it names,
// or of the approval request its message or nonce belongs to.
func (m *Mux) Vote(ctx context.Context, b rotation.Ballot) (approvals.Outcome, error) {
	s, err := m.siteOfBallot(ctx, b)
	if err != nil {
		return approvals.Outcome{}, err
	}
	if len(s.Approvers) > 0 && !slices.Contains(s.Approvers, b.User) {
		b.IsApprover = false // not an approver of this site: the engine refuses with its reason
	}
	return s.Engine.Vote(ctx, b)
}

func (m *Mux) siteOfBallot(ctx context.Context, b rotation.Ballot) (*Site, error) {
	if len(m.sites) == 1 {
		return &m.sites[0], nil
	}
	if b.Rotation != "" {
		return m.siteOf(ctx, b.Rotation)
	}
	var rot string
	err := m.store.View(ctx, func(tx *store.Tx) error {
		return tx.ForEach(store.BucketApprovals, func(_ string, v []byte) error {
			var req approvals.Request
			if json.Unmarshal(v, &req) != nil {
				return nil
			}
			if (b.RequestID != "" && req.ID == b.RequestID) || (b.MessageRef != "" && req.MessageRef == b.MessageRef) {
				rot = req.Rotation
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if rot == "" && b.MessageRef != "" {
		// The request may live in several messages (references kept by the engine).
		_ = m.store.View(ctx, func(tx *store.Tx) error {
			if id := tx.Get(store.BucketMeta, "ref:"+b.MessageRef); id != nil {
				var req approvals.Request
				if raw := tx.Get(store.BucketApprovals, string(id)); raw != nil && json.Unmarshal(raw, &req) == nil {
					rot = req.Rotation
				}
			}
			return nil
		})
	}
	if rot == "" {
		return nil, errors.New("that message is not an approval request of any site")
	}
	return m.siteOf(ctx, rot)
}

func (m *Mux) operatorSite(ctx context.Context, user, id string) (*Site, error) {
	s, err := m.siteOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(s.Operators) > 0 && !slices.Contains(s.Operators, user) {
		return nil, fmt.Errorf("refused: %s is not an operator of %s", user, s.Name)
	}
	return s, nil
}

// Done implements bot.Engine.
func (m *Mux) Done(ctx context.Context, user, id, step string) (string, error) {
	s, err := m.operatorSite(ctx, user, id)
	if err != nil {
		return "", err
	}
	return s.Engine.Done(ctx, user, id, step)
}

// AcceptOrphans implements bot.OrphanAccepter: the operator's audited decision to
// go on despite n suspected orphaned clients, sent to the rotation's own site.
func (m *Mux) AcceptOrphans(ctx context.Context, user, id, step string, n int) (string, error) {
	s, err := m.operatorSite(ctx, user, id)
	if err != nil {
		return "", err
	}
	ao, ok := s.Engine.(interface {
		AcceptOrphans(ctx context.Context, user, id, step string, n int) (string, error)
	})
	if !ok {
		return "", fmt.Errorf("site %s: this engine cannot accept suspected orphans", s.Name)
	}
	return ao.AcceptOrphans(ctx, user, id, step, n)
}

// Confirm implements bot.Engine.
func (m *Mux) Confirm(ctx context.Context, user, id, step string) (string, error) {
	s, err := m.operatorSite(ctx, user, id)
	if err != nil {
		return "", err
	}
	return s.Engine.Confirm(ctx, user, id, step)
}

// Pause implements bot.Engine.
func (m *Mux) Pause(ctx context.Context, user, id string) error {
	s, err := m.operatorSite(ctx, user, id)
	if err != nil {
		return err
	}
	return s.Engine.Pause(ctx, user, id)
}

// Resume implements bot.Engine.
func (m *Mux) Resume(ctx context.Context, user, id string) error {
	s, err := m.operatorSite(ctx, user, id)
	if err != nil {
		return err
	}
	return s.Engine.Resume(ctx, user, id)
}

// Abort implements bot.Engine.
func (m *Mux) Abort(ctx context.Context, user, id, reason string) error {
	s, err := m.operatorSite(ctx, user, id)
	if err != nil {
		return err
	}
	return s.Engine.Abort(ctx, user, id, reason)
}

// Audit implements bot.Engine.
func (m *Mux) Audit(ctx context.Context, id string) ([]store.AuditRecord, error) {
	s, err := m.siteOf(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.Engine.Audit(ctx, id)
}

// siteEngine is one site seen through the mux: Plan and Rotate go to that site
// (with the lock and channel checks), the rest to the rotation's own site.
type siteEngine struct {
	*Mux
	m *Mux
	s *Site
}

func (e *siteEngine) Plan(ctx context.Context, opts rotation.PlanOptions) (rotation.Plan, rotation.Inventory, error) {
	return e.s.Engine.Plan(ctx, opts)
}

func (e *siteEngine) Rotate(ctx context.Context, user, home string, opts rotation.PlanOptions) (rotation.Rotation, error) {
	return e.m.rotate(ctx, e.s, user, home, opts)
}
