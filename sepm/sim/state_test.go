package sim

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The state file: the site survives a restart; the same seed gives the same site.

func startWithState(t *testing.T, o Options) *Site {
	t.Helper()
	s, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStateSurvivesRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "site.db")
	o := Options{Clients: 120, Groups: 4, Seed: 3, Password: testPassword, Logger: quietLogger(), Heartbeat: time.Second,
		StateFile: file, StateInterval: 50 * time.Millisecond, PolicyFetch: 0.7, RoamingPercent: 10}
	s1 := startWithState(t, o)
	e := &env{t: t, ctx: t.Context(), site: s1, c: newTestClient(t, s1, testPassword, 0)}
	ts := e.targets()
	var cp struct{ Name string }
	e.do("POST", "/sim/v1/msls/copy", map[string]any{"source": defaultMSLName}, &cp)
	e.patchAll(ts, useMSL(cp.Name))
	e.patchAll(ts, secure(false))
	e.settle()
	e.updateCert("sepm-01")
	var blocked struct{ IDs []string }
	e.do("POST", "/sim/v1/clients/block", map[string]any{"count": 2, "blocked": true}, &blocked)
	before := e.fleet()
	servers := s1.Servers()
	groups, err := e.c.Groups(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	o.Listen = strings.TrimPrefix(s1.URL(), "https://")
	o.ServerListen = []string{servers[0].ClientAddr}
	s2 := startWithState(t, o)
	defer s2.Close()
	if got := s2.Servers(); got[0].Fingerprint != servers[0].Fingerprint || got[0].NextFingerprint != servers[0].NextFingerprint {
		t.Fatalf("certificates after restart: %+v, want %+v", got[0], servers[0])
	}
	// The client (which trusts the updated certificate) logs in again by itself.
	e.site = s2
	after := e.fleet()
	if after.Blocked != 2 || after.Orphaned != before.Orphaned || len(after.Patches) != len(before.Patches) || after.Checkins < before.Checkins {
		t.Fatalf("fleet after restart:\n%+v\nbefore:\n%+v", after, before)
	}
	for i := range before.Patches {
		if after.Patches[i].Count != before.Patches[i].Count {
			t.Fatalf("patch counts: %+v, want %+v", after.Patches[i], before.Patches[i])
		}
	}
	groups2, err := e.c.Groups(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range groups {
		if groups2[i].PolicySerialNumber != groups[i].PolicySerialNumber {
			t.Fatalf("%s serial %s, want %s", groups[i].Path(), groups2[i].PolicySerialNumber, groups[i].PolicySerialNumber)
		}
	}
	for _, tg := range ts {
		st, err := e.c.LocationSettings(e.ctx, tg.g.ID, tg.l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if *st.Configuration.GeneralSettings.SecuritySettings.SecureCommunications || st.Configuration.CommunicationSettings.SemServer.Name != cp.Name {
			t.Fatalf("%s / %s not as left", tg.g.Path(), tg.l.Name)
		}
	}
	// The clients go on where they were: secure communication stays off, nobody is
	// orphaned by the restart, and they keep checking in.
	e.settle()
	if f := e.fleet(); f.Orphaned != 0 || f.Checkins <= after.Checkins {
		t.Fatalf("after the restart: %+v", f)
	}
}

func TestStateRefusesAnotherSite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "site.db")
	o := Options{Clients: 20, Seed: 3, Password: testPassword, Logger: quietLogger(), StateFile: file}
	s := startWithState(t, o)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A second simulator on a file in use is refused at once, with the reason.
	inUse := startWithState(t, o)
	if s, err := Start(context.Background(), o); err == nil {
		s.Close()
		t.Fatal("two simulators share a state file")
	} else if !strings.Contains(err.Error(), "in use by another simulator") {
		t.Fatalf("error: %v", err)
	}
	if err := inUse.Close(); err != nil {
		t.Fatal(err)
	}
	o.Seed = 4
	if s, err := Start(context.Background(), o); err == nil {
		s.Close()
		t.Fatal("a state file of seed 3 was continued with seed 4")
	} else if !strings.Contains(err.Error(), "another site") {
		t.Fatalf("error: %v", err)
	}
}

// TestSameSeedSameSite: two starts with the same seed serve the same certificates
// and the same fleet (acceptance 4 of issue 13).
func TestSameSeedSameSite(t *testing.T) {
	dump := func() (string, string) {
		s := startSite(t, Options{Clients: 80, Servers: 2, Seed: 21})
		defer s.Close()
		c := rawClient(s)
		tok := rawLogin(t, s, c)
		st, b := rawDo(t, c, "GET", s.URL()+"/sepm/api/v1/computers?pageSize=1000", tok, nil)
		if st != 200 {
			t.Fatal(st)
		}
		var page struct {
			Content []map[string]any `json:"content"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		for _, cm := range page.Content { // what moves with the clock
			delete(cm, "lastUpdateTime")
			delete(cm, "onlineStatus")
			delete(cm, "lastServerName")
			delete(cm, "lastServerId")
			delete(cm, "creationTime")    // a year before the start
			delete(cm, "profileSerialNo") // policy times follow the start time
		}
		fleet, _ := json.Marshal(page.Content)
		var fps []string
		for _, sv := range s.Servers() {
			fps = append(fps, sv.Fingerprint, sv.NextFingerprint)
		}
		return strings.Join(fps, ","), string(fleet)
	}
	fp1, fleet1 := dump()
	fp2, fleet2 := dump()
	if fp1 != fp2 {
		t.Fatalf("fingerprints differ:\n%s\n%s", fp1, fp2)
	}
	if fleet1 != fleet2 {
		t.Fatal("fleets differ")
	}
}
