package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
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
