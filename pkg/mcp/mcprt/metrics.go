package mcprt

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/mcp/federation"
)

// fedMetrics exports the federated MCP servers' health and calls: the
// gauges are read from the upstreams' Status at scrape time, the call
// latency is observed per call.
type fedMetrics struct {
	m        *federation.Manager
	up       *prometheus.Desc
	restarts *prometheus.Desc
	tools    *prometheus.Desc
	calls    *prometheus.HistogramVec

	mu   sync.Mutex
	seen map[[2]string]bool // (tenant, tool) with call series
}

func newFedMetrics(m *federation.Manager) *fedMetrics {
	labels := []string{"tenant", "tool"}
	return &fedMetrics{
		m: m,
		up: prometheus.NewDesc("stoa_mcp_upstream_up",
			"Whether a federated MCP server (a Tool with protocol: mcp) is connected and serving calls (1) or not (0: starting, down, stopped).", labels, nil),
		restarts: prometheus.NewDesc("stoa_mcp_upstream_restarts_total",
			"Sessions (streamable-http) or processes (stdio) of a federated MCP server started after the first.", labels, nil),
		tools: prometheus.NewDesc("stoa_mcp_upstream_tools",
			"Tools a federated MCP server exposes (after tools.allow/deny).", labels, nil),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stoa_mcp_upstream_call_duration_seconds",
			Help: "Duration of tools/call of federated MCP tools, admission included, by outcome " +
				"(ok, tool_error, invalid_params, rpc_error, timeout, unavailable, input_required, canceled, refused).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tenant", "tool", "outcome"}),
		seen: map[[2]string]bool{},
	}
}

func (f *fedMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- f.up
	ch <- f.restarts
	ch <- f.tools
	f.calls.Describe(ch)
}

func (f *fedMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, u := range f.m.Upstreams() {
		st := u.Status()
		up := 0.0
		if st.State == federation.StateReady {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(f.up, prometheus.GaugeValue, up, st.Tenant, st.Tool)
		ch <- prometheus.MustNewConstMetric(f.restarts, prometheus.CounterValue, float64(st.Restarts), st.Tenant, st.Tool)
		ch <- prometheus.MustNewConstMetric(f.tools, prometheus.GaugeValue, float64(st.Tools), st.Tenant, st.Tool)
	}
	f.calls.Collect(ch)
}

func (f *fedMetrics) observe(tenant, tool, outcome string, d time.Duration) {
	k := [2]string{tenant, tool}
	f.mu.Lock()
	f.seen[k] = true
	f.mu.Unlock()
	f.calls.WithLabelValues(tenant, tool, outcome).Observe(d.Seconds())
}

// retain drops the call series of federated Tools no longer configured.
func (f *fedMetrics) retain(ups []*federation.Upstream) {
	keep := map[[2]string]bool{}
	for _, u := range ups {
		c := u.Config()
		keep[[2]string{c.Tenant, c.Tool}] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.seen {
		if !keep[k] {
			f.calls.DeletePartialMatch(prometheus.Labels{"tenant": k[0], "tool": k[1]})
			delete(f.seen, k)
		}
	}
}
