package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestHTTPSUpstream: a Tool whose upstream is https:// is proxied over
// TLS (the client's own scheme is http), health probes use TLS too, and an
// upstream certificate the proxy does not trust is a 502, never a
// plaintext fallback.
func TestHTTPSUpstream(t *testing.T) {
	var probes atomic.Int32
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/base/healthz" {
			probes.Add(1)
			return
		}
		if r.TLS == nil {
			t.Errorf("request reached the upstream without TLS")
		}
		w.Header().Set("X-Path", r.URL.Path)
	}))
	t.Cleanup(up.Close)
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	trust := func(o *Options) { o.UpstreamTLS = &tls.Config{RootCAs: roots} }

	e := newEnv(t, tool("acme", "api", up.URL+"/base",
		"healthCheck: {path: /healthz, interval: 1s, timeout: 2s, healthyThreshold: 1, unhealthyThreshold: 1}"), trust)
	for i := 0; i < 3; i++ { // pooled connections are reused
		if r := e.get("/acme/api/x?y=1"); r.Status != 200 || r.Header.Get("X-Path") != "/base/x" {
			t.Fatalf("request %d: %d %q %s", i, r.Status, r.Header.Get("X-Path"), r.Body)
		}
	}
	waitFor(t, 10*time.Second, "a health probe over TLS", func() bool { return probes.Load() > 0 })

	untrusting := newEnv(t, tool("acme", "api", up.URL+"/base", ""))
	if r := untrusting.get("/acme/api/x"); r.Status != 502 {
		t.Fatalf("untrusted upstream certificate: %d %s", r.Status, r.Body)
	}
}

// TestUpstreamTLSPerTool: a Tool's upstreamTLS trusts a private CA (from a
// file or a secret), checks the name it gives, or (insecureSkipVerify)
// nothing, for that Tool alone: another Tool on the same upstream keeps
// the default roots and gets a 502, and a CA trusts only its own servers.
func TestUpstreamTLSPerTool(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-SNI", r.TLS.ServerName)
	}))
	t.Cleanup(up.Close)
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	other.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t, "other.example")}}
	other.StartTLS()
	t.Cleanup(other.Close)

	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STOA_TEST_UPSTREAM_CA", string(ca))
	withTLS := func(name, url, tlsSpec string) string {
		return tool("acme", name, url, "upstreamTLS: "+tlsSpec)
	}
	e := newEnv(t, tenant("acme", "")+
		withTLS("file", up.URL, "{caFile: "+caFile+"}")+
		withTLS("env", up.URL, "{ca: {env: STOA_TEST_UPSTREAM_CA}}")+
		withTLS("named", up.URL, "{caFile: "+caFile+", serverName: example.com}")+
		withTLS("misnamed", up.URL, "{caFile: "+caFile+", serverName: other.example}")+
		withTLS("insecure", up.URL, "{insecureSkipVerify: true}")+
		withTLS("wrongca", other.URL, "{caFile: "+caFile+"}")+
		tool("acme", "plain", up.URL, ""))
	for _, tc := range []struct {
		tool   string
		status int
		sni    string
	}{
		{"file", 200, ""}, {"env", 200, ""}, {"named", 200, "example.com"}, {"insecure", 200, ""},
		{"misnamed", 502, ""}, {"wrongca", 502, ""}, {"plain", 502, ""},
	} {
		r := e.get("/acme/" + tc.tool + "/x")
		if r.Status != tc.status || r.Header.Get("X-SNI") != tc.sni {
			t.Errorf("%s: %d SNI %q, want %d SNI %q (%s)", tc.tool, r.Status, r.Header.Get("X-SNI"), tc.status, tc.sni, r.Body)
		}
	}

	// A CA that cannot be read, or holds no certificate, refuses the
	// revision: the previous one stays in force.
	for _, bad := range []string{"{caFile: " + filepath.Join(t.TempDir(), "missing.pem") + "}", "{ca: {env: HOME}}"} {
		err := e.tryApply(tenant("acme", "") + withTLS("file", up.URL, bad))
		if err == nil || !strings.Contains(err.Error(), "upstreamTLS") {
			t.Errorf("%s: want an upstreamTLS error, got %v", bad, err)
		}
	}
	if r := e.get("/acme/file/x"); r.Status != 200 {
		t.Errorf("after refused revisions: %d", r.Status)
	}
}

// selfSigned makes a certificate for name, signed by itself.
func selfSigned(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
