package telemetry

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/stoa-gateway/stoa/internal/golden"
)

// scrape gathers c through a pedantic registry (which checks every
// metric against its description) and returns the text exposition.
func scrape(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// trafficState is a small registry where every series saw traffic: HTTP
// answers of several classes and latencies, rate-limit rejections,
// upstream errors, MCP calls with errors.
func trafficState() *Registry {
	r := NewRegistry()
	api := r.Get(KindHTTP, "acme", "api")
	for i, d := range []time.Duration{90 * time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond, 40 * time.Millisecond, 3 * time.Second} {
		api.Observe(200+i%2*100, d)
	}
	api.Observe(429, 50*time.Microsecond)
	api.Limited.Add(1)
	dead := r.Get(KindHTTP, "acme", "dead")
	dead.Observe(502, 10*time.Second)
	dead.UpstreamErrors.Add(1)
	g := r.Get(KindHTTP, "globex", "weather")
	g.Observe(101, time.Millisecond)
	g.Observe(99, 200*time.Second)
	mc := r.Get(KindMCP, "acme", "acme__api__get_item")
	mc.Observe(200, 5*time.Millisecond)
	mc.Observe(500, 7*time.Millisecond)
	mc.Errors.Add(1)
	mc.Observe(429, 0)
	mc.Errors.Add(1)
	mc.Limited.Add(1)
	return r
}

// TestCollectorExposition: the names, help, types, labels, bucket
// bounds and values of the exported series are those documented in
// docs/proxy.md (Metrics); testdata/scrape.golden was written by the
// collector before it skipped idle series (go test -update rewrites it).
func TestCollectorExposition(t *testing.T) {
	got := scrape(t, trafficState().Collector())
	golden.Check(t, "testdata/scrape.golden", []byte(got))
}

func TestPromBounds(t *testing.T) {
	if len(promIdx) != numLE || len(promLE) != numLE {
		t.Fatalf("%d exported bounds, numLE is %d", len(promIdx), numLE)
	}
}

// TestCollectorIdleAndRemoved: a series appears with its tool's first
// request, not before, and disappears when Retain drops its tool.
func TestCollectorIdleAndRemoved(t *testing.T) {
	r := trafficState()
	c := r.Collector()
	idle := r.Get(KindHTTP, "acme", "idle")
	r.Get(KindMCP, "acme", "acme__idle__get")
	limitedOnly := r.Get(KindHTTP, "acme", "refused")
	limitedOnly.Limited.Add(1)
	out := scrape(t, c)
	if strings.Contains(out, `"idle"`) || strings.Contains(out, `acme__idle__get`) || strings.Contains(out, `"refused"`) {
		t.Fatalf("idle series exported:\n%s", out)
	}
	// The proxy counts a rejection, then observes the answer.
	limitedOnly.Observe(429, time.Millisecond)
	if out := scrape(t, c); !strings.Contains(out, `stoa_ratelimit_rejections_total{tenant="acme",tool="refused"} 1`) {
		t.Fatalf("series of a rejected request not exported:\n%s", out)
	}
	idle.Observe(200, time.Millisecond)
	out = scrape(t, c)
	for _, want := range []string{
		`stoa_http_requests_total{code="2xx",tenant="acme",tool="idle"} 1`,
		`stoa_http_request_duration_seconds_count{tenant="acme",tool="idle"} 1`,
		`stoa_http_request_duration_seconds_bucket{tenant="acme",tool="idle",le="+Inf"} 1`,
		`stoa_upstream_errors_total{tenant="acme",tool="idle"} 0`,
		`stoa_ratelimit_rejections_total{tenant="acme",tool="idle"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("after the first request, no %s", want)
		}
	}

	r.Retain(KindHTTP, map[[2]string]bool{{"acme", "api"}: true})
	out = scrape(t, c)
	for _, gone := range []string{`tool="idle"`, `tool="dead"`, `tool="weather"`, `tool="refused"`} {
		if strings.Contains(out, gone) {
			t.Errorf("series of a removed tool (%s) still exported", gone)
		}
	}
	if !strings.Contains(out, `stoa_http_requests_total{code="2xx",tenant="acme",tool="api"} 3`) ||
		!strings.Contains(out, `stoa_mcp_calls_total{code="2xx",tenant="acme",tool="acme__api__get_item"} 1`) {
		t.Errorf("kept series lost:\n%s", out)
	}
}

// BenchmarkCollect: a scrape of the statistics of 10,000 tools and 20,000
// MCP tools of which 100 tools saw traffic.
func BenchmarkCollect(b *testing.B) {
	r := NewRegistry()
	for i := range 10000 {
		tenant := fmt.Sprintf("tenant-%02d", i%20)
		tool := fmt.Sprintf("tool-%05d", i)
		s := r.Get(KindHTTP, tenant, tool)
		r.Get(KindMCP, tenant, tenant+"__"+tool+"__get_item")
		r.Get(KindMCP, tenant, tenant+"__"+tool+"__create_item")
		if i%100 == 0 {
			s.Observe(200, time.Duration(i)*time.Microsecond)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collector())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkObserve is the hot path's recording of one request.
func BenchmarkObserve(b *testing.B) {
	s := NewRegistry().Get(KindHTTP, "acme", "api")
	for b.Loop() {
		s.Observe(200, 3*time.Millisecond)
	}
}
