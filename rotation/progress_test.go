package rotation

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"sepmbot/sepm"
)

const chg = int64(1_000_000) // the change time of the maps below (epoch ms)

func comp(i int, group, serial string, online bool, last int64) sepm.Computer {
	o := 0
	if online {
		o = 1
	}
	return sepm.Computer{UniqueID: fmt.Sprintf("ID%03d", i), ComputerName: fmt.Sprintf("WKS-%03d", i), OnlineStatus: o,
		LastUpdateTime: last, ProfileSerialNo: serial, Group: sepm.GroupSummary{ID: group}}
}

func groupsOf(kv ...string) []sepm.Group {
	var out []sepm.Group
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, sepm.Group{ID: kv[i], PolicySerialNumber: kv[i+1]})
	}
	return out
}

// built is a map after a full sweep of cs with groups A=S1, B=T1 and onlinestatus
// equal to the records.
func built(cs ...sepm.Computer) *fleetMap {
	m := newFleetMap(chg)
	m.setGroups(groupsOf("A", "S1", "B", "T1"))
	on := 0
	for _, c := range cs {
		m.merge(c)
		if c.OnlineStatus == 1 {
			on++
		}
	}
	m.sealFull(onlineCounts{online: on, offline: len(cs) - on})
	return m
}

// TestFleetMapClassifies: a client counts as caught up only when online, on its
// group's current serial and checked in after the change; each other case is a
// laggard (online) or offline.
func TestFleetMapClassifies(t *testing.T) {
	cases := []struct {
		name        string
		c           sepm.Computer
		online, new int
	}{
		{"caught up", comp(1, "A", "S1", true, chg+1), 1, 1},
		{"checked in at the chg", comp(1, "A", "S1", true, chg), 1, 0},
		{"checked in before the chg", comp(1, "A", "S1", true, chg-1), 1, 0},
		{"old serial", comp(1, "A", "S0", true, chg+1), 1, 0},
		{"another group's serial", comp(1, "A", "T1", true, chg+1), 1, 0},
		{"unknown group", comp(1, "Z", "S1", true, chg+1), 1, 0},
		{"offline, caught up", comp(1, "A", "S1", false, chg+1), 0, 0},
		{"offline, lagging", comp(1, "A", "S0", false, chg-1), 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := built(tc.c)
			p := m.progress(true)
			if p.Online != tc.online || p.OnNewPolicy != tc.new || p.Offline != 1-tc.online {
				t.Fatalf("progress %+v, want online %d on new %d", p, tc.online, tc.new)
			}
			lagging := tc.online - tc.new
			if m.lag.len() != lagging || len(p.Laggards) != lagging {
				t.Errorf("%d laggards (%v), want %d", m.lag.len(), p.Laggards, lagging)
			}
			if m.confirmed() != (lagging == 0) {
				t.Errorf("confirmed = %v with %d lagging", m.confirmed(), lagging)
			}
		})
	}
}

// TestFleetMapMerge: a record replaces the client's previous one (counts move with
// it), an older record is ignored, and a new client is added.
func TestFleetMapMerge(t *testing.T) {
	m := built(comp(1, "A", "S0", true, chg-5), comp(2, "A", "S1", true, chg+5), comp(3, "B", "T1", false, chg-9))
	if p := m.progress(true); p.Online != 2 || p.OnNewPolicy != 1 || p.Offline != 1 {
		t.Fatalf("start %+v", p)
	}
	m.merge(comp(1, "A", "S1", true, chg+7)) // the laggard takes the policy
	if m.onNew != 2 || m.lag.len() != 0 || m.online != 2 {
		t.Fatalf("after catch-up: on new %d, lag %d, online %d", m.onNew, m.lag.len(), m.online)
	}
	m.merge(comp(1, "A", "S0", true, chg+6)) // older than what the map holds
	if m.onNew != 2 || m.lag.len() != 0 {
		t.Fatalf("an older record was merged: on new %d lag %d", m.onNew, m.lag.len())
	}
	m.merge(comp(3, "B", "T1", true, chg+8)) // offline client back, caught up
	m.merge(comp(4, "B", "T0", true, chg+8)) // a new client, lagging
	if m.online != 4 || m.onNew != 3 || m.lag.len() != 1 || len(m.marks) != 4 {
		t.Fatalf("online %d on new %d lag %d clients %d", m.online, m.onNew, m.lag.len(), len(m.marks))
	}
	m.merge(comp(4, "B", "T0", false, chg+9)) // the laggard goes offline (its record says so)
	if m.online != 3 || m.lag.len() != 0 {
		t.Fatalf("offline laggard still counted: online %d lag %d", m.online, m.lag.len())
	}
}

// TestFleetMapGroupSerialChange: a new policy serial in a group turns its members
// into laggards until they check in with it; the confirmation is gone for good.
func TestFleetMapGroupSerialChange(t *testing.T) {
	m := built(comp(1, "A", "S1", true, chg+1), comp(2, "A", "S1", true, chg+1), comp(3, "B", "T1", true, chg+1))
	if !m.confirmed() {
		t.Fatal("caught-up map not confirmed")
	}
	if m.setGroups(groupsOf("A", "S1", "B", "T1")) {
		t.Error("unchanged serials reported as a change")
	}
	if !m.setGroups(groupsOf("A", "S2", "B", "T1")) {
		t.Fatal("serial change not seen")
	}
	if m.onNew != 1 || m.lag.len() != 2 || m.confirmed() {
		t.Fatalf("after the change: on new %d, lag %d, confirmed %v", m.onNew, m.lag.len(), m.confirmed())
	}
	m.merge(comp(1, "A", "S2", true, chg+2))
	m.merge(comp(2, "A", "S2", true, chg+2))
	if m.lag.len() != 0 || m.onNew != 3 {
		t.Fatalf("after check-ins: on new %d lag %d", m.onNew, m.lag.len())
	}
	if m.confirmed() {
		t.Error("incremental records confirmed a verdict: only a full sweep may")
	}
	if !m.setGroups(groupsOf("A", "S2")) || m.onNew != 2 || m.lag.len() != 1 {
		t.Errorf("a vanished group: on new %d lag %d", m.onNew, m.lag.len())
	}
}

// TestFleetMapConfirmed: the verdict of a caught-up full sweep holds while nothing
// read since contradicts it.
func TestFleetMapConfirmed(t *testing.T) {
	base := func() *fleetMap {
		return built(comp(1, "A", "S1", true, chg+1), comp(2, "A", "S1", true, chg+1), comp(3, "B", "T1", false, chg-1))
	}
	cases := []struct {
		name string
		do   func(m *fleetMap)
		want bool
	}{
		{"nothing since", func(m *fleetMap) {}, true},
		{"a caught-up client checks in again", func(m *fleetMap) { m.merge(comp(1, "A", "S1", true, chg+9)) }, true},
		{"a laggard's record", func(m *fleetMap) { m.merge(comp(1, "A", "S0", true, chg+9)) }, false},
		{"a laggard that catches up again", func(m *fleetMap) {
			m.merge(comp(1, "A", "S0", true, chg+9))
			m.merge(comp(1, "A", "S1", true, chg+10))
		}, false},
		{"online count rose, unseen", func(m *fleetMap) { m.status = onlineCounts{online: 3} }, false},
		{"online count rose, seen coming online caught up", func(m *fleetMap) {
			m.merge(comp(3, "B", "T1", true, chg+9))
			m.status = onlineCounts{online: 3}
		}, true},
		{"online count fell", func(m *fleetMap) { m.status = onlineCounts{online: 1, offline: 2} }, true},
		{"group serial changed", func(m *fleetMap) { m.setGroups(groupsOf("A", "S2", "B", "T1")) }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.do(m)
			if got := m.confirmed(); got != tc.want {
				t.Errorf("confirmed = %v, want %v", got, tc.want)
			}
		})
	}
	// A steady difference between onlinestatus and the records does not block.
	m := newFleetMap(chg)
	m.setGroups(groupsOf("A", "S1"))
	m.merge(comp(1, "A", "S1", true, chg+1))
	m.sealFull(onlineCounts{online: 5})
	m.status = onlineCounts{online: 5}
	if !m.confirmed() {
		t.Error("a steady offset between onlinestatus and the records blocks the verdict")
	}
}

// TestFleetMapIncrementalProgress: online and offline come from onlinestatus;
// on-new is capped at online (stale online flags may run ahead).
func TestFleetMapIncrementalProgress(t *testing.T) {
	m := built(comp(1, "A", "S1", true, chg+1), comp(2, "A", "S1", true, chg+1), comp(3, "A", "S0", true, chg-1))
	m.status = onlineCounts{online: 1, offline: 2} // two went offline without a record change
	p := m.progress(false)
	if p.Online != 1 || p.Offline != 2 || p.OnNewPolicy != 1 {
		t.Errorf("incremental %+v, want online 1 offline 2 on new 1", p)
	}
	if f := m.progress(true); f.Online != 3 || f.OnNewPolicy != 2 || f.Offline != 0 {
		t.Errorf("records %+v", f)
	}
}

// TestLaggardNames: at most ten, in the order found, stable from poll to poll;
// caught-up ones make room for others.
func TestLaggardNames(t *testing.T) {
	var cs []sepm.Computer
	for i := range 25 {
		cs = append(cs, comp(i, "A", "S0", true, chg-1))
	}
	m := built(cs...)
	p := m.progress(true)
	want := []string{"WKS-000", "WKS-001", "WKS-002", "WKS-003", "WKS-004", "WKS-005", "WKS-006", "WKS-007", "WKS-008", "WKS-009"}
	if !slices.Equal(p.Laggards, want) {
		t.Fatalf("laggards %v, want the first ten found %v", p.Laggards, want)
	}
	m.merge(comp(3, "A", "S1", true, chg+1))
	m.pruneNames()
	p = m.progress(false)
	if len(p.Laggards) != 10 || slices.Contains(p.Laggards, "WKS-003") || !slices.Equal(p.Laggards[:3], want[:3]) || !slices.Equal(p.Laggards[3:9], want[4:]) {
		t.Fatalf("after one caught up: %v", p.Laggards)
	}
	again := m.progress(false).Laggards
	if !slices.Equal(again, p.Laggards) {
		t.Errorf("names moved between polls: %v then %v", p.Laggards, again)
	}
	for i := range 25 {
		m.merge(comp(i, "A", "S1", true, chg+2))
	}
	m.pruneNames()
	if l := m.progress(false).Laggards; len(l) != 0 {
		t.Errorf("laggards after everyone caught up: %v", l)
	}
}

// TestCursor: the cursor only moves forward, the next read starts the overlap before
// it, and never asks for everything (LastUpdate 0) once built.
func TestCursor(t *testing.T) {
	m := newFleetMap(chg)
	if got := m.since(IncrementalOverlap); got != 1 {
		t.Errorf("since with no cursor = %d, want 1", got)
	}
	m.advance(10_000)
	m.advance(9_000)
	if m.cursor != 10_000 {
		t.Errorf("cursor = %d, want 10000 (it never goes back)", m.cursor)
	}
	if got := m.since(IncrementalOverlap); got != 10_000-IncrementalOverlap.Milliseconds() {
		t.Errorf("since = %d", got)
	}
}

var w0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// TestNextPoll: what each poll of a wait reads.
func TestNextPoll(t *testing.T) {
	dl := w0.Add(24 * time.Hour)
	sweep := 2 * time.Second
	window := dl.Add(-(2*sweep + confirmMargin)) // 5 s before the deadline
	cases := []struct {
		name string
		w    waitClock
		want pollKind
	}{
		{"start of the wait", waitClock{Now: w0}, pollFull},
		{"after a restart, mid-wait", waitClock{Now: dl.Add(-time.Hour), Sweep: sweep}, pollFull},
		{"after a restart, past the deadline", waitClock{Now: dl.Add(time.Hour)}, pollFull},
		{"mid-wait", waitClock{Now: w0.Add(time.Hour), Built: true, Sweep: sweep, MaybeCaughtUp: true}, pollIncremental},
		{"just before the window", waitClock{Now: window.Add(-time.Millisecond), Built: true, Sweep: sweep, MaybeCaughtUp: true}, pollIncremental},
		{"window opens: confirming sweep", waitClock{Now: window, Built: true, Sweep: sweep}, pollFull},
		{"window, laggards: confirming sweep anyway", waitClock{Now: window.Add(time.Second), Built: true, Sweep: sweep}, pollFull},
		{"past the deadline, never confirmed", waitClock{Now: dl.Add(time.Minute), Built: true, Sweep: sweep}, pollFull},
		{"confirmed: the cheap last check", waitClock{Now: dl, Built: true, FinalFull: true, Sweep: sweep, Confirmed: true}, pollIncremental},
		{"override: no sweep needed", waitClock{Now: dl, Built: true, FinalFull: true, Sweep: sweep, Override: true}, pollIncremental},
		{"confirming sweep found laggards", waitClock{Now: dl.Add(time.Minute), Built: true, FinalFull: true, Sweep: sweep}, pollIncremental},
		{"laggards may have caught up", waitClock{Now: dl.Add(time.Minute), Built: true, FinalFull: true, Sweep: sweep, MaybeCaughtUp: true}, pollFull},
		{"a slow last sweep opens the window earlier", waitClock{Now: dl.Add(-30 * time.Second), Built: true, Sweep: 15 * time.Second}, pollFull},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.w.Deadline = dl
			if got := nextPoll(tc.w); got != tc.want {
				t.Errorf("nextPoll = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCanEnd: a wait ends only at or after its deadline, after a full sweep in the
// final window, on a confirmed verdict or an operator's override.
func TestCanEnd(t *testing.T) {
	dl := w0.Add(24 * time.Hour)
	ok := waitClock{Now: dl, Deadline: dl, Built: true, FinalFull: true, Confirmed: true}
	if !canEnd(ok) {
		t.Fatal("a confirmed wait at its deadline does not end")
	}
	cases := []struct {
		name string
		mod  func(w *waitClock)
		want bool
	}{
		{"one millisecond early", func(w *waitClock) { w.Now = dl.Add(-time.Millisecond) }, false},
		{"a day early, confirmed", func(w *waitClock) { w.Now = dl.Add(-24 * time.Hour) }, false},
		{"early with override", func(w *waitClock) { w.Now, w.Confirmed, w.Override = dl.Add(-time.Second), false, true }, false},
		{"late", func(w *waitClock) { w.Now = dl.Add(time.Hour) }, true},
		{"no confirming sweep", func(w *waitClock) { w.FinalFull = false }, false},
		{"not built", func(w *waitClock) { w.Built = false }, false},
		{"not confirmed", func(w *waitClock) { w.Confirmed = false }, false},
		{"maybe caught up is not enough", func(w *waitClock) { w.Confirmed, w.MaybeCaughtUp = false, true }, false},
		{"override", func(w *waitClock) { w.Confirmed, w.Override = false, true }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := ok
			tc.mod(&w)
			if got := canEnd(w); got != tc.want {
				t.Errorf("canEnd = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSleepFor: polls wake at the window's opening and at the deadline, never later.
func TestSleepFor(t *testing.T) {
	dl := w0.Add(24 * time.Hour)
	iv := 30 * time.Second
	sweep := 2 * time.Second
	window := dl.Add(-(2*sweep + confirmMargin))
	cases := []struct {
		name string
		w    waitClock
		want time.Duration
	}{
		{"mid-wait", waitClock{Now: w0}, iv},
		{"window closer than an interval", waitClock{Now: window.Add(-10 * time.Second)}, 10 * time.Second},
		{"window opened during the poll", waitClock{Now: window.Add(time.Millisecond)}, 0},
		{"confirmed early: sleep to the deadline", waitClock{Now: dl.Add(-3 * time.Second), FinalFull: true, Confirmed: true}, 3 * time.Second},
		{"confirming sweep ran long, found laggards: follow up", waitClock{Now: dl.Add(time.Second), FinalFull: true}, lagFollowUp},
		{"laggards found before the deadline: follow up", waitClock{Now: dl.Add(-20 * time.Second), FinalFull: true}, lagFollowUp},
		{"laggards followed up no longer than the sweep twice", waitClock{Now: dl.Add(time.Second), FinalFull: true, Sweep: 4 * time.Second}, 8 * time.Second},
		{"overridden: no follow-up", waitClock{Now: dl.Add(time.Second), FinalFull: true, Override: true}, iv},
		{"past the deadline", waitClock{Now: dl.Add(time.Hour), FinalFull: true}, iv},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.w.Sweep == 0 {
				tc.w.Sweep = sweep
			}
			tc.w.Deadline, tc.w.Interval, tc.w.Built = dl, iv, true
			if got := sleepFor(tc.w); got != tc.want {
				t.Errorf("sleepFor = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestFleetMapKeysAndNames: SEPM's 32-hex-digit uniqueIds are kept as 16 bytes (the
// same id in either case is one client), other ids as strings, and computer names
// in the map's arena: a renamed client shows its new name, a known one keeps its.
func TestFleetMapKeysAndNames(t *testing.T) {
	m := newFleetMap(chg)
	m.setGroups([]sepm.Group{{ID: "G", PolicySerialNumber: "S1"}})
	hex := "8A1F0C2D3E4B5A69788796A5B4C3D2E1"
	rec := func(id, name, serial string, last int64) sepm.Computer {
		return sepm.Computer{UniqueID: id, ComputerName: name, OnlineStatus: 1, LastUpdateTime: last, ProfileSerialNo: serial, Group: sepm.GroupSummary{ID: "G"}}
	}
	m.merge(rec(hex, "WKS-A", "S0", chg+1))
	m.merge(rec(strings.ToLower(hex), "WKS-A", "S0", chg+2)) // the same client
	m.merge(rec("not-a-hex-id", "WKS-B", "S0", chg+1))
	m.merge(rec(hex[:31]+"G", "WKS-C", "S0", chg+1)) // 32 characters, not hex
	if len(m.marks) != 3 || len(m.hexIDs) != 1 || len(m.otherIDs) != 2 {
		t.Fatalf("marks %d hex %d other %d: want 3 clients, one kept as 16 bytes", len(m.marks), len(m.hexIDs), len(m.otherIDs))
	}
	m.merge(rec(hex, "WKS-A-RENAMED", "S0", chg+3))
	p := m.progress(true)
	if p.Online != 3 || p.OnNewPolicy != 0 || !slices.Equal(p.Laggards, []string{"WKS-A-RENAMED", "WKS-B", "WKS-C"}) {
		t.Fatalf("progress %+v", p)
	}
	before := len(m.text)
	m.merge(rec("not-a-hex-id", "WKS-B", "S1", chg+4)) // same name: no new bytes
	if len(m.text) != before {
		t.Fatalf("an unchanged name was stored again (%d -> %d bytes)", before, len(m.text))
	}
	m.pruneNames() // as every read ends
	if p := m.progress(true); p.OnNewPolicy != 1 || !slices.Equal(p.Laggards, []string{"WKS-A-RENAMED", "WKS-C"}) {
		t.Fatalf("progress %+v", p)
	}
}

func TestLagSet(t *testing.T) {
	var l lagSet
	for _, i := range []int32{130, 3, 64, 3, 0} {
		l.add(i)
	}
	l.del(64)
	l.del(999) // never added
	var got []int32
	l.each(func(i int32) bool { got = append(got, i); return len(got) < 2 })
	if l.len() != 3 || !l.has(130) || l.has(64) || l.has(5000) || !slices.Equal(got, []int32{0, 3}) {
		t.Fatalf("len %d, first two %v", l.len(), got)
	}
	l.reset()
	if l.len() != 0 || l.has(3) {
		t.Fatal("reset kept members")
	}
}
