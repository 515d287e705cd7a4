package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"sepmbot/approvals"
	"sepmbot/internal/ctxsleep"
	"sepmbot/rotation"
	"sepmbot/store"
)

// WaitConfig drives one real rotation through its first heartbeat wait.
type WaitConfig struct {
	Dir     string        // folder for the bbolt file
	SEPM    rotation.SEPM // the bot's client of the site
	Admin   *API          // the site's admin API (the operator's console: the HTTP copy of the lists)
	Site    string
	APIAddr string
	Servers []rotation.ServerRef
	// MinWait is the rotation's --min-wait (each wait is max(3 x heartbeat, MinWait)).
	MinWait time.Duration
	// PollInterval is the engine's poll interval (the bot's --poll-interval).
	PollInterval time.Duration
	// Timeout bounds the whole rotation phase.
	Timeout time.Duration
	Logger  *slog.Logger
}

// WaitResult is when the first heartbeat wait ended and the next step started.
type WaitResult struct {
	Step     string    // the wait (wait-disable on the single-server path)
	Next     string    // the step after it
	Started  time.Time // the wait started
	Deadline time.Time // its floor ended
	// Covered is when a poll of the engine first reported every online client
	// caught up (the end of that poll's sweep; zero: none before the wait ended).
	Covered time.Time
	// PendingAtDeadline is the simulator's truth at the deadline: online clients not
	// yet on their group's current policy (-1: not read).
	PendingAtDeadline int
	NextStarted       time.Time // the next step started
	Note              string    // the engine's note on the finished wait
}

// Latency is from the wait's deadline to the next step starting. With coverage
// reached by the deadline (CoveredBeforeDeadline) it is the engine's own lag: the
// final sweep and the step transition.
func (w WaitResult) Latency() time.Duration { return w.NextStarted.Sub(w.Deadline) }

// CoveredBeforeDeadline says the simulator had every online client on the current
// policy at the deadline, so Latency is not the fleet's lag.
func (w WaitResult) CoveredBeforeDeadline() bool { return w.PendingAtDeadline == 0 }

// benchNotifier records what the engine reports: the first poll of a wait that saw
// every online client caught up, and the approval request's message.
type benchNotifier struct {
	mu      sync.Mutex
	covered map[string]time.Time // wait step -> first observation of coverage
	refs    int
}

func (n *benchNotifier) Update(_ context.Context, v rotation.View) {
	p := v.Progress
	if p == nil || p.Step == "" || p.DeadlineOnly || p.OnNewPolicy != p.Online {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.covered[p.Step]; !ok {
		n.covered[p.Step] = p.Observed
	}
}

func (n *benchNotifier) Post(context.Context, string, string) {}

func (n *benchNotifier) RequestApproval(context.Context, rotation.View) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refs++
	return []string{"bench|sepm|approval-" + strconv.Itoa(n.refs)}, nil
}

func (n *benchNotifier) coveredAt(step string) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.covered[step]
}

// Operator, approvers and where the bench's rotation lives.
const (
	benchOperator = "console:alice"
	benchHome     = "console|sepm"
)

var benchApprovers = []string{"console:bob", "console:carol"}

// RunWait starts a real rotation (rotation.Engine, bbolt store in cfg.Dir) and plays
// the operator and two approvers until its first heartbeat wait has ended and the
// step after it has started; then it stops the engine (the site is the bench's, so
// the rotation is left where it is).
func RunWait(ctx context.Context, cfg WaitConfig) (WaitResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	db, err := store.Open(filepath.Join(cfg.Dir, "rotation.db"))
	if err != nil {
		return WaitResult{}, err
	}
	defer db.Close()
	n := &benchNotifier{covered: map[string]time.Time{}}
	eng, err := rotation.NewEngine(rotation.Config{
		Store: db, SEPM: cfg.SEPM, Notifier: n, Site: cfg.Site, APIAddr: cfg.APIAddr, Servers: cfg.Servers,
		IsApprover:   func(u string) bool { return u == benchApprovers[0] || u == benchApprovers[1] },
		PollInterval: cfg.PollInterval, Logger: cfg.Logger,
	})
	if err != nil {
		return WaitResult{}, err
	}
	ectx, stop := context.WithCancel(ctx)
	defer func() { stop(); eng.Wait() }()
	if err := eng.Start(ectx); err != nil {
		return WaitResult{}, fmt.Errorf("starting the engine: %w", err)
	}
	r, err := eng.Rotate(ectx, benchOperator, benchHome, rotation.PlanOptions{MinWait: cfg.MinWait})
	if err != nil {
		return WaitResult{}, fmt.Errorf("rotate: %w", err)
	}
	id := r.ID
	res := WaitResult{PendingAtDeadline: -1}
	pending := make(chan int, 1) // the simulator's truth at the deadline
	acted := map[string]bool{}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("the rotation did not finish its first wait within %s (at %s)", cfg.Timeout, where(ectx, eng, id))
		case <-tick.C:
		}
		v, err := eng.Get(ectx, id)
		if err != nil {
			continue
		}
		r := v.Rotation
		if !r.Active() || r.Status != rotation.StatusRunning {
			return res, fmt.Errorf("the rotation stopped at %s: %s %s", where(ectx, eng, id), r.Status, r.LastError)
		}
		// Has a wait finished? Then its successor's start is the figure.
		for i, s := range r.Plan.Steps {
			if s.Action != rotation.ActWait || r.Steps[i].Status != rotation.StepDone || i+1 >= len(r.Plan.Steps) {
				continue
			}
			next := r.Steps[i+1]
			if next.Started.IsZero() || res.Deadline.IsZero() {
				break
			}
			res.Next, res.NextStarted, res.Note = r.Plan.Steps[i+1].ID, next.Started, r.Steps[i].Note
			res.Covered = n.coveredAt(s.ID)
			select {
			case res.PendingAtDeadline = <-pending:
			case <-ctx.Done():
			}
			return res, nil
		}
		step, st, ok := r.Current()
		if !ok || st.Status != rotation.StepActive {
			continue
		}
		switch step.Action {
		case rotation.ActWait:
			if r.Wait != nil && r.Wait.Step == step.ID && res.Deadline.IsZero() {
				res.Step, res.Started, res.Deadline = step.ID, r.Wait.Started, r.Wait.Deadline
				go func(at time.Time) {
					if ctxsleep.Sleep(ctx, time.Until(at)) != nil {
						pending <- -1
						return
					}
					var f struct {
						Pending int `json:"pending"`
					}
					if err := cfg.Admin.Do(ctx, "GET", "/sim/v1/fleet", nil, &f); err != nil {
						pending <- -1
						return
					}
					pending <- f.Pending
				}(r.Wait.Deadline)
			}
		case rotation.ActHTTPCopy:
			if acted[step.ID] {
				continue
			}
			acted[step.ID] = true
			if err := copyLists(ectx, cfg.Admin, r.Plan); err != nil {
				return res, err
			}
			if _, err := eng.Done(ectx, benchOperator, id, step.ID); err != nil {
				return res, fmt.Errorf("done %s: %w", step.ID, err)
			}
		case rotation.ActApproval:
			if acted[step.ID] || v.Approval == nil || v.Approval.MessageRef == "" {
				continue
			}
			acted[step.ID] = true
			for _, u := range benchApprovers {
				if _, err := eng.Vote(ectx, rotation.Ballot{Rotation: id, User: u, IsApprover: true, Kind: approvals.Approve}); err != nil {
					return res, fmt.Errorf("vote of %s: %w", u, err)
				}
			}
		case rotation.ActCert:
			return res, errors.New("the rotation reached a certificate step before any wait")
		}
	}
}

// copyLists makes the HTTP copy of every list the plan changes, as the operator does
// in the SEPM console (the simulator's admin API).
func copyLists(ctx context.Context, admin *API, plan rotation.Plan) error {
	for _, m := range plan.Lists() {
		if err := admin.Do(ctx, "POST", "/sim/v1/msls/copy", map[string]any{"source": m}, nil); err != nil {
			return fmt.Errorf("copying list %q: %w", m, err)
		}
	}
	return nil
}

func where(ctx context.Context, eng *rotation.Engine, id string) string {
	v, err := eng.Get(context.WithoutCancel(ctx), id)
	if err != nil {
		return "an unknown step"
	}
	if s, _, ok := v.Rotation.Current(); ok {
		return s.ID
	}
	return "the end"
}
