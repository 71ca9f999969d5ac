package stats

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// fakeSource is a daemon with one tenant with two tools live (and an idle
// tenant), started a minute ago.
type fakeSource struct {
	rev     *state.Revision
	started time.Time
	ready   atomic.Bool
}

func newFakeSource() *fakeSource {
	tool := func(name, up string) *spec.Object {
		return &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool,
			Metadata: spec.Metadata{Name: name, Namespace: "acme"},
			Spec: &spec.ToolSpec{Protocol: "rest", Upstream: up, Operations: []spec.Operation{
				{Name: "get_thing", Method: "GET", Path: "/things/{id}"},
			}}}
	}
	return &fakeSource{started: time.Now().Add(-time.Minute), rev: state.New(7, []*spec.Object{
		{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "acme"}, Spec: &spec.TenantSpec{}},
		{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "idle"}, Spec: &spec.TenantSpec{}},
		tool("billing-api", "http://127.0.0.1:9001/billing"),
		tool("inventory-api", "http://127.0.0.1:9001/inventory"),
	})}
}

func (f *fakeSource) Live() *state.Revision { return f.rev }
func (f *fakeSource) Ready() bool           { return f.ready.Load() }
func (f *fakeSource) Status() api.Status {
	return api.Status{StartedAt: f.started.UTC(), Revision: f.rev.Revision,
		Components: []api.Component{{Name: "proxy", State: "ok", Detail: "serving"}}}
}

func TestStatsSamplerRates(t *testing.T) {
	reg := telemetry.NewRegistry()
	sm := NewSampler(Options{Source: newFakeSource(), Registry: reg, XDP: func() XDPReading { return XDPReading{Mode: "off"} }})
	billing := reg.Get(telemetry.KindHTTP, "acme", "billing-api")
	mcp := reg.Get(telemetry.KindMCP, "acme", "acme__billing-api__get_thing")
	billing.Observe(200, time.Millisecond) // before the stream: cumulative only

	t0 := time.Unix(1000, 0)
	first := sm.Sample(t0)
	if first.IntervalSeconds != 0 || first.Totals.RPS != 0 {
		t.Fatalf("first sample has rates: %+v", first.Totals)
	}
	if first.Totals.Requests != 1 || first.Revision != 7 {
		t.Fatalf("first sample: requests %d revision %d", first.Totals.Requests, first.Revision)
	}

	for range 8 {
		billing.Observe(200, 2*time.Millisecond)
	}
	billing.Observe(429, 100*time.Microsecond)
	billing.Limited.Add(1)
	billing.Observe(502, 40*time.Millisecond)
	mcp.Observe(200, 3*time.Millisecond)
	mcp.Observe(200, 3*time.Millisecond)

	s := sm.Sample(t0.Add(2 * time.Second))
	if s.IntervalSeconds != 2 {
		t.Fatalf("interval %v", s.IntervalSeconds)
	}
	if len(s.Tenants) != 2 || s.Tenants[0].Name != "acme" || s.Tenants[1].Name != "idle" {
		t.Fatalf("tenants: %+v", s.Tenants)
	}
	acme := s.Tenants[0]
	if len(acme.Tools) != 2 || acme.Tools[0].Name != "billing-api" {
		t.Fatalf("tools: %+v", acme.Tools)
	}
	b := acme.Tools[0]
	tests := []struct {
		name      string
		got, want float64
	}{
		{"requests", float64(b.Requests), 11},
		{"rps", b.RPS, 5},
		{"2xx/s", b.CodeRates.S2xx, 4},
		{"4xx/s", b.CodeRates.S4xx, 0.5},
		{"5xx/s", b.CodeRates.S5xx, 0.5},
		{"limited", float64(b.Limited), 1},
		{"limited/s", b.LimitedRate, 0.5},
		{"tenant rps", acme.Total.RPS, 5},
		{"total 2xx", float64(s.Totals.Codes.S2xx), 9},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	// p50 over the interval is ~2ms (the pre-stream 1ms request is not in
	// it); p99 lands in the 40ms request's bucket.
	if b.P50Ms < 1.5 || b.P50Ms > 2.5 {
		t.Errorf("p50 = %vms, want ~2", b.P50Ms)
	}
	if b.P99Ms < 30 || b.P99Ms > 50 {
		t.Errorf("p99 = %vms, want ~40", b.P99Ms)
	}
	if b.Health != "unknown" || len(b.Upstreams) != 1 {
		t.Errorf("health %q upstreams %+v (no pools compiled: unknown)", b.Health, b.Upstreams)
	}
	if len(s.MCP) != 1 || s.MCP[0].Tool != "billing-api" || s.MCP[0].Operation != "get_thing" || s.MCP[0].RPS != 1 {
		t.Errorf("mcp: %+v", s.MCP)
	}
	if s.XDP == nil || s.XDP.Mode != "off" || s.XDP.Attached {
		t.Errorf("xdp: %+v", s.XDP)
	}

	// A quiet interval: rates fall to zero, counters stay.
	q := sm.Sample(t0.Add(3 * time.Second))
	if q.Totals.RPS != 0 || q.Totals.Requests != 11 || q.Totals.P99Ms != 0 {
		t.Errorf("quiet interval: %+v", q.Totals)
	}
}

func TestUpstreamHealthSummary(t *testing.T) {
	ts := &spec.ToolSpec{Upstreams: []spec.WeightedUpstream{{URL: "http://a", Weight: 9}, {URL: "http://b", Weight: 1}}}
	tests := []struct {
		health map[string]bool
		want   string
	}{
		{nil, "unknown"},
		{map[string]bool{"http://a": true, "http://b": true}, "ok"},
		{map[string]bool{"http://a": true, "http://b": false}, "degraded"},
		{map[string]bool{"http://a": false, "http://b": false}, "down"},
	}
	for _, tt := range tests {
		ups, got := upstreamHealth(ts, tt.health)
		if got != tt.want || len(ups) != 2 || ups[0].Weight != 9 {
			t.Errorf("upstreamHealth(%v) = %v %q, want %q", tt.health, ups, got, tt.want)
		}
	}
}

func TestXDPStatsRates(t *testing.T) {
	prev := &XDPReading{Passed: 100, DroppedRate: 10}
	x := xdpStats(XDPReading{Mode: "generic", Attached: true, Passed: 300, DroppedRate: 30, DroppedBlock: 20,
		TopSources: []api.XDPSource{{Addr: "192.0.2.1", Dropped: 50}}}, prev, 2)
	if x.PassedRate != 100 || x.DroppedRate != 20 || x.Dropped != 50 || x.DroppedBy["block"] != 20 || x.Mode != "generic" {
		t.Fatalf("xdp: %+v", x)
	}
	if x := xdpStats(XDPReading{}, nil, 1); x.Mode != "off" || x.PassedRate != 0 {
		t.Fatalf("empty xdp: %+v", x)
	}
}

func TestStatsHubStream(t *testing.T) {
	src := newFakeSource()
	src.ready.Store(true)
	h := NewHub(Options{Source: src, Registry: telemetry.NewRegistry(), Interval: 20 * time.Millisecond,
		XDP: func() XDPReading { return XDPReading{Mode: "native", Attached: true} }})

	// One sample with rates: never a stream's first.
	ch, cancel := h.Subscribe()
	var one api.StatsSample
	for one.IntervalSeconds == 0 {
		line, ok := <-ch
		if !ok {
			t.Fatal("stream ended")
		}
		if err := json.Unmarshal(line, &one); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
	}
	cancel()
	if one.XDP == nil || one.XDP.Mode != "native" || one.Revision != 7 || one.Daemon.UptimeSeconds < 60 ||
		len(one.Daemon.Components) != 1 || len(one.Tenants) != 2 {
		t.Fatalf("one sample: %+v", one)
	}

	// A second listener while the first streams: both get samples, and
	// the latest at once.
	a, cancelA := h.Subscribe()
	defer cancelA()
	var times []time.Time
	for len(times) < 3 {
		line, ok := <-a
		if !ok {
			t.Fatal("stream ended")
		}
		var s api.StatsSample
		if err := json.Unmarshal(line, &s); err != nil {
			t.Fatal(err)
		}
		times = append(times, s.Time)
	}
	if !times[2].After(times[1]) {
		t.Fatalf("stream samples: %v", times)
	}
	b, cancelB := h.Subscribe()
	defer cancelB()
	select {
	case <-b:
	case <-time.After(5 * time.Second):
		t.Fatal("a new listener waited for the next sample")
	}

	// Shutdown ends every stream, and the sampler stops.
	src.ready.Store(false)
	for _, ch := range []<-chan []byte{a, b} {
		deadline := time.After(5 * time.Second)
	drain:
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					break drain
				}
			case <-deadline:
				t.Fatal("stream did not end when the daemon stopped being ready")
			}
		}
	}
	h.mu.Lock()
	running := h.running
	h.mu.Unlock()
	if running {
		t.Error("sampler still running without listeners")
	}
}

// BenchmarkStatsSample measures one sample of 1,000 live tools with MCP
// series (what the stream costs stoad per second while anyone listens).
func BenchmarkStatsSample(b *testing.B) {
	reg := telemetry.NewRegistry()
	objs := []*spec.Object{{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "acme"}, Spec: &spec.TenantSpec{}}}
	for i := range 1000 {
		name := fmt.Sprintf("tool-%04d", i)
		objs = append(objs, &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool,
			Metadata: spec.Metadata{Name: name, Namespace: "acme"},
			Spec: &spec.ToolSpec{Protocol: "rest", Upstream: "http://127.0.0.1:9001/" + name,
				Operations: []spec.Operation{{Name: "get", Method: "GET", Path: "/x"}}}})
		s := reg.Get(telemetry.KindHTTP, "acme", name)
		m := reg.Get(telemetry.KindMCP, "acme", "acme__"+name+"__get")
		for j := range 50 {
			s.Observe(200, time.Duration(j)*time.Millisecond)
			m.Observe(200, time.Duration(j)*time.Millisecond)
		}
	}
	src := newFakeSource()
	src.rev = state.New(1, objs)
	o := Options{Source: src, Registry: reg, Log: slog.New(slog.DiscardHandler)}
	sm := newStreamer(o)
	now := time.Now()
	sm.sample(now)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		now = now.Add(time.Second)
		line, _ := sm.sample(now)
		size = len(line)
	}
	b.ReportMetric(float64(size), "bytes/sample")
}
