package sim

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Names the model uses.
const (
	rootName       = "My Company"
	defaultMSLName = "Default Management Server List"
	defaultLocName = "Default"
	remoteLocName  = "Remote VPN"
	domainName     = "Default"
	siteName       = "Site SEPMSIM"
	defaultHTTPort = 8014
	httpsPort      = 443
	certLifetime   = 10 * 365 * 24 * time.Hour
)

// Errors of the model's operations; the REST and admin layers map them to statuses.
var (
	errNotFound   = errors.New("not found")
	errBadRequest = errors.New("bad request")
)

// opError is an operation error with a status-bearing kind (errNotFound, errBadRequest).
type opError struct {
	kind error
	msg  string
}

func (e *opError) Error() string { return "sim: " + e.msg }
func (e *opError) Unwrap() error { return e.kind }

func notFound(format string, a ...any) error {
	return &opError{kind: errNotFound, msg: fmt.Sprintf(format, a...)}
}

func badRequest(format string, a ...any) error {
	return &opError{kind: errBadRequest, msg: fmt.Sprintf(format, a...)}
}

// statusOf maps a model error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// settings are the modelled settings of one (non-inheriting group, location).
type settings struct {
	mode                      string // PULL or PUSH
	pull, opState, upLog, cmd int64  // heartbeats, seconds
	msl                       string // sem_server.name
	secure                    bool
	stoppedMode               string
}

// heartbeat is the interval a client of these settings checks in at: the pull
// heartbeat in pull mode, the operational-state upload heartbeat in push mode.
func (s settings) heartbeat() time.Duration {
	hb := s.opState
	if s.mode == "PULL" {
		hb = s.pull
	}
	return time.Duration(max(hb, 1)) * time.Second
}

// mslEntry is one server of a management server list.
type mslEntry struct {
	server   int // index into model.servers
	https    bool
	port     int
	priority int
}

// msl is a management server list; immutable once made (entries sorted by priority).
type msl struct {
	name    string
	entries []mslEntry
}

func (l *msl) has(server int) bool {
	for _, e := range l.entries {
		if e.server == server {
			return true
		}
	}
	return false
}

// policy is an immutable snapshot of an effective policy, shared by every client
// that holds it.
type policy struct {
	set   settings
	msl   *msl
	certs []string // fingerprint of every server (by index) when the snapshot was made
	hb    time.Duration
}

type location struct {
	id, name string
}

// group is a client group. Inheriting groups take settings and policy snapshots
// from their source (nearest non-inheriting ancestor); they have their own location
// ids, with the same names as the source's locations.
type group struct {
	idx               int
	id, name, path    string
	desc              string
	parent            int // -1 for the root
	inherits          bool
	source            int // nearest non-inheriting ancestor-or-self
	locs              []location
	settings          []settings // per location, non-inheriting groups only
	pols              []*policy  // per location, non-inheriting groups only
	serial            string
	serialTime        time.Time
	created, modified int64
	clients           int
}

// server is a management server of the site.
type server struct {
	idx        int
	name, id   string
	cur, next  atomic.Pointer[serverCert]
	nextGen    int    // generation of the planned certificate after next (guarded by model.mu)
	clientAddr string // set once the listener is up
}

// client is a simulated SEP client; kept by value in one slice.
type client struct {
	uid, name, hwKey, ip string
	serial               string   // profileSerialNo
	pol                  *policy  // cached policy
	certs                []string // cached certificate fingerprints, by server index
	lastUpdate           int64    // epoch ms; written through setLastUpdateLocked
	gen                  uint32   // invalidates heap entries
	group                int32
	lastServer           int16 // -1 none
	build                uint8
	os                   uint8
	loc                  uint8
	online, orphaned     bool
	roamer               bool // a laptop or VPN client that drops offline at random
	away                 bool // a roamer's absence: offline until its return check-in
	blocked              bool // cannot reach the manager (admin API): no check-ins
}

// checkingIn reports whether the client checks in now (SEPM shows it online).
func (c *client) checkingIn() bool {
	return c.online && !c.away && !c.blocked && !c.orphaned
}

// revert is a scheduled return of clients to an online state.
type revert struct {
	at     int64 // unix ns
	idx    []int32
	online bool
}

var osNames = []string{
	"Windows 11 Enterprise Edition",
	"Windows 10 Enterprise Edition",
	"Windows Server 2022 Standard Edition",
	"macOS 14",
}

// model is the whole simulated site; every field below mu is guarded by it.
type model struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	builds  []agentBuild
	servers []*server
	created int64

	domainID, siteID, adminID string

	mu        sync.Mutex
	rt        *rand.Rand // runtime randomness: jitter, server order
	choice    *rand.Rand // which clients SetOnline picks
	groups    []*group
	groupByID map[string]int
	msls      map[string]*msl
	certs     []string // current fingerprint of every server; replaced, never mutated
	clients   []client
	heap      hbHeap
	reverts   []revert
	scratch   []int
	wake      chan struct{}
	checkins  uint64 // successful check-ins since the start
	fetchFail uint64 // check-ins that failed to download a newer policy
	absences  uint64 // roaming absences since the start
	patches   map[patchKey]*patchCount
	rogue     int             // unexpected certificates made so far
	byName    []int32         // client indexes by computer name (names never change)
	byID      []int32         // client indexes by unique id
	rankName  []int32         // client index -> position in byName
	rankID    []int32         // client index -> position in byID
	lu        luIndex         // clients by lastUpdate
	rec       *recordTemplate // the JSON of a full computer record, cut at its changing fields; immutable
	recLite   *recordTemplate // the same of a reduced record (verbose=true); immutable
	uids      []string        // every client's unique id in order, made by the first state save
	onlineN   int             // clients checking in now (client.checkingIn), kept by trackOnlineLocked
}

// trackOnlineLocked keeps onlineN after a change to c's online, away, blocked or
// orphaned state; was is c.checkingIn() before the change. Every such change after
// the fleet is built goes through it (or is followed by countOnlineLocked).
func (m *model) trackOnlineLocked(c *client, was bool) {
	switch now := c.checkingIn(); {
	case now && !was:
		m.onlineN++
	case !now && was:
		m.onlineN--
	}
}

// countOnlineLocked sets onlineN from the fleet (after it is built or restored).
func (m *model) countOnlineLocked() {
	m.onlineN = 0
	for i := range m.clients {
		if m.clients[i].checkingIn() {
			m.onlineN++
		}
	}
}

func hexID(r *rand.Rand) string {
	return fmt.Sprintf("%016X%016X", r.Uint64(), r.Uint64())
}

// newModel builds the site from options that already carry their defaults.
func newModel(opts Options, now func() time.Time) (*model, error) {
	shares, err := parseVersions(opts.Versions)
	if err != nil {
		return nil, err
	}
	seed := uint64(opts.Seed)
	rng := rand.New(rand.NewPCG(seed, 0x5e9d51a7))
	m := &model{
		opts:      opts,
		log:       opts.Logger,
		now:       now,
		rt:        rand.New(rand.NewPCG(seed, 0x7e4a)),
		choice:    rand.New(rand.NewPCG(seed, 0xc401ce)),
		groupByID: map[string]int{},
		msls:      map[string]*msl{},
		patches:   map[patchKey]*patchCount{},
		wake:      make(chan struct{}, 1),
	}
	start := now()
	m.created = start.Add(-365 * 24 * time.Hour).UnixMilli()
	m.domainID = hexID(rng)
	m.siteID = hexID(rng)
	m.adminID = hexID(rng)

	// Servers and their certificates.
	m.certs = make([]string, opts.Servers)
	for i := range opts.Servers {
		s := &server{idx: i, name: fmt.Sprintf("sepm-%02d", i+1), id: hexID(rng)}
		cur, err := newServerCert(opts.Seed, s.name, certPlanned, 0)
		if err != nil {
			return nil, err
		}
		next, err := newServerCert(opts.Seed, s.name, certPlanned, 1)
		if err != nil {
			return nil, err
		}
		s.cur.Store(cur)
		s.next.Store(next)
		s.nextGen = 2
		m.servers = append(m.servers, s)
		m.certs[i] = cur.fp
	}

	// The default MSL.
	def := &msl{name: defaultMSLName}
	for i := range opts.Servers {
		prio := 1
		if opts.Failover == FailoverPriority {
			prio = i + 1
		}
		def.entries = append(def.entries, mslEntry{server: i, https: true, port: httpsPort, priority: prio})
		if opts.Failover == FailoverNone {
			break
		}
	}
	m.msls[def.name] = def

	m.buildGroups(rng, start)
	if err := m.buildFleet(rng, shares, start); err != nil {
		return nil, err
	}
	m.sortIndexesLocked()
	m.rebuildLULocked()
	m.countOnlineLocked()
	if m.rec, err = m.newRecordTemplate(false); err != nil {
		return nil, err
	}
	if m.recLite, err = m.newRecordTemplate(true); err != nil {
		return nil, err
	}
	return m, nil
}

// scheduleLocked puts client i's next heartbeat one jittered interval after now
// (hb x [1-Jitter, 1+Jitter]).
func (m *model) scheduleLocked(i int32, now time.Time, hb time.Duration) {
	j := m.opts.Jitter
	d := time.Duration(float64(hb) * (1 - j + 2*j*m.rt.Float64()))
	m.pushLocked(hbEntry{due: now.Add(d).UnixNano(), idx: i, gen: m.clients[i].gen})
}

// Roaming: after a check-in that leaves a roamer on its group's current policy, it
// drops offline with roamChance, for roamMin to roamMax of its own heartbeat (a lid
// closed, a VPN down), and checks in again when it returns. A laptop closes its lid
// between check-ins, not in the middle of a policy download: a roamer that failed
// to download a newer policy stays up and retries. Absences are shorter than
// Broadcom's three heartbeats, so a wait of three heartbeats that also waits for the
// clients it sees online leaves nobody behind, and a shorter one does not.
//
// A failed policy download (Options.PolicyFetch) is retried after fetchRetryMin to
// fetchRetryMax of the heartbeat, as the client retries a download, not a heartbeat.
const (
	roamChance    = 0.5
	roamMin       = 1.25
	roamMax       = 2.75
	fetchRetryMin = 0.05
	fetchRetryMax = 0.15
)

func (m *model) pushLocked(e hbEntry) {
	earliest := len(m.heap) == 0 || e.due < m.heap[0].due
	m.heap.push(e)
	if earliest {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// stepLocked runs every heartbeat and online revert due at or before now.
func (m *model) stepLocked(now time.Time) {
	ns := now.UnixNano()
	for len(m.reverts) > 0 && m.reverts[0].at <= ns {
		r := m.reverts[0]
		m.reverts = m.reverts[1:]
		for _, i := range r.idx {
			m.setOnlineLocked(i, r.online, now)
		}
	}
	for len(m.heap) > 0 && m.heap[0].due <= ns {
		e := m.heap.pop()
		c := &m.clients[e.idx]
		if e.gen != c.gen || !c.online || c.orphaned || c.blocked {
			continue
		}
		was := c.checkingIn()
		c.away = false // a roamer's return check-in
		m.heartbeatLocked(e.idx, now)
		m.trackOnlineLocked(c, was)
	}
}

// nextDueLocked is the time of the next scheduled event, or zero when none.
func (m *model) nextDueLocked() int64 {
	var next int64
	if len(m.heap) > 0 {
		next = m.heap[0].due
	}
	if len(m.reverts) > 0 && (next == 0 || m.reverts[0].at < next) {
		next = m.reverts[0].at
	}
	return next
}

// orderLocked lists the entry indexes of l in the order a client tries them: by
// priority, random within a priority.
func (m *model) orderLocked(l *msl) []int {
	o := m.scratch[:0]
	for i := range l.entries {
		o = append(o, i)
	}
	for start := 0; start < len(o); {
		end := start + 1
		for end < len(o) && l.entries[o[end]].priority == l.entries[o[start]].priority {
			end++
		}
		for k := end - 1; k > start; k-- {
			j := start + m.rt.IntN(k-start+1)
			o[k], o[j] = o[j], o[k]
		}
		start = end
	}
	m.scratch = o
	return o
}

// heartbeatLocked is one check-in attempt of client i (the client model).
func (m *model) heartbeatLocked(i int32, now time.Time) {
	c := &m.clients[i]
	pol := c.pol
	b := &m.builds[c.build]
	for _, ei := range m.orderLocked(pol.msl) {
		e := pol.msl.entries[ei]
		if m.certs[e.server] != c.certs[e.server] && (pol.set.secure || (e.https && b.major >= 14)) {
			continue // the client does not trust what this server presents
		}
		g := m.groups[c.group]
		m.setLastUpdateLocked(i, now.UnixMilli())
		c.lastServer = int16(e.server)
		m.checkins++
		if c.serial != g.serial && m.opts.PolicyFetch < 1 && m.rt.Float64() >= m.opts.PolicyFetch {
			// The heartbeat got through but the download of the newer policy did
			// not (busy manager, flaky link): the client keeps its cached policy and
			// tries again after a short back-off.
			m.fetchFail++
			retry := time.Duration(float64(pol.hb) * (fetchRetryMin + (fetchRetryMax-fetchRetryMin)*m.rt.Float64()))
			m.pushLocked(hbEntry{due: now.Add(retry).UnixNano(), idx: i, gen: c.gen})
			return
		}
		cur := m.groups[g.source].pols[c.loc]
		if !b.is142 || !pol.set.secure {
			c.certs = cur.certs
		}
		c.pol = cur
		c.serial = g.serial
		if c.roamer && m.rt.Float64() < roamChance {
			away := time.Duration(float64(cur.hb) * (roamMin + (roamMax-roamMin)*m.rt.Float64()))
			c.away = true
			m.absences++
			m.pushLocked(hbEntry{due: now.Add(away).UnixNano(), idx: i, gen: c.gen})
			return
		}
		m.scheduleLocked(i, now, cur.hb)
		return
	}
	c.orphaned = true
	c.gen++
	m.log.Debug("sim: client orphaned", "client", c.name, "group", m.groups[c.group].path, "agent", b.version)
}

// setOnlineLocked turns client i on or off; a client coming back checks in within a
// tenth of its heartbeat.
func (m *model) setOnlineLocked(i int32, online bool, now time.Time) {
	c := &m.clients[i]
	if c.online == online {
		return
	}
	was := c.checkingIn()
	c.online = online
	c.away = false
	c.gen++
	m.trackOnlineLocked(c, was)
	if online && !c.orphaned && !c.blocked {
		d := time.Duration(m.rt.Int64N(int64(c.pol.hb)/10 + 1))
		m.pushLocked(hbEntry{due: now.Add(d).UnixNano(), idx: i, gen: c.gen})
	}
}

// addRevertLocked schedules clients to return to a state at a time.
func (m *model) addRevertLocked(r revert) {
	k := sort.Search(len(m.reverts), func(j int) bool { return m.reverts[j].at > r.at })
	m.reverts = append(m.reverts, revert{})
	copy(m.reverts[k+1:], m.reverts[k:])
	m.reverts[k] = r
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *model) serverByName(name string) (*server, error) {
	for _, s := range m.servers {
		if strings.EqualFold(s.name, name) || s.id == name {
			return s, nil
		}
	}
	return nil, notFound("no server %q", name)
}

func (m *model) groupLocked(id string) (*group, error) {
	gi, ok := m.groupByID[strings.ToUpper(id)]
	if !ok {
		return nil, notFound("group %s not found", id)
	}
	return m.groups[gi], nil
}

func (g *group) locIndex(id string) (int, error) {
	for i, l := range g.locs {
		if strings.EqualFold(l.id, id) {
			return i, nil
		}
	}
	return 0, notFound("location %s not found in group %s", id, g.path)
}
