package rotation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/sepm"
	"sepmbot/sepm/sim"
	"sepmbot/store"
)

// recorder is a Notifier that remembers everything, for assertions.
type recorder struct {
	mu      sync.Mutex
	posts   []string
	views   map[string]View
	refs    int
	updates int    // Update calls
	prefix  string // of message refs, so two engines' refs differ
	changed chan struct{}
	out     io.Writer // optional echo
	// onPost, when set, sees every posted text (called outside the lock).
	onPost func(id, text string)
}

func newRecorder() *recorder {
	return &recorder{views: map[string]View{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) Update(_ context.Context, v View) {
	r.mu.Lock()
	r.updates++
	r.views[v.Rotation.ID] = v
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Post(_ context.Context, id, text string) {
	r.mu.Lock()
	r.posts = append(r.posts, id+": "+text)
	if r.out != nil {
		fmt.Fprintf(r.out, "%s %s\n", id, text)
	}
	hook := r.onPost
	r.mu.Unlock()
	if hook != nil {
		hook(id, text)
	}
	r.poke()
}

func (r *recorder) RequestApproval(_ context.Context, v View) ([]string, error) {
	r.mu.Lock()
	r.refs++
	ref := fmt.Sprintf("%smsg-%d", r.prefix, r.refs)
	r.mu.Unlock()
	r.poke()
	return []string{ref}, nil
}

func (r *recorder) Updates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.updates
}

func (r *recorder) Posts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.posts...)
}

// site is one simulated SEPM with an engine in front of it.
type rig struct {
	t      *testing.T
	site   *sim.Site
	client *sepm.Client
	db     *store.DB
	eng    *Engine
	rec    *recorder
	cancel context.CancelFunc
	ctx    context.Context
	newFPs map[string]string
	cfg    Config
}

type rigOptions struct {
	sim        sim.Options
	wrap       func(*sepm.Client) SEPM // optional: what the engine sees instead of the client
	noNewCerts bool
	dir        string
	approvals  int
	now        func() time.Time      // optional engine clock
	onPost     func(id, text string) // optional hook on every post
	roles      Roles                 // optional role resolver at the dangerous step
	servers    []ServerRef           // optional: what the engine is configured with
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startSim(t testing.TB, o sim.Options) *sim.Site {
	t.Helper()
	if o.Password == "" {
		o.User, o.Password = "admin", "sim-password-1"
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = time.Second
	}
	o.Logger = testLogger(t)
	site, err := sim.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("starting the simulator: %v", err)
	}
	t.Cleanup(func() { site.Close() })
	return site
}

func clientFor(t testing.TB, site *sim.Site) *sepm.Client {
	t.Helper()
	c, err := sepm.New(sepm.Config{URL: site.URL(), Username: "admin", Password: "sim-password-1", Fingerprints: []string{site.APIFingerprint()}, Logger: testLogger(t), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func serverRefs(site *sim.Site) []ServerRef {
	var out []ServerRef
	for _, s := range site.Servers() {
		out = append(out, ServerRef{Name: s.Name, ClientAddr: s.ClientAddr})
	}
	return out
}

func apiAddr(site *sim.Site) string {
	return strings.TrimPrefix(site.URL(), "https://")
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	site := startSim(t, o.sim)
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := store.Open(filepath.Join(dir, "sepmbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	client := clientFor(t, site)
	rec := newRecorder()
	rec.onPost = o.onPost
	approvers := map[string]bool{"console:bob": true, "console:carol": true, "console:dave": true}
	var api SEPM = client
	if o.wrap != nil {
		api = o.wrap(client)
	}
	cfg := Config{
		Store: db, SEPM: api, Notifier: rec, Site: "site-a", APIAddr: apiAddr(site), Servers: serverRefs(site),
		Approvals: max(o.approvals, 2), IsApprover: func(u string) bool { return approvers[u] }, PollInterval: 300 * time.Millisecond,
		Logger: testLogger(t), Now: o.now, Roles: o.roles,
	}
	if o.servers != nil {
		cfg.Servers = o.servers
	}
	eng, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); eng.Wait() })
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	newFPs := map[string]string{}
	if !o.noNewCerts {
		for _, s := range site.Servers() {
			newFPs[s.Name] = s.NextFingerprint
		}
	}
	return &rig{t: t, site: site, client: client, db: db, eng: eng, rec: rec, cancel: cancel, ctx: ctx, newFPs: newFPs, cfg: cfg}
}

// restart stops the engine as a kill would (its drivers stop; nothing more is
// written) and starts a new one on the same store, with a new notifier whose
// message refs differ from the old ones.
func (g *rig) restart(prefix string, before func()) {
	g.t.Helper()
	g.cancel()
	g.eng.Wait()
	if before != nil {
		before()
	}
	rec := newRecorder()
	rec.prefix = prefix
	cfg := g.cfg
	cfg.Notifier = rec
	eng, err := NewEngine(cfg)
	if err != nil {
		g.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.t.Cleanup(func() { cancel(); eng.Wait() })
	if err := eng.Start(ctx); err != nil {
		g.t.Fatal(err)
	}
	g.eng, g.rec, g.ctx, g.cancel = eng, rec, ctx, cancel
}

// waitFor waits (on announcements, at most d) until cond holds for the rotation.
func (g *rig) waitFor(id string, d time.Duration, what string, cond func(v View) bool) View {
	g.t.Helper()
	deadline := time.Now().Add(d)
	for {
		v := mustGet(g.t, g, id)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s: not reached in %s (at %s, %s)\nposts:\n%s", what, d, currentID(v.Rotation), v.Rotation.Status, strings.Join(tail(g.rec.Posts(), 12), "\n"))
		}
		select {
		case <-g.rec.changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// delivered waits until the rotation owes the channel nothing (its Outbox is empty:
// every post of the transitions so far reached the recorder) and returns its view.
// Posts are delivered after their transition commits, so a view that shows the
// rotation completed may come before the post that says so.
func (g *rig) delivered(ctx context.Context, id string) (View, error) {
	for {
		v, err := g.eng.Get(context.Background(), id)
		if err != nil || len(v.Rotation.Outbox) == 0 {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("rotation %s: %d posts still owed: %w", id, len(v.Rotation.Outbox), ctx.Err())
		case <-g.rec.changed:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// posted counts the posts containing s.
func (g *rig) posted(s string) int {
	n := 0
	for _, p := range g.rec.Posts() {
		if strings.Contains(p, s) {
			n++
		}
	}
	return n
}

func (g *rig) rotate(opts PlanOptions) Rotation {
	g.t.Helper()
	if opts.NewCerts == nil && len(g.newFPs) > 0 {
		opts.NewCerts = g.newFPs
	}
	r, err := g.eng.Rotate(g.ctx, "console:alice", "", opts)
	if err != nil {
		g.t.Fatalf("rotate: %v", err)
	}
	return r
}

// operator plays the people: it performs console work on the simulator, says done,
// confirms certificates, and has bob and carol approve. stop says when to stop
// acting (e.g. to abort at a given point); it is checked before every action.
type operator struct {
	g     *rig
	id    string
	stop  func(v View) bool
	acted map[string]bool
}

// step performs at most one action for the current state; it reports whether the
// rotation has ended.
func (o *operator) step(ctx context.Context) (bool, error) {
	v, err := o.g.eng.Get(ctx, o.id)
	if err != nil {
		return false, err
	}
	r := v.Rotation
	if !r.Active() {
		return true, nil
	}
	if o.stop != nil && o.stop(v) {
		return false, errStop
	}
	step, st, ok := r.Current()
	if !ok || st.Status != StepActive || r.Status != StatusRunning {
		return false, nil
	}
	return false, actAsOperator(ctx, o.g.eng, o.g.site, r, v, step, *st, o.acted)
}

var errStop = errors.New("stop")

// console is the simulated SEPM console an operator works in: *sim.Site in-process,
// or the /sim/v1 admin API over HTTPS from another process.
type console interface {
	CopyMSLAsHTTP(source string, port int) (string, error)
	UpdateCertificate(server string) (sim.ServerInfo, error)
	Servers() []sim.ServerInfo
}

// actAsOperator does what a careful human would for the current step.
func actAsOperator(ctx context.Context, eng *Engine, site console, r Rotation, v View, step PlanStep, st StepState, acted map[string]bool) error {
	switch step.Action {
	case ActHTTPCopy:
		if st.DoneBy != "" {
			return nil
		}
		for _, t := range r.Plan.GroupsToChange {
			if _, err := site.CopyMSLAsHTTP(t.MSL, r.Plan.HTTPPort); err != nil && !strings.Contains(err.Error(), "exists") {
				return fmt.Errorf("copy MSL: %w", err)
			}
		}
		_, err := eng.Done(ctx, "console:alice", r.ID, step.ID)
		return ignoreBenign(err)
	case ActCert:
		if st.DoneBy != "" {
			return nil
		}
		for _, s := range site.Servers() {
			if s.Name == step.Server && s.Fingerprint != r.NewCerts[step.Server] {
				if r.SeenCerts[step.Server] != "" {
					break
				}
				if r.NewCerts[step.Server] != "" && s.NextFingerprint != r.NewCerts[step.Server] {
					return fmt.Errorf("sim's next certificate for %s is not the expected one", s.Name)
				}
				if _, err := site.UpdateCertificate(s.Name); err != nil {
					return fmt.Errorf("update certificate: %w", err)
				}
			}
		}
		if r.SeenCerts[step.Server] != "" {
			_, err := eng.Confirm(ctx, "console:alice", r.ID, step.ID)
			return ignoreBenign(err)
		}
		_, err := eng.Done(ctx, "console:alice", r.ID, step.ID)
		return ignoreBenign(err)
	case ActApproval:
		if v.Approval == nil || v.Approval.MessageRef == "" || v.Approval.State != approvals.StatePending {
			return nil
		}
		key := v.Approval.ID
		if acted[key] {
			return nil
		}
		for _, u := range []string{"console:bob", "console:carol"} {
			_, err := eng.Vote(ctx, Ballot{MessageRef: v.Approval.MessageRef, User: u, Kind: approvals.Approve})
			if err := ignoreBenign(err); err != nil {
				return err
			}
		}
		acted[key] = true
	}
	return nil
}

// ignoreBenign drops refusals that a repeated action after a restart may meet.
func ignoreBenign(err error) error {
	if err == nil {
		return nil
	}
	var ref *approvals.Refusal
	if errors.As(err, &ref) && (ref.Code == "already-voted" || ref.Code == "decided" || ref.Code == "final") {
		return nil
	}
	msg := err.Error()
	for _, s := range []string{"already said done", "not the current step", "no active step", "verifying", "no new certificate is waiting"} {
		if strings.Contains(msg, s) {
			return nil
		}
	}
	return err
}

// run drives the operator until the rotation ends, stop fires, or the deadline.
func (o *operator) run(ctx context.Context, deadline time.Duration) (View, error) {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	if o.acted == nil {
		o.acted = map[string]bool{}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		done, err := o.step(ctx)
		if err != nil && ctx.Err() != nil {
			v, _ := o.g.eng.Get(context.Background(), o.id)
			return v, fmt.Errorf("rotation %s did not end in %s: status %s, step %d %+v\nposts:\n%s", o.id, deadline, v.Rotation.Status, v.Rotation.Cursor, currentID(v.Rotation), strings.Join(tail(o.g.rec.Posts(), 15), "\n"))
		}
		if err != nil && !errors.Is(err, errStop) {
			return View{}, err
		}
		if errors.Is(err, errStop) {
			v, err := o.g.eng.Get(context.Background(), o.id)
			if err != nil || v.Rotation.Status == StatusRunning {
				return v, err // at once: the test tampers with a running rotation here
			}
			return o.g.delivered(ctx, o.id) // paused or ended: let its posts arrive
		}
		if done {
			return o.g.delivered(ctx, o.id)
		}
		select {
		case <-ctx.Done():
			v, _ := o.g.eng.Get(context.Background(), o.id)
			return v, fmt.Errorf("rotation %s did not end in %s: status %s, step %d %+v\nposts:\n%s", o.id, deadline, v.Rotation.Status, v.Rotation.Cursor, currentID(v.Rotation), strings.Join(tail(o.g.rec.Posts(), 15), "\n"))
		case <-o.g.rec.changed:
		case <-tick.C:
		}
	}
}

func currentID(r Rotation) string {
	s, st, ok := r.Current()
	if !ok {
		return "(end)"
	}
	return s.ID + "/" + st.Status + " " + r.LastError
}

// fleet reads the simulator's truth over its admin API, through the real client.
func fleet(t testing.TB, c *sepm.Client) sim.FleetReport {
	t.Helper()
	var f sim.FleetReport
	if err := c.Do(context.Background(), "GET", "/sim/v1/fleet", nil, &f); err != nil {
		t.Fatalf("fleet: %v", err)
	}
	return f
}

// assertRestored checks every planned target has its original settings back.
func assertRestored(t testing.TB, c *sepm.Client, r Rotation) {
	t.Helper()
	for _, tg := range r.Plan.GroupsToChange {
		s, err := c.LocationSettings(context.Background(), tg.GroupID, tg.LocationID)
		if err != nil {
			t.Fatal(err)
		}
		if secureOf(s) != tg.Secure {
			t.Errorf("%s / %s: secure communication %v, want %v", tg.Path, tg.Location, secureOf(s), tg.Secure)
		}
		if mslOf(s) != tg.MSL {
			t.Errorf("%s / %s: MSL %q, want the original %q", tg.Path, tg.Location, mslOf(s), tg.MSL)
		}
	}
}

// auditChanges counts SEPM changes per step and target; no entry may exceed 1.
func auditChanges(t testing.TB, db *store.DB, id string) map[string]int {
	t.Helper()
	recs, err := db.Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, a := range recs {
		if a.Kind == "sepm-change" {
			out[a.Step+" "+a.Data["group"]+"/"+a.Data["location"]]++
		}
	}
	return out
}

// atApproval fires when the approval request is posted and waiting for votes.
func atApproval(v View) bool {
	s, _, _ := v.Rotation.Current()
	return s.Action == ActApproval && v.Approval != nil && v.Approval.MessageRef != ""
}

// reachApproval lets the operator do the console work until the approval waits for votes.
func (g *rig) reachApproval(id string) View {
	g.t.Helper()
	v, err := (&operator{g: g, id: id, stop: atApproval}).run(g.ctx, 60*time.Second)
	if err != nil {
		g.t.Fatal(err)
	}
	return v
}

// awaitNewApproval waits until a request other than old is posted.
func (g *rig) awaitNewApproval(id, old string) View {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := mustGet(g.t, g, id)
		if v.Approval != nil && v.Approval.ID != old && v.Approval.MessageRef != "" {
			return v
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no new approval request: %s", currentID(v.Rotation))
		}
		select {
		case <-g.rec.changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// auditKinds counts a rotation's audit records by kind, and fails the test on any
// disable-secure change (the callers assert secure communication stayed on).
func (g *rig) auditKindsNoDisable(id string) map[string]int {
	g.t.Helper()
	recs, err := g.db.Audit(context.Background(), id)
	if err != nil {
		g.t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, a := range recs {
		if a.Kind == "sepm-change" && a.Step == "disable-secure" {
			g.t.Errorf("secure communication was changed: %+v", a)
		}
		kinds[a.Kind]++
	}
	return kinds
}
