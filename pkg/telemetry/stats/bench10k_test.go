package stats

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/internal/benchspecs"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// benchState is the bench-apply set (n Tools across 20 tenants, two
// operations each) as a live revision with every series a daemon
// compiles for it (one HTTP series per tool, one MCP series per
// operation), and traffic on the first hot tools.
func benchState(tb testing.TB, n, hot int) (*fakeSource, *telemetry.Registry, []*telemetry.Series) {
	tb.Helper()
	objs, diags := spec.Parse("bench.yaml", benchspecs.YAML(n, 20, ""))
	if diags.HasErrors() {
		tb.Fatalf("bench specs: %v", diags)
	}
	plan.SortObjects(objs)
	reg := telemetry.NewRegistry()
	var hotSeries []*telemetry.Series
	for _, o := range objs {
		ts, ok := o.Spec.(*spec.ToolSpec)
		if !ok {
			continue
		}
		ns, name := o.Metadata.Namespace, o.Metadata.Name
		s := reg.Get(telemetry.KindHTTP, ns, name)
		var ms []*telemetry.Series
		for i := range ts.Operations {
			ms = append(ms, reg.Get(telemetry.KindMCP, ns, spec.MCPToolName(ns, name, &ts.Operations[i])))
		}
		if len(hotSeries) < 2*hot {
			hotSeries = append(hotSeries, s, ms[0])
		}
	}
	src := newFakeSource()
	src.rev = state.New(1, objs)
	return src, reg, hotSeries
}

// BenchmarkStatsSample10k measures one sample, encoded as the stream
// sends it, of the 10,000-tool bench-apply set (20,000 MCP tools) with
// traffic on 100 tools in every interval.
func BenchmarkStatsSample10k(b *testing.B) {
	src, reg, hot := benchState(b, 10000, 100)
	o := Options{Source: src, Registry: reg, Log: slog.New(slog.DiscardHandler)}
	h, sm := NewHub(o), NewSampler(o)
	now := time.Now()
	traffic := func() {
		for i, s := range hot {
			s.Observe(200, time.Duration(i)*time.Millisecond)
			if i%7 == 0 {
				s.Observe(429, time.Millisecond)
			}
		}
	}
	traffic()
	h.encode(sm.Sample(now))
	b.ReportAllocs()
	var size int
	for b.Loop() {
		traffic()
		now = now.Add(time.Second)
		size = len(h.encode(sm.Sample(now)))
	}
	b.ReportMetric(float64(size), "bytes/sample")
}
