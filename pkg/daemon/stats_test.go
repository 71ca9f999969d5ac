package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// statsDaemon builds a daemon with the default runtimes (not started) and
// one tenant with two tools live.
func statsDaemon(t *testing.T) *Daemon {
	t.Helper()
	cfg := &Config{StateDir: t.TempDir(), Socket: "/nonexistent.sock", Listen: "127.0.0.1:0"}
	d, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Runtimes: DefaultRuntimes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.store.Close() })
	tool := func(name, up string) *spec.Object {
		return &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool,
			Metadata: spec.Metadata{Name: name, Namespace: "acme"},
			Spec: &spec.ToolSpec{Protocol: "rest", Upstream: up, Operations: []spec.Operation{
				{Name: "get_thing", Method: "GET", Path: "/things/{id}"},
			}}}
	}
	d.state.Store(NewState(7, []*spec.Object{
		{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "acme"}, Spec: &spec.TenantSpec{}},
		{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "idle"}, Spec: &spec.TenantSpec{}},
		tool("billing-api", "http://127.0.0.1:9001/billing"),
		tool("inventory-api", "http://127.0.0.1:9001/inventory"),
	}))
	return d
}

func TestStatsSamplerRates(t *testing.T) {
	d := statsDaemon(t)
	reg := d.dp.stats
	billing := reg.Get(telemetry.KindHTTP, "acme", "billing-api")
	mcp := reg.Get(telemetry.KindMCP, "acme", "acme__billing-api__get_thing")
	billing.Observe(200, time.Millisecond) // before the stream: cumulative only

	var sm statsSampler
	t0 := time.Unix(1000, 0)
	first := sm.sample(d, t0)
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

	s := sm.sample(d, t0.Add(2*time.Second))
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
		t.Errorf("xdp before any revision is loaded: %+v", s.XDP)
	}

	// A quiet interval: rates fall to zero, counters stay.
	q := sm.sample(d, t0.Add(3*time.Second))
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

type fakeXDP struct{ r XDPReading }

func (f *fakeXDP) XDPStats() XDPReading { return f.r }

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
	d := statsDaemon(t)
	// First, so that it reports rather than the default xdp runtime.
	d.runtimes = append([]Runtime{&fakeXDPRuntime{fakeXDP{XDPReading{Mode: "native", Attached: true}}}}, d.runtimes...)
	d.ready.Store(true)
	h := &statsHub{d: d, interval: 20 * time.Millisecond}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.serve(w, r, Peer{}); err != nil {
			WriteError(w, err)
		}
	}))
	defer srv.Close()

	// One sample: it carries rates, so it is never a stream's first.
	resp, err := http.Get(srv.URL + api.PathStats)
	if err != nil {
		t.Fatal(err)
	}
	var one api.StatsSample
	if err := json.NewDecoder(resp.Body).Decode(&one); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if one.IntervalSeconds == 0 || one.XDP == nil || one.XDP.Mode != "native" || one.Revision != 7 {
		t.Fatalf("one sample: interval %v xdp %+v", one.IntervalSeconds, one.XDP)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+api.PathStats+"?follow=1", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var times []time.Time
	for len(times) < 3 && sc.Scan() {
		var s api.StatsSample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		times = append(times, s.Time)
	}
	if len(times) < 3 || !times[2].After(times[1]) {
		t.Fatalf("stream samples: %v (%v)", times, sc.Err())
	}

	// Shutdown ends the stream.
	d.ready.Store(false)
	done := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end when the daemon stopped being ready")
	}
	h.mu.Lock()
	running := h.running
	h.mu.Unlock()
	if running {
		t.Error("sampler still running without listeners")
	}
}

// fakeXDPRuntime is a Runtime that reports XDP figures.
type fakeXDPRuntime struct{ fakeXDP }

func (*fakeXDPRuntime) Name() string                   { return "xdp" }
func (*fakeXDPRuntime) Prepare(*State) (func(), error) { return func() {}, nil }
func (*fakeXDPRuntime) Start(context.Context) error    { return nil }
func (*fakeXDPRuntime) Stop(context.Context) error     { return nil }
func (*fakeXDPRuntime) Status() api.Component          { return api.Component{Name: "xdp", State: "ok"} }
func (x *fakeXDPRuntime) XDPStats() XDPReading         { return x.r }

// BenchmarkStatsSample measures one sample of 1,000 live tools with MCP
// series (what the stream costs stoad per second while anyone listens).
func BenchmarkStatsSample(b *testing.B) {
	cfg := &Config{StateDir: b.TempDir(), Socket: "/nonexistent.sock", Listen: "127.0.0.1:0"}
	d, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Runtimes: DefaultRuntimes})
	if err != nil {
		b.Fatal(err)
	}
	defer d.store.Close()
	objs := []*spec.Object{{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "acme"}, Spec: &spec.TenantSpec{}}}
	for i := range 1000 {
		name := fmt.Sprintf("tool-%04d", i)
		objs = append(objs, &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool,
			Metadata: spec.Metadata{Name: name, Namespace: "acme"},
			Spec: &spec.ToolSpec{Protocol: "rest", Upstream: "http://127.0.0.1:9001/" + name,
				Operations: []spec.Operation{{Name: "get", Method: "GET", Path: "/x"}}}})
		s := d.dp.stats.Get(telemetry.KindHTTP, "acme", name)
		m := d.dp.stats.Get(telemetry.KindMCP, "acme", "acme__"+name+"__get")
		for j := range 50 {
			s.Observe(200, time.Duration(j)*time.Millisecond)
			m.Observe(200, time.Duration(j)*time.Millisecond)
		}
	}
	d.state.Store(NewState(1, objs))
	h := &statsHub{d: d}
	var sm statsSampler
	now := time.Now()
	sm.sample(d, now)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		now = now.Add(time.Second)
		size = len(h.encode(sm.sample(d, now)))
	}
	b.ReportMetric(float64(size), "bytes/sample")
}
