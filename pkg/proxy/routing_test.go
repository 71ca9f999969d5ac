package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// routingEnv serves three tools of two tenants plus custom-prefix and
// host routes, each on its own recording upstream.
func routingEnv(t *testing.T) (*testEnv, map[string]*backend) {
	ups := map[string]*backend{}
	for _, n := range []string{"billing", "billing-v2", "weather", "custom", "host", "root"} {
		ups[n] = newUpstream(t, n)
	}
	specs := tenant("acme", "") + tenant("globex", "") +
		tool("acme", "billing-api", ups["billing"].URL+"/billing", "") +
		// A longer prefix inside billing-api's space wins for its paths.
		tool("acme", "billing-v2", ups["billing-v2"].URL+"/v2", "route: {pathPrefix: /acme/billing-api/v2}") +
		tool("globex", "weather-api", ups["weather"].URL+"/weather/", "") +
		tool("acme", "custom", ups["custom"].URL, "route: {pathPrefix: /api/custom/}") +
		tool("acme", "by-host", ups["host"].URL+"/h", "route: {pathPrefix: /acme/billing-api, host: Api.Example.COM}") +
		tool("acme", "catch-all", ups["root"].URL+"/root", "route: {pathPrefix: /, host: catchall.example}") +
		tool("acme", "port-host", ups["host"].URL+"/p", "route: {pathPrefix: /p, host: 'ports.example:8443'}")
	return newEnv(t, specs), ups
}

func TestRouting(t *testing.T) {
	e, ups := routingEnv(t)
	cases := []struct {
		name, path, host string
		upstream, uri    string // "" upstream: 404 no_route
	}{
		{"default prefix stripped and joined with base path", "/acme/billing-api/invoices/1", "", "billing", "/billing/invoices/1"},
		{"exact prefix", "/acme/billing-api", "", "billing", "/billing"},
		{"prefix with trailing slash", "/acme/billing-api/", "", "billing", "/billing/"},
		{"query string preserved", "/acme/billing-api/invoices?status=open&limit=2", "", "billing", "/billing/invoices?status=open&limit=2"},
		{"encoded query preserved verbatim", "/acme/billing-api/q?a=%2F%20b&c", "", "billing", "/billing/q?a=%2F%20b&c"},
		{"longest prefix wins", "/acme/billing-api/v2/x", "", "billing-v2", "/v2/x"},
		{"longest prefix exact", "/acme/billing-api/v2", "", "billing-v2", "/v2"},
		{"segment boundary: v2x is not v2", "/acme/billing-api/v2x", "", "billing", "/billing/v2x"},
		{"upstream base path with trailing slash", "/globex/weather-api/current/oslo", "", "weather", "/weather/current/oslo"},
		{"custom path prefix", "/api/custom/things", "", "custom", "/things"},
		{"custom prefix alone maps to /", "/api/custom", "", "custom", "/"},
		{"host route wins for its host", "/acme/billing-api/x", "api.example.com", "host", "/h/x"},
		{"host match ignores case and port", "/acme/billing-api/x", "API.example.com:8443", "host", "/h/x"},
		{"host routes win over longer host-less prefixes", "/acme/billing-api/v2/y", "api.example.com", "host", "/h/v2/y"},
		{"host route falls back to host-less routes", "/globex/weather-api/now", "api.example.com", "weather", "/weather/now"},
		{"host with a port", "/p/x", "ports.example:8443", "host", "/p/x"},
		{"host with a port matches any port", "/p/x", "ports.example", "host", "/p/x"},
		{"root prefix on its host catches all", "/anything/else", "catchall.example", "root", "/root/anything/else"},
		{"root prefix is host-bound", "/anything/else", "", "", ""},
		{"segment boundary: billing-apix", "/acme/billing-apix", "", "", ""},
		{"segment boundary: billing-apix/y", "/acme/billing-apix/y", "", "", ""},
		{"tenant alone is no route", "/acme", "", "", ""},
		{"unknown tenant", "/nobody/billing-api/x", "", "", ""},
		{"empty path", "/", "", "", ""},
		{"prefix case matters", "/ACME/billing-api/x", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.host != "" {
				hdr = []string{"Host", c.host}
			}
			r := e.get(c.path, hdr...)
			if c.upstream == "" {
				m := expectError(t, r, http.StatusNotFound, errNoRoute)
				if m["requestId"] == "" || m["requestId"] != r.Header.Get("X-Request-Id") {
					t.Fatalf("404 body requestId %v, header %q", m["requestId"], r.Header.Get("X-Request-Id"))
				}
				return
			}
			if r.Status != 200 || r.Header.Get("X-Upstream") != c.upstream {
				t.Fatalf("routed to %q (status %d, body %q), want %q", r.Header.Get("X-Upstream"), r.Status, r.Body, c.upstream)
			}
			if got := ups[c.upstream].last(t).URI; got != c.uri {
				t.Fatalf("upstream got URI %q, want %q", got, c.uri)
			}
		})
	}
}

// TestPathNormalisation checks that one normalised path serves routing,
// auth and forwarding: dot segments and percent-encodings can never make
// the gateway route by one path and forward another.
func TestPathNormalisation(t *testing.T) {
	acme, globex := newUpstream(t, "acme"), newUpstream(t, "globex")
	open := newUpstream(t, "open")
	e := newEnv(t, tenant("acme", "")+tenant("globex", "")+
		tool("acme", "billing-api", acme.URL+"/billing", "auth: {type: apiKey}")+
		tool("acme", "open-api", open.URL+"/open", "")+
		tool("globex", "weather-api", globex.URL+"/weather", "auth: {type: apiKey}")+
		object("Consumer", "acme", "shop", "displayName: shop"))
	key := e.addKey("acme", "shop", nil)

	cases := []struct {
		name, rawPath string
		status        int
		upstream      *backend
		uri           string
	}{
		// acme's key on a path that normalises into globex's tool: routed
		// (and authorised) as globex's tool, so refused; never sent to
		// acme's upstream with globex's path.
		{"dot segments cross tenants", "/acme/billing-api/../../globex/weather-api/x", 403, nil, ""},
		{"encoded dot segments", "/acme/billing-api/%2e%2e/%2e%2e/globex/weather-api/x", 403, nil, ""},
		{"encoded slashes", "/acme/billing-api%2f..%2f..%2fglobex%2fweather-api%2fx", 403, nil, ""},
		{"dot segments within tool", "/acme/billing-api/a/../invoices/./1", 200, acme, "/billing/invoices/1"},
		{"duplicate slashes", "//acme//billing-api///invoices", 200, acme, "/billing/invoices"},
		{"percent-encoded prefix", "/acme/billing%2Dapi/invoices", 200, acme, "/billing/invoices"},
		{"dot segments above root", "/../../acme/billing-api/x", 200, acme, "/billing/x"},
		{"escape to another tool of the tenant", "/acme/open-api/../billing-api/x", 200, acme, "/billing/x"},
		{"escape out of an open tool to a keyed one", "/acme/open-api/../../globex/weather-api/x", 403, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := [3]int64{acme.hits.Load(), globex.hits.Load(), open.hits.Load()}
			r := rawResponse(t, e.addr, "GET "+c.rawPath+" HTTP/1.1\r\nHost: gw\r\nX-Api-Key: "+key+"\r\nConnection: close\r\n\r\n")
			if r.Status != c.status {
				t.Fatalf("status %d, want %d (body %q)", r.Status, c.status, r.Body)
			}
			after := [3]int64{acme.hits.Load(), globex.hits.Load(), open.hits.Load()}
			if c.upstream == nil {
				if after != before {
					t.Fatalf("an upstream was hit: before %v after %v", before, after)
				}
				return
			}
			if got := c.upstream.last(t).URI; got != c.uri {
				t.Fatalf("upstream %s got %q, want %q", c.upstream.Name, got, c.uri)
			}
		})
	}
}

// TestForwardedPathIsEscaped checks that characters the normalised path
// holds after percent-decoding are escaped again on the way upstream:
// a decoded space, CR/LF or '?' must never reach the upstream raw (request
// line injection / header smuggling into the upstream connection).
func TestForwardedPathIsEscaped(t *testing.T) {
	up := newRawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	e := newEnv(t, tool("acme", "api", "http://"+up.Addr+"/base", ""))
	cases := []struct{ name, path, wantURI string }{
		{"space", "/acme/api/a%20b", "/base/a%20b"},
		{"crlf", "/acme/api/x%20HTTP/1.1%0d%0aX-Stoa-Tenant:%20globex%0d%0aX-Evil:%20y", "/base/x%20HTTP/1.1%0D%0AX-Stoa-Tenant:%20globex%0D%0AX-Evil:%20y"},
		{"question mark", "/acme/api/a%3Fb=c?q=1", "/base/a%3Fb=c?q=1"},
		{"hash", "/acme/api/a%23b", "/base/a%23b"},
		{"percent", "/acme/api/100%25", "/base/100%25"},
		{"utf-8", "/acme/api/%C3%A9t%C3%A9", "/base/%C3%A9t%C3%A9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(up.requests())
			r := rawResponse(t, e.addr, "GET "+c.path+" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
			if r.Status != 200 {
				t.Fatalf("status %d body %q", r.Status, r.Body)
			}
			reqs := up.requests()
			if len(reqs) != n+1 {
				t.Fatalf("upstream saw %d requests, want 1: %q", len(reqs)-n, reqs[n:])
			}
			line, head, _ := strings.Cut(reqs[n], "\r\n")
			if line != "GET "+c.wantURI+" HTTP/1.1" {
				t.Fatalf("upstream request line %q, want %q", line, "GET "+c.wantURI)
			}
			if strings.Contains(head, "X-Evil") || strings.Count(head, "X-Stoa-Tenant") != 1 {
				t.Fatalf("header injected upstream:\n%s", reqs[n])
			}
		})
	}
}

func TestNoRevisionLoaded(t *testing.T) {
	p := New(Options{Listen: "127.0.0.1:0"})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(t.Context())
	r := rawResponse(t, p.Addr(), "GET /acme/x HTTP/1.1\r\nHost: gw\r\n\r\n")
	expectError(t, r, http.StatusServiceUnavailable, errUnavailable)
}

func TestDuplicateRouteRejected(t *testing.T) {
	up := newUpstream(t, "u")
	e := newEnv(t, tool("acme", "a", up.URL, ""))
	err := e.tryApply(tool("acme", "a", up.URL, "") + tool("acme", "b", up.URL, "route: {pathPrefix: /acme/a/}"))
	if err == nil || !strings.Contains(err.Error(), "both route") {
		t.Fatalf("want a duplicate route error, got %v", err)
	}
	// The failed revision changed nothing.
	if r := e.get("/acme/a/x"); r.Status != 200 {
		t.Fatalf("live revision broken by a rejected one: %d", r.Status)
	}
}

// TestStopRightAfterStart: Stop must return even when Serve has not yet
// taken the listener (a daemon that fails to start stops its runtimes at
// once).
func TestStopRightAfterStart(t *testing.T) {
	for i := 0; i < 50; i++ {
		p := New(Options{Listen: "127.0.0.1:0"})
		if err := p.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			p.Stop(ctx)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Stop hangs (iteration %d)", i)
		}
	}
}
