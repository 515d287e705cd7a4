package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"sepmbot/store"
)

// TestBackupAndAuditArePrivate: without a token, /backup and /audit/{id} answer
// loopback peers only (the listener may be bound wider for Prometheus); with one,
// only requests carrying it, from any address. /metrics, /healthz and /readyz stay
// open. A refusal names no token and serves nothing. The requests are built in
// memory (no network): RemoteAddr is what the listener would have set, and the
// unspecified address (0.0.0.0, ::) stands for any peer that is not loopback.
func TestBackupAndAuditArePrivate(t *testing.T) {
	t.Parallel()
	const secret = "admin-token-0123456789"
	db, err := store.Open(t.TempDir() + "/sepmbot.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	engines := map[string]Rotations{"site-a": &fakeRotations{}}
	for _, tc := range []struct {
		name, token, remote, auth string
		want                      int
	}{
		{"loopback, no token configured", "", "127.0.0.1:50000", "", http.StatusOK},
		{"IPv6 loopback, no token configured", "", "[::1]:50000", "", http.StatusOK},
		{"IPv4-mapped loopback", "", "[::ffff:127.0.0.1]:50000", "", http.StatusOK},
		{"not loopback, no token configured", "", "0.0.0.0:50000", "", http.StatusForbidden},
		{"not loopback, a bearer sent but none configured", "", "0.0.0.0:50000", "Bearer " + secret, http.StatusForbidden},
		{"an unparsable peer", "", "nonsense", "", http.StatusForbidden},
		{"IPv6 unspecified, no token configured", "", "[::]:50000", "", http.StatusForbidden},
		{"token configured, right token, any address", secret, "0.0.0.0:50000", "Bearer " + secret, http.StatusOK},
		{"token configured, loopback without it", secret, "127.0.0.1:50000", "", http.StatusUnauthorized},
		{"token configured, wrong token", secret, "0.0.0.0:50000", "Bearer " + secret + "x", http.StatusUnauthorized},
		{"token configured, token as basic auth", secret, "0.0.0.0:50000", "Basic " + secret, http.StatusUnauthorized},
		{"token configured, a prefix of it", secret, "0.0.0.0:50000", "Bearer " + secret[:8], http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := (&Server{Store: db, Engines: engines, Token: tc.token}).Handler()
			for _, path := range []string{"/backup", "/audit/R1?format=json"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.RemoteAddr = tc.remote
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				got := rec.Code
				if path != "/backup" && tc.want == http.StatusOK && got != http.StatusUnauthorized && got != http.StatusForbidden {
					got = http.StatusOK // let through: the audit of an unknown rotation may be any answer of its own
				}
				if got != tc.want {
					t.Errorf("%s: %d %q, want %d", path, rec.Code, rec.Body.String(), tc.want)
				}
				if tc.want != http.StatusOK {
					if body := rec.Body.String(); strings.Contains(body, secret) || len(body) > 200 {
						t.Errorf("%s: refusal body %q", path, body)
					}
				}
				if path == "/backup" && tc.want == http.StatusOK && rec.Body.Len() == 0 {
					t.Errorf("/backup let through but served nothing")
				}
			}
			for _, path := range []string{"/healthz", "/readyz"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.RemoteAddr = "0.0.0.0:50000"
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden {
					t.Errorf("%s refused to the monitoring network: %d", path, rec.Code)
				}
			}
		})
	}
}
