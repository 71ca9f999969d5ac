package tracing

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// benchRequest is a request header as the proxy holds it after parsing.
func benchRequest(b *testing.B, traceparent string) *fasthttp.RequestHeader {
	var h fasthttp.RequestHeader
	raw := "GET /acme/api/v1/items/42 HTTP/1.1\r\nHost: gw.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Accept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\nX-Forwarded-For: 203.0.113.7\r\n"
	if traceparent != "" {
		raw += "traceparent: " + traceparent + "\r\ntracestate: rojo=00f067aa0ba902b7\r\n"
	}
	if err := h.Read(bufio.NewReader(strings.NewReader(raw + "\r\n"))); err != nil {
		b.Fatal(err)
	}
	return &h
}

// proxyTracing is the tracing work the proxy adds to one request, header
// access included: read the caller's context, start the server span,
// describe it, auth and limits children, one upstream attempt whose
// traceparent replaces the client's in the upstream request, statuses,
// ends.
func proxyTracing(tr *Tracer, h *fasthttp.RequestHeader, peer netip.AddrPort, buf *[TraceparentLen]byte) {
	var sp Span
	if tr.Enabled() {
		sp = tr.Start(&Incoming{Traceparent: h.Peek(HeaderTraceparent), Tracestate: h.Peek(HeaderTracestate), Peer: peer.Addr()}, "HTTP", KindServer)
	}
	if sp.Recording() {
		sp.SetHTTPServer(&HTTPServer{Method: h.Method(), Path: h.RequestURI(), Host: h.Host(), UserAgent: h.UserAgent(), Route: "/acme/api", Peer: peer})
		sp.SetString(AttrTenant, "acme")
		sp.SetString(AttrTool, "api")
	}
	auth := sp.StartChild("auth", KindInternal)
	auth.End()
	lim := sp.StartChild("limits", KindInternal)
	lim.End()
	att := sp.StartChild("HTTP", KindClient)
	if att.Recording() {
		att.SetHTTPClient(&HTTPClient{Method: h.Method(), Scheme: "http", Host: "127.0.0.1:9001", Path: []byte("/v1/items/42")})
	}
	if att.IsValid() {
		h.SetBytesV(HeaderTraceparent, att.AppendTraceparent(buf[:0]))
		if att.Tracestate() == nil {
			h.Del(HeaderTracestate)
		}
	}
	att.SetHTTPStatus(200)
	att.End()
	sp.SetHTTPStatus(200)
	sp.End()
}

// sinkCollector is an OTLP/HTTP endpoint that reads and discards export
// requests: the benchmark pays for building, encoding, compressing and
// sending spans, not for a collector decoding them.
func sinkCollector(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(srv.Close)
	return srv.URL + "/v1/traces"
}

func cpuTime() time.Duration { return rusage(syscall.RUSAGE_SELF) }

// threadCPUTime is the calling thread's CPU time: with the goroutine
// locked to its thread, the request path's own CPU, which a busy machine
// does not inflate as it does the wall time of ns/op.
func threadCPUTime() time.Duration { return rusage(1) } // RUSAGE_THREAD

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProxyTracing measures what tracing adds to one proxied request
// (the proxy's own work is not in it). ns/op is the request goroutine's
// time; req-cpu-ns/op is its CPU time (the thread it is locked to), which
// a busy machine does not inflate; cpu-ns/op is the process's CPU time per
// request, which includes the batching and export goroutines (and the
// discarding sink). spans/op
// shows whether the export queue kept up (5 when nothing was dropped).
func BenchmarkProxyTracing(b *testing.B) {
	benchProxyTracing(b, CompressionNone)
}

// BenchmarkProxyTracingGzip is BenchmarkProxyTracing with gzip export.
func BenchmarkProxyTracingGzip(b *testing.B) {
	benchProxyTracing(b, CompressionGzip)
}

func benchProxyTracing(b *testing.B, compression string) {
	trusted := netip.MustParseAddrPort("10.0.0.1:50000")
	untrusted := netip.MustParseAddrPort("203.0.113.9:50000")
	const parentSampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const parentUnsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	cases := []struct {
		name        string
		cfg         *Config // nil: tracing code not called at all
		traceparent string
		peer        netip.AddrPort
	}{
		{"none", nil, parentSampled, trusted},
		{"off", &Config{}, parentSampled, trusted},
		{"on-0%/new-trace", &Config{Enabled: true, SampleRatio: 0}, "", untrusted},
		{"on-0%/untrusted-parent", &Config{Enabled: true, SampleRatio: 0}, parentSampled, untrusted},
		{"on-0%/parent-unsampled", &Config{Enabled: true, SampleRatio: 0}, parentUnsampled, trusted},
		{"on-100%/new-trace", &Config{Enabled: true, SampleRatio: 1}, "", untrusted},
		{"on-100%/parent-sampled", &Config{Enabled: true, SampleRatio: 0}, parentSampled, trusted},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var tr *Tracer
			if c.cfg != nil {
				cfg := *c.cfg
				cfg.Endpoint = sinkCollector(b)
				// Room for every span of the run: a full queue drops spans,
				// which would hide their export cost.
				cfg.QueueSize = 1 << 19
				cfg.Compression = compression
				cfg.Trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
				tr = New(nil)
				swap, err := tr.Prepare(cfg)
				if err != nil {
					b.Fatal(err)
				}
				swap()
				b.Cleanup(func() { _ = tr.Stop(context.Background()) })
			}
			h := benchRequest(b, c.traceparent)
			var buf [TraceparentLen]byte
			run := func() {
				if c.cfg == nil {
					return
				}
				proxyTracing(tr, h, c.peer, &buf)
			}
			for i := 0; i < 100; i++ {
				run()
			}
			_ = tr.ForceFlush(context.Background())
			exported0 := tr.Status().Exported
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, req0 := cpuTime(), threadCPUTime()
			for i := 0; i < b.N; i++ {
				run()
			}
			req := threadCPUTime() - req0
			_ = tr.ForceFlush(context.Background())
			b.StopTimer()
			b.ReportMetric(float64(req)/float64(b.N), "req-cpu-ns/op")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(tr.Status().Exported-exported0)/float64(b.N), "spans/op")
		})
	}
}
