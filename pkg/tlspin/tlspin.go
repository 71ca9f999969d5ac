// Package tlspin trusts one TLS server certificate by its SHA-256
// fingerprint, for control planes and development issuers that serve a
// self-signed certificate (like ssh's known_hosts, or kubectl's
// certificate-authority-data, but for one leaf).
//
// A pinned connection skips the usual chain and name verification and
// instead requires that the server's leaf certificate hashes to the pinned
// value: nothing else is trusted, not even a certificate a public CA signed
// for the same name. It imports nothing beyond the standard library so that
// both binaries can use it.
package tlspin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrMismatch is returned (wrapped) when a server presents a certificate
// other than the pinned one.
var ErrMismatch = errors.New("server certificate does not match the pinned fingerprint")

// Fingerprint is a SHA-256 digest of a DER-encoded certificate.
type Fingerprint [sha256.Size]byte

// Of returns the fingerprint of a DER-encoded certificate.
func Of(der []byte) Fingerprint { return sha256.Sum256(der) }

// String renders the fingerprint as "SHA256:" followed by uppercase hex
// pairs separated by colons, the form
// `openssl x509 -noout -fingerprint -sha256` prints (after its "sha256
// Fingerprint=" label), so users can compare the two by eye.
func (f Fingerprint) String() string {
	var b strings.Builder
	b.Grow(7 + 3*len(f))
	b.WriteString("SHA256:")
	for i, c := range f {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// Parse reads a fingerprint written as 64 hex digits, in either case, with
// or without colons between pairs, optionally prefixed by "SHA256:" or
// "sha256 Fingerprint=" (openssl's output).
func Parse(s string) (Fingerprint, error) {
	var f Fingerprint
	t := strings.TrimSpace(s)
	for _, prefix := range []string{"sha256 fingerprint=", "sha256:"} {
		if len(t) >= len(prefix) && strings.EqualFold(t[:len(prefix)], prefix) {
			t = t[len(prefix):]
			break
		}
	}
	t = strings.ReplaceAll(t, ":", "")
	if len(t) != 2*sha256.Size {
		return f, fmt.Errorf("parse fingerprint %q: want %d hex digits (a SHA-256 digest), got %d (get it with: openssl x509 -noout -fingerprint -sha256 -in cert.pem)", s, 2*sha256.Size, len(t))
	}
	if _, err := hex.Decode(f[:], []byte(t)); err != nil {
		return f, fmt.Errorf("parse fingerprint %q: not hexadecimal", s)
	}
	return f, nil
}

// TLSConfig returns a client configuration that accepts exactly the server
// whose leaf certificate has fingerprint want. The server name is still
// sent (SNI) but not verified: the pin is the trust decision. Expiry is not
// checked either, as with ssh host keys; rotate the pin when the server's
// certificate changes.
func TLSConfig(want Fingerprint) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Chain and name verification are replaced, not skipped: the
		// VerifyConnection callback below runs on every handshake,
		// including resumed ones, and refuses any other certificate.
		InsecureSkipVerify: true, //nolint:gosec // replaced by the pin check
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: the server sent no certificate", ErrMismatch)
			}
			got := Of(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				return fmt.Errorf("%w: pinned %s, server %s presented %s (if the server's certificate was replaced on purpose, update the context's fingerprint)", ErrMismatch, want, cs.ServerName, got)
			}
			return nil
		},
	}
}

// HTTPClient returns an HTTP client whose TLS connections must present the
// pinned certificate. It does not follow redirects to other hosts with
// the pin (a redirect elsewhere would fail the pin anyway) and never falls
// back to the system roots.
func HTTPClient(want Fingerprint, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = TLSConfig(want)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// ProbeResult is what a server presented to Probe.
type ProbeResult struct {
	// Fingerprint of the leaf certificate.
	Fingerprint Fingerprint
	// Subject and NotAfter describe the leaf, for the prompt.
	Subject  string
	NotAfter time.Time
	// VerifyError is why the system roots would not trust the certificate
	// for the probed name; nil when they would.
	VerifyError error
}

// Probe connects to addr (host:port) without verifying anything and
// reports the certificate the server presents. It is for
// trust-on-first-use prompts ("the server presented SHA256:…; pin it with
// --fingerprint"); no credentials are ever sent over the probed
// connection.
func Probe(ctx context.Context, addr string) (ProbeResult, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("probe %s: %w", addr, err)
	}
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, ServerName: host, MinVersion: tls.VersionTLS12}} //nolint:gosec // only reads the certificate
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("probe %s: %w", addr, err)
	}
	defer conn.Close()
	cs := conn.(*tls.Conn).ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return ProbeResult{}, fmt.Errorf("probe %s: the server sent no certificate", addr)
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, verr := leaf.Verify(x509.VerifyOptions{DNSName: host, Intermediates: inter})
	return ProbeResult{Fingerprint: Of(leaf.Raw), Subject: leaf.Subject.String(), NotAfter: leaf.NotAfter, VerifyError: verr}, nil
}

// SelfSigned makes a self-signed ECDSA P-256 certificate for the given DNS
// names and IP addresses, valid from now for validity, for development
// servers whose clients pin it. The fingerprint is returned alongside.
func SelfSigned(hosts []string, now time.Time, validity time.Duration) (tls.Certificate, Fingerprint, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, Fingerprint{}, errors.New("make self-signed certificate: no host names")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, Fingerprint{}, fmt.Errorf("make self-signed certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, Fingerprint{}, fmt.Errorf("make self-signed certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0]},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, Fingerprint{}, fmt.Errorf("make self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, Fingerprint{}, fmt.Errorf("make self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, Of(der), nil
}
