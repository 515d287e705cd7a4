package sim

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sepmbot/internal/testkit"
	"strings"
	"testing"
	"time"

	"sepmbot/sepm"
)

// Tests of the site's HTTP side that look inside the sim (tokens, logs, faults).

func TestTokensExpire(t *testing.T) {
	t.Parallel()
	site := startSite(t, Options{Clients: 10, TokenTTL: time.Second})
	c := rawClient(site)
	tok := rawLogin(t, site, c)
	if st, _ := rawDo(t, c, "GET", site.URL()+"/sepm/api/v1/groups", tok, nil); st != 200 {
		t.Fatalf("fresh token: %d", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, b := rawDo(t, c, "GET", site.URL()+"/sepm/api/v1/groups", tok, nil)
		if st == 401 {
			if !strings.Contains(string(b), `"errorCode":"401"`) {
				t.Fatalf("401 body: %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the token never expired")
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	// Logout revokes a token at once.
	tok = rawLogin(t, site, c)
	if st, _ := rawDo(t, c, "POST", site.URL()+"/sepm/api/v1/identity/logout", tok, nil); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	if st, _ := rawDo(t, c, "GET", site.URL()+"/sepm/api/v1/groups", tok, nil); st != 401 {
		t.Fatalf("after logout: %d", st)
	}
}

func TestAPIPresentsServerOnesCurrentCertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Clients: 10, Servers: 2})
	host := strings.TrimPrefix(e.site.URL(), "https://")
	probe := func(addr string) string {
		ci, err := sepm.ProbeCertificate(e.ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		return ci.SHA256
	}
	srv := e.servers()
	if got := probe(host); got != srv[0].Fingerprint || got != e.site.APIFingerprint() {
		t.Fatalf("API presents %s, want sepm-01's %s", got, srv[0].Fingerprint)
	}
	e.updateCert("sepm-02")
	if got := probe(host); got != srv[0].Fingerprint {
		t.Fatal("the API certificate changed with sepm-02's")
	}
	after := e.updateCert("sepm-01")
	if got := probe(host); got != after.Fingerprint || after.Fingerprint != srv[0].NextFingerprint {
		t.Fatalf("API presents %s after sepm-01's update, want %s", got, after.Fingerprint)
	}
	// The client keeps working: it trusts the new certificate (Trust in updateCert).
	e.c.Untrust(srv[0].Fingerprint)
	if _, err := e.c.Version(e.ctx); err != nil {
		t.Fatal(err)
	}
	var m []MSLInfo
	e.do("GET", "/sim/v1/msls", nil, &m)
	if len(m) != 1 || len(m[0].Servers) != 2 || m[0].Servers[1].Protocol != "HTTPS" {
		t.Fatalf("msls: %+v", m)
	}
}

func TestRunPrintsFlags(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	out := &testkit.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Clients: 20, Servers: 2, Password: testPassword, Logger: quietLogger()}, out)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "--sepm-server sepm-02=127.0.0.1:") {
		if time.Now().After(deadline) {
			t.Fatalf("banner: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := out.String()
	var port int
	var fp string
	i := strings.Index(s, "--sepm-url https://127.0.0.1:")
	if i < 0 {
		t.Fatalf("no --sepm-url: %s", s)
	}
	if _, err := fmt.Sscanf(s[i:], "--sepm-url https://127.0.0.1:%d --sepm-fingerprint %64s", &port, &fp); err != nil || port == 0 {
		t.Fatalf("flags line: %v in %s", err, s)
	}
	if _, err := sepm.NormalizeFingerprint(fp); err != nil {
		t.Fatalf("fingerprint %q: %v", fp, err)
	}
	if !strings.Contains(s, "user:      admin") || strings.Contains(s, testPassword) {
		t.Fatalf("banner user/password: %s", s)
	}
}

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	site := startSite(t, Options{Clients: 10})
	c := rawClient(site)
	tok := rawLogin(t, site, c)
	api := site.URL() + "/sepm/api/v1/"
	setFaults := func(body map[string]any) {
		t.Helper()
		if st, b := rawDo(t, c, "POST", site.URL()+"/sim/v1/faults", tok, body); st != 200 {
			t.Fatalf("faults: %d %s", st, b)
		}
	}
	setFaults(map[string]any{"errorRate": 1})
	if st, b := rawDo(t, c, "GET", api+"groups", tok, nil); st != 500 || !strings.Contains(string(b), `"errorCode":"500"`) {
		t.Fatalf("with errorRate 1: %d %s", st, b)
	}
	// Identity calls and the admin API are never failed.
	tok = rawLogin(t, site, c)
	if st, _ := rawDo(t, c, "GET", site.URL()+"/sim/v1/fleet", tok, nil); st != 200 {
		t.Fatalf("admin API under faults: %d", st)
	}
	// A change may be applied although the reply says 500: some PATCHes go through.
	ws := site.model().groups[2] // My Company\Workstations, non-inheriting
	applied := 0
	for range 40 {
		site.model().mu.Lock()
		on := !site.model().groups[2].settings[0].secure
		site.model().mu.Unlock()
		st, _ := rawDo(t, c, "PATCH", api+"groups/"+ws.id+"/locations/"+ws.locs[0].id+"/settings", tok, map[string]any{"configuration": secureCfg(on)})
		if st != 500 {
			t.Fatalf("PATCH under errorRate 1: %d", st)
		}
		site.model().mu.Lock()
		if site.model().groups[2].settings[0].secure == on {
			applied++
		}
		site.model().mu.Unlock()
	}
	if applied == 0 || applied == 40 {
		t.Fatalf("%d of 40 failed PATCHes were applied, want some but not all", applied)
	}
	// Latency: a client that waits less than the injected latency times out.
	setFaults(map[string]any{"latencyMs": 2000})
	impatient := rawClient(site)
	impatient.Timeout = 100 * time.Millisecond
	req, _ := http.NewRequestWithContext(t.Context(), "GET", api+"version", nil)
	if _, err := impatient.Do(req); err == nil {
		t.Fatal("no timeout with 2 s of injected latency")
	}
	setFaults(map[string]any{})
	if st, _ := rawDo(t, c, "GET", api+"groups", tok, nil); st != 200 {
		t.Fatalf("after clearing faults: %d", st)
	}
	if st, _ := rawDo(t, c, "POST", site.URL()+"/sim/v1/faults", tok, map[string]any{"errorRate": 2}); st != 400 {
		t.Fatalf("errorRate 2: %d", st)
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	logs := &testkit.SyncBuffer{}
	site := startSite(t, Options{Clients: 10,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := rawClient(site)
	const wrong = "not-the-Password-42"
	st, b := rawDo(t, c, "POST", site.URL()+"/sepm/api/v1/identity/authenticate", "", sepm.AuthRequest{Username: "admin", Password: wrong})
	if st != 401 || strings.Contains(string(b), wrong) {
		t.Fatalf("wrong password: %d %s", st, b)
	}
	tok := rawLogin(t, site, c)
	if st, _ := rawDo(t, c, "GET", site.URL()+"/sepm/api/v1/groups?pageSize=5", tok, nil); st != 200 {
		t.Fatalf("groups: %d", st)
	}
	out := logs.String()
	for _, secret := range []string{tok, wrong, testPassword} {
		if strings.Contains(out, secret) {
			t.Fatalf("the sim's log carries a secret:\n%s", out)
		}
	}
	if !strings.Contains(out, "login refused") || !strings.Contains(out, "/sepm/api/v1/groups") {
		t.Fatalf("log lacks the refused login or the request:\n%s", out)
	}
}
