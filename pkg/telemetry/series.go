package telemetry

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Series kinds.
const (
	KindHTTP = "http" // proxied requests, per tenant and tool
	KindMCP  = "mcp"  // MCP tools/call, per tenant and MCP tool name
)

// Series is the statistics of one (kind, tenant, name): response classes,
// rate-limit and quota rejections, upstream failures and latency.
type Series struct {
	Kind, Tenant, Name string

	Codes          [6]atomic.Uint64 // by status/100; [0] for anything else
	Limited        atomic.Uint64    // 429 from rate limits or quotas
	UpstreamErrors atomic.Uint64    // connect failures, resets, timeouts
	Errors         atomic.Uint64    // MCP: results with isError
	// Latency is allocated on the first observation: a catalog of 10,000
	// tools that are mostly idle would otherwise hold 10,000 histograms.
	latency  atomic.Pointer[Histogram]
	lastUsed atomic.Int64
}

// Latency returns a snapshot of the series' latency histogram (empty
// before the first observation).
func (s *Series) Latency() HistogramSnapshot {
	if h := s.latency.Load(); h != nil {
		return h.Snapshot()
	}
	return HistogramSnapshot{}
}

// Observe records one finished request.
func (s *Series) Observe(status int, d time.Duration) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	s.Codes[c].Add(1)
	h := s.latency.Load()
	if h == nil {
		s.latency.CompareAndSwap(nil, new(Histogram))
		h = s.latency.Load()
	}
	h.Observe(d)
}

// Total is the number of observed requests.
func (s *Series) Total() uint64 {
	var n uint64
	for i := range s.Codes {
		n += s.Codes[i].Load()
	}
	return n
}

type seriesKey struct{ kind, tenant, name string }

// Registry holds every series. Get is called when a revision is compiled,
// not per request; the hot path keeps the *Series.
type Registry struct {
	mu     sync.Mutex
	series map[seriesKey]*Series
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{series: map[seriesKey]*Series{}} }

// Get returns the series for (kind, tenant, name), creating it. Series
// survive reloads, so counters are continuous across revisions.
func (r *Registry) Get(kind, tenant, name string) *Series {
	s, _ := r.GetNew(kind, tenant, name)
	return s
}

// GetNew is Get, also saying whether the series was created: a reload
// that created none and serves as many tools as before has nothing to
// Retain.
func (r *Registry) GetNew(kind, tenant, name string) (*Series, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := seriesKey{kind, tenant, name}
	s := r.series[k]
	created := s == nil
	if created {
		s = &Series{Kind: kind, Tenant: tenant, Name: name}
		r.series[k] = s
	}
	s.lastUsed.Store(time.Now().UnixNano())
	return s, created
}

// Retain drops series of the kind that are not in keep (tools removed from
// the configuration), bounding label cardinality.
func (r *Registry) Retain(kind string, keep map[[2]string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.series {
		if k.kind == kind && !keep[[2]string{k.tenant, k.name}] {
			delete(r.series, k)
		}
	}
}

// All returns every series sorted by kind, tenant and name.
func (r *Registry) All() []*Series {
	r.mu.Lock()
	out := make([]*Series, 0, len(r.series))
	for _, s := range r.series {
		out = append(out, s)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		return a.Name < b.Name
	})
	return out
}

// Prometheus export. Bucket bounds are every power of two of microseconds
// from 128µs to ~67s (exact bucket edges of the internal histogram).
var promBounds = func() (idx []int, le []float64) {
	for i := 0; i < NumBuckets-1; i++ {
		ub := UpperBound(i)
		if ub >= 128 && i%subBuckets == subBuckets-1 {
			idx = append(idx, i)
			le = append(le, ub/1e6)
		}
	}
	return
}

var classLabels = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

type collector struct {
	r                                   *Registry
	reqs, dur, limited, upstream        *prometheus.Desc
	mcpCalls, mcpDur, mcpErrs, mcpLimit *prometheus.Desc
	idx                                 []int
	le                                  []float64
}

// Collector exports the registry to Prometheus with bounded labels
// (tenant, tool, status class).
func (r *Registry) Collector() prometheus.Collector {
	idx, le := promBounds()
	return &collector{
		r:        r,
		reqs:     prometheus.NewDesc("stoa_http_requests_total", "Proxied HTTP requests by tenant, tool and status class.", []string{"tenant", "tool", "code"}, nil),
		dur:      prometheus.NewDesc("stoa_http_request_duration_seconds", "Time from request read to response written upstream-side, by tenant and tool.", []string{"tenant", "tool"}, nil),
		limited:  prometheus.NewDesc("stoa_ratelimit_rejections_total", "Requests rejected with 429 by rate limits or quotas.", []string{"tenant", "tool"}, nil),
		upstream: prometheus.NewDesc("stoa_upstream_errors_total", "Upstream connect failures, resets and timeouts.", []string{"tenant", "tool"}, nil),
		mcpCalls: prometheus.NewDesc("stoa_mcp_calls_total", "MCP tools/call by tenant, tool and status class of the upstream.", []string{"tenant", "tool", "code"}, nil),
		mcpDur:   prometheus.NewDesc("stoa_mcp_call_duration_seconds", "MCP tools/call latency.", []string{"tenant", "tool"}, nil),
		mcpErrs:  prometheus.NewDesc("stoa_mcp_call_errors_total", "MCP tools/call results with isError.", []string{"tenant", "tool"}, nil),
		mcpLimit: prometheus.NewDesc("stoa_mcp_ratelimit_rejections_total", "MCP calls rejected by rate limits or quotas.", []string{"tenant", "tool"}, nil),
		idx:      idx, le: le,
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.reqs, c.dur, c.limited, c.upstream, c.mcpCalls, c.mcpDur, c.mcpErrs, c.mcpLimit} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.r.All() {
		reqs, dur, limited := c.reqs, c.dur, c.limited
		if s.Kind == KindMCP {
			reqs, dur, limited = c.mcpCalls, c.mcpDur, c.mcpLimit
			ch <- prometheus.MustNewConstMetric(c.mcpErrs, prometheus.CounterValue, float64(s.Errors.Load()), s.Tenant, s.Name)
		} else {
			ch <- prometheus.MustNewConstMetric(c.upstream, prometheus.CounterValue, float64(s.UpstreamErrors.Load()), s.Tenant, s.Name)
		}
		for i := range s.Codes {
			if v := s.Codes[i].Load(); v > 0 || i == 2 {
				ch <- prometheus.MustNewConstMetric(reqs, prometheus.CounterValue, float64(v), s.Tenant, s.Name, classLabels[i])
			}
		}
		ch <- prometheus.MustNewConstMetric(limited, prometheus.CounterValue, float64(s.Limited.Load()), s.Tenant, s.Name)
		snap := s.Latency()
		buckets := make(map[float64]uint64, len(c.le))
		var cum uint64
		j := 0
		for i := 0; i < NumBuckets-1 && j < len(c.idx); i++ {
			cum += snap.Counts[i]
			if i == c.idx[j] {
				buckets[c.le[j]] = cum
				j++
			}
		}
		ch <- prometheus.MustNewConstHistogram(dur, snap.Count(), float64(snap.SumUS)/1e6, buckets, s.Tenant, s.Name)
	}
}
