package stats

import (
	"log/slog"
	"runtime"
	"syscall"
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
// traffic on 100 tools and 100 MCP tools in every interval. health=proxy
// adds an Options.Health that builds a map of every upstream per call,
// as the proxy's UpstreamHealth does; health=none leaves it out (the
// sampler's own cost). cpu-ns/op is the process's CPU time per sample,
// the garbage collector's included.
func BenchmarkStatsSample10k(b *testing.B) {
	for _, withHealth := range []bool{false, true} {
		name := "health=none"
		if withHealth {
			name = "health=proxy"
		}
		b.Run(name, func(b *testing.B) {
			src, reg, hot := benchState(b, 10000, 100)
			o := Options{Source: src, Registry: reg, Log: slog.New(slog.DiscardHandler)}
			if withHealth {
				var urls []string
				for _, obj := range src.rev.OfKind(spec.KindTool) {
					urls = append(urls, obj.Spec.(*spec.ToolSpec).Upstream)
				}
				o.Health = func() map[string]bool {
					out := map[string]bool{}
					for _, u := range urls {
						out[u] = true
					}
					return out
				}
			}
			sample := benchSampler(o)
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
			sample(now)
			runtime.GC() // the set-up's garbage is not the sample's
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			var size int
			for b.Loop() {
				traffic()
				now = now.Add(time.Second)
				size = len(sample(now))
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(size), "bytes/sample")
		})
	}
}

// cpuTime is the process's CPU time (user and system, every thread: the
// garbage collector's work counts), which a shared machine's load does
// not inflate the way it does wall time.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
