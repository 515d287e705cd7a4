package rotation

import (
	"context"
	"fmt"
	"sync"
	"time"

	"sepmbot/sepm"
)

// fakeFleet is an in-memory SEPM stand-in for the tracker and the fake-clock wait
// tests: computers served page by page (1000 a page, in a fixed order) with
// SEPM's lastUpdate filter ("changed after"), each page (and each other call)
// taking simulated time (time.Sleep, so inside a synctest bubble it costs fake
// time only).
type fakeFleet struct {
	mu        sync.Mutex
	comps     []sepm.Computer
	groups    []sepm.Group
	pageDelay time.Duration // per computers page
	// laterSweeps scales pageDelay for every full read after the first (a sweep
	// slower or faster than the one the tracker measured).
	laterSweeps float64
	callDelay   time.Duration // per groups / onlinestatus call
	groupsErr   error         // when set, GET groups fails with it
	// statusOnline, when set, replaces the online count onlinestatus derives from
	// the records (a SEPM whose count runs ahead of the records).
	statusOnline func(fromRecords int) int
	// onPage, when set, runs after page n (from 1) of a read was handed out.
	onPage func(f *fakeFleet, q sepm.ComputerQuery, n int)

	maxLast int64 // the largest lastUpdateTime (a read after it is empty at once)
	queries []sepm.ComputerQuery
	served  int // computer records handed out
	fulls   int // reads without lastUpdate
}

// newFakeFleet builds n online clients in groups groups, every one checked in with
// its group's serial "S1" at last, or, with spread > 0, at a time in
// (last-spread, last] that does not follow the page order.
func newFakeFleet(n, groups int, last int64, spread ...int64) *fakeFleet {
	f := &fakeFleet{}
	for g := range groups {
		f.groups = append(f.groups, sepm.Group{ID: fmt.Sprintf("G%02d", g), Name: fmt.Sprintf("group %d", g), PolicySerialNumber: "S1"})
	}
	at := func(int) int64 { return last }
	if len(spread) > 0 && spread[0] > 0 {
		at = func(i int) int64 { return last - int64(i*7919%n)*spread[0]/int64(n) }
	}
	for i := range n {
		g := f.groups[i%groups]
		f.comps = append(f.comps, sepm.Computer{UniqueID: fmt.Sprintf("%032X", i), ComputerName: fmt.Sprintf("WKS-%06d", i),
			OnlineStatus: 1, LastUpdateTime: at(i), ProfileSerialNo: g.PolicySerialNumber, Group: sepm.GroupSummary{ID: g.ID, Name: g.Name}})
	}
	f.maxLast = last
	return f
}

// set changes client i under the lock.
func (f *fakeFleet) set(i int, fn func(c *sepm.Computer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.comps[i])
	f.maxLast = max(f.maxLast, f.comps[i].LastUpdateTime)
}

func (f *fakeFleet) stats() (queries []sepm.ComputerQuery, served, fulls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sepm.ComputerQuery(nil), f.queries...), f.served, f.fulls
}

func (f *fakeFleet) Groups(ctx context.Context) ([]sepm.Group, error) {
	time.Sleep(f.callDelay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groupsErr != nil {
		return nil, f.groupsErr
	}
	return append([]sepm.Group(nil), f.groups...), nil
}

func (f *fakeFleet) OnlineStatus(ctx context.Context) (sepm.OnlineStatusResponse, error) {
	time.Sleep(f.callDelay)
	f.mu.Lock()
	defer f.mu.Unlock()
	on := 0
	for _, c := range f.comps {
		if c.OnlineStatus == 1 {
			on++
		}
	}
	off := len(f.comps) - on
	if f.statusOnline != nil {
		on = f.statusOnline(on)
	}
	return sepm.OnlineStatusResponse{ClientCountStatsList: []sepm.OnlineStat{{Status: "Online", ClientsCount: on}, {Status: "Offline", ClientsCount: off}}}, nil
}

func (f *fakeFleet) EachComputerMarkPage(ctx context.Context, q sepm.ComputerQuery, fn func(page []sepm.ComputerMark) error) error {
	var marks []sepm.ComputerMark
	return f.EachComputerPage(ctx, q, func(page []sepm.Computer) error {
		marks = marks[:0]
		for _, c := range page {
			marks = append(marks, markOf(c))
		}
		return fn(marks)
	})
}

// markOf is c as a mark, in buffers of its own.
func markOf(c sepm.Computer) sepm.ComputerMark {
	m := sepm.ComputerMark{ComputerName: []byte(c.ComputerName), UniqueID: []byte(c.UniqueID), OnlineStatus: c.OnlineStatus,
		LastUpdateTime: c.LastUpdateTime, ProfileSerialNo: []byte(c.ProfileSerialNo)}
	m.Group.ID = []byte(c.Group.ID)
	return m
}

// merge merges c as a read would (mergeMark of its mark).
func (m *fleetMap) merge(c sepm.Computer) (added bool) {
	mk := markOf(c)
	return m.mergeMark(&mk)
}

func (f *fakeFleet) EachComputerPage(ctx context.Context, q sepm.ComputerQuery, fn func(page []sepm.Computer) error) error {
	f.mu.Lock()
	f.queries = append(f.queries, q)
	delay := f.pageDelay
	if q.LastUpdate == 0 {
		f.fulls++
		if f.fulls > 1 && f.laterSweeps > 0 {
			delay = time.Duration(float64(delay) * f.laterSweeps)
		}
	}
	f.mu.Unlock()
	for n, off := 1, 0; ; n++ {
		time.Sleep(delay)
		if err := ctx.Err(); err != nil {
			return err
		}
		// Every page is a fresh query, as SEPM's are: a record changed meanwhile may
		// shift into a later page or be read twice, never skipped.
		f.mu.Lock()
		var page []sepm.Computer
		seen := 0
		comps := f.comps
		if q.LastUpdate >= f.maxLast {
			comps = nil
		}
		for i := range comps {
			if comps[i].LastUpdateTime <= q.LastUpdate {
				continue
			}
			if seen >= off {
				page = append(page, comps[i])
				if len(page) == 1000 {
					break
				}
			}
			seen++
		}
		f.served += len(page)
		f.mu.Unlock()
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if f.onPage != nil {
			f.onPage(f, q, n)
		}
		if len(page) < 1000 {
			return nil
		}
		off += len(page)
	}
}

func (f *fakeFleet) Version(context.Context) (sepm.Version, error)              { return sepm.Version{}, nil }
func (f *fakeFleet) AdminServers(context.Context) ([]sepm.Server, error)        { return nil, nil }
func (f *fakeFleet) Locations(context.Context, string) ([]sepm.Location, error) { return nil, nil }
func (f *fakeFleet) LocationSettings(context.Context, string, string) (sepm.Settings, error) {
	return sepm.Settings{}, nil
}
func (f *fakeFleet) PatchLocationSettings(context.Context, string, string, sepm.Configuration) (sepm.Settings, error) {
	return sepm.Settings{}, fmt.Errorf("fakeFleet: no settings")
}
func (f *fakeFleet) ClientVersions(context.Context) (sepm.ClientVersionResponse, error) {
	return sepm.ClientVersionResponse{}, nil
}
func (f *fakeFleet) IsReplicated(context.Context) (bool, error) { return false, nil }
func (f *fakeFleet) Trust(...string) error                      { return nil }
