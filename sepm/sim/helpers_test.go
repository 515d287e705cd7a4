package sim

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"sepmbot/sepm"
)

const testPassword = "s3cret-Pa55word"

// startSite starts a site on loopback for a test and closes it at the end.
func startSite(t testing.TB, o Options) *Site {
	t.Helper()
	if o.Password == "" {
		o.Password = testPassword
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = time.Second
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	s, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawClient is a plain HTTPS client that trusts server 1's current and next
// certificates (what the API presents before and after an update).
func rawClient(s *Site) *http.Client {
	pool := x509.NewCertPool()
	srv := s.model().servers[0]
	pool.AddCert(srv.cur.Load().leaf)
	pool.AddCert(srv.next.Load().leaf)
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
}

// rawDo sends one request and returns the status and body.
func rawDo(t testing.TB, c *http.Client, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// rawLogin logs in over plain HTTPS and returns the token.
func rawLogin(t testing.TB, s *Site, c *http.Client) string {
	t.Helper()
	st, b := rawDo(t, c, http.MethodPost, s.URL()+"/sepm/api/v1/identity/authenticate", "",
		sepm.AuthRequest{Username: "admin", Password: testPassword, Domain: ""})
	if st != http.StatusOK {
		t.Fatalf("login: %d %s", st, b)
	}
	var a sepm.AuthResponse
	if err := json.Unmarshal(b, &a); err != nil || a.Token == "" {
		t.Fatalf("login reply %s: %v", b, err)
	}
	return a.Token
}
