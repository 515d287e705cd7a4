package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"sepmbot/sepm"
)

// IncrementalOverlap is how far before the cursor an incremental read starts (see
// fleetMap.since): two seconds cover NTP-level skew between the management
// servers of a site and check-ins committed out of order, and at 500,000 clients on
// a 300 s heartbeat re-read about 3,300 records per poll.
const IncrementalOverlap = 2 * time.Second

// Tracker measures a wait's progress over SEPM: Full sweeps every computer and
// rebuilds its compact per-client map; Incremental reads only the computers changed
// since the previous read, the group serials and stats/client/onlinestatus, and
// merges them, so its cost follows the clients that checked in, not the fleet. It
// lives in memory only (a restarted process starts with a Full). Not safe for
// concurrent use.
type Tracker struct {
	api      SEPM
	now      func() time.Time
	changeAt int64
	m        *fleetMap
	sweep    time.Duration // how long the latest Full took
}

// NewTracker returns a tracker that counts check-ins after changeAt. now is the
// clock (nil: time.Now).
func NewTracker(api SEPM, changeAt time.Time, now func() time.Time) *Tracker {
	return newTracker(api, changeAt.UnixMilli(), now)
}

func newTracker(api SEPM, changeAt int64, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{api: api, now: now, changeAt: changeAt}
}

// Built reports whether a Full has built the map.
func (t *Tracker) Built() bool { return t.m != nil }

// SweepDuration is how long the latest Full took (0 before the first).
func (t *Tracker) SweepDuration() time.Duration { return t.sweep }

// Confirmed reports whether the latest Full found every online client on its
// group's current policy and no read since contradicts it (see fleetMap.confirmed).
func (t *Tracker) Confirmed() bool { return t.m != nil && t.m.confirmed() }

// MaybeCaughtUp reports whether the latest figures leave room for every online
// client to be caught up: the map holds no laggard, or the onlinestatus count is
// no more than the map's caught-up clients (lagging clients went offline). It may
// be stale; it only says a full sweep is worth its cost.
func (t *Tracker) MaybeCaughtUp() bool {
	return t.m != nil && (t.m.lag.len() == 0 || t.m.onNew >= t.m.status.online)
}

// NextSince is the lower bound of the next Incremental read: it asks for the
// computers whose lastUpdateTime is after it (zero before the first Full).
func (t *Tracker) NextSince() time.Time {
	if t.m == nil {
		return time.Time{}
	}
	return time.UnixMilli(t.m.since(IncrementalOverlap))
}

// Lagging is how many clients the map holds as online and not caught up.
func (t *Tracker) Lagging() int {
	if t.m == nil {
		return 0
	}
	return t.m.lag.len()
}

// Full reads the groups, the online counts and every computer into the map, in
// place: a client it does not read is gone (deleted from SEPM) and every count is
// taken again. On error the map keeps what it held, merged with what was read.
func (t *Tracker) Full(ctx context.Context) (Progress, error) {
	start := t.now()
	m, fresh := t.m, t.m == nil
	if fresh {
		m = newFleetMap(t.changeAt)
	}
	groups, err := t.api.Groups(ctx)
	if err != nil {
		return Progress{}, fmt.Errorf("reading group serials: %w", err)
	}
	m.setGroups(groups)
	status, err := t.onlineStatus(ctx)
	if err != nil {
		return Progress{}, err
	}
	if fresh {
		m.reserve(status.online + status.offline)
	}
	m.beginFull()
	first, err := t.read(ctx, m, 0, nil)
	if err != nil {
		m.abortFull()
		return Progress{}, fmt.Errorf("sweeping computers: %w", err)
	}
	m.endFull()
	m.advance(first)
	m.sealFull(status)
	t.m = m
	t.sweep = max(0, t.now().Sub(start))
	p := m.progress(true)
	p.Observed = t.now().UTC()
	return p, nil
}

// Incremental reads the groups, the online counts and the computers changed since
// the previous read (less IncrementalOverlap) and merges them. Before any Full it
// does a Full.
//
// The group serials and the online counts are read while the changed computers
// come in (two small calls whose round trips were about a fiftieth of a poll of ten
// pages, and run on a connection of their own); the records wait for the serials
// before they are merged, as the map classifies each against its group's serial.
func (t *Tracker) Incremental(ctx context.Context) (Progress, error) {
	if t.m == nil {
		return t.Full(ctx)
	}
	m := t.m
	sideCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	type sideReads struct {
		groups []sepm.Group
		status onlineCounts
		err    error
	}
	sideC := make(chan sideReads, 1)
	go func() {
		var s sideReads
		if s.groups, s.err = t.api.Groups(sideCtx); s.err != nil {
			s.err = fmt.Errorf("reading group serials: %w", s.err)
		} else {
			s.status, s.err = t.onlineStatus(sideCtx)
		}
		sideC <- s
	}()
	var side sideReads
	joined := false
	join := func() error {
		if !joined {
			side, joined = <-sideC, true
			if side.err == nil {
				m.setGroups(side.groups)
			}
		}
		return side.err
	}
	// Records merged from a read that fails half-way are true and newer; only the
	// cursor waits for the whole read.
	first, err := t.read(ctx, m, m.since(IncrementalOverlap), join)
	if err != nil {
		cancel() // the side reads are not needed now
		if serr := join(); serr != nil && errors.Is(err, serr) {
			return Progress{}, serr // the read stopped because they failed
		}
		return Progress{}, fmt.Errorf("reading computers changed since the last poll: %w", err)
	}
	if err := join(); err != nil {
		return Progress{}, err
	}
	m.advance(first)
	m.status = side.status
	m.pruneNames()
	p := m.progress(false)
	p.Observed = t.now().UTC()
	return p, nil
}

// figure is the map's own count (records only), for the note of a completed wait:
// exact as of the confirming sweep plus what was read since.
func (t *Tracker) figure() Progress {
	if t.m == nil {
		return Progress{}
	}
	return t.m.progress(true)
}

// read merges every computer changed after since (0: all) into m and returns the
// largest lastUpdateTime on the first page. before, when set, runs once before the
// first page is merged; its error ends the read.
func (t *Tracker) read(ctx context.Context, m *fleetMap, since int64, before func() error) (int64, error) {
	var first int64
	pages := 0
	err := t.api.EachComputerMarkPage(ctx, sepm.ComputerQuery{PageSize: 1000, LastUpdate: since}, func(page []sepm.ComputerMark) error {
		if pages == 0 && before != nil {
			if err := before(); err != nil {
				return err
			}
		}
		pages++
		if pages == 1 {
			for _, c := range page {
				first = max(first, c.LastUpdateTime)
			}
		}
		m.mergePage(page)
		return nil
	})
	return first, err
}

func (t *Tracker) onlineStatus(ctx context.Context) (onlineCounts, error) {
	on, err := t.api.OnlineStatus(ctx)
	if err != nil {
		return onlineCounts{}, fmt.Errorf("reading online status: %w", err)
	}
	var c onlineCounts
	for _, row := range on.ClientCountStatsList {
		switch {
		case strings.EqualFold(row.Status, "Online"):
			c.online += row.ClientsCount
		case strings.EqualFold(row.Status, "Offline"):
			c.offline += row.ClientsCount
		}
	}
	return c, nil
}

// WaitEndLatency is how long after its deadline wait step stepID of r handed over:
// the start of the next step minus the wait's deadline (its start plus its floor,
// WaitSeconds). ok is false while the next step has not started, or when stepID is
// not a wait followed by a step. A wait started without a floor (a test switch)
// reads as measured from its start.
func WaitEndLatency(r Rotation, stepID string) (latency time.Duration, ok bool) {
	for i, s := range r.Plan.Steps {
		if s.ID != stepID || s.Kind != KindWait || i+1 >= len(r.Steps) || i >= len(r.Steps) {
			continue
		}
		next := r.Steps[i+1].Started
		if r.Steps[i].Started.IsZero() || next.IsZero() {
			return 0, false
		}
		return next.Sub(r.Steps[i].Started.Add(time.Duration(s.WaitSeconds) * time.Second)), true
	}
	return 0, false
}
