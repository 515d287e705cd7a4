package sim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/gob"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The state file (Options.StateFile, `sepmbot sim --state FILE`) keeps the site
// across restarts: a bbolt file with one snapshot of everything that changes
// (settings, lists, certificates with their keys, policy serials and their times,
// every client's cached policy, certificates, last check-in and next heartbeat,
// blocked/away/offline/orphaned, PATCH counts). What follows from the seed and the
// shape options (groups, ids, names, versions) is rebuilt and checked against it.
//
// Guarantees: a reply to a REST or admin call that changes the site is sent only
// after the change is in the file (bbolt's Update: durable when it returns). Client
// check-ins are written every Options.StateInterval and on Close, so a process that
// is killed loses at most that much heartbeat progress, never a setting. REST
// tokens are not kept: a restarted SEPM asks clients of its API to log in again.

const (
	stateBucket  = "sepmbot-sim"
	stateKey     = "site"
	stateVersion = 1
)

type snapshot struct {
	Version  int
	Shape    string
	UIDs     []string // every client's unique id, in order: the fleet the file belongs to
	Groups   []groupState
	MSLs     []mslState
	Servers  []serverState
	Policies []policyState
	CertSets [][]string
	Clients  []clientState
	Reverts  []revertState
	Patches  []patchState
	Checkins uint64
	Fails    uint64
	Absences uint64
	Rogue    int
	SavedAt  int64

	due []int64 // scratch of snapshotLocked, not saved
}

type groupState struct {
	ID         string
	Settings   []settingsState
	Serial     string
	SerialTime int64 // unix ns
	Modified   int64
}

type mslState struct {
	Name    string
	Entries []entryState
}

// settingsState and entryState are settings and mslEntry with exported fields (gob).
type settingsState struct {
	Mode                      string
	Pull, OpState, UpLog, Cmd int64
	MSL                       string
	Secure                    bool
	StoppedMode               string
}

type entryState struct {
	Server   int
	HTTPS    bool
	Port     int
	Priority int
}

func toSettingsState(s settings) settingsState {
	return settingsState{s.mode, s.pull, s.opState, s.upLog, s.cmd, s.msl, s.secure, s.stoppedMode}
}

func (s settingsState) settings() settings {
	return settings{mode: s.Mode, pull: s.Pull, opState: s.OpState, upLog: s.UpLog, cmd: s.Cmd, msl: s.MSL, secure: s.Secure, stoppedMode: s.StoppedMode}
}

type serverState struct {
	Name             string
	ClientAddr       string // the client-port listener, reused after a restart
	CurDER, CurKey   []byte
	NextDER, NextKey []byte
	NextGen          int
}

type policyState struct {
	Set   settingsState
	MSL   string
	Certs int // index into CertSets
	HB    time.Duration
}

type clientState struct {
	Serial     string
	Pol, Certs int
	LastUpdate int64
	LastServer int16
	Online     bool
	Orphaned   bool
	Away       bool
	Blocked    bool
	Due        int64 // unix ns of the next heartbeat, 0 for none
}

type revertState struct {
	At     int64
	Idx    []int32
	Online bool
}

type patchState struct {
	G, L   int
	N      int
	Fields map[string]FieldPatches
}

// shape is what must match between a state file and the options: the seed and
// every option that shapes the fleet.
func shape(o Options) string {
	return fmt.Sprintf("seed=%d clients=%d servers=%d groups=%d noninheriting=%d remote=%d versions=%s offline=%d roaming=%d failover=%s heartbeat=%s manager=%s",
		o.Seed, o.Clients, o.Servers, o.Groups, o.NonInheriting, o.RemoteLocationGroups, o.Versions, o.OfflinePercent, o.RoamingPercent, o.Failover, o.Heartbeat, o.ManagerVersion)
}

// snapshotLocked captures the site's changing state. reuse, when not nil, is a
// snapshot whose save has finished: its per-client slices are reused (a save at
// 500,000 clients would otherwise allocate some 30 MB for them).
func (m *model) snapshotLocked(reuse *snapshot) *snapshot {
	var clients []clientState
	var due []int64
	if reuse != nil {
		clients, due = reuse.Clients, reuse.due
	}
	sn := &snapshot{Version: stateVersion, Shape: shape(m.opts), Checkins: m.checkins, Fails: m.fetchFail,
		Absences: m.absences, Rogue: m.rogue, SavedAt: m.now().UnixNano()}
	for _, g := range m.groups {
		gs := groupState{ID: g.id, Serial: g.serial, SerialTime: g.serialTime.UnixNano(), Modified: g.modified}
		for _, st := range g.settings {
			gs.Settings = append(gs.Settings, toSettingsState(st))
		}
		sn.Groups = append(sn.Groups, gs)
	}
	for _, l := range m.msls {
		ls := mslState{Name: l.name}
		for _, e := range l.entries {
			ls.Entries = append(ls.Entries, entryState{e.server, e.https, e.port, e.priority})
		}
		sn.MSLs = append(sn.MSLs, ls)
	}
	for _, s := range m.servers {
		cur, next := s.cur.Load(), s.next.Load()
		sn.Servers = append(sn.Servers, serverState{Name: s.name, ClientAddr: s.clientAddr, CurDER: cur.der, CurKey: cur.key, NextDER: next.der, NextKey: next.key, NextGen: s.nextGen})
	}
	certIdx := map[*string]int{}
	var lastCerts *string // most clients share few sets: skip the map for a run of one
	lastCertsIdx := -1
	internCerts := func(c []string) int {
		if len(c) == 0 {
			return -1
		}
		if &c[0] == lastCerts {
			return lastCertsIdx
		}
		if i, ok := certIdx[&c[0]]; ok {
			lastCerts, lastCertsIdx = &c[0], i
			return i
		}
		certIdx[&c[0]] = len(sn.CertSets)
		sn.CertSets = append(sn.CertSets, c)
		return len(sn.CertSets) - 1
	}
	polIdx := map[*policy]int{}
	var lastPol *policy
	lastPolIdx := -1
	internPol := func(p *policy) int {
		if p == lastPol {
			return lastPolIdx
		}
		if i, ok := polIdx[p]; ok {
			lastPol, lastPolIdx = p, i
			return i
		}
		polIdx[p] = len(sn.Policies)
		sn.Policies = append(sn.Policies, policyState{Set: toSettingsState(p.set), MSL: p.msl.name, Certs: internCerts(p.certs), HB: p.hb})
		return len(sn.Policies) - 1
	}
	if cap(due) < len(m.clients) {
		due = make([]int64, len(m.clients))
	}
	due = due[:len(m.clients)]
	clear(due) // 0: none
	sn.due = due
	for _, e := range m.heap {
		if e.gen == m.clients[e.idx].gen {
			if d := due[e.idx]; d == 0 || e.due < d {
				due[e.idx] = e.due
			}
		}
	}
	if m.uids == nil { // unique ids never change: one list for every save
		m.uids = make([]string, len(m.clients))
		for i := range m.clients {
			m.uids[i] = m.clients[i].uid
		}
	}
	sn.UIDs = m.uids
	if cap(clients) < len(m.clients) {
		clients = make([]clientState, len(m.clients))
	}
	sn.Clients = clients[:len(m.clients)]
	for i := range m.clients {
		c := &m.clients[i]
		sn.Clients[i] = clientState{Serial: c.serial, Pol: internPol(c.pol), Certs: internCerts(c.certs), LastUpdate: c.lastUpdate,
			LastServer: c.lastServer, Online: c.online, Orphaned: c.orphaned, Away: c.away, Blocked: c.blocked, Due: due[i]}
	}
	for _, r := range m.reverts {
		sn.Reverts = append(sn.Reverts, revertState{At: r.at, Idx: r.idx, Online: r.online})
	}
	for k, p := range m.patches {
		ps := patchState{G: k.g, L: k.l, N: p.n, Fields: map[string]FieldPatches{}}
		for f, v := range p.fields {
			ps.Fields[f] = *v
		}
		sn.Patches = append(sn.Patches, ps)
	}
	return sn
}

// restoreLocked overlays a snapshot on a model freshly built from the same options.
func (m *model) restoreLocked(sn *snapshot) error {
	if sn.Version != stateVersion {
		return fmt.Errorf("sim: state file version %d, want %d", sn.Version, stateVersion)
	}
	if want := shape(m.opts); sn.Shape != want {
		return fmt.Errorf("sim: the state file holds another site (%s); start with the same options (%s) or use another file", sn.Shape, want)
	}
	if len(sn.Clients) != len(m.clients) || len(sn.Groups) != len(m.groups) || len(sn.Servers) != len(m.servers) {
		return errors.New("sim: the state file does not match the site's size")
	}
	for i := range m.clients {
		if sn.UIDs[i] != m.clients[i].uid {
			return errors.New("sim: the state file holds another fleet")
		}
	}
	for _, l := range sn.MSLs {
		cp := &msl{name: l.Name}
		for _, e := range l.Entries {
			if e.Server < 0 || e.Server >= len(m.servers) {
				return errors.New("sim: the state file names an unknown server")
			}
			cp.entries = append(cp.entries, mslEntry{server: e.Server, https: e.HTTPS, port: e.Port, priority: e.Priority})
		}
		m.msls[l.Name] = cp
	}
	m.certs = make([]string, len(m.servers))
	for i, s := range m.servers {
		st := sn.Servers[i]
		cur, err := certFromState(st.CurDER, st.CurKey)
		if err != nil {
			return err
		}
		next, err := certFromState(st.NextDER, st.NextKey)
		if err != nil {
			return err
		}
		s.cur.Store(cur)
		s.next.Store(next)
		s.nextGen = st.NextGen
		s.clientAddr = st.ClientAddr
		m.certs[i] = cur.fp
	}
	for i, g := range m.groups {
		st := sn.Groups[i]
		if st.ID != g.id {
			return errors.New("sim: the state file holds other groups")
		}
		if !g.inherits {
			if len(st.Settings) != len(g.settings) {
				return errors.New("sim: the state file holds other locations")
			}
			for l, ss := range st.Settings {
				if _, ok := m.msls[ss.MSL]; !ok {
					return fmt.Errorf("sim: the state file names an unknown list %q", ss.MSL)
				}
				g.settings[l] = ss.settings()
			}
			m.rebuildLocked(g)
		}
		g.serial, g.serialTime, g.modified = st.Serial, time.Unix(0, st.SerialTime).UTC(), st.Modified
	}
	pols := make([]*policy, len(sn.Policies))
	for i, p := range sn.Policies {
		l, ok := m.msls[p.MSL]
		if !ok {
			return fmt.Errorf("sim: the state file names an unknown list %q", p.MSL)
		}
		var certs []string
		if p.Certs >= 0 && p.Certs < len(sn.CertSets) {
			certs = sn.CertSets[p.Certs]
		}
		pols[i] = &policy{set: p.Set.settings(), msl: l, certs: certs, hb: p.HB}
	}
	m.heap = m.heap[:0]
	for i := range m.clients {
		c, st := &m.clients[i], sn.Clients[i]
		if st.Pol < 0 || st.Pol >= len(pols) || st.Certs < 0 || st.Certs >= len(sn.CertSets) {
			return errors.New("sim: the state file is damaged")
		}
		c.serial, c.pol, c.certs = st.Serial, pols[st.Pol], sn.CertSets[st.Certs]
		c.lastUpdate, c.lastServer = st.LastUpdate, st.LastServer
		c.online, c.orphaned, c.away, c.blocked = st.Online, st.Orphaned, st.Away, st.Blocked
		c.gen++
		if st.Due != 0 && c.online && !c.orphaned && !c.blocked {
			m.heap.push(hbEntry{due: st.Due, idx: int32(i), gen: c.gen})
		}
	}
	m.rebuildLULocked()
	m.countOnlineLocked()
	m.reverts = m.reverts[:0]
	for _, r := range sn.Reverts {
		m.reverts = append(m.reverts, revert{at: r.At, idx: r.Idx, online: r.Online})
	}
	clear(m.patches)
	for _, p := range sn.Patches {
		pc := &patchCount{n: p.N, fields: map[string]*FieldPatches{}}
		for f, v := range p.Fields {
			pc.fields[f] = &v
		}
		m.patches[patchKey{p.G, p.L}] = pc
	}
	m.checkins, m.fetchFail, m.absences, m.rogue = sn.Checkins, sn.Fails, sn.Absences, sn.Rogue
	return nil
}

func certFromState(der, raw []byte) (*serverCert, error) {
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("sim: the state file holds a damaged certificate key: %w", err)
	}
	return certFromDER(der, key, raw)
}

// stateFile is the open state file of a site.
type stateFile struct {
	db  *bolt.DB
	buf bytes.Buffer // the encoded snapshot, reused from save to save
	enc snapEncoder
}

func openState(path string) (*stateFile, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("sim: state file %s is in use by another simulator: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("sim: open state file %s: %w", path, err)
	}
	return &stateFile{db: db}, nil
}

// load returns the stored snapshot, or nil when the file holds none yet.
func (f *stateFile) load() (*snapshot, error) {
	var raw []byte
	err := f.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(stateBucket)); b != nil {
			raw = bytes.Clone(b.Get([]byte(stateKey)))
		}
		return nil
	})
	if err != nil || raw == nil {
		return nil, err
	}
	var sn snapshot
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&sn); err != nil {
		return nil, fmt.Errorf("sim: read state file: %w", err)
	}
	return &sn, nil
}

// save writes sn; callers serialise saves (Site.saveMu), which share one buffer.
func (f *stateFile) save(sn *snapshot) error {
	buf := &f.buf
	if err := f.enc.encode(buf, sn); err != nil {
		return fmt.Errorf("sim: encode state: %w", err)
	}
	err := f.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(stateBucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(stateKey), buf.Bytes())
	})
	if err != nil {
		return fmt.Errorf("sim: write state file: %w", err)
	}
	return nil
}

func (f *stateFile) close() error { return f.db.Close() }

// saveState writes the site's state now (no-op without a state file). Saves are
// serialised, so a later snapshot is never overwritten by an earlier one.
func (s *Site) saveState() error {
	if s.state == nil {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	m := s.model()
	m.mu.Lock()
	sn := m.snapshotLocked(s.lastSnap)
	m.mu.Unlock()
	err := s.state.save(sn)
	s.lastSnap = sn // its save is done: the next snapshot reuses its slices
	return err
}

// runSaver writes the state every interval until ctx is done.
func (s *Site) runSaver(done <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if err := s.saveState(); err != nil {
				s.log.Error("sim: saving the state failed", "err", err)
			}
		}
	}
}

// durable makes a reply to a call that changes the site wait until the change is
// in the state file: the reply is held, the state saved, then the reply sent (a
// failed save answers 500, as a SEPM whose database failed would).
func (s *Site) durable(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.state == nil || r.Method == http.MethodGet || strings.HasSuffix(r.URL.Path, "/identity/authenticate") || strings.HasSuffix(r.URL.Path, "/identity/logout") {
			h.ServeHTTP(w, r)
			return
		}
		rec := &heldReply{h: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if rec.status < 300 {
			if err := s.saveState(); err != nil {
				s.log.Error("sim: saving the state failed", "err", err)
				writeError(w, http.StatusInternalServerError, "The web service encountered an error while processing the web request.")
				return
			}
		}
		for k, v := range rec.h {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	})
}

// heldReply holds a reply until it may be sent.
type heldReply struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *heldReply) Header() http.Header         { return r.h }
func (r *heldReply) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *heldReply) WriteHeader(code int)        { r.status = code }
