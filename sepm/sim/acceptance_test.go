package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"sepmbot/sepm"
)

// The acceptance tests. After bootstrapping (the URL and the fingerprint the
// API presents, as `sepmbot sim` prints them), every step goes over HTTPS on loopback
// through the real client: REST calls for what the bot does, Do for the /sim/v1
// admin paths standing for the operator's console work and for the truth about the
// fleet.

const settleTimeout = 30 * time.Second

type env struct {
	t    *testing.T
	ctx  context.Context
	site *Site
	c    *sepm.Client
}

func newEnv(t *testing.T, o Options) *env {
	t.Helper()
	site := startSite(t, o)
	return &env{t: t, ctx: t.Context(), site: site, c: newTestClient(t, site, testPassword, 0)}
}

func newTestClient(t *testing.T, site *Site, password string, retries int) *sepm.Client {
	t.Helper()
	c, err := sepm.New(sepm.Config{
		URL:          site.URL(),
		Username:     "admin",
		Password:     password,
		Fingerprints: []string{site.APIFingerprint()},
		Timeout:      20 * time.Second,
		MaxRetries:   retries,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) do(method, path string, body, out any) {
	e.t.Helper()
	if err := e.c.Do(e.ctx, method, path, body, out); err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
}

func (e *env) fleet() FleetReport {
	e.t.Helper()
	var f FleetReport
	e.do("GET", "/sim/v1/fleet", nil, &f)
	return f
}

func (e *env) servers() []ServerInfo {
	e.t.Helper()
	var s []ServerInfo
	e.do("GET", "/sim/v1/servers", nil, &s)
	return s
}

// updateCert has the "operator" update a server's certificate. Like the bot, the
// client first trusts the new certificate (known in advance), and afterwards the
// server is verified by a TLS handshake on its client port.
func (e *env) updateCert(name string) ServerInfo {
	e.t.Helper()
	var before ServerInfo
	for _, s := range e.servers() {
		if s.Name == name {
			before = s
		}
	}
	if err := e.c.Trust(before.NextFingerprint); err != nil {
		e.t.Fatal(err)
	}
	var after ServerInfo
	e.do("POST", "/sim/v1/servers/"+name+"/certificate", nil, &after)
	if after.Fingerprint != before.NextFingerprint {
		e.t.Fatalf("%s presents %s after the update, want the pre-announced %s", name, after.Fingerprint, before.NextFingerprint)
	}
	ci, err := sepm.ProbeCertificate(e.ctx, after.ClientAddr)
	if err != nil {
		e.t.Fatal(err)
	}
	if ci.SHA256 != after.Fingerprint || !strings.Contains(ci.Subject, name) {
		e.t.Fatalf("probe of %s: %+v, want %s", name, ci, after.Fingerprint)
	}
	return after
}

type target struct {
	g sepm.Group
	l sepm.Location
}

// targets lists every location of every non-inheriting group (the root included).
func (e *env) targets() []target {
	e.t.Helper()
	groups, err := e.c.Groups(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []target
	for _, g := range groups {
		if g.PolicyInheritanceEnabled {
			continue
		}
		locs, err := e.c.Locations(e.ctx, g.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, l := range locs {
			out = append(out, target{g, l})
		}
	}
	if len(out) < 2 {
		e.t.Fatalf("only %d targets", len(out))
	}
	return out
}

func (e *env) patchAll(ts []target, cfg sepm.Configuration) {
	e.t.Helper()
	for _, t := range ts {
		if _, err := e.c.PatchLocationSettings(e.ctx, t.g.ID, t.l.ID, cfg); err != nil {
			e.t.Fatalf("PATCH %s / %s: %v", t.g.Path(), t.l.Name, err)
		}
	}
}

// settle is the tests' "wait 3 heartbeats": poll the REST API until every online
// computer holds its group's current policy serial, with a deadline.
func (e *env) settle() {
	e.t.Helper()
	deadline := time.Now().Add(settleTimeout)
	for {
		pending, online, err := e.pending()
		if err != nil {
			e.t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d of %d online clients did not check in within %s", pending, online, settleTimeout)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

func (e *env) pending() (pending, online int, err error) {
	groups, err := e.c.Groups(e.ctx)
	if err != nil {
		return 0, 0, err
	}
	serial := map[string]string{}
	for _, g := range groups {
		serial[g.ID] = g.PolicySerialNumber
	}
	err = e.c.EachComputerPage(e.ctx, sepm.ComputerQuery{PageSize: 1000}, func(page []sepm.Computer) error {
		for _, c := range page {
			if c.OnlineStatus != 1 {
				continue
			}
			online++
			if c.ProfileSerialNo != serial[c.Group.ID] {
				pending++
			}
		}
		return nil
	})
	return pending, online, err
}

func secure(on bool) sepm.Configuration { return secureCfg(on) }

func useMSL(name string) sepm.Configuration { return mslCfg(name) }

// singleServerProcedure is the seed's steps 1-9 and the way back, done by hand.
func (e *env) singleServerProcedure(assignByAdmin bool) {
	e.t.Helper()
	ts := e.targets()
	var cp struct{ Name string }
	e.do("POST", "/sim/v1/msls/copy", map[string]any{"source": defaultMSLName, "port": 8014}, &cp)
	if cp.Name != defaultMSLName+" (HTTP 8014)" {
		e.t.Fatalf("copy named %q", cp.Name)
	}
	if assignByAdmin {
		e.do("POST", "/sim/v1/msls/assign", map[string]any{"msl": cp.Name, "replace": defaultMSLName}, nil)
	} else {
		e.patchAll(ts, useMSL(cp.Name))
	}
	e.patchAll(ts, secure(false))
	e.settle()
	for _, s := range e.servers() {
		e.updateCert(s.Name)
	}
	e.settle()
	e.patchAll(ts, secure(true))
	e.settle()
	if assignByAdmin {
		e.do("POST", "/sim/v1/msls/assign", map[string]any{"msl": defaultMSLName, "replace": cp.Name}, nil)
	} else {
		e.patchAll(ts, useMSL(defaultMSLName))
	}
	e.settle()
	for _, t := range ts {
		st, err := e.c.LocationSettings(e.ctx, t.g.ID, t.l.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		if st.Configuration.CommunicationSettings.SemServer.Name != defaultMSLName || !*st.Configuration.GeneralSettings.SecuritySettings.SecureCommunications {
			e.t.Fatalf("%s / %s not restored", t.g.Path(), t.l.Name)
		}
	}
}

func TestAcceptanceNaiveOrderOrphans(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Clients: 300, Groups: 8})
	e.settle()
	online := e.fleet().OK
	e.updateCert("sepm-01")
	e.settle()
	f := e.fleet()
	if f.Orphaned*100 < online*95 {
		t.Fatalf("naive order: %d of %d online clients orphaned, want >= 95%%", f.Orphaned, online)
	}
	if len(f.OrphanedClients) != f.Orphaned {
		t.Fatalf("orphanedClients lists %d, orphaned %d", len(f.OrphanedClients), f.Orphaned)
	}
	t.Logf("naive order: %d of %d online clients orphaned (%.1f%%)", f.Orphaned, online, 100*float64(f.Orphaned)/float64(online))
}

func TestAcceptanceSingleServerOrderByHand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Clients: 300, Groups: 8, NonInheriting: 2, RemoteLocationGroups: 2, Versions: "14.3=60,14.2=15,14.x=10,12.1=15"})
	e.singleServerProcedure(false)
	f := e.fleet()
	if f.Orphaned != 0 || f.OK != 300 {
		t.Fatalf("single-server order: %d orphaned, %d ok: %+v", f.Orphaned, f.OK, f.OrphanedClients)
	}
	if s := f.ByServer["sepm-01"]; s.ClientsStale != 0 {
		t.Fatalf("clients still hold the old certificate: %+v", s)
	}
}

func TestAcceptanceMultiServerOrder(t *testing.T) {
	t.Parallel()
	o := Options{Clients: 400, Servers: 2, Failover: FailoverLoadBalance, Versions: "14.3=70,14.2=10,14.x=10,12.1=10"}
	t.Run("multi-server order", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, o)
		cv, err := e.c.ClientVersions(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		n142 := 0
		for _, row := range cv.ClientVersionList {
			if strings.HasPrefix(row.Version, "14.2.") {
				n142 += row.ClientsCount
			}
		}
		if n142 != 40 {
			t.Fatalf("%d 14.2 clients, want 40", n142)
		}
		e.settle()
		for _, s := range e.servers() {
			e.updateCert(s.Name)
			e.settle()
		}
		f := e.fleet()
		if f.Orphaned != n142 {
			t.Fatalf("%d orphaned, want exactly the %d 14.2.x clients", f.Orphaned, n142)
		}
		for _, c := range f.OrphanedClients {
			if !strings.HasPrefix(c.AgentVersion, "14.2.") {
				t.Fatalf("orphaned %s runs %s", c.ComputerName, c.AgentVersion)
			}
		}
	})
	t.Run("single-server order on the same site", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, o)
		e.settle()
		e.singleServerProcedure(true)
		if f := e.fleet(); f.Orphaned != 0 || f.OK != 400 {
			t.Fatalf("%d orphaned, %d ok", f.Orphaned, f.OK)
		}
	})
}

func TestAcceptanceOfflineClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Clients: 200, Servers: 2, Versions: "14.3=100"})
	var off struct{ IDs []string }
	e.do("POST", "/sim/v1/clients/online", map[string]any{"count": 2, "online": false}, &off)
	if len(off.IDs) != 2 {
		t.Fatalf("offline ids: %v", off.IDs)
	}
	early, late := off.IDs[0], off.IDs[1]
	e.settle()
	e.updateCert("sepm-01")
	e.settle()
	// early returns while sepm-02 still presents the old certificate.
	e.do("POST", "/sim/v1/clients/online", map[string]any{"ids": []string{early}, "online": true}, nil)
	e.settle()
	e.updateCert("sepm-02")
	e.settle()
	// late returns after every server has the new certificate.
	e.do("POST", "/sim/v1/clients/online", map[string]any{"ids": []string{late}, "online": true}, nil)
	deadline := time.Now().Add(settleTimeout)
	for {
		f := e.fleet()
		if f.Orphaned > 0 {
			if f.Orphaned != 1 || f.OrphanedClients[0].UniqueID != late {
				t.Fatalf("orphaned: %+v, want only %s", f.OrphanedClients, late)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client that returned after every update was not orphaned: %+v", f)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	e.settle()
	comps, err := e.c.Computers(e.ctx, sepm.ComputerQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range comps {
		if c.UniqueID == early && c.OnlineStatus != 1 {
			t.Fatalf("the client that returned while sepm-02 had the old certificate: %+v", c)
		}
	}
	if f := e.fleet(); f.Orphaned != 1 || f.OK != 199 {
		t.Fatalf("%+v", f)
	}
}

func TestAcceptancePaging100k(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 clients")
	}
	t.Parallel()
	site := startSite(t, Options{Clients: 100_000, Heartbeat: 30 * time.Second})
	c := newTestClient(t, site, testPassword, 8)
	ctx := t.Context()

	// All of them, with every token expired in the middle of the paging.
	seen := make(map[string]bool, 100_000)
	pages := 0
	err := c.EachComputerPage(ctx, sepm.ComputerQuery{PageSize: 1000}, func(page []sepm.Computer) error {
		pages++
		for _, cm := range page {
			seen[cm.UniqueID] = true
		}
		if pages == 40 {
			return c.Do(ctx, "POST", "/sim/v1/faults", map[string]any{"expireTokens": true}, nil)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 100_000 || pages != 100 {
		t.Fatalf("%d distinct computers in %d pages, want 100,000 in 100", len(seen), pages)
	}

	// Again with a fifth of the REST calls failing with 500.
	if err := c.Do(ctx, "POST", "/sim/v1/faults", map[string]any{"errorRate": 0.2}, nil); err != nil {
		t.Fatal(err)
	}
	all, err := c.Computers(ctx, sepm.ComputerQuery{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 100_000 {
		t.Fatalf("%d computers with injected 5xx", len(all))
	}
	if err := c.Do(ctx, "POST", "/sim/v1/faults", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}

	// A wrong password: a clear error, without the password or any token.
	const wrong = "not-the-Password-42"
	bad := newTestClient(t, site, wrong, 0)
	err = bad.Login(ctx)
	var ae *sepm.APIError
	if !errors.As(err, &ae) || ae.Status != 401 || !strings.Contains(err.Error(), "Invalid user name or password") {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), testPassword) {
		t.Fatalf("the error shows a password: %v", err)
	}
	if _, err := bad.Groups(ctx); err == nil || strings.Contains(err.Error(), wrong) {
		t.Fatalf("groups with a wrong password: %v", err)
	}
}
