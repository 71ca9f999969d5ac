package daemon

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stoa-gateway/stoa/internal/golden"
)

// metricsState starts a stoad serving acme's tools api, gone and idle,
// with traffic on api (2 requests) and gone (1).
func metricsState(t *testing.T) (*liveDaemon, string) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(up.Close)
	ld := startDaemon(t, nil)
	ld.apply(doc("Tenant", "", "acme", "") + metricsTools(up.URL, "api", "gone", "idle"))
	for _, p := range []string{"/acme/api/x", "/acme/api/y", "/acme/gone/x"} {
		if code, body := ld.get(p); code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, code, body)
		}
	}
	return ld, up.URL
}

func metricsTools(up string, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(doc("Tool", "acme", n, "upstream: "+up+"\nauth: {type: none}"))
	}
	return b.String()
}

// scrapeText serves GET /metrics as --ops-listen does.
func scrapeText(t *testing.T, d *Daemon) string {
	t.Helper()
	w := httptest.NewRecorder()
	d.metricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}

// TestMetricsFamilies: every stoa_ metric family of a small state with
// traffic keeps its name, type, help and label names.
// testdata/metrics-families.golden was written by stoad before the
// per-tool series were exported only for tools with traffic (go test
// -run TestMetricsFamilies -update rewrites it).
func TestMetricsFamilies(t *testing.T) {
	ld, _ := metricsState(t)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(scrapeText(t, ld.d)))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for name, f := range fams {
		if !strings.HasPrefix(name, "stoa_") {
			continue
		}
		sets := map[string]bool{}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName())
			}
			slices.Sort(ls)
			sets[strings.Join(ls, ",")] = true
		}
		for set := range sets {
			lines = append(lines, fmt.Sprintf("%s %s {%s} %q", name, strings.ToLower(f.GetType().String()), set, f.GetHelp()))
		}
	}
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"
	golden.Check(t, "testdata/metrics-families.golden", []byte(got))
}

// TestMetricsToolLifecycle: a tool's series appear with its first request
// and disappear with the apply that removes it; the others keep counting.
func TestMetricsToolLifecycle(t *testing.T) {
	ld, up := metricsState(t)
	count := func(tool string) (float64, bool) {
		t.Helper()
		fams, err := ld.d.metrics.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "stoa_http_requests_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				if hasLabels(m, "tenant", "acme", "tool", tool, "code", "2xx") {
					return m.GetCounter().GetValue(), true
				}
			}
		}
		return 0, false
	}
	if n, ok := count("api"); !ok || n != 2 {
		t.Fatalf("api: %v %v", n, ok)
	}
	if n, ok := count("gone"); !ok || n != 1 {
		t.Fatalf("gone: %v %v", n, ok)
	}
	if out := scrapeText(t, ld.d); strings.Contains(out, `tool="idle"`) {
		t.Fatalf("the idle tool has series:\n%s", grepMetrics(out, `tool="idle"`))
	}

	ld.apply(doc("Tenant", "", "acme", "")+metricsTools(up, "api", "idle"), "acme")
	if out := scrapeText(t, ld.d); strings.Contains(out, `tool="gone"`) {
		t.Fatalf("series of the removed tool after the apply:\n%s", grepMetrics(out, `tool="gone"`))
	}
	if n, ok := count("api"); !ok || n != 2 {
		t.Fatalf("api after the apply: %v %v", n, ok)
	}
}

func hasLabels(m *dto.Metric, kv ...string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		for i := 0; i+1 < len(kv); i += 2 {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				n++
			}
		}
	}
	return n == len(kv)/2
}

func grepMetrics(out, s string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
