package stats

import (
	"math"
	"os"
	"sort"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// seriesSnap is one series' counters at the previous sample.
type seriesSnap struct {
	codes                 [6]uint64
	limited, upErrs, errs uint64
	latency               telemetry.HistogramSnapshot
	gen                   uint64 // the sample that last saw the series
}

// Sampler turns successive registry snapshots into rates, building every
// entry of every sample afresh. The Hub streams through streamer, which
// keeps what did not change and writes the same bytes as encoding
// Sampler's samples (TestStreamGolden, TestStreamMatchesSampler): Sampler
// is the reference it is held to. It is not safe for concurrent use.
type Sampler struct {
	o       Options
	prevAt  time.Time
	prev    map[*telemetry.Series]*seriesSnap
	gen     uint64
	prevXDP *XDPReading
}

// read takes one series' figures: cumulative counters, and rates and the
// latency histogram (into lat) of the interval since the previous sample
// (a series new since then counts from zero; with dt 0, no rates at all).
// It reports whether lat was filled.
func (sm *Sampler) read(s *telemetry.Series, dt float64, lat *telemetry.HistogramSnapshot) (api.Traffic, bool) {
	var cur seriesSnap
	cur.limited, cur.upErrs, cur.errs, cur.latency = s.Limited.Load(), s.UpstreamErrors.Load(), s.Errors.Load(), s.Latency()
	for i := range s.Codes {
		cur.codes[i] = s.Codes[i].Load()
	}
	cur.gen = sm.gen
	t := api.Traffic{
		Codes:   api.StatusClasses{Other: cur.codes[0] + cur.codes[1], S2xx: cur.codes[2], S3xx: cur.codes[3], S4xx: cur.codes[4], S5xx: cur.codes[5]},
		Limited: cur.limited, UpstreamErrors: cur.upErrs, Errors: cur.errs,
	}
	for _, c := range cur.codes {
		t.Requests += c
	}
	base := sm.prev[s]
	if base == nil {
		base = &seriesSnap{} // appeared since the last sample: from zero
		sm.prev[s] = base
	}
	filled := false
	if dt > 0 {
		var d [6]float64
		for i := range d {
			if cur.codes[i] >= base.codes[i] {
				d[i] = float64(cur.codes[i]-base.codes[i]) / dt
			}
		}
		t.RPS = d[0] + d[1] + d[2] + d[3] + d[4] + d[5]
		t.CodeRates = api.StatusRates{S2xx: d[2], S3xx: d[3], S4xx: d[4], S5xx: d[5]}
		if cur.limited >= base.limited {
			t.LimitedRate = float64(cur.limited-base.limited) / dt
		}
		*lat = cur.latency.Sub(base.latency)
		filled = true
	}
	*base = cur
	return t, filled
}

// NewSampler returns a sampler whose first sample has no rates.
func NewSampler(o Options) *Sampler { return &Sampler{o: o} }

// Sample builds one sample at now and makes it the next baseline.
func (sm *Sampler) Sample(now time.Time) api.StatsSample {
	st := sm.o.Source.Live()
	status := sm.o.Source.Status()
	out := api.StatsSample{
		Time:     now.UTC(),
		Revision: st.Revision,
		Daemon: api.DaemonInfo{
			Version: version.Version, Commit: version.Commit, PID: os.Getpid(),
			StartedAt: status.StartedAt, UptimeSeconds: math.Round(now.Sub(status.StartedAt).Seconds()),
			Listeners: status.Listeners,
		},
		Tenants: []api.TenantStats{},
		MCP:     []api.MCPToolStats{},
	}
	for _, c := range status.Components {
		out.Daemon.Components = append(out.Daemon.Components, api.Component{Name: c.Name, State: c.State, Detail: c.Detail})
	}
	dt := 0.0
	if !sm.prevAt.IsZero() {
		dt = now.Sub(sm.prevAt).Seconds()
	}
	out.IntervalSeconds = math.Round(dt*1000) / 1000

	var series []*telemetry.Series
	var health map[string]bool
	if sm.o.Registry != nil {
		series = sm.o.Registry.All()
	}
	if sm.o.Health != nil {
		health = sm.o.Health()
	}
	if sm.prev == nil {
		sm.prev = make(map[*telemetry.Series]*seriesSnap, len(series))
	}
	sm.gen++
	var lat telemetry.HistogramSnapshot // reused per series
	httpBy := map[[2]string]*telemetry.Series{}
	var mcpSeries []*telemetry.Series
	for _, s := range series {
		switch s.Kind {
		case telemetry.KindHTTP:
			httpBy[[2]string{s.Tenant, s.Name}] = s
		case telemetry.KindMCP:
			mcpSeries = append(mcpSeries, s)
		}
	}

	// Tenants and their tools, from the live revision.
	tenants := map[string]*api.TenantStats{}
	tenantAcc := map[string]*acc{}
	tenantOf := func(name string) *api.TenantStats {
		t := tenants[name]
		if t == nil {
			t = &api.TenantStats{Name: name, Tools: []api.ToolStats{}}
			tenants[name] = t
			tenantAcc[name] = &acc{}
		}
		return t
	}
	for _, o := range st.OfKind(spec.KindTenant) {
		tenantOf(o.Metadata.Name)
	}
	type opRef struct{ tool, op string }
	mcpNames := map[[2]string]opRef{}
	var total acc
	for _, o := range st.OfKind(spec.KindTool) {
		ts, ok := o.Spec.(*spec.ToolSpec)
		if !ok {
			continue
		}
		ns, name := o.Metadata.Namespace, o.Metadata.Name
		for i := range ts.Operations {
			mcpNames[[2]string{ns, spec.MCPToolName(ns, name, &ts.Operations[i])}] = opRef{name, ts.Operations[i].Name}
		}
		tool := api.ToolStats{Tenant: ns, Name: name, Health: "unknown"}
		filled := false
		if s := httpBy[[2]string{ns, name}]; s != nil {
			tool.Traffic, filled = sm.read(s, dt, &lat)
		}
		tool.Upstreams, tool.Health = upstreamHealth(ts, health)
		t := tenantOf(ns)
		tenantAcc[ns].add(tool.Traffic, &lat, filled)
		total.add(tool.Traffic, &lat, filled)
		tool.Traffic = roundTraffic(tool.Traffic, &lat, filled)
		t.Tools = append(t.Tools, tool)
	}
	names := make([]string, 0, len(tenants))
	for n := range tenants {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := tenants[n]
		t.Total = tenantAcc[n].traffic()
		sort.Slice(t.Tools, func(i, j int) bool { return t.Tools[i].Name < t.Tools[j].Name })
		out.Tenants = append(out.Tenants, *t)
	}
	out.Totals = total.traffic()

	for _, s := range mcpSeries {
		m := api.MCPToolStats{Tenant: s.Tenant, Name: s.Name}
		if ref, ok := mcpNames[[2]string{s.Tenant, s.Name}]; ok {
			m.Tool, m.Operation = ref.tool, ref.op
		}
		var filled bool
		m.Traffic, filled = sm.read(s, dt, &lat)
		m.Traffic = roundTraffic(m.Traffic, &lat, filled)
		out.MCP = append(out.MCP, m)
	}

	if sm.o.XDP != nil {
		r := sm.o.XDP()
		out.XDP = xdpStats(r, sm.prevXDP, dt)
		sm.prevXDP = &r
	}
	for s, snap := range sm.prev {
		if snap.gen != sm.gen {
			delete(sm.prev, s) // the series is gone
		}
	}
	sm.prevAt = now
	return out
}

// upstreamHealth lists a tool's upstreams with their availability and
// summarises them.
func upstreamHealth(ts *spec.ToolSpec, health map[string]bool) ([]api.UpstreamHealth, string) {
	var ups []api.UpstreamHealth
	if ts.Upstream != "" {
		ups = append(ups, api.UpstreamHealth{URL: ts.Upstream, Weight: 1})
	}
	for _, u := range ts.Upstreams {
		ups = append(ups, api.UpstreamHealth{URL: u.URL, Weight: u.Weight})
	}
	known, up := 0, 0
	for i := range ups {
		avail, ok := health[ups[i].URL]
		if ok {
			known++
			ups[i].Available = avail
			if avail {
				up++
			}
		}
	}
	switch {
	case known == 0:
		return ups, "unknown"
	case up == known:
		return ups, "ok"
	case up == 0:
		return ups, "down"
	}
	return ups, "degraded"
}
