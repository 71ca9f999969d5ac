package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

func mustCSR(t *testing.T, name string) []byte {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NewCSR(k, name)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestSignAndVerify(t *testing.T) {
	now := time.Now()
	c, err := Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := c.Sign(mustCSR(t, "ignored-subject"), "edge-1", now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if iss.Cert.Subject.CommonName != "edge-1" || len(iss.Cert.URIs) != 1 || iss.Cert.URIs[0].String() != "stoa://dataplane/edge-1" ||
		iss.Cert.IsCA || iss.Cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || iss.Serial == "" {
		t.Fatalf("certificate: %+v", iss.Cert)
	}
	name, leaf, err := c.Verify([]*x509.Certificate{iss.Cert}, now)
	if err != nil || name != "edge-1" || leaf != iss.Cert {
		t.Fatalf("verify: %q %v", name, err)
	}
	// Expired, not yet valid.
	for _, at := range []time.Time{now.Add(25 * time.Hour), now.Add(-time.Hour)} {
		_, _, err := c.Verify([]*x509.Certificate{iss.Cert}, at)
		if ve, ok := err.(*VerifyError); !ok || !ve.Expired || ve.Hint() == "" {
			t.Fatalf("verify at %v: %v", at, err)
		}
	}
	// Another CA's certificate.
	other, _ := Generate(now)
	foreign, _ := other.Sign(mustCSR(t, "x"), "edge-1", now, time.Hour)
	if _, _, err := c.Verify([]*x509.Certificate{foreign.Cert}, now); err == nil || !strings.Contains(err.Error(), "not issued by this control plane") {
		t.Fatalf("foreign: %v", err)
	}
	// Another CA presenting ours as an intermediate does not help.
	if _, _, err := c.Verify([]*x509.Certificate{foreign.Cert, c.Certificate()}, now); err == nil {
		t.Fatal("foreign chain accepted")
	}
	if _, _, err := c.Verify(nil, now); err == nil {
		t.Fatal("no certificate accepted")
	}
	// Names that are not DNS labels are refused at signing.
	for _, n := range []string{"", "Edge", "a/b", "-a", strings.Repeat("a", 64), "a\x00"} {
		if _, err := c.Sign(mustCSR(t, n), n, now, time.Hour); err == nil {
			t.Errorf("signed %q", n)
		}
	}
	// The lifetime never passes the CA's.
	long, _ := c.Sign(mustCSR(t, "x"), "edge-1", now, 100*365*24*time.Hour)
	if long.Cert.NotAfter.After(c.Certificate().NotAfter) {
		t.Fatal("leaf outlives the CA")
	}
}

// A certificate of the right CA that does not name exactly one data
// plane consistently is refused (the CA never makes one, but a CA key
// used elsewhere might).
func TestNameOf(t *testing.T) {
	now := time.Now()
	c, _ := Generate(now)
	k, _ := NewKey()
	mk := func(cn string, uris ...string) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: c.cert.SerialNumber, Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		for _, u := range uris {
			pu, _ := url.Parse(u)
			tmpl.URIs = append(tmpl.URIs, pu)
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &k.PublicKey, c.key)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		return cert
	}
	for name, cert := range map[string]*x509.Certificate{
		"no uri":       mk("edge-1"),
		"two uris":     mk("edge-1", "stoa://dataplane/edge-1", "stoa://dataplane/edge-2"),
		"cn differs":   mk("edge-2", "stoa://dataplane/edge-1"),
		"bad name":     mk("Edge", "stoa://dataplane/Edge"),
		"other scheme": mk("edge-1", "spiffe://dataplane/edge-1"),
		"path in name": mk("edge-1/x", "stoa://dataplane/edge-1/x"),
	} {
		if _, _, err := c.Verify([]*x509.Certificate{cert}, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n, _, err := c.Verify([]*x509.Certificate{mk("edge-1", "stoa://dataplane/edge-1", "https://edge-1.example")}, now); err != nil || n != "edge-1" {
		t.Fatalf("with an extra non-stoa URI: %q %v", n, err)
	}
}

func TestParseCSRRefusals(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, rk)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, p384)
	good := mustCSR(t, "x")
	b, _ := pem.Decode(good)
	b.Bytes[len(b.Bytes)-3] ^= 0xff // break the signature
	for name, in := range map[string][]byte{
		"junk":      []byte("hello"),
		"cert":      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"rsa":       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		"p384":      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der384}),
		"signature": pem.EncodeToMemory(b),
	} {
		if _, err := ParseCSR(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestServerTLSConfig(t *testing.T) {
	c, _ := Generate(time.Now())
	base := &tls.Config{MinVersion: tls.VersionTLS10, ServerName: "cp"}
	cfg := c.ServerTLSConfig(base)
	if cfg.ClientAuth != tls.VerifyClientCertIfGiven || cfg.ClientCAs != c.Pool() || cfg.MinVersion != tls.VersionTLS12 || cfg.ServerName != "cp" {
		t.Fatalf("config: %+v", cfg)
	}
	if base.ClientAuth != tls.NoClientCert {
		t.Fatal("base modified")
	}
}

func TestFromStoreSharedAndStable(t *testing.T) {
	ctx := context.Background()
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := FromStore(ctx, st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := FromStore(ctx, st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !a.Certificate().Equal(b.Certificate()) || string(a.KeyPEM()) != string(b.KeyPEM()) {
		t.Fatal("a second load made another CA")
	}
}

func TestFromFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca", "ca.crt"), filepath.Join(dir, "ca", "ca.key")
	a, err := FromFiles(cert, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode().Perm())
	}
	b, err := FromFiles(cert, key, time.Now())
	if err != nil || !a.Certificate().Equal(b.Certificate()) {
		t.Fatalf("reload: %v", err)
	}
	os.Chmod(key, 0o644)
	if _, err := FromFiles(cert, key, time.Now()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	os.Chmod(key, 0o600)
	os.Remove(cert)
	if _, err := FromFiles(cert, key, time.Now()); err == nil || !strings.Contains(err.Error(), "remove both") {
		t.Fatalf("key without certificate: %v", err)
	}
	// A key that is not the certificate's.
	other, _ := Generate(time.Now())
	os.WriteFile(cert, other.CertPEM(), 0o644)
	if _, err := FromFiles(cert, key, time.Now()); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched pair: %v", err)
	}
}
