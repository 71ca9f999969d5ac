package daemon

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// BenchmarkScrape10kTools measures one scrape of /metrics on a stoad
// serving the bench-apply set (10,000 Tools, 20,000 MCP tools) after
// traffic to 100 of the Tools, then to all 10,000 (requests without a
// key: 401s, counted like any other answer). plain: the text format as
// curl asks for it; gzip: as Prometheus asks for it (Accept-Encoding:
// gzip).
func BenchmarkScrape10kTools(b *testing.B) {
	const n, m = 10000, 20
	wire := loadWire(b, benchSpecs(b, n, m, ""))
	c, d, stop := benchDaemon(b)
	defer stop()
	if _, err := c.ApplyEncoded(context.Background(), &api.ApplyRequest{}, wire); err != nil {
		b.Fatal(err)
	}
	base := "http://" + d.dp.proxy.Addr()
	call := func(tool int) {
		resp, err := http.Get(fmt.Sprintf("%s/tenant-%02d/tool-%05d/items/1", base, tool%m, tool))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			b.Fatalf("tool %d: status %d", tool, resp.StatusCode)
		}
	}
	h := d.metricsHandler()
	scrape := func(b *testing.B, enc string) {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if enc == "gzip" {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		var size int
		b.ReportAllocs()
		defer reportCPU(b, processCPUTime())
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
			size = w.Body.Len()
		}
		b.ReportMetric(float64(size), "bytes")
	}
	for _, busy := range []int{100, n} {
		for i := range busy {
			call(i * (n / busy))
		}
		for _, enc := range []string{"plain", "gzip"} {
			b.Run(fmt.Sprintf("busy=%d/%s", busy, enc), func(b *testing.B) { scrape(b, enc) })
		}
	}
}
