// Package ca is the fleet's certificate authority: the control plane
// holds it and gives each data plane a short-lived client certificate
// (ECDSA P-256) for the key the data plane generated, named
// stoa://dataplane/NAME. Data planes authenticate to the /v1/fleet/
// routes with that certificate (mutual TLS); the private key never leaves
// the data plane, so a copied request cannot be replayed from elsewhere,
// which a bearer token could.
package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/fleet"
)

// URIPrefix starts the URI SAN that names a data plane.
const URIPrefix = "stoa://dataplane/"

// Backdate is how far before its issue a certificate becomes valid, so
// that a data plane whose clock is a little behind accepts it.
const Backdate = 5 * time.Minute

// Validity of the CA certificate itself.
const caValidity = 10 * 365 * 24 * time.Hour

// CA is the fleet certificate authority.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	pool    *x509.CertPool
}

// Generate makes a new CA: an ECDSA P-256 key and a self-signed
// certificate valid for ten years from now, which may sign only leaf
// certificates.
func Generate(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate fleet CA: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("generate fleet CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "stoa fleet CA", Organization: []string{"stoa"}},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("generate fleet CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("generate fleet CA: %w", err)
	}
	return Parse(pemCert(der), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// Parse loads a CA from its certificate and PKCS #8 (or SEC 1) private
// key, both PEM. The key must be ECDSA P-256 and match the certificate,
// which must be a CA certificate.
func Parse(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("load fleet CA: the certificate is not a PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load fleet CA: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("load fleet CA: the certificate is not a CA certificate (basicConstraints CA:TRUE)")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("load fleet CA: the key is not PEM")
	}
	var key *ecdsa.PrivateKey
	switch kb.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, fmt.Errorf("load fleet CA key: %w", err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("load fleet CA key: a %T key; the fleet CA uses ECDSA P-256", k)
		}
		key = ek
	case "EC PRIVATE KEY":
		if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
			return nil, fmt.Errorf("load fleet CA key: %w", err)
		}
	default:
		return nil, fmt.Errorf("load fleet CA key: PEM block %q, want PRIVATE KEY", kb.Type)
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("load fleet CA key: curve %s; the fleet CA uses P-256", key.Curve.Params().Name)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("load fleet CA: the key does not match the certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: key, certPEM: pemCert(cert.Raw), pool: pool}, nil
}

// Certificate is the CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPEM is the CA certificate, PEM.
func (c *CA) CertPEM() []byte { return c.certPEM }

// KeyPEM is the CA's private key, PKCS #8 PEM.
func (c *CA) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Pool holds only the CA certificate.
func (c *CA) Pool() *x509.CertPool { return c.pool }

// Issued is a certificate the CA signed.
type Issued struct {
	Cert *x509.Certificate
	PEM  []byte
	// Serial is the certificate's serial number in hex, the identity the
	// control plane records.
	Serial string
}

// Sign issues a client certificate for name, valid from now-Backdate to
// now+ttl, for the public key of csrPEM, which must be an ECDSA P-256 key
// whose request is signed by it (proof of possession). The request's
// subject and extensions are ignored: the CA names the certificate.
func (c *CA) Sign(csrPEM []byte, name string, now time.Time, ttl time.Duration) (*Issued, error) {
	if err := fleet.CheckName(name); err != nil {
		return nil, err
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	notAfter := now.Add(ttl)
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"stoa data planes"}},
		URIs:                  []*url.URL{{Scheme: "stoa", Host: "dataplane", Path: "/" + name}},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, csr.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return &Issued{Cert: cert, PEM: pemCert(der), Serial: SerialOf(cert)}, nil
}

// ParseCSR reads a PEM certificate request and checks that it is signed
// by its own ECDSA P-256 key.
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("read certificate request: not a PEM CERTIFICATE REQUEST block")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("read certificate request: its signature does not verify: %w", err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("read certificate request: a %T key; data planes use ECDSA P-256", csr.PublicKey)
	}
	return csr, nil
}

// VerifyError is a client certificate the CA does not accept.
type VerifyError struct {
	Msg     string
	Expired bool
}

func (e *VerifyError) Error() string { return e.Msg }

// Hint says how a data plane gets a certificate that works.
func (e *VerifyError) Hint() string {
	return "join the data plane again: stoa fleet join-token create --name NAME, then restart it with --join-token"
}

// Verify checks a client's certificate chain (as presented, leaf first)
// against the CA at now, for client authentication, and returns the data
// plane's name and the leaf. It does not consult revocation: the control
// plane checks the returned serial against the data plane's identity.
func (c *CA) Verify(chain []*x509.Certificate, now time.Time) (string, *x509.Certificate, error) {
	if len(chain) == 0 {
		return "", nil, &VerifyError{Msg: "no client certificate"}
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         c.pool,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		var ie x509.CertificateInvalidError
		if errors.As(err, &ie) && ie.Reason == x509.Expired {
			return "", nil, &VerifyError{Msg: fmt.Sprintf("the client certificate %q expired at %s (or is not yet valid)", leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339)), Expired: true}
		}
		return "", nil, &VerifyError{Msg: fmt.Sprintf("the client certificate %q was not issued by this control plane's fleet CA: %v", leaf.Subject.CommonName, err)}
	}
	name, err := NameOf(leaf)
	if err != nil {
		return "", nil, &VerifyError{Msg: err.Error()}
	}
	return name, leaf, nil
}

// NameOf returns the data plane name a certificate carries: exactly one
// stoa://dataplane/NAME URI, agreeing with the common name.
func NameOf(cert *x509.Certificate) (string, error) {
	var names []string
	for _, u := range cert.URIs {
		if s := u.String(); strings.HasPrefix(s, URIPrefix) {
			names = append(names, strings.TrimPrefix(s, URIPrefix))
		}
	}
	if len(names) != 1 {
		return "", fmt.Errorf("the certificate names %d data planes (URI %sNAME), want one", len(names), URIPrefix)
	}
	if err := fleet.CheckName(names[0]); err != nil {
		return "", fmt.Errorf("the certificate's URI: %w", err)
	}
	if cert.Subject.CommonName != names[0] {
		return "", fmt.Errorf("the certificate's common name %q differs from its URI %s%s", cert.Subject.CommonName, URIPrefix, names[0])
	}
	return names[0], nil
}

// SerialOf is a certificate's serial number in hex.
func SerialOf(cert *x509.Certificate) string { return hex.EncodeToString(cert.SerialNumber.Bytes()) }

// ServerTLSConfig returns base (cloned; nil for a new one) set up for the
// control plane's HTTPS listener: clients may present a certificate
// (ClientAuth VerifyClientCertIfGiven), which must then chain to the
// fleet CA. The same listener serves the CLI with bearer tokens and no
// certificate, so a certificate is optional at the TLS layer; the fleet
// routes require one (and verify it again, with revocation), the other
// routes ignore it.
func (c *CA) ServerTLSConfig(base *tls.Config) *tls.Config {
	var cfg *tls.Config
	if base == nil {
		cfg = &tls.Config{}
	} else {
		cfg = base.Clone()
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	cfg.ClientCAs = c.pool
	return cfg
}

// NewKey generates a data plane key.
func NewKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate data plane key: %w", err)
	}
	return k, nil
}

// NewCSR makes a PEM certificate request for key, naming name.
func NewCSR(key *ecdsa.PrivateKey, name string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, fmt.Errorf("make certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// KeyHash is the hex SHA-256 of a public key's PKIX encoding; a join
// token records the key it admitted, so that a data plane retrying a
// join whose answer was lost is recognised.
func KeyHash(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func randomSerial() (*big.Int, error) {
	// 128 random bits, positive and non-zero as RFC 5280 requires.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}
