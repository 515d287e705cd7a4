package sim

import (
	"errors"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sepmbot/sepm"
)

// fakeClock is the model's clock in model tests: time moves only by advance.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type testModel struct {
	*model
	clk *fakeClock
	t   *testing.T
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestModel(t *testing.T, o Options) *testModel {
	t.Helper()
	if o.Password == "" {
		o.Password = "test-password"
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = time.Second
	}
	if o.Clients == 0 {
		o.Clients = 200
	}
	o.Logger = quietLogger()
	o, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC)}
	m, err := newModel(o, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	return &testModel{model: m, clk: clk, t: t}
}

// advance runs every heartbeat due in the next d, each at its own time.
func (tm *testModel) advance(d time.Duration) {
	until := tm.clk.now().Add(d)
	tm.mu.Lock()
	defer tm.mu.Unlock()
	for {
		next := tm.nextDueLocked()
		if next == 0 || next > until.UnixNano() {
			break
		}
		tm.clk.set(time.Unix(0, next).UTC())
		tm.stepLocked(tm.clk.now())
	}
	tm.clk.set(until)
}

// heartbeats advances by n heartbeat intervals (plus the jitter).
func (tm *testModel) heartbeats(n int) {
	tm.advance(time.Duration(float64(n)*1.1*float64(tm.opts.Heartbeat)) + time.Millisecond)
}

func (tm *testModel) groupByPath(path string) *group {
	tm.t.Helper()
	for _, g := range tm.groups {
		if g.path == path {
			return g
		}
	}
	tm.t.Fatalf("no group %q", path)
	return nil
}

func (tm *testModel) serial(path string) string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.groupByPath(path).serial
}

func (tm *testModel) patch(g *group, loc int, cfg sepm.Configuration) {
	tm.t.Helper()
	if err := tm.patchSettings(g.id, g.locs[loc].id, cfg); err != nil {
		tm.t.Fatalf("patch %s: %v", g.path, err)
	}
}

func secureCfg(on bool) sepm.Configuration {
	return sepm.Configuration{GeneralSettings: &sepm.GeneralSettings{SecuritySettings: &sepm.SecuritySettings{SecureCommunications: &on}}}
}

func mslCfg(name string) sepm.Configuration {
	return sepm.Configuration{CommunicationSettings: &sepm.CommunicationSettings{SemServer: &sepm.ServerListSummary{Name: name}}}
}

// everyTarget patches every location of every non-inheriting group.
func (tm *testModel) patchAll(cfg sepm.Configuration) {
	tm.t.Helper()
	for _, g := range tm.groups {
		if g.inherits {
			continue
		}
		for l := range g.locs {
			tm.patch(g, l, cfg)
		}
	}
}

// settle advances until every online client holds its group's current policy.
func (tm *testModel) settle() {
	tm.t.Helper()
	for range 20 {
		tm.heartbeats(1)
		if tm.fleet().Pending == 0 {
			return
		}
	}
	tm.t.Fatalf("clients did not settle: %+v", tm.fleet().Pending)
}

func (tm *testModel) updateCert(name string) {
	tm.t.Helper()
	if _, err := tm.updateCertificate(name, false); err != nil {
		tm.t.Fatal(err)
	}
}

var serialRE = regexp.MustCompile(`^[0-9A-F]{4}-\d\d/\d\d/\d{4} \d\d:\d\d:\d\d \d{3}$`)

func TestPolicySerialFormatAndInheritance(t *testing.T) {
	tm := newTestModel(t, Options{Groups: 8, NonInheriting: 2})
	for _, g := range tm.groups {
		if !serialRE.MatchString(g.serial) || !strings.HasPrefix(g.serial, g.id[:4]) {
			t.Fatalf("group %s serial %q: want XXXX-MM/DD/YYYY HH:MM:SS mmm with XXXX = %s", g.path, g.serial, g.id[:4])
		}
	}
	ws := tm.groupByPath(`My Company\Workstations`)
	fin := tm.groupByPath(`My Company\Workstations\Finance`)
	srv := tm.groupByPath(`My Company\Servers`)
	root := tm.groupByPath(`My Company`)
	dflt := tm.groupByPath(`My Company\Default Group`)
	if ws.inherits || srv.inherits || root.inherits || !fin.inherits || !dflt.inherits {
		t.Fatalf("inheritance: ws %v srv %v root %v fin %v default %v", ws.inherits, srv.inherits, root.inherits, fin.inherits, dflt.inherits)
	}
	before := map[string]string{}
	for _, g := range tm.groups {
		before[g.path] = g.serial
	}
	change := time.Date(2026, 11, 25, 9, 30, 15, 123_456_789, time.UTC)
	tm.clk.set(change)
	tm.patch(ws, 0, secureCfg(false))
	want := ws.id[:4] + "-11/25/2026 09:30:15 123"
	if ws.serial != want {
		t.Fatalf("serial after PATCH = %q, want %q", ws.serial, want)
	}
	if fin.serial == before[fin.path] || !strings.HasPrefix(fin.serial, fin.id[:4]+"-11/25/2026 09:30:15") {
		t.Fatalf("inheriting child serial %q did not change with its parent", fin.serial)
	}
	for _, p := range []string{srv.path, root.path, dflt.path} {
		if tm.serial(p) != before[p] {
			t.Fatalf("%s serial changed on a PATCH of Workstations", p)
		}
	}
	// Same instant again: the serial still strictly increases.
	first := ws.serial
	tm.patch(ws, 0, secureCfg(true))
	if ws.serial != ws.id[:4]+"-11/25/2026 09:30:15 124" || ws.serial == first {
		t.Fatalf("second serial at the same instant = %q, want one ms later", ws.serial)
	}
	// A PATCH on the root changes the groups that inherit from the root, not
	// Workstations (which does not inherit).
	wsSerial := ws.serial
	tm.clk.set(change.Add(time.Second))
	tm.patch(root, 0, secureCfg(false))
	if dflt.serial == before[dflt.path] || ws.serial != wsSerial {
		t.Fatalf("root PATCH: default group %q (was %q), workstations %q (was %q)", dflt.serial, before[dflt.path], ws.serial, wsSerial)
	}
	// Settings of an inheriting group show its source's, and cannot be patched.
	st, err := tm.locationSettings(fin.id, fin.locs[0].id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Configuration.GeneralSettings.SecuritySettings.SecureCommunications != true {
		t.Fatalf("Finance shows secure=%v, want Workstations' true", st.Configuration.GeneralSettings.SecuritySettings.SecureCommunications)
	}
	err = tm.patchSettings(fin.id, fin.locs[0].id, secureCfg(false))
	if !errors.Is(err, errBadRequest) || !strings.Contains(err.Error(), "group inherits its policy from its parent") {
		t.Fatalf("PATCH on an inheriting group: %v", err)
	}
	if err := tm.patchSettings(ws.id, ws.locs[0].id, mslCfg("No Such List")); !errors.Is(err, errBadRequest) {
		t.Fatalf("PATCH with an unknown MSL: %v", err)
	}
	if err := tm.patchSettings(ws.id, "0000", secureCfg(false)); !errors.Is(err, errNotFound) {
		t.Fatalf("PATCH of an unknown location: %v", err)
	}
}

func TestPatchMergesOnlyPresentFields(t *testing.T) {
	tm := newTestModel(t, Options{})
	ws := tm.groupByPath(`My Company\Workstations`)
	hb := int64(7)
	tm.patch(ws, 0, sepm.Configuration{CommunicationSettings: &sepm.CommunicationSettings{UploadOpStateHeartbeatFreqInSec: &hb}})
	s := ws.settings[0]
	if s.opState != 7 || s.pull != 1 || s.msl != defaultMSLName || !s.secure || s.mode != "PUSH" {
		t.Fatalf("after merging one heartbeat: %+v", s)
	}
	if ws.pols[0].hb != 7*time.Second {
		t.Fatalf("policy heartbeat %v, want 7s (push mode uses the op-state upload heartbeat)", ws.pols[0].hb)
	}
	bad := int64(0)
	if err := tm.patchSettings(ws.id, ws.locs[0].id, sepm.Configuration{CommunicationSettings: &sepm.CommunicationSettings{PullModeHeartbeatFreqInSeconds: &bad}}); !errors.Is(err, errBadRequest) {
		t.Fatalf("heartbeat 0: %v", err)
	}
}

func TestRemoteLocations(t *testing.T) {
	tm := newTestModel(t, Options{Groups: 8, NonInheriting: 2, RemoteLocationGroups: 1})
	ws := tm.groupByPath(`My Company\Workstations`)
	if len(ws.locs) != 2 || ws.locs[0].name != "Default" || ws.locs[1].name != "Remote VPN" {
		t.Fatalf("Workstations locations: %+v", ws.locs)
	}
	if srv := tm.groupByPath(`My Company\Servers`); len(srv.locs) != 1 {
		t.Fatalf("Servers locations: %+v", srv.locs)
	}
	locs, err := tm.locations(ws.id, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Remote VPN:/sepm/api/v1/groups/" + ws.id + "/locations/" + ws.locs[1].id; locs[1] != want {
		t.Fatalf("location string %q, want %q", locs[1], want)
	}
	// The two locations have their own settings.
	tm.patch(ws, 1, secureCfg(false))
	if !ws.settings[0].secure || ws.settings[1].secure {
		t.Fatalf("settings: %+v", ws.settings)
	}
}

func TestOfflineClients(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 100, Servers: 2, Versions: "14.3=100"})
	ids, err := tm.setOnline(2, false, 0)
	if err != nil || len(ids) != 2 {
		t.Fatal(ids, err)
	}
	early, late := ids[0], ids[1]
	idx := func(id string) *client {
		for i := range tm.clients {
			if tm.clients[i].uid == id {
				return &tm.clients[i]
			}
		}
		t.Fatalf("no client %s", id)
		return nil
	}
	lastSeen := idx(late).lastUpdate
	tm.updateCert("sepm-01")
	tm.settle()
	tm.heartbeats(3)
	if c := idx(late); c.lastUpdate != lastSeen || c.orphaned {
		t.Fatal("an offline client checked in")
	}
	// early returns while sepm-02 still presents the old certificate.
	if err := tm.setClientsOnline([]string{early}, true); err != nil {
		t.Fatal(err)
	}
	tm.settle()
	tm.updateCert("sepm-02")
	tm.settle()
	tm.heartbeats(3)
	// late returns after every server has the new certificate.
	if err := tm.setClientsOnline([]string{late}, true); err != nil {
		t.Fatal(err)
	}
	tm.heartbeats(2)
	if c := idx(early); c.orphaned {
		t.Fatal("the client that returned while sepm-02 had the old certificate is orphaned")
	}
	if c := idx(late); !c.orphaned {
		t.Fatal("the client that returned after every update is not orphaned")
	}
	f := tm.fleet()
	if f.Orphaned != 1 || f.OK != 99 {
		t.Fatalf("%+v", f)
	}
}

func TestSetOnlineForADuration(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 100})
	ids, err := tm.setOnline(10, false, 5*time.Second)
	if err != nil || len(ids) != 10 {
		t.Fatal(ids, err)
	}
	if f := tm.fleet(); f.Offline != 10 {
		t.Fatalf("offline %d", f.Offline)
	}
	tm.advance(5 * time.Second)
	if f := tm.fleet(); f.Offline != 0 {
		t.Fatalf("offline %d after the duration", f.Offline)
	}
	if err := tm.setClientsOnline([]string{"NOPE"}, true); !errors.Is(err, errNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestMSLCopyAndAssign(t *testing.T) {
	tm := newTestModel(t, Options{Servers: 2, Failover: FailoverPriority})
	name, err := tm.copyMSLAsHTTP(defaultMSLName, 0)
	if err != nil || name != defaultMSLName+" (HTTP 8014)" {
		t.Fatal(name, err)
	}
	again, err := tm.copyMSLAsHTTP(defaultMSLName, 0)
	if err != nil || again != name {
		t.Fatalf("copy again: %q %v", again, err)
	}
	if _, err := tm.copyMSLAsHTTP("Nope", 0); !errors.Is(err, errNotFound) {
		t.Fatalf("copy of unknown: %v", err)
	}
	var cp MSLInfo
	for _, l := range tm.mslInfos() {
		if l.Name == name {
			cp = l
		}
	}
	if len(cp.Servers) != 2 || cp.Servers[0] != (MSLServer{Server: "sepm-01", Protocol: "HTTP", Port: 8014, Priority: 1}) ||
		cp.Servers[1] != (MSLServer{Server: "sepm-02", Protocol: "HTTP", Port: 8014, Priority: 2}) {
		t.Fatalf("copy: %+v", cp)
	}
	before := map[string]string{}
	for _, g := range tm.groups {
		before[g.path] = g.serial
	}
	tm.clk.set(tm.clk.now().Add(time.Second))
	ws := tm.groupByPath(`My Company\Workstations`)
	if err := tm.assignMSL(name, []Target{{GroupID: ws.id, LocationID: ws.locs[1].id}}); err != nil {
		t.Fatal(err)
	}
	if ws.settings[0].msl != defaultMSLName || ws.settings[1].msl != name || ws.serial == before[ws.path] {
		t.Fatalf("targeted assign: %+v serial %s", ws.settings, ws.serial)
	}
	if tm.serial(`My Company\Servers`) != before[`My Company\Servers`] {
		t.Fatal("assign changed an unrelated group's serial")
	}
	fin := tm.groupByPath(`My Company\Workstations\Finance`)
	if err := tm.assignMSL(name, []Target{{GroupID: fin.id}}); !errors.Is(err, errBadRequest) {
		t.Fatalf("assign to an inheriting group: %v", err)
	}
	if err := tm.assignMSL(name, nil); err != nil {
		t.Fatal(err)
	}
	for _, g := range tm.groups {
		if g.inherits {
			continue
		}
		for l, s := range g.settings {
			if s.msl != name {
				t.Fatalf("%s location %d still uses %q", g.path, l, s.msl)
			}
			st, _ := tm.locationSettings(g.id, g.locs[l].id)
			if st.Configuration.CommunicationSettings.SemServer.Name != name {
				t.Fatalf("settings view: %+v", st.Configuration.CommunicationSettings.SemServer)
			}
		}
	}
	n, err := tm.replaceMSL(defaultMSLName, name)
	if err != nil || n == 0 {
		t.Fatal(n, err)
	}
	if n2, _ := tm.replaceMSL(defaultMSLName, name); n2 != 0 {
		t.Fatalf("replace again changed %d", n2)
	}
}

func TestCertificateUpdateInstallsNext(t *testing.T) {
	tm := newTestModel(t, Options{Servers: 2})
	before := tm.serverInfos()
	info, err := tm.updateCertificate("sepm-02", false)
	if err != nil {
		t.Fatal(err)
	}
	if info.Fingerprint != before[1].NextFingerprint || info.NextFingerprint == before[1].NextFingerprint || info.Subject != "CN=sepm-02" {
		t.Fatalf("after update %+v, before %+v", info, before[1])
	}
	if after := tm.serverInfos(); after[0].Fingerprint != before[0].Fingerprint {
		t.Fatal("updating sepm-02 changed sepm-01")
	}
	if _, err := tm.updateCertificate("sepm-09", false); !errors.Is(err, errNotFound) {
		t.Fatalf("unknown server: %v", err)
	}
}

func TestSameSeedSameFleet(t *testing.T) {
	type row struct {
		uid, name, group, version, hw string
		online                        bool
		loc                           uint8
	}
	fleet := func(seed int64) ([]row, []string) {
		tm := newTestModel(t, Options{Clients: 300, Seed: seed, OfflinePercent: 20, Servers: 2})
		var rows []row
		for i := range tm.clients {
			c := &tm.clients[i]
			rows = append(rows, row{c.uid, c.name, tm.groups[c.group].path, tm.builds[c.build].version, c.hwKey, c.online, c.loc})
		}
		var ids []string
		for _, g := range tm.groups {
			ids = append(ids, g.id+" "+g.path)
		}
		for _, s := range tm.servers {
			ids = append(ids, s.id)
		}
		return rows, ids
	}
	a, ga := fleet(42)
	b, gb := fleet(42)
	c, _ := fleet(43)
	if len(a) != 300 {
		t.Fatalf("%d clients", len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("client %d differs with the same seed: %+v vs %+v", i, a[i], b[i])
		}
	}
	if strings.Join(ga, ",") != strings.Join(gb, ",") {
		t.Fatal("groups or servers differ with the same seed")
	}
	same := 0
	for i := range a {
		if a[i].uid == c[i].uid {
			same++
		}
	}
	if same != 0 {
		t.Fatalf("%d ids equal with another seed", same)
	}
}

func TestVersionAndOfflineShares(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 1000, Versions: "14.3=80,14.2=10,12.1=10", OfflinePercent: 15})
	byKey := map[string]int{}
	for _, row := range tm.clientVersions().ClientVersionList {
		byKey[row.Version[:4]] += row.ClientsCount
	}
	if byKey["14.3"] != 800 || byKey["14.2"] != 100 || byKey["12.1"] != 100 {
		t.Fatalf("versions: %v", byKey)
	}
	os := tm.onlineStatus()
	if os.ClientCountStatsList[0].ClientsCount != 850 || os.ClientCountStatsList[1].ClientsCount != 150 {
		t.Fatalf("online status: %+v", os)
	}
	if _, err := parseVersions("15.0=10"); err == nil {
		t.Fatal("unknown version key accepted")
	}
	tm12 := newTestModel(t, Options{Clients: 10, ManagerVersion: "12.1.7454.7000"})
	if v := tm12.apiVersion(); v.APIVersion != "12.1.7000" || v.Version != "12.1.7454.7000" {
		t.Fatalf("12.x manager version: %+v", v)
	}
	if cv := tm12.clientVersions(); cv.ClientVersionList[0].Version != "12.1.7454.7000" || len(cv.ClientVersionList) != 1 {
		t.Fatalf("12.x manager clients: %+v", cv)
	}
}

func TestHeartbeatJitterAndCachedInterval(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 200, Heartbeat: 10 * time.Second})
	tm.heartbeats(1)
	// Change the heartbeat: clients use the new one only once they hold it.
	hb := int64(20)
	tm.patchAll(sepm.Configuration{CommunicationSettings: &sepm.CommunicationSettings{PullModeHeartbeatFreqInSeconds: &hb, UploadOpStateHeartbeatFreqInSec: &hb}})
	tm.heartbeats(2)
	now := tm.clk.now().UnixNano()
	tm.mu.Lock()
	defer tm.mu.Unlock()
	for _, e := range tm.heap {
		c := &tm.clients[e.idx]
		if e.gen != c.gen {
			continue
		}
		d := time.Duration(e.due - now)
		if c.pol.hb != 20*time.Second || d > 22*time.Second || d < 0 {
			t.Fatalf("client %s: cached heartbeat %v, next check-in in %v", c.name, c.pol.hb, d)
		}
		last := time.UnixMilli(c.lastUpdate)
		gap := time.Unix(0, e.due).Sub(last)
		if gap < 18*time.Second-time.Millisecond || gap > 22*time.Second+time.Millisecond {
			t.Fatalf("client %s: interval %v is not 20s +-10%%", c.name, gap)
		}
	}
}

func TestFleetReportPartition(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 300, OfflinePercent: 10})
	tm.heartbeats(1)
	tm.updateCert("sepm-01")
	tm.heartbeats(1) // some orphaned, some not yet
	f := tm.fleet()
	if f.OK+f.Orphaned+f.Offline != f.Total || f.Total != 300 {
		t.Fatalf("%+v", f)
	}
	sum := 0
	for _, g := range f.ByGroup {
		sum += g.OK + g.Orphaned + g.Offline
	}
	if sum != 300 {
		t.Fatalf("by group sums to %d", sum)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{},                                  // no password
		{Password: "x", Failover: "random"}, // unknown failover
		{Password: "x", Groups: 3, NonInheriting: 5}, // too many non-inheriting
		{Password: "x", Heartbeat: 100 * time.Millisecond},
		{Password: "x", OfflinePercent: 101},
	} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o, err := Options{Password: "x"}.withDefaults()
	if err != nil || o.Clients != 500 || o.Servers != 1 || o.Groups != 8 || o.NonInheriting != 2 || o.Heartbeat != 2*time.Second ||
		o.User != "admin" || o.Failover != FailoverLoadBalance || o.RemoteLocationGroups != 1 || o.TokenTTL != time.Hour {
		t.Fatalf("defaults: %+v %v", o, err)
	}
}
