package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// This file builds a site from its options: the group tree and the fleet.

var (
	levelOneNames = []string{"Default Group", "Workstations", "Servers", "Laptops"}
	nestedNames   = []string{"Finance", "DMZ", "Sales", "Engineering", "Legal", "Build", "Support", "Branch"}
)

// buildGroups makes the group tree: "My Company", up to four groups below it, the
// rest nested under those; the first NonInheriting groups of Workstations, Servers,
// Laptops, Default Group, then the nested ones do not inherit.
func (m *model) buildGroups(rng *rand.Rand, start time.Time) {
	o := m.opts
	add := func(name string, parent int) *group {
		g := &group{idx: len(m.groups), id: hexID(rng), name: name, parent: parent, desc: ""}
		if parent < 0 {
			g.path = name
		} else {
			g.path = m.groups[parent].path + `\` + name
			g.inherits = true
		}
		g.created = m.created
		m.groups = append(m.groups, g)
		m.groupByID[g.id] = g.idx
		return g
	}
	add(rootName, -1)
	n := o.Groups - 1
	k := min(n, len(levelOneNames))
	for i := range k {
		add(levelOneNames[i], 0)
	}
	for i := k; i < n; i++ {
		j := i - k
		// Nest under Workstations, Servers, Laptops, Default Group in turn.
		parent := 1 + (j+1)%k
		name := nestedNames[j%len(nestedNames)]
		if j >= len(nestedNames) {
			name = fmt.Sprintf("%s %d", name, j/len(nestedNames)+1)
		}
		add(name, parent)
	}
	// Which groups stop inheriting.
	var order []int
	for i := 2; i <= k; i++ {
		order = append(order, i)
	}
	if k >= 1 {
		order = append(order, 1)
	}
	for i := k + 1; i <= n; i++ {
		order = append(order, i)
	}
	for _, gi := range order[:o.NonInheriting] {
		m.groups[gi].inherits = false
	}
	// Remote VPN locations: non-inheriting groups besides the root first, then the root.
	var remote []int
	for _, gi := range order[:o.NonInheriting] {
		remote = append(remote, gi)
	}
	remote = append(remote, 0)
	hasRemote := map[int]bool{}
	for _, gi := range remote[:o.RemoteLocationGroups] {
		hasRemote[gi] = true
	}
	hb := int64(o.Heartbeat / time.Second)
	for _, g := range m.groups {
		g.source = g.idx
		for m.groups[g.source].inherits {
			g.source = m.groups[g.source].parent
		}
	}
	for _, g := range m.groups {
		src := m.groups[g.source]
		g.locs = append(g.locs, location{id: hexID(rng), name: defaultLocName})
		if hasRemote[src.idx] {
			g.locs = append(g.locs, location{id: hexID(rng), name: remoteLocName})
		}
		if g.inherits {
			continue
		}
		for _, l := range g.locs {
			s := settings{mode: "PUSH", pull: hb, opState: hb, upLog: hb, cmd: hb, msl: defaultMSLName, secure: true, stoppedMode: "ALLOW"}
			if l.name == remoteLocName {
				s.mode = "PULL"
			}
			g.settings = append(g.settings, s)
		}
	}
	first := start.Add(-24 * time.Hour).Truncate(time.Second)
	for _, g := range m.groups {
		if !g.inherits {
			m.rebuildLocked(g)
		}
		m.setSerialLocked(g, first)
	}
}

// rebuildLocked makes fresh policy snapshots for a non-inheriting group.
func (m *model) rebuildLocked(g *group) {
	g.pols = make([]*policy, len(g.settings))
	for i, s := range g.settings {
		g.pols[i] = &policy{set: s, msl: m.msls[s.msl], certs: m.certs, hb: s.heartbeat()}
	}
}

// setSerialLocked gives g a new policy serial number at t, strictly after its last.
func (m *model) setSerialLocked(g *group, t time.Time) {
	t = t.UTC().Truncate(time.Millisecond)
	if !t.After(g.serialTime) && !g.serialTime.IsZero() {
		t = g.serialTime.Add(time.Millisecond)
	}
	g.serialTime = t
	g.serial = fmt.Sprintf("%s-%s %03d", g.id[:4], t.Format("01/02/2006 15:04:05"), t.Nanosecond()/int(time.Millisecond))
	g.modified = t.UnixMilli()
}

// changedLocked records that the policy of non-inheriting group src changed: new
// snapshots for it, a new serial for it and for every group that inherits from it.
func (m *model) changedLocked(src *group, now time.Time) {
	m.rebuildLocked(src)
	for _, g := range m.groups {
		if g.source == src.idx {
			m.setSerialLocked(g, now)
		}
	}
}

// buildFleet makes the clients: exact version and offline shares, seeded placement.
func (m *model) buildFleet(rng *rand.Rand, shares []versionShare, start time.Time) error {
	o := m.opts
	n := o.Clients
	weights := make([]int, len(shares))
	for i, s := range shares {
		weights[i] = s.weight
	}
	counts := apportion(n, weights)
	keyOf := make([]int, 0, n)
	for i, c := range counts {
		for range c {
			keyOf = append(keyOf, i)
		}
	}
	rng.Shuffle(len(keyOf), func(i, j int) { keyOf[i], keyOf[j] = keyOf[j], keyOf[i] })
	buildIdx := map[string]int{}
	for _, s := range shares {
		for _, b := range versionKeys[s.key] {
			buildIdx[b.version] = len(m.builds)
			m.builds = append(m.builds, b)
		}
	}
	if len(m.builds) > 255 {
		return fmt.Errorf("sim: too many agent builds")
	}
	offline := make([]bool, n)
	nOff := n * o.OfflinePercent / 100
	for _, i := range rng.Perm(n)[:nOff] {
		offline[i] = true
	}
	// Roamers come from their own stream, so that a fleet without them is the same
	// fleet it always was for its seed.
	roamer := make([]bool, n)
	rr := rand.New(rand.NewPCG(uint64(o.Seed), 0x40a3e7))
	if nRoam := n * o.RoamingPercent / 100; nRoam > 0 {
		for _, i := range rr.Perm(n)[:nRoam] {
			roamer[i] = true
		}
	}
	// Client groups: every group but the root when there are others.
	var homes []int
	for _, g := range m.groups {
		if g.idx != 0 || len(m.groups) == 1 {
			homes = append(homes, g.idx)
		}
	}
	m.clients = make([]client, n)
	m.heap = make(hbHeap, 0, n)
	startMs := start.UnixMilli()
	for i := range m.clients {
		c := &m.clients[i]
		g := m.groups[homes[rng.IntN(len(homes))]]
		builds := versionKeys[shares[keyOf[i]].key]
		b := builds[rng.IntN(len(builds))]
		c.build = uint8(buildIdx[b.version])
		c.group = int32(g.idx)
		if len(g.locs) > 1 && rng.IntN(4) == 0 {
			c.loc = 1
		}
		c.uid = hexID(rng)
		c.hwKey = strings.ToLower(hexID(rng))
		kind := "DT"
		switch {
		case strings.Contains(g.path, "Servers"):
			kind = "SRV"
			c.os = 2
		case strings.Contains(g.path, "Laptops"):
			kind = "LT"
			c.os = uint8(rng.IntN(2))
		default:
			if rng.IntN(10) == 0 {
				c.os = 3
			} else {
				c.os = uint8(rng.IntN(2))
			}
		}
		prefix := strings.ToUpper(g.name)
		if len(prefix) > 3 {
			prefix = prefix[:3]
		}
		if g.idx == 0 {
			prefix = "MYC"
		}
		prefix = strings.ReplaceAll(prefix, " ", "")
		c.name = fmt.Sprintf("%s-%s-%05d", prefix, kind, i+1)
		c.ip = fmt.Sprintf("127.%d.%d.%d", (i>>16)&0xff, (i>>8)&0xff, i&0xff)
		c.lastServer = -1
		c.roamer = roamer[i]
		src := m.groups[g.source]
		c.pol = src.pols[c.loc]
		c.certs = c.pol.certs
		c.serial = g.serial
		g.clients++
		hb := c.pol.hb
		if offline[i] {
			c.lastUpdate = startMs - int64(time.Hour/time.Millisecond) - rng.Int64N(7*24*int64(time.Hour/time.Millisecond))
		} else {
			c.online = true
			ago := time.Duration(rng.Int64N(int64(hb/time.Millisecond)+1)) * time.Millisecond
			c.lastServer = int16(c.pol.msl.entries[rng.IntN(len(c.pol.msl.entries))].server)
			next := time.Duration(rng.Int64N(int64(hb) + 1))
			if o.Steady { // the same draws, so the rest of the fleet stays as it was for its seed
				ago, next, c.away = m.steadyPhase(rr, c.roamer, hb, float64(ago)/float64(hb), float64(next)/float64(hb))
			}
			c.lastUpdate = startMs - ago.Milliseconds()
			m.heap.push(hbEntry{due: start.UnixNano() + int64(next), idx: int32(i), gen: c.gen})
		}
		if c.lastServer < 0 {
			c.lastServer = int16(c.pol.msl.entries[0].server)
		}
	}
	return nil
}

// steadyPhase places an online client of a fleet that has run for days
// (Options.Steady): how long ago it last checked in, how soon it checks in next,
// and whether it is a roamer away now. Its intervals follow the client model
// (heartbeatLocked): a heartbeat jittered over hb x [1-Jitter, 1+Jitter], or, for
// a roamer, with roamChance after each check-in an absence of roamMin to roamMax
// heartbeats that ends in a check-in. The interval that spans the start is drawn
// length-biased (a longer interval is likelier to span a given instant, so an
// absence spans it with roamChance x its mean length over the mean of all
// intervals) and the start falls uniformly inside it: the check-ins of the whole
// fleet then come at a steady rate from the first second, where clients that all
// start a heartbeat at once would crowd the second heartbeat into a wave of 1.5 x
// the steady rate, then a trough of half of it. u and v are uniform in [0, 1]
// (the draws of a fresh start); a roamer's come from the roaming stream rr.
func (m *model) steadyPhase(rr *rand.Rand, roamer bool, hb time.Duration, u, v float64) (ago, next time.Duration, away bool) {
	j := m.opts.Jitter
	lo, hi := 1-j, 1+j // in heartbeats
	if roamer {
		absence := roamChance * (roamMin + roamMax) / 2
		if away = rr.Float64() < absence/(absence+(1-roamChance)); away {
			lo, hi = roamMin, roamMax
		}
		u, v = rr.Float64(), rr.Float64()
	}
	d := math.Sqrt(lo*lo + u*(hi*hi-lo*lo)) // the inverse of the length-biased CDF (x^2 - lo^2) / (hi^2 - lo^2)
	ago = time.Duration(v * d * float64(hb))
	return ago, time.Duration(d*float64(hb)) - ago, away
}
