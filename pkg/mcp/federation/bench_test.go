package federation

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// BenchmarkFederatedVsDirect measures what the federation client adds to a
// tools/call: each iteration calls the same official-SDK upstream once
// through an Upstream and once with the official SDK client directly
// (alternating, so load on a shared machine hits both alike), and reports
// the p50/p99 of each and the p50 difference. Run:
//
//	go test -run XXX -bench FederatedVsDirect -benchtime 3000x ./pkg/mcp/federation/
func BenchmarkFederatedVsDirect(b *testing.B) {
	for _, era := range []struct {
		name      string
		stateless bool
		version   string
	}{
		{"legacy-2025-11-25", false, "2025-11-25"},
		{"modern-2026-07-28", true, VersionModern},
	} {
		b.Run(era.name, func(b *testing.B) {
			f := newFixture(b, era.stateless)
			cfg := httpConfig(f.ts.URL)
			cfg.ProtocolVersion = era.version
			u, err := New(cfg, Options{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := u.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer u.Stop(ctx)
			if st := u.Status(); st.State != StateReady || st.Protocol != era.version {
				b.Fatalf("upstream: %+v", st)
			}
			client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.ts.URL}, &mcp.ClientSessionOptions{ProtocolVersion: era.version})
			if err != nil {
				b.Fatal(err)
			}
			defer cs.Close()
			if v := cs.InitializeResult().ProtocolVersion; v != era.version {
				b.Fatalf("sdk client negotiated %s", v)
			}
			args := json.RawMessage(`{"text":"hello"}`)
			direct := func() {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: args})
				if err != nil || res.IsError {
					b.Fatal(err)
				}
			}
			fed := func() {
				if _, err := u.Call(ctx, "echo", args); err != nil {
					b.Fatal(err)
				}
			}
			for range 200 { // warm up connections and caches
				direct()
				fed()
			}
			dl := make([]time.Duration, 0, b.N)
			fl := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				direct()
				t1 := time.Now()
				fed()
				t2 := time.Now()
				dl = append(dl, t1.Sub(t0))
				fl = append(fl, t2.Sub(t1))
			}
			b.StopTimer()
			slices.Sort(dl)
			slices.Sort(fl)
			pct := func(s []time.Duration, p float64) float64 {
				return float64(s[int(float64(len(s)-1)*p)].Nanoseconds()) / 1e3
			}
			b.ReportMetric(pct(dl, 0.5), "direct-p50-µs")
			b.ReportMetric(pct(dl, 0.99), "direct-p99-µs")
			b.ReportMetric(pct(fl, 0.5), "fed-p50-µs")
			b.ReportMetric(pct(fl, 0.99), "fed-p99-µs")
			b.ReportMetric(pct(fl, 0.5)-pct(dl, 0.5), "overhead-p50-µs")
		})
	}
}
