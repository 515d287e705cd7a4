package sepm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSEPM is a minimal SEPM REST API for the client's tests: it speaks the wire
// shapes of testdata/ (copied from shared/sepm-api/examples), issues and checks
// tokens, and counts calls. Tests add endpoints with handle.
type fakeSEPM struct {
	t    testing.TB
	srv  *httptest.Server
	mux  *http.ServeMux
	user string
	pass string
	ttl  int64 // tokenExpiration in seconds
	// echoPassword makes the login error echo the password sent, as a careless
	// server might.
	echoPassword bool

	mu       sync.Mutex
	tokens   map[string]bool
	issued   []string
	logins   int
	refused  int // 401 replies to authenticated calls
	hits     map[string]int
	queries  map[string][]string
	authSeen map[string][]string
}

const (
	testUser = "svc-sepmbot"
	testPass = "S3cret-Pa55word!x"
)

// newFake starts a TLS fake on 127.0.0.1 with httptest's certificate.
func newFake(t testing.TB) *fakeSEPM {
	f := newFakeUnstarted(t)
	f.srv.StartTLS()
	return f
}

func newFakeUnstarted(t testing.TB) *fakeSEPM {
	f := &fakeSEPM{
		t: t, mux: http.NewServeMux(), user: testUser, pass: testPass, ttl: 43199,
		tokens: map[string]bool{}, hits: map[string]int{}, queries: map[string][]string{},
		authSeen: map[string][]string{},
	}
	f.mux.HandleFunc("POST /sepm/api/v1/identity/authenticate", f.authenticate)
	f.mux.HandleFunc("POST /sepm/api/v1/identity/logout", func(w http.ResponseWriter, r *http.Request) {
		f.count(r)
		f.mu.Lock()
		delete(f.tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	f.mux.HandleFunc("GET /sepm/api/v1/version", func(w http.ResponseWriter, r *http.Request) {
		f.count(r)
		writeRaw(w, http.StatusOK, readTestdata(t, "version.json"))
	})
	f.srv = httptest.NewUnstartedServer(f.mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSEPM) authenticate(w http.ResponseWriter, r *http.Request) {
	f.count(r)
	var req AuthRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "The parameters are invalid.")
		return
	}
	if req.Username != f.user || req.Password != f.pass {
		msg := "Invalid user name or password."
		if f.echoPassword {
			msg = fmt.Sprintf("Invalid user name or password (user %s, password %s).", req.Username, req.Password)
		}
		writeError(w, http.StatusUnauthorized, msg)
		return
	}
	f.mu.Lock()
	f.logins++
	tok := fmt.Sprintf("tok-%d-%x", f.logins, time.Now().UnixNano())
	f.tokens[tok] = true
	f.issued = append(f.issued, tok)
	ttl := f.ttl
	f.mu.Unlock()
	var reply map[string]any // the example's shape, unknown fields included
	if err := json.Unmarshal(readTestdata(f.t, "authenticate.json"), &reply); err != nil {
		f.t.Error(err)
	}
	reply["token"], reply["tokenExpiration"], reply["username"] = tok, ttl, req.Username
	reply["refreshToken"] = "refresh-" + tok
	writeJSON(w, http.StatusOK, reply)
}

// handle registers an authenticated endpoint ("GET /sepm/api/v1/groups").
func (f *fakeSEPM) handle(pattern string, h http.HandlerFunc) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		f.count(r)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		live := ok && f.tokens[tok]
		if !live {
			f.refused++
		}
		f.mu.Unlock()
		if !live {
			writeError(w, http.StatusUnauthorized, "The user that is currently logged on has insufficient rights to execute the web method, or the user is unauthorized.")
			return
		}
		h(w, r)
	})
}

// count records a call by "METHOD /path" with its query and Authorization header.
func (f *fakeSEPM) count(r *http.Request) {
	k := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.hits[k]++
	f.queries[k] = append(f.queries[k], r.URL.RawQuery)
	f.authSeen[k] = append(f.authSeen[k], r.Header.Get("Authorization"))
	f.mu.Unlock()
}

func (f *fakeSEPM) hitCount(k string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[k]
}

func (f *fakeSEPM) queryLog(k string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries[k]...)
}

func (f *fakeSEPM) authLog(k string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.authSeen[k]...)
}

func (f *fakeSEPM) loginCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

func (f *fakeSEPM) refusedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

func (f *fakeSEPM) issuedTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.issued...)
}

// expireAll invalidates every token, as SEPM does when a session times out.
func (f *fakeSEPM) expireAll() {
	f.mu.Lock()
	clear(f.tokens)
	f.mu.Unlock()
}

func (f *fakeSEPM) fingerprint() string { return FingerprintOf(f.srv.Certificate().Raw) }

// newTestClient builds a client for f pinned to its certificate, with tiny backoff.
func newTestClient(t testing.TB, f *fakeSEPM, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		URL: f.srv.URL, Username: testUser, Password: testPass,
		Fingerprints: []string{f.fingerprint()}, Timeout: 10 * time.Second,
	}
	if tt, ok := t.(*testing.T); ok {
		cfg.Logger = slog.New(slog.NewTextHandler(tWriter{tt}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.backoffBase, c.backoffCap = time.Millisecond, 4*time.Millisecond
	t.Cleanup(c.tr.CloseIdleConnections)
	return c
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// lockedBuffer is a bytes.Buffer safe for concurrent log writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{ErrorCode: fmt.Sprint(status), ErrorMessage: msg})
}

// genCert makes a self-signed ECDSA certificate for 127.0.0.1 (usable as its own CA).
func genCert(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"sepmbot test"}},
		NotBefore:             time.Now().Add(-time.Hour).Truncate(time.Second),
		NotAfter:              time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// newFakeWithCert starts a fake presenting cert.
func newFakeWithCert(t testing.TB, cert tls.Certificate) *fakeSEPM {
	f := newFakeUnstarted(t)
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	f.srv.StartTLS()
	return f
}

// fakeClock is a settable clock for token renewal.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
