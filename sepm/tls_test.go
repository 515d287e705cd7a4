package sepm

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// writePEM writes cert as a PEM bundle and returns its path.
func writePEM(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// colonUpper writes a fingerprint the way certificate viewers show it.
func colonUpper(fp string) string {
	var b strings.Builder
	for i := 0; i < len(fp); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(fp[i : i+2]))
	}
	return b.String()
}

// wantUntrusted checks err is an *UntrustedCertError naming the presented fingerprint.
func wantUntrusted(t *testing.T, err error, presented string) {
	t.Helper()
	var ute *UntrustedCertError
	if !errors.As(err, &ute) {
		t.Fatalf("err = %v, want *UntrustedCertError", err)
	}
	if ute.Presented != presented || !strings.Contains(err.Error(), presented) {
		t.Errorf("error %q does not name the presented fingerprint %s", err, presented)
	}
}

func TestTrustCABundle(t *testing.T) {
	certA, certB := genCert(t, "sepm-01"), genCert(t, "other")
	f := newFakeWithCert(t, certA)
	fpA := FingerprintOf(certA.Certificate[0])

	ok := newTestClient(t, f, func(cfg *Config) { cfg.Fingerprints, cfg.CAFile = nil, writePEM(t, certA) })
	if _, err := ok.Version(t.Context()); err != nil {
		t.Fatalf("CA bundle trust: %v", err)
	}
	bad := newTestClient(t, f, func(cfg *Config) { cfg.Fingerprints, cfg.CAFile = nil, writePEM(t, certB) })
	_, err := bad.Version(t.Context())
	wantUntrusted(t, err, fpA)

	// Pins and a CA bundle together: either is enough.
	both := newTestClient(t, f, func(cfg *Config) {
		cfg.Fingerprints, cfg.CAFile = []string{FingerprintOf(certB.Certificate[0])}, writePEM(t, certA)
	})
	if _, err := both.Version(t.Context()); err != nil {
		t.Fatalf("CA bundle beside a pin: %v", err)
	}
}

func TestTrustPinnedSet(t *testing.T) {
	certA, certB := genCert(t, "sepm-01"), genCert(t, "sepm-02")
	fa, fb := newFakeWithCert(t, certA), newFakeWithCert(t, certB)
	pins := []string{colonUpper(FingerprintOf(certA.Certificate[0])), FingerprintOf(certB.Certificate[0])}
	for _, f := range []*fakeSEPM{fa, fb} {
		c := newTestClient(t, f, func(cfg *Config) { cfg.Fingerprints = pins })
		if _, err := c.Version(t.Context()); err != nil {
			t.Errorf("server %s with pins {A, B}: %v", f.srv.Certificate().Subject.CommonName, err)
		}
	}
}

func TestPinMismatchRejected(t *testing.T) {
	certA, certB := genCert(t, "sepm-01"), genCert(t, "sepm-02")
	f := newFakeUnstarted(t)
	var handshakes atomic.Int32
	f.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{certA},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			handshakes.Add(1)
			return nil, nil
		},
	}
	f.srv.StartTLS()
	c := newTestClient(t, f, func(cfg *Config) { cfg.Fingerprints = []string{FingerprintOf(certB.Certificate[0])} })
	_, err := c.Version(t.Context())
	wantUntrusted(t, err, FingerprintOf(certA.Certificate[0]))
	if !strings.Contains(err.Error(), "CN=sepm-01") || !strings.Contains(err.Error(), "pinned") {
		t.Errorf("error %q should name the subject and say it is not pinned", err)
	}
	if n := handshakes.Load(); n != 1 {
		t.Errorf("handshakes = %d, want 1 (a trust failure is not retried)", n)
	}
	if f.hitCount("GET /sepm/api/v1/version") != 0 {
		t.Error("a request reached an untrusted server")
	}
}

func TestTrustAtRuntime(t *testing.T) {
	certA, certB := genCert(t, "sepm-01"), genCert(t, "sepm-01-next")
	fpA, fpB := FingerprintOf(certA.Certificate[0]), FingerprintOf(certB.Certificate[0])
	f := newFakeWithCert(t, certA)
	c := newTestClient(t, f, func(cfg *Config) { cfg.Fingerprints = []string{fpB} })
	ctx := t.Context()
	if _, err := c.Version(ctx); err == nil {
		t.Fatal("trusted a fingerprint not pinned")
	}
	if err := c.Trust("not-a-fingerprint", fpA); err == nil {
		t.Fatal("Trust accepted an invalid fingerprint")
	}
	if got := c.TrustedFingerprints(); !slices.Equal(got, []string{fpB}) {
		t.Fatalf("after a failed Trust the set is %v", got)
	}
	if err := c.Trust(colonUpper(fpA)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Version(ctx); err != nil {
		t.Fatalf("after Trust: %v", err)
	}
	want := []string{fpA, fpB}
	slices.Sort(want)
	if got := c.TrustedFingerprints(); !slices.Equal(got, want) {
		t.Errorf("pinned = %v, want %v", got, want)
	}
	c.Untrust(colonUpper(fpA))
	_, err := c.Version(ctx)
	wantUntrusted(t, err, fpA)
}

func TestTrustSwitchesToPinning(t *testing.T) {
	certA, certB := genCert(t, "sepm-01"), genCert(t, "ca-b")
	f := newFakeWithCert(t, certA)
	c := newTestClient(t, f, func(cfg *Config) { cfg.Fingerprints, cfg.CAFile = nil, writePEM(t, certB) })
	if _, err := c.Version(t.Context()); err == nil {
		t.Fatal("trusted a certificate outside the CA bundle")
	}
	if err := c.Trust(FingerprintOf(certA.Certificate[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Version(t.Context()); err != nil {
		t.Fatalf("after Trust on a CA-bundle client: %v", err)
	}
}

func TestInsecureSkipVerify(t *testing.T) {
	f := newFakeWithCert(t, genCert(t, "anything"))
	c := newTestClient(t, f, func(cfg *Config) { cfg.Fingerprints, cfg.InsecureSkipVerify = nil, true })
	if _, err := c.Version(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	const fp = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, in := range []string{fp, strings.ToUpper(fp), colonUpper(fp), " " + colonUpper(fp) + "\n", "sha256:" + fp, "SHA256=" + fp} {
		if got, err := NormalizeFingerprint(in); err != nil || got != fp {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "abcd", fp + "00", strings.Replace(fp, "0", "g", 1)} {
		if _, err := NormalizeFingerprint(bad); err == nil {
			t.Errorf("NormalizeFingerprint(%q) accepted", bad)
		}
	}
}

func TestProbeCertificate(t *testing.T) {
	cert := genCert(t, "sepm-02")
	f := newFakeWithCert(t, cert)
	addr := f.srv.Listener.Addr().String()
	for _, target := range []string{addr, f.srv.URL, f.srv.URL + "/sepm/api/v1"} {
		got, err := ProbeCertificate(t.Context(), target)
		if err != nil {
			t.Fatalf("probe %s: %v", target, err)
		}
		want := CertInfo{SHA256: FingerprintOf(cert.Certificate[0]), Subject: "CN=sepm-02,O=sepmbot test", NotAfter: cert.Leaf.NotAfter}
		if got.SHA256 != want.SHA256 || got.Subject != want.Subject || !got.NotAfter.Equal(want.NotAfter) {
			t.Errorf("probe %s = %+v, want %+v", target, got, want)
		}
	}
	if n := f.hitCount("GET /sepm/api/v1/version"); n != 0 {
		t.Errorf("the probe sent a request")
	}
}

func TestProbeErrors(t *testing.T) {
	// A closed port on loopback: the probe fails with the address in the message.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := ProbeCertificate(t.Context(), addr); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("probe of a closed port: %v", err)
	}
	for _, bad := range []string{"127.0.0.1", "https://", ""} {
		if _, err := ProbeCertificate(t.Context(), bad); err == nil {
			t.Errorf("probe %q accepted", bad)
		}
	}
	// A listener that never answers the handshake: the context bounds the probe.
	stuck, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := ProbeCertificate(ctx, stuck.Addr().String()); err == nil {
		t.Error("probe of a silent listener succeeded")
	}
}

// TestPinnedTLSConfig: the configuration handed to other clients trusts the pinned
// leaf and nothing else, and needs a fingerprint.
func TestPinnedTLSConfig(t *testing.T) {
	certA, certB := genCert(t, "sepm-01"), genCert(t, "sepm-02")
	f := newFakeWithCert(t, certA)
	get := func(fp string) error {
		tc, err := PinnedTLSConfig("127.0.0.1", fp)
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(f.srv.URL + "/sepm/api/v1/version")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(FingerprintOf(certA.Certificate[0])); err != nil {
		t.Fatalf("pinned certificate refused: %v", err)
	}
	if err := get(FingerprintOf(certB.Certificate[0])); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("another certificate accepted or unexplained: %v", err)
	}
	if _, err := PinnedTLSConfig("127.0.0.1"); err == nil {
		t.Fatal("a configuration without a fingerprint")
	}
}
