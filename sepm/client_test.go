package sepm

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// okGroups serves a one-page groups reply from testdata.
func okGroups(f *fakeSEPM) {
	f.handle("GET /sepm/api/v1/groups", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusOK, []byte(`{"content":[{"id":"G1","name":"My Company"}],"lastPage":true,"totalPages":1}`))
	})
}

func TestLoginAndTokenUse(t *testing.T) {
	f := newFake(t)
	okGroups(f)
	c := newTestClient(t, f, func(cfg *Config) { cfg.Domain = "Default" })
	ctx := t.Context()

	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != "14.3.25029.9000" || v.APIVersion != "14.3.9000" {
		t.Errorf("version = %+v", v)
	}
	if got := f.authLog("GET /sepm/api/v1/version"); len(got) != 1 || got[0] != "" {
		t.Errorf("version call sent Authorization %q, want none", got)
	}
	if f.loginCount() != 0 {
		t.Fatalf("version needed a login")
	}
	for range 3 {
		if _, err := c.Groups(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.loginCount(); n != 1 {
		t.Fatalf("logins = %d, want 1 (token reused)", n)
	}
	tok := f.issuedTokens()[0]
	for _, h := range f.authLog("GET /sepm/api/v1/groups") {
		if h != "Bearer "+tok {
			t.Errorf("Authorization = %q, want the issued token", h)
		}
	}
}

func TestLoginSendsCredentials(t *testing.T) {
	f := newFakeUnstarted(t)
	var got AuthRequest
	f.mux = http.NewServeMux()
	f.srv.Config.Handler = f.mux
	f.mux.HandleFunc("POST /sepm/api/v1/identity/authenticate", func(w http.ResponseWriter, r *http.Request) {
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		writeRaw(w, http.StatusOK, readTestdata(t, "authenticate.json"))
	})
	f.srv.StartTLS()
	c := newTestClient(t, f, func(cfg *Config) { cfg.Domain = "Default" })
	if err := c.Login(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := AuthRequest{Username: testUser, Password: testPass, Domain: "Default"}
	if got != want {
		t.Errorf("authenticate body = %+v, want %+v", got, want)
	}
	if tok, _ := c.token(t.Context()); tok != "3b1f9a2c-7d64-4e0b-9c51-8a2e6f0d4c77" {
		t.Errorf("token = %q, want the one from authenticate.json", tok)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	f := newFake(t)
	f.ttl = 1000 // seconds: renewal margin is max(10%, 30 s) = 100 s
	okGroups(f)
	c := newTestClient(t, f, nil)
	clock := &fakeClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	c.now = clock.now
	ctx := t.Context()

	if _, err := c.Groups(ctx); err != nil {
		t.Fatal(err)
	}
	clock.advance(850 * time.Second) // 150 s left: keep the token
	if _, err := c.Groups(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.loginCount(); n != 1 {
		t.Fatalf("logins after 850 s = %d, want 1", n)
	}
	clock.advance(100 * time.Second) // 50 s left, under 10%: renew before using it
	if _, err := c.Groups(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.loginCount(); n != 2 {
		t.Fatalf("logins after 950 s = %d, want 2 (proactive renewal)", n)
	}
	if n := f.refusedCount(); n != 0 {
		t.Errorf("server refused %d calls; renewal should come before any 401", n)
	}
	seen := f.authLog("GET /sepm/api/v1/groups")
	if toks := f.issuedTokens(); seen[2] != "Bearer "+toks[1] {
		t.Errorf("third call used %q, want the renewed token", seen[2])
	}
}

func TestRenewMargin(t *testing.T) {
	for _, tc := range []struct{ life, want time.Duration }{
		{43199 * time.Second, 4319900 * time.Millisecond}, // 10%
		{100 * time.Second, 30 * time.Second},             // 30 s floor
		{20 * time.Second, 10 * time.Second},              // never more than half
	} {
		if got := renewMargin(tc.life); got != tc.want {
			t.Errorf("renewMargin(%v) = %v, want %v", tc.life, got, tc.want)
		}
	}
}

func TestReloginOnceOn401(t *testing.T) {
	f := newFake(t)
	okGroups(f)
	c := newTestClient(t, f, nil)
	ctx := t.Context()
	if _, err := c.Groups(ctx); err != nil {
		t.Fatal(err)
	}
	f.expireAll() // the session ends server-side
	if _, err := c.Groups(ctx); err != nil {
		t.Fatalf("after token expiry: %v", err)
	}
	if n := f.loginCount(); n != 2 {
		t.Errorf("logins = %d, want 2", n)
	}
	if n := f.hitCount("GET /sepm/api/v1/groups"); n != 3 {
		t.Errorf("groups calls = %d, want 3 (ok, 401, retried ok)", n)
	}
}

func TestSecond401Surfaces(t *testing.T) {
	f := newFake(t)
	f.handle("GET /sepm/api/v1/groups", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusUnauthorized, "The user that is currently logged on has insufficient rights to execute the web method, or the user is unauthorized.")
	})
	c := newTestClient(t, f, nil)
	_, err := c.Groups(t.Context())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("err = %v, want *APIError 401", err)
	}
	if n := f.loginCount(); n != 2 {
		t.Errorf("logins = %d, want 2 (first, and one again after the 401)", n)
	}
	if n := f.hitCount("GET /sepm/api/v1/groups"); n != 2 {
		t.Errorf("groups calls = %d, want 2 (one retry only)", n)
	}
	if !strings.Contains(err.Error(), "sepm: GET groups: 401: ") {
		t.Errorf("message %q lacks the documented form", err)
	}
}

func TestConcurrentCallsShareOneRelogin(t *testing.T) {
	f := newFake(t)
	okGroups(f)
	c := newTestClient(t, f, nil)
	ctx := t.Context()
	if _, err := c.Groups(ctx); err != nil {
		t.Fatal(err)
	}
	f.expireAll()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := c.Groups(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.loginCount(); n != 2 {
		t.Errorf("logins = %d, want 2: one re-login shared by all callers", n)
	}
}

func TestWrongPassword(t *testing.T) {
	for _, echo := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "server echoes password"}[echo], func(t *testing.T) {
			f := newFake(t)
			f.echoPassword = echo
			okGroups(f)
			c := newTestClient(t, f, func(cfg *Config) { cfg.Password = "Wrong-Pa55word#42" })
			// Groups first: its refused log-in stops automatic ones; Login tries once more.
			for _, nc := range []struct {
				name string
				call func() error
			}{
				{"Groups", func() error { _, err := c.Groups(t.Context()); return err }},
				{"Login", func() error { return c.Login(t.Context()) }},
			} {
				name := nc.name
				err := nc.call()
				if err == nil {
					t.Fatalf("%s: no error with a wrong password", name)
				}
				msg := err.Error()
				if !strings.Contains(msg, "401") || !strings.Contains(msg, "Invalid user name or password") {
					t.Errorf("%s: error %q lacks the status and SEPM's message", name, msg)
				}
				if strings.Contains(msg, "Wrong-Pa55word#42") {
					t.Errorf("%s: error %q contains the password", name, msg)
				}
				var ae *APIError
				if !errors.As(err, &ae) || ae.Status != 401 || ae.Path != "identity/authenticate" {
					t.Errorf("%s: err = %#v, want *APIError 401 on identity/authenticate", name, err)
				}
			}
			if n := f.hitCount("POST /sepm/api/v1/identity/authenticate"); n != 2 {
				t.Errorf("authenticate calls = %d, want 2 (a 401 is not retried; Login tries once again)", n)
			}
		})
	}
}

// TestSecretsNeverLogged runs logins, renewals, re-logins, failures and retries with
// a Debug logger and checks that no password or token reaches the log or an error.
func TestSecretsNeverLogged(t *testing.T) {
	f := newFake(t)
	okGroups(f)
	var fails atomic.Int32
	f.handle("GET /sepm/api/v1/admin/servers", func(w http.ResponseWriter, r *http.Request) {
		if fails.Add(1) <= 2 {
			writeError(w, http.StatusInternalServerError, "busy")
			return
		}
		writeRaw(w, http.StatusOK, []byte(`[{"id":"S1"}]`))
	})
	f.handle("GET /sepm/api/v1/groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		// A careless server echoing the caller's token.
		writeError(w, http.StatusNotFound, "no group for "+r.Header.Get("Authorization"))
	})
	var buf lockedBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := t.Context()
	var errs []error
	c := newTestClient(t, f, func(cfg *Config) { cfg.Logger = log })
	_, err := c.Groups(ctx)
	errs = append(errs, err)
	f.expireAll()
	_, err = c.AdminServers(ctx)
	errs = append(errs, err)
	_, err = c.Group(ctx, "nope")
	errs = append(errs, err)
	errs = append(errs, c.Logout(ctx))
	bad := newTestClient(t, f, func(cfg *Config) { cfg.Logger = log; cfg.Password = "Other-Secret-77" })
	errs = append(errs, bad.Login(ctx))

	logged := buf.String()
	if !strings.Contains(logged, "sepm: request") || !strings.Contains(logged, "sepm: retrying") {
		t.Fatalf("debug log lacks request records:\n%s", logged)
	}
	secrets := append([]string{testPass, "Other-Secret-77"}, f.issuedTokens()...)
	for _, tok := range f.issuedTokens() {
		secrets = append(secrets, "refresh-"+tok)
	}
	for _, s := range secrets {
		if strings.Contains(logged, s) {
			t.Errorf("log contains secret %q", s)
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains secret %q", err, s)
			}
		}
	}
	if errs[2] == nil || !strings.Contains(errs[2].Error(), "[redacted]") {
		t.Errorf("echoed token not redacted: %v", errs[2])
	}
}

func TestDoPaths(t *testing.T) {
	f := newFake(t)
	f.handle("GET /sim/v1/fleet", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusOK, []byte(`{"total":3,"ok":3}`))
	})
	var posts atomic.Int32
	f.handle("POST /sepm/api/v1/groups/{id}/things", func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		var body map[string]int
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["n"] != 7 {
			t.Errorf("body = %v", body)
		}
		writeError(w, http.StatusInternalServerError, "boom")
	})
	c := newTestClient(t, f, nil)
	var fleet struct{ Total, OK int }
	if err := c.Do(t.Context(), "GET", "/sim/v1/fleet", nil, &fleet); err != nil {
		t.Fatal(err)
	}
	if fleet.Total != 3 || fleet.OK != 3 {
		t.Errorf("fleet = %+v", fleet)
	}
	err := c.Do(t.Context(), "POST", "groups/G1/things?x=1", map[string]int{"n": 7}, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 500 || ae.Path != "groups/G1/things" {
		t.Fatalf("err = %v", err)
	}
	if posts.Load() != 1 {
		t.Errorf("POST sent %d times, want 1 (never retried)", posts.Load())
	}
}

func TestNewURL(t *testing.T) {
	for _, tc := range []struct{ in, root string }{
		{"https://127.0.0.1:8446", "https://127.0.0.1:8446"},
		{"https://127.0.0.1:8446/", "https://127.0.0.1:8446"},
		{"https://127.0.0.1:8446/sepm/api/v1", "https://127.0.0.1:8446"},
		{"https://127.0.0.1:8446/sepm/api/v1/", "https://127.0.0.1:8446"},
		{"https://gw.example:443/sepm-a/sepm/api/v1", "https://gw.example:443/sepm-a"},
		{"https://sepm1", "https://sepm1:8446"},
		{"https://[::1]/sepm/api/v1", "https://[::1]:8446"},
	} {
		c, err := New(Config{URL: tc.in})
		if err != nil {
			t.Fatalf("New(%q): %v", tc.in, err)
		}
		if c.root != tc.root || c.url("groups") != tc.root+"/sepm/api/v1/groups" || c.url("/sim/v1/x") != tc.root+"/sim/v1/x" {
			t.Errorf("New(%q): root %q, url %q", tc.in, c.root, c.url("groups"))
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8446", "http://127.0.0.1:8446", "https://u:p@127.0.0.1:8446"} {
		if _, err := New(Config{URL: bad}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		} else if strings.Contains(err.Error(), ":p@") {
			t.Errorf("New(%q) error shows the password: %v", bad, err)
		}
	}
	if _, err := New(Config{URL: "https://127.0.0.1:8446", Fingerprints: []string{"abcd"}}); err == nil {
		t.Error("New accepted a short fingerprint")
	}
	if _, err := New(Config{URL: "https://127.0.0.1:8446", CAFile: "testdata/version.json"}); err == nil {
		t.Error("New accepted a CA file without PEM")
	}
}

func TestLogout(t *testing.T) {
	f := newFake(t)
	okGroups(f)
	c := newTestClient(t, f, nil)
	ctx := t.Context()
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("logout without session: %v", err)
	}
	if f.hitCount("POST /sepm/api/v1/identity/logout") != 0 {
		t.Error("logout without a session called the server")
	}
	if _, err := c.Groups(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.authLog("POST /sepm/api/v1/identity/logout"); len(got) != 1 || got[0] != "Bearer "+f.issuedTokens()[0] {
		t.Errorf("logout sent %q", got)
	}
	if _, err := c.Groups(ctx); err != nil {
		t.Fatal(err)
	}
	if f.loginCount() != 2 || f.refusedCount() != 0 {
		t.Errorf("after logout: logins %d, refused %d; want a fresh login and no 401", f.loginCount(), f.refusedCount())
	}
}

func TestSmallEndpoints(t *testing.T) {
	f := newFake(t)
	serve := func(pattern, file string) {
		f.handle(pattern, func(w http.ResponseWriter, r *http.Request) { writeRaw(w, http.StatusOK, readTestdata(t, file)) })
	}
	serve("GET /sepm/api/v1/stats/client/onlinestatus", "online-status.json")
	f.handle("GET /sepm/api/v1/admin/servers", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusOK, []byte(`[{"id":"A1B2","name":"sepm-01","extra":{"x":1}},{"id":"C3D4"}]`))
	})
	f.handle("GET /sepm/api/v1/replication/status", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusOK, []byte(`{"replicationStatus":{"id":"R1","siteName":"HQ","replicationPartnerStatusList":[{"id":"P","name":"Branch","status_code":"OK","unknown":true}]}}`))
	})
	var replicated atomic.Value
	replicated.Store(`true`)
	f.handle("GET /sepm/api/v1/replication/is_replicated", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusOK, []byte(replicated.Load().(string)))
	})
	c := newTestClient(t, f, nil)
	ctx := t.Context()
	srv, err := c.AdminServers(ctx)
	if err != nil || !reflect.DeepEqual(srv, []Server{{"A1B2"}, {"C3D4"}}) {
		t.Errorf("AdminServers = %+v, %v", srv, err)
	}
	rs, err := c.ReplicationStatus(ctx)
	if err != nil || rs.ReplicationStatus.SiteName != "HQ" || rs.ReplicationStatus.ReplicationPartnerStatusList[0].StatusCode != "OK" {
		t.Errorf("ReplicationStatus = %+v, %v", rs, err)
	}
	for raw, want := range map[string]bool{`true`: true, `false`: false, `"true"`: true} {
		replicated.Store(raw)
		if got, err := c.IsReplicated(ctx); err != nil || got != want {
			t.Errorf("IsReplicated(%s) = %v, %v", raw, got, err)
		}
	}
	replicated.Store(`{"x":1}`)
	if _, err := c.IsReplicated(ctx); err == nil {
		t.Error("IsReplicated accepted an object")
	}
}
