package sepm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// CertInfo describes the leaf certificate a server presented.
type CertInfo struct {
	SHA256   string // lowercase hex, no colons
	Subject  string
	NotAfter time.Time
}

// probeTimeout bounds a probe whose context has no deadline.
const probeTimeout = 10 * time.Second

// ProbeCertificate makes a TLS handshake with addr ("host:port", or a URL such as
// "https://host:8446") and returns the leaf certificate the server presented. It
// verifies nothing and sends nothing: it only reads which certificate is served, which
// is how the bot checks that a certificate update took effect.
func ProbeCertificate(ctx context.Context, addr string) (CertInfo, error) {
	hostport, err := probeAddr(addr)
	if err != nil {
		return CertInfo{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probeTimeout)
		defer cancel()
	}
	host, _, _ := net.SplitHostPort(hostport)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host // SNI, so a server with several certificates shows the right one
	}
	cfg.InsecureSkipVerify = true // probe only: it reports the certificate and trusts nothing
	d := &tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return CertInfo{}, fmt.Errorf("sepm: probe %s: %w", hostport, err)
	}
	defer conn.Close()
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return CertInfo{}, fmt.Errorf("sepm: probe %s: not a TLS connection", hostport)
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return CertInfo{}, fmt.Errorf("sepm: probe %s: the server presented no certificate", hostport)
	}
	leaf := certs[0]
	return CertInfo{SHA256: FingerprintOf(leaf.Raw), Subject: leaf.Subject.String(), NotAfter: leaf.NotAfter}, nil
}

// probeAddr accepts "host:port" or an https URL (port 443 when absent).
func probeAddr(addr string) (string, error) {
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil || u.Hostname() == "" {
			return "", fmt.Errorf("sepm: probe: %q is not host:port or an https URL", addr)
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		return net.JoinHostPort(u.Hostname(), port), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return "", errors.Join(fmt.Errorf("sepm: probe: %q is not host:port", addr), err)
	}
	return addr, nil
}
