package sim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"
)

// serverCert is one certificate of a simulated server, immutable once made.
type serverCert struct {
	tls  *tls.Certificate
	leaf *x509.Certificate
	fp   string // SHA-256 of the DER leaf, lowercase hex
	key  []byte // the raw P-256 private scalar (kept for the state file, never logged)
	der  []byte
}

// certEpoch is when generation 0 of every simulated certificate becomes valid;
// generation k is valid from certEpoch + k days, for certLifetime. Fixed dates
// (not the start time) make a seed's certificates the same on every run.
var certEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Certificate kinds: the planned sequence (current, next, ...) and the unexpected
// ones an admin call installs out of turn.
const (
	certPlanned    = "planned"
	certUnexpected = "unexpected"
)

// certBytes derives n bytes for a certificate from the seed, the server, the kind,
// the generation and a purpose: the same inputs give the same bytes on every run.
func certBytes(seed int64, server, kind string, gen int, purpose string, counter uint32) []byte {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seed))
	h.Write([]byte("sepmbot-sim certificate\x00"))
	h.Write(b[:])
	h.Write([]byte(server + "\x00" + kind + "\x00" + purpose + "\x00"))
	binary.BigEndian.PutUint64(b[:], uint64(gen))
	h.Write(b[:])
	binary.BigEndian.PutUint32(b[:4], counter)
	h.Write(b[:4])
	return h.Sum(nil)
}

// detSigner signs with RFC 6979 deterministic ECDSA whatever random source it is
// handed, so that a certificate's DER (and so its fingerprint) follows from its key
// and contents alone.
type detSigner struct{ k *ecdsa.PrivateKey }

func (d detSigner) Public() crypto.PublicKey { return d.k.Public() }
func (d detSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return d.k.Sign(nil, digest, opts)
}

// newServerCert makes generation gen of kind for a server: a self-signed ECDSA
// P-256 certificate, CN = name, SANs 127.0.0.1 and the name. Key, serial, validity and
// signature all follow from (seed, name, kind, gen): same seed, same fingerprints.
func newServerCert(seed int64, name, kind string, gen int) (*serverCert, error) {
	var key *ecdsa.PrivateKey
	var raw []byte
	for counter := uint32(0); key == nil; counter++ {
		if counter > 16 {
			return nil, fmt.Errorf("sim: certificate key for %s: no valid scalar derived", name)
		}
		raw = certBytes(seed, name, kind, gen, "key", counter)
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
		if err == nil {
			key = k
		}
	}
	sb := certBytes(seed, name, kind, gen, "serial", 0)[:16]
	sb[0] &= 0x3f // positive, at most 126 bits
	serial := new(big.Int).SetBytes(sb)
	if serial.Sign() == 0 {
		serial.SetInt64(1)
	}
	notBefore := certEpoch.Add(time.Duration(gen) * 24 * time.Hour)
	if kind == certUnexpected {
		notBefore = notBefore.Add(12 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{name},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &key.PublicKey, detSigner{key})
	if err != nil {
		return nil, fmt.Errorf("sim: certificate for %s: %w", name, err)
	}
	return certFromDER(der, key, raw)
}

// certFromDER assembles a serverCert from its DER and key.
func certFromDER(der []byte, key *ecdsa.PrivateKey, raw []byte) (*serverCert, error) {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sim: parse certificate: %w", err)
	}
	sum := sha256.Sum256(der)
	return &serverCert{
		tls:  &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		leaf: leaf,
		fp:   hex.EncodeToString(sum[:]),
		key:  raw,
		der:  der,
	}, nil
}
