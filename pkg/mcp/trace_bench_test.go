package mcp

import (
	"context"
	"log/slog"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

// BenchmarkHandlerToolsCallTracing is BenchmarkHandlerToolsCall/legacy
// with tracing absent, configured off, on at ratio 0 (new traces not
// sampled) and on at 100 % exporting to an in-process OTLP receiver:
//
//	go test -run XXX -bench HandlerToolsCallTracing -benchmem ./pkg/mcp/
func BenchmarkHandlerToolsCallTracing(b *testing.B) {
	collector := otlptest.NewServer(b)
	cat, err := BuildCatalog(1, benchObjects(10))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		enabled bool
		ratio   float64
	}{{"none", false, 0}, {"off", false, 0}, {"ratio0", true, 0}, {"on100", true, 1}} {
		b.Run(c.name, func(b *testing.B) {
			var tr *tracing.Tracer
			if c.name != "none" {
				tr = tracing.New(slog.New(slog.DiscardHandler))
				swap, err := tr.Prepare(tracing.Config{Enabled: c.enabled, Endpoint: collector.Endpoint(), SampleRatio: c.ratio, QueueSize: 1 << 16})
				if err != nil {
					b.Fatal(err)
				}
				swap()
				defer tr.Stop(context.Background())
			}
			srv := NewServer(Options{Tracer: tr}, stubBackend{})
			srv.SetCatalog(cat)
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			for b.Loop() {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.Header.SetMethod("POST")
				ctx.Request.SetRequestURI("/mcp")
				ctx.Request.Header.SetContentType("application/json")
				ctx.Request.Header.Set("Authorization", "Bearer bench")
				ctx.Request.Header.Set("MCP-Protocol-Version", "2025-11-25")
				ctx.Request.SetBodyString(benchCall)
				srv.Handler(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
		})
	}
}
