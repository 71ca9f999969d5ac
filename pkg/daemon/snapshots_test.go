package daemon

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
)

func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// recordingServer answers 200 and records the paths it was asked for.
type recordingServer struct {
	mu    sync.Mutex
	paths []string
	url   string
}

func newRecordingServer(t *testing.T) *recordingServer {
	rs := &recordingServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.paths = append(rs.paths, r.URL.RequestURI())
		rs.mu.Unlock()
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	rs.url = srv.URL
	return rs
}

func (rs *recordingServer) last() string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.paths) == 0 {
		return ""
	}
	return rs.paths[len(rs.paths)-1]
}

func (ld *liveDaemon) snapshots(tenant string) []api.SnapshotSummary {
	ld.t.Helper()
	l, err := ld.c.Snapshots(context.Background(), client.SnapshotsOptions{Namespace: tenant})
	if err != nil {
		ld.t.Fatal(err)
	}
	return l.Items
}

// A 503 "no healthy upstream" is the gateway's own answer: its snapshot
// says so, its curl calls the gateway (scheme, host, the client's path,
// none of the headers the gateway adds), its target is the path below the
// route prefix, and a replay sends the upstream what the proxy would: the
// upstream's base path + that target. An outage's repeats are one
// snapshot with a count.
func TestSnapshotOfGatewayError(t *testing.T) {
	for _, tc := range []struct {
		name, route, prefix string
	}{
		{"default route", "", "/acme/billing-api"},
		{"route.pathPrefix", "\nroute: {pathPrefix: /acme/v1/bill}", "/acme/v1/bill"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ld := startDaemon(t, nil)
			ctx := context.Background()
			dead := deadURL(t)
			tool := func(up string) string {
				return doc("Tenant", "", "acme", "") + doc("Tool", "acme", "billing-api", "upstream: "+up+"/billing"+tc.route+"\nauth: {type: none}"+
					"\ncircuitBreaker: {consecutiveFailures: 1, ejection: 1h}\nupstreamAuth: {header: X-Up-Token, secretRef: {env: HOME}}")
			}
			ld.apply(tool(dead))
			path := tc.prefix + "/invoices/INV-1?expand=lines"
			ld.get(path) // connect failure: ejects the upstream
			const outage = 40
			for i := 0; i < outage; i++ {
				if st, body := ld.get(path); st != 503 || !strings.Contains(body, "no healthy upstream") {
					t.Fatalf("while ejected: %d %s", st, body)
				}
			}
			var gw api.SnapshotSummary
			waitFor(t, "the outage's snapshot to count every 503", func() bool {
				for _, s := range ld.snapshots("acme") {
					if s.Reason == "no_healthy_upstream" && s.Status == 503 && s.Count == outage {
						gw = s
						return true
					}
				}
				return false
			})
			if gw.Target != "/invoices/INV-1?expand=lines" || gw.LastSeen.Before(gw.Time) {
				t.Fatalf("summary: %+v", gw)
			}
			if n := len(ld.snapshots("acme")); n > 2 {
				t.Fatalf("%d snapshots for one outage (want the connect failure and one grouped 503)", n)
			}
			sn, err := ld.c.Snapshot(ctx, gw.ID)
			if err != nil {
				t.Fatal(err)
			}
			wantURL := ld.proxyURL() + path
			if sn.Origin != "gateway" || sn.Request.URL != wantURL || sn.Route != tc.prefix {
				t.Fatalf("snapshot: origin %q url %q route %q", sn.Origin, sn.Request.URL, sn.Route)
			}
			if !strings.Contains(sn.Curl, "'"+wantURL+"'") || !strings.Contains(sn.Curl, "the gateway answered itself") {
				t.Fatalf("curl does not call the gateway:\n%s", sn.Curl)
			}
			for _, h := range []string{"X-Stoa-Tenant", "X-Forwarded-For", "X-Request-Id", "X-Up-Token"} {
				if strings.Contains(sn.Curl, h) {
					t.Errorf("curl to the gateway sends the gateway's own header %s:\n%s", h, sn.Curl)
				}
			}

			// Replay through the current route: the proxy's mapping, not
			// the client's path appended to the base.
			live := newRecordingServer(t)
			ld.apply(tool(live.url))
			res, err := ld.c.ReplaySnapshot(ctx, gw.ID)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != 200 || res.Error != "" || live.last() != "/billing/invoices/INV-1?expand=lines" ||
				res.URL != live.url+"/billing/invoices/INV-1?expand=lines" {
				t.Fatalf("replay: %+v; upstream got %q", res, live.last())
			}
			// And the proxy itself maps the same request the same way.
			if st, _ := ld.get(path); st != 200 || live.last() != "/billing/invoices/INV-1?expand=lines" {
				t.Fatalf("proxied: %d %q", st, live.last())
			}

			// A replay that fails says so (the CLI exits 1 on it).
			ld.apply(tool(dead))
			res, err = ld.c.ReplaySnapshot(ctx, gw.ID)
			if err != nil || res.Error == "" || res.Status != 0 {
				t.Fatalf("replay to a dead upstream: %+v %v", res, err)
			}
		})
	}
}

// An upstream's own 5xx keeps its curl to the upstream, with the target
// mapped by the proxy.
func TestSnapshotOfUpstreamError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	ld := startDaemon(t, nil)
	ld.apply(doc("Tenant", "", "acme", "") + doc("Tool", "acme", "orders", "upstream: "+srv.URL+"/v2\nauth: {type: none}"))
	for i := 0; i < 3; i++ {
		ld.get("/acme/orders/items/7?x=1")
	}
	var sm api.SnapshotSummary
	waitFor(t, "the grouped 5xx snapshot", func() bool {
		l := ld.snapshots("acme")
		if len(l) == 1 && l[0].Count == 3 {
			sm = l[0]
			return true
		}
		return false
	})
	sn, err := ld.c.Snapshot(context.Background(), sm.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sn.Origin != "upstream" || sn.Request.URL != srv.URL+"/v2/items/7?x=1" || sn.Request.Target != "/items/7?x=1" ||
		!strings.Contains(sn.Curl, "'"+srv.URL+"/v2/items/7?x=1'") || strings.Contains(sn.Curl, "gateway answered") {
		t.Fatalf("snapshot: origin %q url %q target %q\n%s", sn.Origin, sn.Request.URL, sn.Request.Target, sn.Curl)
	}
}
