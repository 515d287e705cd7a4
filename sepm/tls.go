package sepm

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// NormalizeFingerprint turns a SHA-256 fingerprint as people write it ("AB:CD:...",
// "ab cd ...", "sha256:abcd...", any case) into 64 lowercase hex digits.
func NormalizeFingerprint(s string) (string, error) {
	t := strings.TrimSpace(s)
	if len(t) > 7 && strings.EqualFold(t[:7], "sha256:") {
		t = t[7:]
	} else if len(t) > 7 && strings.EqualFold(t[:7], "sha256=") {
		t = t[7:]
	}
	t = strings.NewReplacer(":", "", " ", "", "-", "").Replace(t)
	t = strings.ToLower(t)
	if len(t) != sha256.Size*2 {
		return "", fmt.Errorf("sepm: fingerprint %q: want a SHA-256 fingerprint of 64 hex digits, got %d", s, len(t))
	}
	if _, err := hex.DecodeString(t); err != nil {
		return "", fmt.Errorf("sepm: fingerprint %q: not hex", s)
	}
	return t, nil
}

// FingerprintOf is the SHA-256 fingerprint of a DER certificate, lowercase hex
// without colons.
func FingerprintOf(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// UntrustedCertError reports that the SEPM server presented a certificate the client
// does not trust. Presented names the fingerprint seen, so an operator can compare it
// with the one expected (and pin it with Trust once confirmed).
type UntrustedCertError struct {
	Presented string // SHA-256 of the presented leaf, lowercase hex
	Subject   string // subject of the presented leaf
	Reason    string // why it was refused
	Err       error  // the underlying verification error, if any
}

// Error implements error.
func (e *UntrustedCertError) Error() string {
	return fmt.Sprintf("server certificate not trusted: presented sha256 %s (subject %q): %s",
		e.Presented, e.Subject, e.Reason)
}

// Unwrap returns the underlying verification error.
func (e *UntrustedCertError) Unwrap() error { return e.Err }

// trust is the client's TLS trust: a CA pool (from Config.CAFile, else the system
// roots) and, in pinning mode, a set of leaf fingerprints that may change at runtime.
// It hands out a fresh tls.Config for every new connection, so a change of the
// pinned set applies to the next handshake without touching live connections.
type trust struct {
	roots    *x509.CertPool // nil: system roots
	caFile   bool           // roots came from Config.CAFile
	insecure bool           // Config.InsecureSkipVerify: no verification at all

	mu     sync.RWMutex
	pinned bool // pinning mode: on once any fingerprint was configured or trusted
	pins   map[string]bool
}

func newTrust(cfg Config) (*trust, error) {
	t := &trust{insecure: cfg.InsecureSkipVerify, pins: map[string]bool{}}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sepm: CA bundle: %w", err)
		}
		t.roots = x509.NewCertPool()
		if !t.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sepm: CA bundle %s: no PEM certificate in it", cfg.CAFile)
		}
		t.caFile = true
	}
	if err := t.add(cfg.Fingerprints...); err != nil {
		return nil, err
	}
	return t, nil
}

// add normalizes every fingerprint first and adds them only if all are valid.
func (t *trust) add(fps ...string) error {
	norm := make([]string, 0, len(fps))
	for _, fp := range fps {
		n, err := NormalizeFingerprint(fp)
		if err != nil {
			return err
		}
		norm = append(norm, n)
	}
	if len(norm) == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pinned = true
	for _, n := range norm {
		t.pins[n] = true
	}
	return nil
}

func (t *trust) remove(fp string) bool {
	n, err := NormalizeFingerprint(fp)
	if err != nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.pins[n] {
		return false
	}
	delete(t.pins, n)
	return true
}

func (t *trust) list() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.pins))
	for fp := range t.pins {
		out = append(out, fp)
	}
	slices.Sort(out)
	return out
}

// config is the tls.Config for one new connection to host.
//
// Without pins the standard verification runs (CA bundle, else system roots, with
// the host name). In pinning mode the presented leaf must be one of the pinned
// fingerprints, or chain to the CA bundle if one was given; Go's own check is
// switched off for that connection because VerifyConnection does the verification.
func (t *trust) config(host string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, RootCAs: t.roots}
	if t.insecure {
		cfg.InsecureSkipVerify = t.insecure // operator's --sepm-insecure-skip-verify
		return cfg
	}
	t.mu.RLock()
	pinned := t.pinned
	pins := make(map[string]bool, len(t.pins))
	for fp := range t.pins {
		pins[fp] = true
	}
	t.mu.RUnlock()
	cfg.InsecureSkipVerify = pinned // verification done in VerifyConnection
	if pinned {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return t.verifyPinned(cs, host, pins)
		}
	}
	return cfg
}

func (t *trust) verifyPinned(cs tls.ConnectionState, host string, pins map[string]bool) error {
	if len(cs.PeerCertificates) == 0 {
		return &UntrustedCertError{Reason: "the server presented no certificate"}
	}
	leaf := cs.PeerCertificates[0]
	fp := FingerprintOf(leaf.Raw)
	if pins[fp] {
		return nil
	}
	reason := fmt.Sprintf("not one of the %d pinned fingerprints", len(pins))
	var verr error
	if t.caFile {
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, verr = leaf.Verify(x509.VerifyOptions{Roots: t.roots, Intermediates: inter, DNSName: host})
		if verr == nil {
			return nil
		}
		reason += " and " + verr.Error()
	}
	return &UntrustedCertError{Presented: fp, Subject: leaf.Subject.String(), Reason: reason, Err: verr}
}

// dialTLS is the transport's DialTLSContext: it builds the TLS config for this
// connection from the current trust and explains verification failures with the
// presented fingerprint.
func (t *trust) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		Config:    t.config(host),
	}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
			leaf := cve.UnverifiedCertificates[0]
			return nil, &UntrustedCertError{Presented: FingerprintOf(leaf.Raw), Subject: leaf.Subject.String(),
				Reason: cve.Err.Error(), Err: err}
		}
		return nil, err
	}
	return conn, nil
}

// isCertError reports a TLS trust failure, which retrying cannot cure.
func isCertError(err error) bool {
	var ute *UntrustedCertError
	var cve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	var uae x509.UnknownAuthorityError
	var he x509.HostnameError
	var cie x509.CertificateInvalidError
	return errors.As(err, &ute) || errors.As(err, &cve) || errors.As(err, &rhe) ||
		errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cie)
}

// PinnedTLSConfig is the TLS configuration the Client uses in pinning mode, for
// other clients of a SEPM API (the bench's raw floor): only a leaf certificate with
// one of the SHA-256 fingerprints fps is accepted. At least one is required.
func PinnedTLSConfig(host string, fps ...string) (*tls.Config, error) {
	if len(fps) == 0 {
		return nil, errors.New("sepm: a pinned TLS configuration needs a fingerprint")
	}
	t, err := newTrust(Config{Fingerprints: fps})
	if err != nil {
		return nil, err
	}
	return t.config(host), nil
}
