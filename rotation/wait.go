package rotation

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"sepmbot/sepm"
	"sepmbot/store"
)

// outage tracks SEPM being unreachable during a wait (this process only).
type outage struct {
	since   time.Time
	fails   int
	alerted bool
}

// waitTrack is the driver's tracker of one wait (this process only).
type waitTrack struct {
	key       string // step, start and change time of the wait it tracks
	t         *Tracker
	finalFull bool // a full sweep started inside the final window
}

func waitKey(w *WaitState) string {
	return fmt.Sprintf("%s|%d|%d", w.Step, w.Started.UnixNano(), w.ChangeAt)
}

// Poll measures progress once, by a full sweep, for an arbitrary change time
// (exported for benchmarks and the status command).
func (e *Engine) Poll(ctx context.Context, changeAt time.Time) (Progress, error) {
	return newTracker(e.cfg.SEPM, changeAt.UnixMilli(), e.cfg.Now).Full(ctx)
}

func (e *Engine) setProgress(id string, p Progress) {
	e.mu.Lock()
	e.progress[id] = &p
	e.mu.Unlock()
}

// runWait polls until the wait's deadline has passed and every online client has
// taken the current policy (or an operator ended it). An observation error never
// pauses a wait: it retries with back-off, posts one alert once SEPM has been
// unreachable for two poll intervals and one message when it answers again.
//
// Polls are incremental (see Tracker): one full sweep at the start of the wait (and
// after a restart) builds the map, and one full sweep in the final window, started
// twice the last sweep's duration plus a second before the deadline, confirms the
// verdict. The wait ends at the first poll at or after the deadline on a confirmed
// verdict: normally the cheap check right at the deadline after the confirming
// sweep, so it ends on time instead of one sweep late.
func (e *Engine) runWait(ctx context.Context, r Rotation, step PlanStep, st StepState, d *driver) (time.Duration, error) {
	w := r.Wait
	if w == nil || w.Step != step.ID {
		return 0, permanent(errors.New("wait state missing"))
	}
	if d.wait == nil || d.wait.key != waitKey(w) {
		d.wait = &waitTrack{key: waitKey(w), t: newTracker(e.cfg.SEPM, w.ChangeAt, e.cfg.Now)}
	}
	wt := d.wait
	clock := func(now time.Time, maybe bool) waitClock {
		return waitClock{Now: now, Deadline: w.Deadline, Built: wt.t.Built(), FinalFull: wt.finalFull, Sweep: wt.t.SweepDuration(),
			Confirmed: wt.t.Confirmed(), MaybeCaughtUp: maybe, Override: st.Override, Interval: e.cfg.PollInterval}
	}
	before := clock(e.cfg.Now(), wt.t.MaybeCaughtUp())
	kind := nextPoll(before)
	var p Progress
	var err error
	if kind == pollFull {
		p, err = wt.t.Full(ctx)
	} else {
		p, err = wt.t.Incremental(ctx)
	}
	if err != nil {
		if authRejected(err) || ctx.Err() != nil {
			return 0, err
		}
		var ut *sepm.UntrustedCertError
		if errors.As(err, &ut) {
			// Not an outage: the API presents a certificate the bot does not trust
			// (neither the old nor the expected new one). Stop and say so.
			reason := untrustedAPI(r, ut) + "."
			_, err := e.commit(ctx, r.ID, Event{Kind: EvInterlock, Step: step.ID, Aborting: r.Aborting, Reason: reason, Drift: true}, nil)
			return 0, err
		}
		return e.pollFailed(ctx, r, step, d, err), nil
	}
	if kind == pollFull && !before.Now.Before(before.windowOpens()) {
		wt.finalFull = true // a full sweep started inside the final window
	}
	e.log.Debug("wait poll", "rotation", r.ID, "step", step.ID, "full", kind == pollFull, "took", e.cfg.Now().Sub(before.Now),
		"online", p.Online, "on_new", p.OnNewPolicy, "confirmed", wt.t.Confirmed())
	if d.outage.alerted {
		down := e.cfg.Now().Sub(d.outage.since)
		e.auditOnly(ctx, r.ID, "sepm-reachable", step.ID, fmt.Sprintf("SEPM answers again after %s", humanDuration(down)))
		e.post(ctx, r.ID, fmt.Sprintf("✅ SEPM answers again (unreachable for about %s). %s goes on; its deadline did not move.", shortDuration(down), step.ID))
	}
	d.outage = outage{}
	now := e.cfg.Now()
	hb := time.Duration(max(w.HeartbeatSeconds, 1)) * time.Second
	p.Step = step.ID
	p.HeartbeatsNeeded = 3
	p.HeartbeatsDone = min(3, int(now.Sub(w.Started)/hb))
	p.Left = max(0, w.Deadline.Sub(now))
	e.setProgress(r.ID, p)
	if v, err := e.Get(ctx, r.ID); err == nil {
		e.cfg.Notifier.Update(ctx, v)
	}
	after := clock(now, wt.t.MaybeCaughtUp())
	if canEnd(after) {
		// The note counts the map's records: exact as of the confirming sweep, plus
		// every record read since.
		f := wt.t.figure()
		note := fmt.Sprintf("%d/%d online clients checked in since the change and hold the current policy, %d offline", f.OnNewPolicy, f.Online, f.Offline)
		if !after.Confirmed {
			note += fmt.Sprintf("; ended by %s with %d lagging", st.DoneBy, max(f.Online-f.OnNewPolicy, wt.t.Lagging()))
		}
		return 0, e.complete(ctx, r, step.ID, Event{Note: note})
	}
	lag := max(p.Online-p.OnNewPolicy, wt.t.Lagging())
	if !now.Before(w.Deadline.Add(3*hb)) && !after.Confirmed && wt.finalFull && lag > 0 && !w.Warned {
		if _, err := e.mutate(ctx, r.ID, func(tx *store.Tx, r *Rotation) error {
			if r.Wait != nil {
				r.Wait.Warned = true
			}
			return e.audit(tx, r.ID, "sepmbot", "wait-laggards", step.ID, fmt.Sprintf("%d online clients lag", lag), nil)
		}); err != nil {
			return 0, &storeError{err: err}
		}
		e.post(ctx, r.ID, fmt.Sprintf("⚠ %d online clients have not checked in with the current policy three heartbeats after the deadline (%s). The bot keeps waiting; an operator may end the wait with `done %s %s` (audited).", lag, strings.Join(p.Laggards, ", "), r.ID, step.ID))
	}
	return sleepFor(after), nil
}

// pollFailed books one failed observation and returns when to try again.
func (e *Engine) pollFailed(ctx context.Context, r Rotation, step PlanStep, d *driver, err error) time.Duration {
	now := e.cfg.Now()
	if d.outage.since.IsZero() {
		d.outage.since = now
	}
	d.outage.fails++
	e.log.Warn("observing SEPM during a wait failed; retrying", "rotation", r.ID, "step", step.ID, "err", err)
	if !d.outage.alerted && now.Sub(d.outage.since) >= 2*e.cfg.PollInterval {
		d.outage.alerted = true
		e.auditOnly(ctx, r.ID, "sepm-unreachable", step.ID, err.Error())
		e.post(ctx, r.ID, fmt.Sprintf("⚠ SEPM has not answered for %s (%v). The certificate update restarts SEPM's services, so this can be expected; %s keeps its deadline and the bot keeps trying. Nothing is paused.", shortDuration(now.Sub(d.outage.since)), err, step.ID))
	}
	return min(e.cfg.PollInterval/4*time.Duration(1<<min(d.outage.fails, 6)), e.cfg.PollInterval)
}

func (e *Engine) auditOnly(ctx context.Context, id, kind, step, detail string) {
	if err := e.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		return e.audit(tx, id, "sepmbot", kind, step, detail, nil)
	}); err != nil {
		e.log.Warn("audit", "rotation", id, "kind", kind, "err", err)
	}
}

// stragglerDue decides what a straggler window owes the channel at now: the one
// reminder at StragglerReminder, and a report every 24 hours.
func stragglerDue(now, started, lastReport time.Time, reminded bool) (remind, report bool) {
	remind = !reminded && !now.Before(started.Add(StragglerReminder))
	last := lastReport
	if last.IsZero() {
		last = started
	}
	report = !now.Before(last.Add(24 * time.Hour))
	return remind, report
}

func (e *Engine) runStraggler(ctx context.Context, r Rotation, step PlanStep) (time.Duration, error) {
	w := r.Wait
	if w == nil {
		return 0, permanent(errors.New("wait state missing"))
	}
	now := e.cfg.Now()
	p := Progress{Step: step.ID, Left: max(0, w.Deadline.Sub(now)), DeadlineOnly: true, Observed: now.UTC()}
	e.setProgress(r.ID, p)
	if !now.Before(w.Deadline) {
		return 0, e.complete(ctx, r, step.ID, Event{Note: "straggler window over"})
	}
	remind, report := stragglerDue(now, w.Started, w.LastReport, w.Reminded)
	if remind || report {
		rep, err := e.report(ctx, r)
		if err != nil {
			return 0, err
		}
		if _, err := e.mutate(ctx, r.ID, func(tx *store.Tx, r *Rotation) error {
			if r.Wait == nil {
				return nil
			}
			if remind {
				r.Wait.Reminded = true
			}
			if report {
				r.Wait.LastReport = now.UTC()
			}
			return e.audit(tx, r.ID, "sepmbot", "straggler-report", step.ID, fmt.Sprintf("%d not seen", rep.NotSeen), nil)
		}); err != nil {
			return 0, err
		}
		text := fmt.Sprintf("📋 %d of %d clients have not checked in since the first certificate change; %s stays on the old certificate until %s.", rep.NotSeen, rep.ClientsTotal, step.Server, w.Deadline.Format(time.DateOnly))
		if remind {
			text = "⏰ Reminder: the straggler window is a third over. " + text
		}
		e.post(ctx, r.ID, text)
	}
	next := min(w.Deadline.Sub(now), time.Hour)
	return max(next, time.Millisecond), nil
}

// report counts where every client stands: on the new settings (a check-in after the
// latest change), suspected orphaned, offline since before the change, never seen.
func (e *Engine) report(ctx context.Context, r Rotation) (Report, error) {
	since := r.FirstChange
	if since == 0 {
		since = r.Created.UnixMilli()
	}
	latest := max(r.LastCertChange, r.ChangeAt, since)
	ws, err := e.watches(ctx, r.ID)
	if err != nil {
		return Report{}, err
	}
	last := map[string]int64{}
	var all []sepm.Computer
	err = e.cfg.SEPM.EachComputerPage(ctx, sepm.ComputerQuery{PageSize: 1000}, func(page []sepm.Computer) error {
		for _, c := range page {
			last[c.UniqueID] = c.LastUpdateTime
			all = append(all, sepm.Computer{UniqueID: c.UniqueID, ComputerName: c.ComputerName, OnlineStatus: c.OnlineStatus, LastUpdateTime: c.LastUpdateTime})
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	sus := map[string]bool{}
	for _, s := range suspectsOf(ws, last, e.cfg.Now().UnixMilli()) {
		sus[s.ID] = true
	}
	return countReport(all, sus, since, latest), nil
}

// countReport is the pure count behind report.
func countReport(all []sepm.Computer, suspected map[string]bool, since, latest int64) Report {
	var rep Report
	sort.Slice(all, func(i, j int) bool { return all[i].ComputerName < all[j].ComputerName })
	for _, c := range all {
		rep.ClientsTotal++
		if c.OnlineStatus != 1 {
			rep.Offline++
		}
		switch {
		case suspected[c.UniqueID]:
			rep.SuspectedOrphaned++
			if len(rep.SuspectedOrphanedNames) < 20 {
				rep.SuspectedOrphanedNames = append(rep.SuspectedOrphanedNames, c.ComputerName)
			}
		case c.LastUpdateTime > latest:
			rep.OnNew++
			continue
		case c.LastUpdateTime == 0:
			rep.NeverSeen++
		default:
			rep.OfflineBefore++
		}
		if c.LastUpdateTime <= since || suspected[c.UniqueID] {
			rep.NotSeen++
			if len(rep.NotSeenNames) < 20 {
				rep.NotSeenNames = append(rep.NotSeenNames, c.ComputerName)
			}
		}
	}
	return rep
}

// remindIfExposed posts the exposure reminder when it is due: past the plan's
// expected end plus --overdue-after, or paused, while clients are on HTTP or secure
// communication is off, every 24 hours. It returns how long until the next one.
func (e *Engine) remindIfExposed(ctx context.Context, r Rotation) (time.Duration, error) {
	if r.SecureOffSince == 0 && r.HTTPSince == 0 {
		return forever, nil
	}
	now := e.cfg.Now()
	due, ok := reminderDue(r, now, e.cfg.OverdueAfter)
	if !ok {
		return forever, nil
	}
	if now.Before(due) {
		return due.Sub(now), nil
	}
	onHTTP, off := r.Exposure(now)
	var b strings.Builder
	fmt.Fprintf(&b, "⏰ %s is %s", r.ID, r.Status)
	if r.Status == StatusPaused && r.LastError != "" {
		fmt.Fprintf(&b, " (%s)", r.LastError)
	}
	b.WriteString(" and clients are exposed:")
	if off > 0 {
		fmt.Fprintf(&b, " secure communication has been off for %s;", humanDuration(off))
	}
	if onHTTP > 0 {
		fmt.Fprintf(&b, " clients have used the HTTP copy of their list for %s;", humanDuration(onHTTP))
	}
	fmt.Fprintf(&b, " the plan expected to end at %s. Operators: %s. Finish the rotation, or `abort %s` to put everything back.", r.ExpectedEnd.Format("2006-01-02 15:04 MST"), strings.Join(operators(r), ", "), r.ID)
	_, err := e.commit(ctx, r.ID, Event{Kind: EvRemind, Reason: b.String()}, nil)
	return 24 * time.Hour, err
}

// reminderDue is when the next exposure reminder is due; ok=false when none is.
func reminderDue(r Rotation, now time.Time, overdueAfter time.Duration) (time.Time, bool) {
	if r.SecureOffSince == 0 && r.HTTPSince == 0 {
		return time.Time{}, false
	}
	var first time.Time
	switch {
	case r.Status == StatusPaused && r.SecureOffSince > 0:
		first = r.PausedAt.Add(24 * time.Hour)
	case !r.ExpectedEnd.IsZero():
		first = r.ExpectedEnd.Add(overdueAfter)
	default:
		return time.Time{}, false
	}
	if !r.LastReminder.IsZero() {
		next := r.LastReminder.Add(24 * time.Hour)
		if next.After(first) {
			first = next
		}
	}
	return first, true
}

// operators are the people who drove the rotation: the requester and whoever said
// done, paused or aborted.
func operators(r Rotation) []string {
	seen := map[string]bool{}
	var out []string
	add := func(u string) {
		if u != "" && u != "sepmbot" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	add(r.Requester)
	for _, st := range r.Steps {
		add(st.DoneBy)
	}
	add(r.PausedBy)
	add(r.AbortBy)
	return out
}

// expectedDuration is how long the plan takes when nobody keeps it waiting.
func (p Plan) expectedDuration() time.Duration {
	var d time.Duration
	for _, s := range p.Steps {
		if s.Kind == KindWait && s.Action != ActStraggler {
			d += time.Duration(s.WaitSeconds) * time.Second
		}
	}
	return d
}

// shortDuration is humanDuration, with tenths of a second below a minute.
func shortDuration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return humanDuration(d)
}
