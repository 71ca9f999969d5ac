package daemon

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestUpstreamTLSProxyAndReplay: a Tool's upstreamTLS CA is trusted by the
// proxy (the upstream's own 500 is an upstream snapshot, not a TLS
// failure) and by the snapshot's replay, which goes to the same upstream.
func TestUpstreamTLSProxyAndReplay(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ld := startDaemon(t, nil)
	ld.apply(doc("Tenant", "", "acme", "") + doc("Tool", "acme", "orders",
		"upstream: "+srv.URL+"/v2\nauth: {type: none}\nupstreamTLS: {caFile: "+caFile+", serverName: example.com}"))
	if st, body := ld.get("/acme/orders/items/7"); st != 500 {
		t.Fatalf("proxied over TLS: %d %s", st, body)
	}
	var id string
	waitFor(t, "the upstream's 5xx snapshot", func() bool {
		l := ld.snapshots("acme")
		if len(l) == 1 {
			id = l[0].ID
		}
		return len(l) == 1
	})
	fail.Store(false)
	res, err := ld.c.ReplaySnapshot(context.Background(), id)
	if err != nil || res.Status != 200 || res.Error != "" {
		t.Fatalf("replay over TLS with the Tool's CA: %+v %v", res, err)
	}
}
