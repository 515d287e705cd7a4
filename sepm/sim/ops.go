package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// ServerInfo describes one simulated management server.
type ServerInfo struct {
	Name string `json:"name"` // "sepm-01", ...
	ID   string `json:"id"`   // 32 hex, as in GET admin/servers
	// ClientAddr is the server's TLS listener standing for its client port 443.
	ClientAddr string `json:"clientAddr"`
	// HTTPPort is the HTTP client port the HTTP copy of an MSL uses (8014).
	HTTPPort int `json:"httpPort"`
	// Fingerprint is the SHA-256 (lowercase hex) of the certificate presented now;
	// NextFingerprint is the one the next update installs.
	Fingerprint     string    `json:"fingerprint"`
	NextFingerprint string    `json:"nextFingerprint"`
	Subject         string    `json:"subject"`
	NotAfter        time.Time `json:"notAfter"`
}

// Target is a group/location an MSL is assigned to; an empty LocationID means every
// location of the group.
type Target struct {
	GroupID    string `json:"groupId"`
	LocationID string `json:"locationId,omitempty"`
}

// MSLInfo describes a management server list.
type MSLInfo struct {
	Name    string      `json:"name"`
	Servers []MSLServer `json:"servers"`
}

// MSLServer is one entry of an MSL.
type MSLServer struct {
	Server   string `json:"server"`
	Protocol string `json:"protocol"` // "HTTPS" or "HTTP"
	Port     int    `json:"port"`
	Priority int    `json:"priority"`
}

// Faults are injected into the REST API (/sepm/api/v1; identity calls excepted).
type Faults struct {
	// ErrorRate is the share of REST calls answered 500. For a call that changes
	// something, half of the failures happen after the change was applied.
	ErrorRate float64
	// Latency delays every REST call.
	Latency time.Duration
	// ExpireTokens invalidates every token now (a one-shot action, not a state).
	ExpireTokens bool
}

// FleetReport is the truth about the fleet. Each client counts as exactly one of
// ok, orphaned or offline (orphaned wins).
type FleetReport struct {
	Total    int `json:"total"`
	OK       int `json:"ok"`
	Orphaned int `json:"orphaned"`
	Offline  int `json:"offline"`
	// Pending counts ok (online) clients that do not hold their group's current
	// policy yet (profileSerialNo != policySerialNumber).
	Pending int `json:"pending"`
	// ByServer counts, per server, the clients whose cached MSL lists it, by whether
	// their cached certificate for it is the one it presents now.
	ByServer        map[string]ServerFleet `json:"byServer"`
	ByGroup         map[string]GroupFleet  `json:"byGroup"`
	OrphanedClients []OrphanedClient       `json:"orphanedClients"`
	// Blocked and Away count the offline clients blocked from checking in (admin
	// API) and the roamers away now; both are included in Offline.
	Blocked int `json:"blocked"`
	Away    int `json:"away"`
	// Checkins, FetchFailures and Absences count, since the start, the check-ins
	// that reached a server, those that failed to download a newer policy, and the
	// roaming absences.
	Checkins      uint64 `json:"checkins"`
	FetchFailures uint64 `json:"fetchFailures"`
	Absences      uint64 `json:"absences"`
	// Patches counts the accepted PATCHes of location settings per target.
	Patches []PatchCount `json:"patches"`
}

// ServerFleet is FleetReport's view of one server.
type ServerFleet struct {
	Fingerprint    string `json:"fingerprint"`
	ClientsCurrent int    `json:"clientsCurrent"`
	ClientsStale   int    `json:"clientsStale"`
}

// GroupFleet is FleetReport's view of one group (by full path).
type GroupFleet struct {
	OK       int `json:"ok"`
	Orphaned int `json:"orphaned"`
	Offline  int `json:"offline"`
}

// OrphanedClient names an orphaned client.
type OrphanedClient struct {
	UniqueID     string `json:"uniqueId"`
	ComputerName string `json:"computerName"`
	Group        string `json:"group"`
	AgentVersion string `json:"agentVersion"`
}

func (m *model) serverInfo(s *server) ServerInfo {
	cur, next := s.cur.Load(), s.next.Load()
	return ServerInfo{
		Name: s.name, ID: s.id, ClientAddr: s.clientAddr, HTTPPort: defaultHTTPort,
		Fingerprint: cur.fp, NextFingerprint: next.fp,
		Subject: cur.leaf.Subject.String(), NotAfter: cur.leaf.NotAfter,
	}
}

func (m *model) serverInfos() []ServerInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ServerInfo, 0, len(m.servers))
	for _, s := range m.servers {
		out = append(out, m.serverInfo(s))
	}
	return out
}

func (m *model) mslInfos() []MSLInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.msls))
	for n := range m.msls {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]MSLInfo, 0, len(names))
	for _, n := range names {
		l := m.msls[n]
		info := MSLInfo{Name: l.name, Servers: []MSLServer{}}
		for _, e := range l.entries {
			proto := "HTTP"
			if e.https {
				proto = "HTTPS"
			}
			info.Servers = append(info.Servers, MSLServer{Server: m.servers[e.server].name, Protocol: proto, Port: e.port, Priority: e.priority})
		}
		out = append(out, info)
	}
	return out
}

// copyMSLAsHTTP copies an MSL with every entry switched to HTTP on port (0 = 8014),
// named "<source> (HTTP <port>)". Copying again returns the existing copy.
func (m *model) copyMSLAsHTTP(source string, port int) (string, error) {
	if port == 0 {
		port = defaultHTTPort
	}
	if port < 1 || port > 65535 {
		return "", badRequest("port %d is out of range", port)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	src, ok := m.msls[source]
	if !ok {
		return "", notFound("no management server list %q", source)
	}
	name := fmt.Sprintf("%s (HTTP %d)", source, port)
	cp := &msl{name: name}
	for _, e := range src.entries {
		cp.entries = append(cp.entries, mslEntry{server: e.server, https: false, port: port, priority: e.priority})
	}
	if old, ok := m.msls[name]; ok {
		if sameEntries(old, cp) {
			return name, nil
		}
		return "", badRequest("a different management server list named %q exists", name)
	}
	m.msls[name] = cp
	m.log.Info("sim: management server list copied", "source", source, "copy", name)
	return name, nil
}

func sameEntries(a, b *msl) bool {
	if len(a.entries) != len(b.entries) {
		return false
	}
	for i := range a.entries {
		if a.entries[i] != b.entries[i] {
			return false
		}
	}
	return true
}

// assignMSL assigns an MSL to targets; no targets means every location of every
// non-inheriting group. Groups that inherit their policy cannot be targets.
func (m *model) assignMSL(name string, targets []Target) error {
	_, err := m.assignMSLCount(name, targets)
	return err
}

// assignMSLCount is assignMSL that also returns how many group/locations changed.
func (m *model) assignMSLCount(name string, targets []Target) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.msls[name]; !ok {
		return 0, badRequest("no management server list %q", name)
	}
	type sel struct{ g, l int }
	var sels []sel
	if len(targets) == 0 {
		for _, g := range m.groups {
			if g.inherits {
				continue
			}
			for l := range g.locs {
				sels = append(sels, sel{g.idx, l})
			}
		}
	}
	for _, t := range targets {
		g, err := m.groupLocked(t.GroupID)
		if err != nil {
			return 0, err
		}
		if g.inherits {
			return 0, badRequest("group %s inherits its policy from its parent", g.path)
		}
		if t.LocationID == "" {
			for l := range g.locs {
				sels = append(sels, sel{g.idx, l})
			}
			continue
		}
		l, err := g.locIndex(t.LocationID)
		if err != nil {
			return 0, err
		}
		sels = append(sels, sel{g.idx, l})
	}
	return m.assignLocked(name, func(yield func(g, l int) bool) {
		for _, s := range sels {
			if !yield(s.g, s.l) {
				return
			}
		}
	}), nil
}

// replaceMSL assigns MSL name wherever MSL old is assigned; it returns how many
// group/locations changed.
func (m *model) replaceMSL(name, old string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.msls[name]; !ok {
		return 0, badRequest("no management server list %q", name)
	}
	if _, ok := m.msls[old]; !ok {
		return 0, badRequest("no management server list %q", old)
	}
	return m.assignLocked(name, func(yield func(g, l int) bool) {
		for _, g := range m.groups {
			for l := range g.settings {
				if g.settings[l].msl == old && !yield(g.idx, l) {
					return
				}
			}
		}
	}), nil
}

// assignLocked sets the MSL of the selected group/locations and records the change.
func (m *model) assignLocked(name string, sel func(yield func(g, l int) bool)) int {
	changed := map[int]bool{}
	n := 0
	for gi, l := range sel {
		g := m.groups[gi]
		if g.settings[l].msl != name {
			g.settings[l].msl = name
			changed[gi] = true
			n++
		}
	}
	now := m.now()
	for gi := range m.groups {
		if changed[gi] {
			m.changedLocked(m.groups[gi], now)
		}
	}
	if n > 0 {
		m.log.Info("sim: management server list assigned", "msl", name, "locations", n)
	}
	return n
}

// updateCertificate installs a server's next certificate and plans the one after;
// with unexpected, it installs a certificate nobody announced (not the next one,
// which stays planned), as a colleague importing another keystore would.
func (m *model) updateCertificate(name string, unexpected bool) (ServerInfo, error) {
	s, err := m.serverByName(name)
	if err != nil {
		return ServerInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if unexpected {
		m.rogue++
		c, err := newServerCert(m.opts.Seed, s.name, certUnexpected, m.rogue)
		if err != nil {
			return ServerInfo{}, err
		}
		s.cur.Store(c)
	} else {
		fresh, err := newServerCert(m.opts.Seed, s.name, certPlanned, s.nextGen)
		if err != nil {
			return ServerInfo{}, err
		}
		s.nextGen++
		s.cur.Store(s.next.Load())
		s.next.Store(fresh)
	}
	m.certChangedLocked(s)
	return m.serverInfo(s), nil
}

// certChangedLocked records that server s presents another certificate: a new
// policy for every group whose lists name it.
func (m *model) certChangedLocked(s *server) {
	certs := append([]string(nil), m.certs...)
	certs[s.idx] = s.cur.Load().fp
	m.certs = certs
	now := m.now()
	for _, g := range m.groups {
		if g.inherits {
			continue
		}
		for _, st := range g.settings {
			if m.msls[st.msl].has(s.idx) {
				m.changedLocked(g, now)
				break
			}
		}
	}
	m.log.Info("sim: server certificate updated", "server", s.name, "fingerprint", certs[s.idx])
}

// blockClients cuts clients off the manager (a firewall, a broken route) or lets
// them through again: ids, or n clients (seeded choice among those checking in now
// when blocking, among the blocked when unblocking). A blocked client does not check
// in and SEPM shows it offline; unblocked, it checks in within a tenth of its
// heartbeat and meets whatever certificate the servers present by then.
func (m *model) blockClients(ids []string, n int, blocked bool) ([]string, error) {
	if n < 0 {
		return nil, badRequest("count must not be negative")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var picked []int32
	if len(ids) > 0 {
		want := map[string]bool{}
		for _, id := range ids {
			want[strings.ToUpper(id)] = true
		}
		for i := range m.clients {
			if want[m.clients[i].uid] {
				picked = append(picked, int32(i))
				delete(want, m.clients[i].uid)
			}
		}
		for id := range want {
			return nil, notFound("no client %s", id)
		}
	} else {
		var cand []int32
		for i := range m.clients {
			c := &m.clients[i]
			if (blocked && c.checkingIn()) || (!blocked && c.blocked) {
				cand = append(cand, int32(i))
			}
		}
		n = min(n, len(cand))
		for k := range n {
			j := k + m.choice.IntN(len(cand)-k)
			cand[k], cand[j] = cand[j], cand[k]
		}
		picked = cand[:n]
	}
	now := m.now()
	out := make([]string, 0, len(picked))
	for _, i := range picked {
		c := &m.clients[i]
		out = append(out, c.uid)
		if c.blocked == blocked {
			continue
		}
		was := c.checkingIn()
		c.blocked = blocked
		c.gen++
		if !blocked && c.online && !c.orphaned {
			c.away = false
			d := time.Duration(m.rt.Int64N(int64(c.pol.hb)/10 + 1))
			m.pushLocked(hbEntry{due: now.Add(d).UnixNano(), idx: i, gen: c.gen})
		}
		m.trackOnlineLocked(c, was)
	}
	if len(out) > 0 {
		m.log.Info("sim: clients blocked from checking in", "blocked", blocked, "clients", len(out))
	}
	return out, nil
}

// ConsoleChange is a change to a location's settings made out of band, as a
// colleague in the SEPM console would (not through the REST API, so it is not
// counted among the PATCHes). Nil fields are left as they are.
type ConsoleChange struct {
	GroupID    string `json:"groupId"`
	LocationID string `json:"locationId,omitempty"` // empty: every location of the group
	// SecureCommunications sets general_settings.security_settings.secure_communications.
	SecureCommunications *bool `json:"secureCommunications,omitempty"`
	// MSL sets the management server list the location uses (sem_server.name).
	MSL *string `json:"msl,omitempty"`
}

// consoleChange applies c like the console: the group (and every group inheriting
// from it) gets a new policy serial.
func (m *model) consoleChange(c ConsoleChange) error {
	if c.SecureCommunications == nil && c.MSL == nil {
		return badRequest("give secureCommunications or msl")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.groupLocked(c.GroupID)
	if err != nil {
		return err
	}
	if g.inherits {
		return badRequest("group %s inherits its policy from its parent", g.path)
	}
	locs := make([]int, 0, len(g.locs))
	if c.LocationID == "" {
		for l := range g.locs {
			locs = append(locs, l)
		}
	} else {
		l, err := g.locIndex(c.LocationID)
		if err != nil {
			return err
		}
		locs = append(locs, l)
	}
	if c.MSL != nil {
		if _, ok := m.msls[*c.MSL]; !ok {
			return badRequest("no management server list %q", *c.MSL)
		}
	}
	for _, l := range locs {
		if c.SecureCommunications != nil {
			g.settings[l].secure = *c.SecureCommunications
		}
		if c.MSL != nil {
			g.settings[l].msl = *c.MSL
		}
	}
	m.changedLocked(g, m.now())
	m.log.Info("sim: settings changed in the console", "group", g.path, "locations", len(locs))
	return nil
}

// setOnline turns n clients (seeded choice among those in the other state and not
// orphaned) on or off, for d (0 = until changed); it returns their unique ids.
func (m *model) setOnline(n int, online bool, d time.Duration) ([]string, error) {
	if n < 0 || d < 0 {
		return nil, badRequest("count and duration must not be negative")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var cand []int32
	for i := range m.clients {
		c := &m.clients[i]
		if c.online != online && !c.orphaned {
			cand = append(cand, int32(i))
		}
	}
	n = min(n, len(cand))
	for k := range n {
		j := k + m.choice.IntN(len(cand)-k)
		cand[k], cand[j] = cand[j], cand[k]
	}
	picked := append([]int32(nil), cand[:n]...)
	now := m.now()
	ids := make([]string, 0, n)
	for _, i := range picked {
		m.setOnlineLocked(i, online, now)
		ids = append(ids, m.clients[i].uid)
	}
	if d > 0 && n > 0 {
		m.addRevertLocked(revert{at: now.Add(d).UnixNano(), idx: picked, online: !online})
	}
	return ids, nil
}

// setClientsOnline turns the named clients (unique ids) on or off.
func (m *model) setClientsOnline(ids []string, online bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]bool{}
	for _, id := range ids {
		want[strings.ToUpper(id)] = true
	}
	var idx []int32
	for i := range m.clients {
		if want[m.clients[i].uid] {
			idx = append(idx, int32(i))
			delete(want, m.clients[i].uid)
		}
	}
	if len(want) > 0 {
		for id := range want {
			return notFound("no client %s", id)
		}
	}
	now := m.now()
	for _, i := range idx {
		m.setOnlineLocked(i, online, now)
	}
	return nil
}

// fleet reports the truth about the fleet.
func (m *model) fleet() FleetReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := FleetReport{
		Total:           len(m.clients),
		ByServer:        map[string]ServerFleet{},
		ByGroup:         map[string]GroupFleet{},
		OrphanedClients: []OrphanedClient{},
	}
	cur := make([]int, len(m.servers))
	stale := make([]int, len(m.servers))
	byGroup := make([]GroupFleet, len(m.groups))
	for i := range m.clients {
		c := &m.clients[i]
		g := m.groups[c.group]
		switch {
		case c.orphaned:
			r.Orphaned++
			byGroup[g.idx].Orphaned++
			r.OrphanedClients = append(r.OrphanedClients, OrphanedClient{
				UniqueID: c.uid, ComputerName: c.name, Group: g.path, AgentVersion: m.builds[c.build].version,
			})
		case c.checkingIn():
			r.OK++
			byGroup[g.idx].OK++
			if c.serial != g.serial {
				r.Pending++
			}
		default:
			r.Offline++
			byGroup[g.idx].Offline++
			if c.blocked {
				r.Blocked++
			} else if c.away {
				r.Away++
			}
		}
		for _, e := range c.pol.msl.entries {
			if c.certs[e.server] == m.certs[e.server] {
				cur[e.server]++
			} else {
				stale[e.server]++
			}
		}
	}
	for i, s := range m.servers {
		r.ByServer[s.name] = ServerFleet{Fingerprint: m.certs[i], ClientsCurrent: cur[i], ClientsStale: stale[i]}
	}
	for i, g := range m.groups {
		r.ByGroup[g.path] = byGroup[i]
	}
	r.Checkins, r.FetchFailures, r.Absences = m.checkins, m.fetchFail, m.absences
	r.Patches = m.patchReportLocked()
	return r
}
