package telemetry

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

var update = flag.Bool("update", false, "rewrite testdata/scrape.golden")

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
// docs/observability.md; testdata/scrape.golden was written by the
// collector before it skipped idle series (go test -update rewrites it).
func TestCollectorExposition(t *testing.T) {
	got := scrape(t, trafficState().Collector())
	const golden = "testdata/scrape.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("exposition differs from %s:\n%s", golden, diffLines(string(want), got))
	}
}

// diffLines lists the lines only in want (-) or only in got (+).
func diffLines(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
