package sim

import (
	"context"
	"errors"
	"testing"
	"time"

	"sepmbot/sepm"
)

// Tests of the admin calls the interlock tests use, over HTTPS through the real
// client, as those tests call them.

func TestAdminPatchCounts(t *testing.T) {
	e := newEnv(t, Options{Clients: 50, Groups: 4})
	ts := e.targets()
	a, b := ts[0], ts[1]
	e.patchAll([]target{a}, secure(false))
	e.patchAll([]target{a}, secure(false)) // the same value again: sent twice, changed once
	e.patchAll([]target{b}, useMSL(defaultMSLName))
	// Refused PATCHes are not counted.
	if _, err := e.c.PatchLocationSettings(e.ctx, a.g.ID, a.l.ID, useMSL("no such list")); err == nil {
		t.Fatal("PATCH naming an unknown list accepted")
	}
	// A colleague's change in the console is not a PATCH.
	on := true
	e.do("POST", "/sim/v1/settings", ConsoleChange{GroupID: a.g.ID, LocationID: a.l.ID, SecureCommunications: &on}, nil)
	f := e.fleet()
	if len(f.Patches) != 2 {
		t.Fatalf("patches: %+v", f.Patches)
	}
	byTarget := map[string]PatchCount{}
	for _, p := range f.Patches {
		byTarget[p.GroupID+"/"+p.LocationID] = p
	}
	pa, pb := byTarget[a.g.ID+"/"+a.l.ID], byTarget[b.g.ID+"/"+b.l.ID]
	if pa.Count != 2 || pa.Fields[FieldSecure] != (FieldPatches{Sent: 2, Changed: 1}) || len(pa.Fields) != 1 || pa.Location != a.l.Name {
		t.Fatalf("target a: %+v", pa)
	}
	if pb.Count != 1 || pb.Fields[FieldSemServer] != (FieldPatches{Sent: 1, Changed: 0}) {
		t.Fatalf("target b: %+v", pb)
	}
}

func TestAdminBlockClients(t *testing.T) {
	e := newEnv(t, Options{Clients: 60, Groups: 3, Versions: "14.3=100"})
	e.settle()
	var blocked struct{ IDs []string }
	e.do("POST", "/sim/v1/clients/block", map[string]any{"count": 3, "blocked": true}, &blocked)
	if len(blocked.IDs) != 3 {
		t.Fatalf("blocked %v", blocked.IDs)
	}
	if f := e.fleet(); f.Blocked != 3 || f.Offline < 3 {
		t.Fatalf("fleet after blocking: %+v", f)
	}
	// The whole procedure runs while they are cut off: they stay silent (SEPM shows
	// them offline, their last check-in before it) ...
	start := time.Now().UnixMilli()
	e.singleServerProcedure(true)
	comps, err := e.c.Computers(e.ctx, sepm.ComputerQuery{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	isBlocked := map[string]bool{}
	for _, id := range blocked.IDs {
		isBlocked[id] = true
	}
	for _, c := range comps {
		if isBlocked[c.UniqueID] && (c.OnlineStatus != 0 || c.LastUpdateTime >= start) {
			t.Fatalf("blocked %s: online %d, last update %d (start %d)", c.ComputerName, c.OnlineStatus, c.LastUpdateTime, start)
		}
	}
	if f := e.fleet(); f.Orphaned != 0 {
		t.Fatalf("orphaned while blocked: %+v", f.OrphanedClients)
	}
	// ... and, let through again with the old certificate cached, they are
	// orphaned, as real clients would be.
	e.do("POST", "/sim/v1/clients/block", map[string]any{"ids": blocked.IDs, "blocked": false}, nil)
	deadline := time.Now().Add(settleTimeout)
	for e.fleet().Orphaned < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	f := e.fleet()
	if f.Orphaned != 3 || f.Blocked != 0 {
		t.Fatalf("after unblocking: %+v", f)
	}
	for _, o := range f.OrphanedClients {
		if !isBlocked[o.UniqueID] {
			t.Fatalf("%s orphaned, not one of the blocked", o.ComputerName)
		}
	}
	if err := e.c.Do(e.ctx, "POST", "/sim/v1/clients/block", map[string]any{"ids": []string{"NOPE"}, "blocked": true}, nil); err == nil {
		t.Fatal("blocking an unknown client accepted")
	}
	if err := e.c.Do(e.ctx, "POST", "/sim/v1/clients/block", map[string]any{"count": 1}, nil); err == nil {
		t.Fatal(`block without "blocked" accepted`)
	}
}

func TestAdminConsoleChange(t *testing.T) {
	e := newEnv(t, Options{Clients: 20, Groups: 4})
	ts := e.targets()
	a := ts[0]
	before, err := e.c.Group(e.ctx, a.g.ID)
	if err != nil {
		t.Fatal(err)
	}
	off, name := false, defaultMSLName
	e.do("POST", "/sim/v1/settings", ConsoleChange{GroupID: a.g.ID, LocationID: a.l.ID, SecureCommunications: &off, MSL: &name}, nil)
	st, err := e.c.LocationSettings(e.ctx, a.g.ID, a.l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if *st.Configuration.GeneralSettings.SecuritySettings.SecureCommunications {
		t.Fatal("console change not visible through the REST API")
	}
	after, err := e.c.Group(e.ctx, a.g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.PolicySerialNumber == before.PolicySerialNumber {
		t.Fatal("console change gave no new policy serial")
	}
	for _, bad := range []ConsoleChange{
		{GroupID: a.g.ID, LocationID: a.l.ID},                                     // nothing to change
		{GroupID: "0123456789ABCDEF0123456789ABCDEF", SecureCommunications: &off}, // unknown group
		{GroupID: a.g.ID, MSL: new("no such list")},
	} {
		if err := e.c.Do(e.ctx, "POST", "/sim/v1/settings", bad, nil); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestAdminUnexpectedCertificate(t *testing.T) {
	e := newEnv(t, Options{Clients: 10})
	before := e.servers()[0]
	var after ServerInfo
	e.do("POST", "/sim/v1/servers/sepm-01/certificate", map[string]any{"unexpected": true}, &after)
	if after.Fingerprint == before.Fingerprint || after.Fingerprint == before.NextFingerprint || after.NextFingerprint != before.NextFingerprint {
		t.Fatalf("before %+v after %+v", before, after)
	}
	ci, err := sepm.ProbeCertificate(e.ctx, after.ClientAddr)
	if err != nil || ci.SHA256 != after.Fingerprint {
		t.Fatalf("probe: %+v %v", ci, err)
	}
	// The API presents it too: a client that trusts only what it was told fails.
	if _, err := e.c.Groups(e.ctx); err == nil {
		t.Fatal("the API's unexpected certificate was trusted")
	}
}

func TestAdminRestartFreshLosesState(t *testing.T) {
	e := newEnv(t, Options{Clients: 40, Groups: 4, Seed: 5})
	orig := e.servers()[0]
	ts := e.targets()
	e.patchAll(ts[:1], secure(false))
	e.updateCert("sepm-01")
	e.do("POST", "/sim/v1/restart", nil, nil)
	// The site presents the seed's first certificate again (the client trusts
	// both); every token is void, the client logs in again by itself.
	if err := e.c.Trust(orig.Fingerprint); err != nil {
		t.Fatal(err)
	}
	srv := e.servers()[0]
	if srv.Fingerprint != orig.Fingerprint || srv.ClientAddr != orig.ClientAddr {
		t.Fatalf("after restart %+v, want %+v", srv, orig)
	}
	st, err := e.c.LocationSettings(e.ctx, ts[0].g.ID, ts[0].l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !*st.Configuration.GeneralSettings.SecuritySettings.SecureCommunications {
		t.Fatal("settings survived a fresh restart")
	}
	if f := e.fleet(); len(f.Patches) != 0 || f.Total != 40 {
		t.Fatalf("fleet after restart: %+v", f)
	}
}

// TestRestartOnTheSamePorts is how a test restarts the simulator as a new process
// would: Close, then Start with the same options on the old addresses. Same seed,
// same certificates, so the bot's pins still hold.
func TestRestartOnTheSamePorts(t *testing.T) {
	o := Options{Clients: 30, Servers: 2, Seed: 9, Password: testPassword, Logger: quietLogger(), Heartbeat: time.Second}
	s1, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	before := s1.Servers()
	url := s1.URL()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	o.Listen = url[len("https://"):]
	o.ServerListen = []string{before[0].ClientAddr, before[1].ClientAddr}
	s2 := startSite(t, o)
	after := s2.Servers()
	if s2.URL() != url {
		t.Fatalf("URL %s, want %s", s2.URL(), url)
	}
	for i := range before {
		if after[i].Fingerprint != before[i].Fingerprint || after[i].NextFingerprint != before[i].NextFingerprint || after[i].ClientAddr != before[i].ClientAddr {
			t.Fatalf("server %d: %+v, want %+v", i, after[i], before[i])
		}
	}
	if _, err := newTestClient(t, s2, testPassword, 0).Groups(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestSameSeedSameCertificates(t *testing.T) {
	a := newTestModel(t, Options{Servers: 3, Seed: 4})
	b := newTestModel(t, Options{Servers: 3, Seed: 4})
	c := newTestModel(t, Options{Servers: 3, Seed: 5})
	for i := range a.servers {
		fa, fb, fc := a.serverInfo(a.servers[i]), b.serverInfo(b.servers[i]), c.serverInfo(c.servers[i])
		if fa.Fingerprint != fb.Fingerprint || fa.NextFingerprint != fb.NextFingerprint || fa.NotAfter != fb.NotAfter {
			t.Fatalf("server %d: %+v vs %+v", i, fa, fb)
		}
		if fa.Fingerprint == fc.Fingerprint || fa.Fingerprint == fa.NextFingerprint {
			t.Fatalf("server %d: seeds 4 and 5 share a certificate, or next = current", i)
		}
	}
	// The sequence after updates is the same too.
	for range 2 {
		ia, _ := a.updateCertificate("sepm-02", false)
		ib, _ := b.updateCertificate("sepm-02", false)
		if ia.Fingerprint != ib.Fingerprint || ia.NextFingerprint != ib.NextFingerprint {
			t.Fatalf("after update: %+v vs %+v", ia, ib)
		}
	}
	if _, err := a.updateCertificate("sepm-07", true); !errors.Is(err, errNotFound) {
		t.Fatalf("unknown server: %v", err)
	}
}
