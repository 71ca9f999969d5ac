package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// benchSnapshot builds n tools (spread over 10 tenants) in code: parsing
// 10,000 YAML documents would dominate the setup.
func benchSnapshot(n int, upstream string) *state.Revision {
	var objs []*spec.Object
	for i := 0; i < n; i++ {
		o := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool,
			Metadata: spec.Metadata{Name: fmt.Sprintf("tool-%d", i), Namespace: fmt.Sprintf("tenant-%d", i%10)},
			Spec:     &spec.ToolSpec{Upstream: upstream}}
		spec.Default(o)
		objs = append(objs, o)
	}
	return state.New(1, objs)
}

func BenchmarkRouteLookup(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			tb, err := compile(benchSnapshot(n, "http://127.0.0.1:1/base"), newPoolRegistry(nil, nil), telemetry.NewRegistry(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			var paths [][]byte
			for i := 0; i < 64; i++ {
				k := (i * 7919) % n
				paths = append(paths, []byte(fmt.Sprintf("/tenant-%d/tool-%d/v1/items/%d", k%10, k, i)))
			}
			paths = append(paths, []byte("/no/such/route/at/all")) // a miss walks every segment
			host := []byte("gw.example")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := paths[i%len(paths)]
				if r := tb.lookup(host, p); r == nil && i%len(paths) != len(paths)-1 {
					b.Fatalf("no route for %s", p)
				}
			}
		})
	}
}

// memUpstream serves a small fixed answer on an in-memory listener.
func memUpstream(b testing.TB) *fasthttputil.InmemoryListener {
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.SetContentType("application/json")
		ctx.Response.SetBodyString(`{"ok":true}`)
	}}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { ln.Close() })
	return ln
}

// benchProxy is a prepared proxy whose upstream pools dial an in-memory
// upstream, and a request to replay.
type benchProxy struct {
	p   *Proxy
	req fasthttp.Request
}

func newBenchProxy(b testing.TB, specs string, headers ...string) *benchProxy {
	up := memUpstream(b)
	a := &auth.Authenticator{}
	p := New(Options{Listen: "127.0.0.1:0", Auth: a, Limiter: limits.New(limits.Options{}), Stats: telemetry.NewRegistry()})
	st := snapshot(b, 1, strings.ReplaceAll(specs, "UP", "http://upstream.invalid:80"))
	swap, err := p.Prepare(st)
	if err != nil {
		b.Fatal(err)
	}
	swap()
	for _, u := range p.pools.all() {
		u.pool.dial = func(string) (net.Conn, error) { return up.Dial() }
	}
	bp := &benchProxy{p: p}
	bp.req.Header.SetMethod("GET")
	bp.req.SetRequestURI("/acme/api/v1/items/42?expand=true")
	bp.req.Header.SetHost("gw.example")
	bp.req.Header.Set("User-Agent", "bench/1.0")
	bp.req.Header.Set("Accept", "application/json")
	bp.req.Header.Set("Accept-Encoding", "gzip")
	for i := 0; i+1 < len(headers); i += 2 {
		bp.req.Header.Set(headers[i], headers[i+1])
	}
	return bp
}

// run replays the request through the handler b.N times on one
// RequestCtx, as a keep-alive connection does.
func (bp *benchProxy) run(b *testing.B) {
	bp.runTraced(b, nil)
}

// runTraced is run with tr as the proxy's Tracer; cpu-ns/op is the
// process's CPU time per request, the tracer's batching and export
// (flushed at the end) included.
func (bp *benchProxy) runTraced(b *testing.B, tr *tracing.Tracer) {
	bp.p.opts.Tracer = tr
	var ctx fasthttp.RequestCtx
	ctx.Init(&bp.req, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 50000}, nil)
	do := func() {
		bp.req.CopyTo(&ctx.Request)
		ctx.Response.Reset()
		bp.p.serve(&ctx)
		if c := ctx.Response.StatusCode(); c != 200 {
			b.Fatalf("status %d: %s", c, ctx.Response.Body())
		}
	}
	for i := 0; i < 100; i++ { // warm pools, caches and limiter keys
		do()
	}
	measureCPU(b, tr, func() {
		for i := 0; i < b.N; i++ {
			do()
		}
	})
}

// measureCPU runs loop as the benchmark and reports the process's CPU
// time per op, the tracer's export of what loop recorded included.
func measureCPU(b *testing.B, tr *tracing.Tracer, loop func()) {
	var ru0, ru1 syscall.Rusage
	b.ReportAllocs()
	b.ResetTimer()
	var before tracing.Status
	if tr != nil {
		before = tr.Status()
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	loop()
	if tr != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = tr.ForceFlush(ctx)
		cancel()
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	b.StopTimer()
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if tr.Enabled() {
		// A full export queue drops spans, which would hide their cost.
		after := tr.Status()
		b.ReportMetric(float64(after.Exported-before.Exported)/float64(b.N), "spans/op")
		b.ReportMetric(float64(after.Dropped-before.Dropped)/float64(b.N), "dropped/op")
	}
}

// benchTracer is a Tracer exporting to a discarding OTLP/HTTP endpoint:
// ratio < 0 leaves it off.
func benchTracer(b testing.TB, ratio float64) *tracing.Tracer {
	return benchTracerConfig(b, ratio, tracing.Config{})
}

// benchTracerConfig is benchTracer with cfg's other settings.
func benchTracerConfig(b testing.TB, ratio float64, cfg tracing.Config) *tracing.Tracer {
	tr := tracing.New(slog.New(slog.DiscardHandler))
	if ratio < 0 {
		return tr
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(srv.Close)
	cfg.Enabled, cfg.Endpoint, cfg.SampleRatio = true, srv.URL, ratio
	if cfg.QueueSize == 0 {
		// Room for the spans of a run whose export falls behind on a busy
		// machine: a dropped span would hide its cost (dropped/op shows it).
		cfg.QueueSize = 1 << 16
	}
	swap, err := tr.Prepare(cfg)
	if err != nil {
		b.Fatal(err)
	}
	swap()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tr.Stop(ctx)
	})
	return tr
}

// tracingCases are the tracing settings the benchmarks compare: none
// (no Tracer), off (a Tracer, disabled), on at 0 %, 1 % and 100 %
// sampling.
var tracingCases = []struct {
	name  string
	ratio float64 // < -1: no Tracer; < 0: off
}{
	{"notracer", -2}, {"off", -1}, {"on0pct", 0}, {"on1pct", 0.01}, {"on100pct", 1},
}

func BenchmarkServe(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		newBenchProxy(b, tool("acme", "api", "UP", "")).run(b)
	})
	for _, tc := range tracingCases {
		b.Run("tracing="+tc.name, func(b *testing.B) {
			var tr *tracing.Tracer
			if tc.ratio >= -1 {
				tr = benchTracer(b, tc.ratio)
			}
			newBenchProxy(b, tool("acme", "api", "UP", "")).runTraced(b, tr)
		})
	}
	b.Run("apikey+limits", func(b *testing.B) { benchAPIKeyLimits(b, "", nil) })
	// A typical two-rule policy (docs/policy.md): a deny on the method, an
	// allow on the caller.
	b.Run("apikey+limits+policy", func(b *testing.B) { benchAPIKeyLimits(b, benchPolicy, nil) })
	// With a credential and limits to check, a sampled request has auth
	// and limits spans too.
	for _, tc := range tracingCases {
		b.Run("apikey+limits/tracing="+tc.name, func(b *testing.B) {
			benchAPIKeyLimits(b, "", tracingCaseTracer(b, tc.ratio))
		})
	}
}

// tracingCaseTracer is the Tracer of a tracingCases ratio.
func tracingCaseTracer(b *testing.B, ratio float64) *tracing.Tracer {
	if ratio < -1 {
		return nil
	}
	return benchTracer(b, ratio)
}

// benchAPIKeyLimitsSpecs is a tool with an API key and every kind of
// limit: tenant, tool, per source, toolset, plan (through a subscription).
const benchAPIKeyLimitsSpecs = "auth: {type: apiKey}\nrateLimit: 1000000000/s\n"

func benchAPIKeyLimitsObjects(upstream, policy string) string {
	return tenant("acme", "defaults: {rateLimit: 1000000000/s, perSource: 1000000000/s}") + consumers +
		tool("acme", "api", upstream, benchAPIKeyLimitsSpecs+policy) +
		object("ToolSet", "acme", "set", "tools: [api]\npolicies: {rateLimit: 1000000000/s}") +
		object("Plan", "acme", "gold", "rateLimit: 1000000000/s") +
		object("Subscription", "acme", "sub", "consumer: shop\nplan: gold\ntool: api")
}

// benchKey sets a shop consumer's API key on a and returns it.
func benchKey(b testing.TB, a *auth.Authenticator) string {
	key, rec, err := auth.GenerateKey(auth.KeyOptions{Tenant: "acme", Consumer: "shop"})
	if err != nil {
		b.Fatal(err)
	}
	ix, err := auth.NewKeyIndex([]auth.KeyRecord{rec})
	if err != nil {
		b.Fatal(err)
	}
	a.SetKeys(ix)
	return key
}

const benchPolicy = `policy:
  rules:
    - name: no-deletes
      deny: request.method == "DELETE"
    - name: shop
      allow: caller.consumer == "shop"
`

func benchAPIKeyLimits(b *testing.B, policy string, tr *tracing.Tracer) {
	bp := newBenchProxy(b, benchAPIKeyLimitsObjects("UP", policy))
	bp.req.Header.Set("X-Api-Key", benchKey(b, bp.p.opts.Auth))
	bp.runTraced(b, tr)
}

// BenchmarkServeInMemory runs the whole server (fasthttp parsing, the
// handler, the upstream exchange) with a fasthttp client over in-memory
// connections on both sides.
func BenchmarkServeInMemory(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchInMemory(b, "", nil) })
	b.Run("policy", func(b *testing.B) {
		benchInMemory(b, "policy: {rules: [{deny: 'request.method == \"DELETE\"'}, {allow: 'request.path.startsWith(\"/acme/\")'}]}", nil)
	})
	for _, tc := range tracingCases {
		b.Run("tracing="+tc.name, func(b *testing.B) {
			var tr *tracing.Tracer
			if tc.ratio >= -1 {
				tr = benchTracer(b, tc.ratio)
			}
			benchInMemory(b, "", tr)
		})
	}
	for _, tc := range tracingCases {
		b.Run("apikey+limits/tracing="+tc.name, func(b *testing.B) {
			benchInMemorySpecs(b, benchAPIKeyLimitsObjects("http://upstream.invalid:80", ""), tracingCaseTracer(b, tc.ratio), true)
		})
	}
}

func benchInMemory(b *testing.B, extra string, tr *tracing.Tracer) {
	benchInMemorySpecs(b, tool("acme", "api", "http://upstream.invalid:80", extra), tr, false)
}

// benchInMemorySpecs runs the in-memory benchmark on specs; withKey sends
// an API key of the shop consumer.
func benchInMemorySpecs(b *testing.B, specs string, tr *tracing.Tracer, withKey bool) {
	up := memUpstream(b)
	front := fasthttputil.NewInmemoryListener()
	a := &auth.Authenticator{}
	p := New(Options{Listen: "127.0.0.1:0", Tracer: tr, Auth: a, Limiter: limits.New(limits.Options{}),
		WrapListener: func(tcp net.Listener) net.Listener { tcp.Close(); return front }})
	swap, err := p.Prepare(snapshot(b, 1, specs))
	if err != nil {
		b.Fatal(err)
	}
	swap()
	for _, u := range p.pools.all() {
		u.pool.dial = func(string) (net.Conn, error) { return up.Dial() }
	}
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	client := &fasthttp.HostClient{Addr: "gw", Dial: func(string) (net.Conn, error) { return front.Dial() }}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("http://gw/acme/api/v1/items/42")
	if withKey {
		req.Header.Set("X-Api-Key", benchKey(b, a))
	}
	for i := 0; i < 100; i++ {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("warm-up: %v %d", err, resp.StatusCode())
		}
	}
	measureCPU(b, tr, func() {
		for i := 0; i < b.N; i++ {
			if err := client.Do(req, resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchHeader(b *testing.B, extra string) *fasthttp.RequestHeader {
	var h fasthttp.RequestHeader
	raw := "GET /acme/api/v1/items/42 HTTP/1.1\r\nHost: gw.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Accept: application/json\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"X-Api-Key: stoa_sk_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbcccccc\r\n" +
		"Cookie: session=abc\r\nX-Forwarded-For: 203.0.113.7\r\n" + extra + "\r\n"
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	return &h
}

func BenchmarkScanHeaders(b *testing.B) {
	h := benchHeader(b, "")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s := scanHeaders(h); s.bad {
			b.Fatal("bad")
		}
	}
}

// BenchmarkRewriteHeaders is the request rewrite of a hostile request:
// scan, strip hop-by-hop and client gateway headers, set forwarded
// headers. The copy of the header is part of every iteration.
func BenchmarkRewriteHeaders(b *testing.B) {
	src := benchHeader(b, "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nX-Stoa-Tenant: evil\r\nX-Stoa-Consumer: evil\r\n")
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 50000}, nil)
	var scratch [64]byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := &ctx.Request.Header
		src.CopyTo(h)
		s := scanHeaders(h)
		stripRequestHopByHop(h, &s, false)
		h.Set(hdrTenant, "acme")
		setForwarded(&ctx, clientAddr(&ctx), false, scratch[:])
	}
}
