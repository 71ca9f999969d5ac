package proxy

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/limits/redislimit"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// TestLimitsUnavailable: a fleet limiter that cannot reach its Redis and
// fails closed makes rate-limited calls 503 limits_unavailable with a
// Retry-After and the gateway's JSON body — not 429, no RateLimit-*
// headers, no escalation, nothing sent upstream — while a tool with no
// limit is not affected. The limiter is the real one, pointed at a port
// nothing listens on.
func TestLimitsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	lim := redislimit.New(redislimit.Options{Conn: redislimit.Conn{Addr: dead, DialTimeout: 200 * time.Millisecond},
		FailMode: redislimit.FailClosed})
	t.Cleanup(func() { lim.Close() })

	up := newUpstream(t, "u")
	var rejects atomic.Int32
	e := newEnv(t, tool("acme", "limited", up.URL, "rateLimit: {rate: 100/s}")+tool("acme", "free", up.URL, ""),
		func(o *Options) {
			o.Limiter = lim
			o.OnReject = func(netip.Addr) { rejects.Add(1) }
		})
	for i := 0; i < 3; i++ {
		r := e.get("/acme/limited/x")
		m := expectError(t, r, http.StatusServiceUnavailable, errLimitsUnavailable)
		if m["requestId"] != r.Header.Get("X-Request-Id") || m["message"] == "" {
			t.Fatalf("body %q", r.Body)
		}
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After: %v", r.Header)
		}
		if h := r.Header.Get("RateLimit-Limit"); h != "" {
			t.Errorf("503 with RateLimit-Limit %q", h)
		}
	}
	if r := e.get("/acme/free/x"); r.Status != 200 {
		t.Fatalf("unlimited tool: %d %q", r.Status, r.Body)
	}
	if n := up.hits.Load(); n != 1 {
		t.Fatalf("upstream hits %d, want 1 (the unlimited tool's)", n)
	}
	if n := rejects.Load(); n != 0 {
		t.Fatalf("OnReject called %d times for an unavailable limit store", n)
	}
}

// TestLimitKeysStable: a route's rate-limit keys are derived from names,
// the same in every process (a fleet's data planes must agree on them).
func TestLimitKeysStable(t *testing.T) {
	st := snapshot(t, 1, tool("acme", "api", "http://127.0.0.1:1", "rateLimit: 5/s"))
	tb, err := compile(st, newPoolRegistry(slog.Default(), nil), telemetry.NewRegistry(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := tb.byTool[toolKey{"acme", "api"}]
	if r == nil {
		t.Fatal("no route for acme/api")
	}
	if want := limits.NameKey(limits.KindTool, "tool/acme/api"); r.toolKey != want {
		t.Errorf("tool key %+v, want %+v", r.toolKey, want)
	}
	if want := limits.NameKey(limits.KindTenant, "tenant/acme"); r.tenantKey != want {
		t.Errorf("tenant key %+v, want %+v", r.tenantKey, want)
	}
}
