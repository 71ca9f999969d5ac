package telemetry

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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
	labels   atomic.Pointer[promLabels]
	reg      *Registry // nil for a series no registry exports
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
		h = s.firstUse()
	}
	h.Observe(d)
}

// firstUse allocates the latency histogram and has the registry export
// the series from now on.
//
//go:noinline
func (s *Series) firstUse() *Histogram {
	if s.latency.CompareAndSwap(nil, new(Histogram)) && s.reg != nil {
		s.reg.activate(s)
	}
	return s.latency.Load()
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
	// used are the series that saw traffic, those the collector exports:
	// a scrape costs what the tools called cost, not the whole catalog.
	used []*Series
	// gen moves whenever a series is created or dropped: a reader that
	// keeps All's answer (the stats stream) refreshes it only then.
	gen atomic.Uint64
}

// Gen changes whenever a series is created or dropped.
func (r *Registry) Gen() uint64 { return r.gen.Load() }

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
		s = &Series{Kind: kind, Tenant: tenant, Name: name, reg: r}
		r.series[k] = s
		r.gen.Add(1)
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
			r.gen.Add(1)
		}
	}
	used := r.used[:0]
	for _, s := range r.used {
		if r.series[seriesKey{s.Kind, s.Tenant, s.Name}] == s {
			used = append(used, s)
		}
	}
	clear(r.used[len(used):])
	r.used = used
}

// activate adds s to the exported series, unless Retain dropped it (a
// request in flight on a replaced route table can be its first).
func (r *Registry) activate(s *Series) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.series[seriesKey{s.Kind, s.Tenant, s.Name}] == s {
		r.used = append(r.used, s)
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
// from 128µs to 2^29µs, 537 s (exact bucket edges of the internal histogram).
var promIdx, promLE = func() (idx []int, le []float64) {
	for i := 0; i < NumBuckets-1; i++ {
		ub := UpperBound(i)
		if ub >= 128 && i%subBuckets == subBuckets-1 {
			idx = append(idx, i)
			le = append(le, ub/1e6)
		}
	}
	return
}()

// numLE is the number of exported finite bucket bounds (the text encoder
// adds +Inf).
const numLE = 23

var classLabels = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// promLabels are a series' label pairs, sorted by name as the exposition
// needs them: built on the first scrape that exports the series, shared
// by every later one (metrics' label pairs are immutable by contract).
type promLabels struct {
	tool  []*dto.LabelPair    // tenant, tool
	codes [6][]*dto.LabelPair // code, tenant, tool
}

func (s *Series) promLabels() *promLabels {
	if l := s.labels.Load(); l != nil {
		return l
	}
	tenant := &dto.LabelPair{Name: new("tenant"), Value: new(s.Tenant)}
	tool := &dto.LabelPair{Name: new("tool"), Value: new(s.Name)}
	l := &promLabels{tool: []*dto.LabelPair{tenant, tool}}
	for i, c := range classLabels {
		l.codes[i] = []*dto.LabelPair{{Name: new("code"), Value: new(c)}, tenant, tool}
	}
	s.labels.CompareAndSwap(nil, l)
	return s.labels.Load()
}

// usedSeries returns the series that saw traffic, in no order (the
// Prometheus registry sorts what it gathers). A catalog of 10,000 tools of
// which a hundred are called exports a hundred tools' series, as Envoy,
// nginx-vts and Kong export per-route statistics only for routes that saw
// requests: a series appears with its tool's first request (its other
// counters are recorded next to an Observe) and is dropped when Retain
// drops its tool.
func (r *Registry) usedSeries() []*Series {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.used)
}

type collector struct {
	r                                   *Registry
	reqs, dur, limited, upstream        *prometheus.Desc
	mcpCalls, mcpDur, mcpErrs, mcpLimit *prometheus.Desc
}

// Collector exports the registry to Prometheus with bounded labels
// (tenant, tool, status class), for the series that saw traffic.
func (r *Registry) Collector() prometheus.Collector {
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
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.reqs, c.dur, c.limited, c.upstream, c.mcpCalls, c.mcpDur, c.mcpErrs, c.mcpLimit} {
		ch <- d
	}
}

// Collect writes each used series' metrics from its atomic counters, with
// its cached label pairs, into one allocation per series.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.r.usedSeries() {
		reqs, dur, limited, other := c.reqs, c.dur, c.limited, c.upstream
		otherV := s.UpstreamErrors.Load()
		if s.Kind == KindMCP {
			reqs, dur, limited, other = c.mcpCalls, c.mcpDur, c.mcpLimit, c.mcpErrs
			otherV = s.Errors.Load()
		}
		l := s.promLabels()
		o := new(seriesOut)
		n := 0
		counter := func(d *prometheus.Desc, labels []*dto.LabelPair, v uint64) {
			m := &o.m[n]
			m.desc, m.labels = d, labels
			o.val[n] = float64(v)
			o.counter[n].Value = &o.val[n]
			m.counter = &o.counter[n]
			n++
			ch <- m
		}
		counter(other, l.tool, otherV)
		for i := range s.Codes {
			if v := s.Codes[i].Load(); v > 0 || i == 2 {
				counter(reqs, l.codes[i], v)
			}
		}
		counter(limited, l.tool, s.Limited.Load())

		h := &o.hist
		if lat := s.latency.Load(); lat != nil {
			o.sum = lat.cumulative(&o.cum)
		}
		o.count = o.cum[numLE]
		o.sumS = float64(o.sum) / 1e6
		h.SampleCount, h.SampleSum = &o.count, &o.sumS
		for i := range numLE {
			o.buckets[i].CumulativeCount = &o.cum[i]
			o.buckets[i].UpperBound = &promLE[i]
			o.bucketPtrs[i] = &o.buckets[i]
		}
		h.Bucket = o.bucketPtrs[:]
		m := &o.m[n]
		m.desc, m.labels, m.hist = dur, l.tool, h
		ch <- m
	}
}

// seriesOut is one scrape's metrics of one series: up to 8 counters (the
// upstream or MCP errors, 6 status classes, rejections) and the latency
// histogram.
type seriesOut struct {
	m          [9]constMetric
	val        [8]float64
	counter    [8]dto.Counter
	hist       dto.Histogram
	buckets    [numLE]dto.Bucket
	bucketPtrs [numLE]*dto.Bucket
	cum        [numLE + 1]uint64 // cumulative counts; [numLE] is the total
	count, sum uint64
	sumS       float64
}

// constMetric is a counter or histogram whose values and labels are
// fixed at Collect.
type constMetric struct {
	desc    *prometheus.Desc
	labels  []*dto.LabelPair
	counter *dto.Counter
	hist    *dto.Histogram
}

func (m *constMetric) Desc() *prometheus.Desc { return m.desc }

func (m *constMetric) Write(out *dto.Metric) error {
	out.Label = m.labels
	out.Counter, out.Histogram = m.counter, m.hist
	return nil
}
