package proxy

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gather scrapes the registry's collector into name → samples.
func gather(t *testing.T, e *testEnv) map[string][]*dto.Metric {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(e.stats.Collector()); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string][]*dto.Metric{}
	for _, f := range fams {
		out[f.GetName()] = f.GetMetric()
	}
	return out
}

// sample finds the metric whose labels include all of want.
func sample(ms []*dto.Metric, want map[string]string) *dto.Metric {
	for _, m := range ms {
		n := 0
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				n++
			}
		}
		if n == len(want) {
			return m
		}
	}
	return nil
}

func TestMetrics(t *testing.T) {
	up, bad := newUpstream(t, "u"), newUpstream(t, "bad")
	bad.handle(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	e := newEnv(t, tool("acme", "api", up.URL, "rateLimit: {rate: 1/h, burst: 3}")+
		tool("acme", "dead", "http://"+deadAddr(t), "retries: {attempts: 0}")+
		tool("acme", "bad", bad.URL, "")+
		tool("globex", "gone", up.URL, ""))
	for i := 0; i < 5; i++ {
		e.get("/acme/api/x") // 3 × 200, 2 × 429
	}
	e.get("/acme/dead/x") // 502
	e.get("/acme/bad/x")  // upstream 500
	e.get("/nowhere")     // 404, no series

	m := gather(t, e)
	for name, want := range map[string][]struct {
		labels map[string]string
		value  float64
	}{
		"stoa_http_requests_total": {
			{map[string]string{"tenant": "acme", "tool": "api", "code": "2xx"}, 3},
			{map[string]string{"tenant": "acme", "tool": "api", "code": "4xx"}, 2},
			{map[string]string{"tenant": "acme", "tool": "dead", "code": "5xx"}, 1},
			{map[string]string{"tenant": "acme", "tool": "bad", "code": "5xx"}, 1},
		},
		"stoa_ratelimit_rejections_total": {
			{map[string]string{"tenant": "acme", "tool": "api"}, 2},
			{map[string]string{"tenant": "acme", "tool": "dead"}, 0},
		},
		"stoa_upstream_errors_total": {
			{map[string]string{"tenant": "acme", "tool": "dead"}, 1},
			{map[string]string{"tenant": "acme", "tool": "api"}, 0},
		},
	} {
		for _, w := range want {
			s := sample(m[name], w.labels)
			if s == nil {
				t.Errorf("%s%v missing", name, w.labels)
				continue
			}
			if got := s.GetCounter().GetValue(); got != w.value {
				t.Errorf("%s%v = %v, want %v", name, w.labels, got, w.value)
			}
		}
	}
	// A tool that saw no request has no series (a scrape costs the tools
	// called, not the catalog), until its first request.
	for name, ms := range m {
		if s := sample(ms, map[string]string{"tool": "gone"}); s != nil {
			t.Errorf("%s of the idle tool exported: %v", name, s)
		}
	}
	h := sample(m["stoa_http_request_duration_seconds"], map[string]string{"tenant": "acme", "tool": "api"})
	if h == nil || h.GetHistogram().GetSampleCount() != 5 || len(h.GetHistogram().GetBucket()) < 10 {
		t.Fatalf("latency histogram %v", h)
	}
	if h.GetHistogram().GetSampleSum() <= 0 {
		t.Fatal("latency histogram sum is 0")
	}

	e.get("/globex/gone/x")
	if s := sample(gather(t, e)["stoa_http_requests_total"], map[string]string{"tool": "gone", "code": "2xx"}); s == nil || s.GetCounter().GetValue() != 1 {
		t.Fatalf("series of the tool after its first request: %v", s)
	}

	// Series of removed tools disappear (bounded cardinality); others keep
	// counting across the reload.
	e.apply(tool("acme", "api", up.URL, "rateLimit: {rate: 1/h, burst: 3}"))
	m = gather(t, e)
	if s := sample(m["stoa_http_requests_total"], map[string]string{"tool": "gone"}); s != nil {
		t.Fatal("series of a removed tool still exported")
	}
	if s := sample(m["stoa_http_requests_total"], map[string]string{"tool": "api", "code": "2xx"}); s == nil || s.GetCounter().GetValue() != 3 {
		t.Fatalf("api series reset by the reload: %v", s)
	}
}
