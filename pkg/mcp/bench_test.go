package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/mcp/argmap"
	"github.com/stoa-gateway/stoa/pkg/mcp/internal/refserver"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Benchmarks run everything on loopback: a fasthttp upstream answering
// ~100 bytes of JSON, the MCP server under test, and a fasthttp load client.
//
//	go test -run XXX -bench 'ToolsCall|ToolsList' -benchtime 20000x ./pkg/mcp/
//
// BenchmarkToolsCall/{stoa,stoa-modern,sdk} compare stoa's server with a
// minimal official-SDK server (internal/refserver: stateless, JSON
// responses) doing the same validation, argument mapping and upstream call
// through the same fasthttp client; the difference is the MCP layer and the
// HTTP server.

const benchUpstreamBody = `{"id":"inv-1","amount":42,"currency":"EUR","status":"paid","customer":"cus_1234567890"}`

func startFastUpstream(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(benchUpstreamBody)
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// fastBackend is a minimal daemon-like backend: token compare and a pooled
// fasthttp upstream client.
type fastBackend struct {
	hc *fasthttp.HostClient
}

func (fb *fastBackend) Authenticate(_ context.Context, c Credentials) (Caller, error) {
	switch string(c.Authorization) {
	case "Bearer bench":
		return Caller{Tenant: "acme", Via: "jwt"}, nil
	case "Bearer bench-granted":
		return Caller{Tenant: "acme", Via: "apikey", Consumer: "shop", Grants: evenGrants{}}, nil
	}
	return Caller{}, &AuthError{}
}

// evenGrants allows every other bench tool (a consumer subscribed to half
// of a 10,000-tool API).
type evenGrants struct{}

func (evenGrants) Key() string { return "shop" }
func (evenGrants) Allows(t *Tool) bool {
	return t.Name[len(t.Name)-1]%2 == 0
}

func (fb *fastBackend) Call(_ context.Context, _ Caller, _ *Tool, r *UpstreamRequest) (UpstreamResponse, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	req.Header.SetMethod(r.Method)
	uri := req.URI()
	uri.SetHost(fb.hc.Addr)
	uri.SetPathBytes(r.Path)
	uri.SetQueryStringBytes(r.Query)
	for _, h := range r.Header {
		req.Header.SetBytesV(h.Name, h.Value)
	}
	if r.Body != nil {
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(r.Body)
	}
	if err := fb.hc.DoTimeout(req, resp, 5*time.Second); err != nil {
		fasthttp.ReleaseResponse(resp)
		return UpstreamResponse{}, err
	}
	return UpstreamResponse{Status: resp.StatusCode(), ContentType: string(resp.Header.ContentType()), Body: resp.Body(),
		Release: func() { fasthttp.ReleaseResponse(resp) }}, nil
}

func (fb *fastBackend) Info(Caller) PlatformInfo { return PlatformInfo{Version: "bench", Health: "ok"} }

func benchObjects(nTools int) []*spec.Object {
	ops := make([]spec.Operation, 0, nTools)
	for i := range nTools {
		ops = append(ops, spec.Operation{
			Name: fmt.Sprintf("get_invoice_%05d", i), Method: "GET", Path: "/invoices/{id}",
			Description: "Fetch one invoice by id, with optional expansions of its lines, taxes and payments.",
			Input: map[string]any{"type": "object", "required": []any{"id"}, "properties": map[string]any{
				"id":     map[string]any{"type": "string", "pattern": "^inv-", "description": "Invoice id."},
				"expand": map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": []any{"lines", "taxes", "payments"}}},
			}},
		})
	}
	return []*spec.Object{{APIVersion: spec.APIVersion, Kind: spec.KindTool,
		Metadata: spec.Metadata{Name: "billing", Namespace: "acme"},
		Spec:     &spec.ToolSpec{Protocol: "rest", Upstream: "http://upstream", Operations: ops}}}
}

type benchEnv struct {
	stoaAddr, sdkAddr string
	srv               *Server
}

func newBenchEnv(b testing.TB, nTools int) *benchEnv {
	upstream := startFastUpstream(b)
	be := &fastBackend{hc: &fasthttp.HostClient{Addr: upstream, MaxConns: 512}}
	srv := NewServer(Options{}, be)
	cat, err := BuildCatalog(1, benchObjects(nTools))
	if err != nil {
		b.Fatal(err)
	}
	srv.SetCatalog(cat)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	fs := &fasthttp.Server{Handler: srv.Handler}
	go fs.Serve(ln)
	b.Cleanup(func() { _ = fs.Shutdown() })

	// The reference server does the same work per call (schema validation,
	// argument mapping, the same backend) through the SDK.
	var tools []refserver.Tool
	for _, t := range cat.viewFor(Caller{Tenant: "acme"}).tools {
		tools = append(tools, refserver.Tool{Name: t.Name, Description: t.Description, InputSchema: t.InputSchema})
	}
	reqs := sync.Pool{New: func() any { return new(argmap.Request) }}
	ref := refserver.New(tools, func(ctx context.Context, name string, args json.RawMessage) (*sdk.CallToolResult, error) {
		t := cat.tools[name]
		if msg := t.schema.validate(args); msg != "" {
			return nil, fmt.Errorf("invalid arguments: %s", msg)
		}
		ur := reqs.Get().(*argmap.Request)
		defer reqs.Put(ur)
		if err := t.plan.Map(args, ur); err != nil {
			return nil, err
		}
		resp, err := be.Call(ctx, Caller{Tenant: "acme"}, t, ur)
		if err != nil {
			return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: err.Error()}}}, nil
		}
		defer resp.Release()
		body := slices.Clone(resp.Body)
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: string(body)}},
			StructuredContent: json.RawMessage(body)}, nil
	})
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: ref}
	go hs.Serve(ln2)
	b.Cleanup(func() { _ = hs.Close() })
	return &benchEnv{stoaAddr: ln.Addr().String(), sdkAddr: ln2.Addr().String(), srv: srv}
}

const benchCall = `{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"acme__billing__get_invoice_00000","arguments":{"id":"inv-1","expand":["lines","taxes"]}}}`

func benchCallModern() string {
	return `{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"acme__billing__get_invoice_00000","arguments":{"id":"inv-1","expand":["lines","taxes"]},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"}}}}`
}

// runLoad posts body to addr from parallel clients and reports req/s.
func runLoad(b *testing.B, addr, body string, headers map[string]string, check func(status int, body []byte) error) {
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: 256}
	do := func(req *fasthttp.Request, resp *fasthttp.Response) error {
		if err := hc.Do(req, resp); err != nil {
			return err
		}
		return check(resp.StatusCode(), resp.Body())
	}
	newReq := func() *fasthttp.Request {
		req := fasthttp.AcquireRequest()
		req.SetRequestURI("http://" + addr + "/mcp")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		req.SetBodyString(body)
		return req
	}
	// Warm up connections and pools.
	warm := newReq()
	for range 200 {
		resp := fasthttp.AcquireResponse()
		if err := do(warm, resp); err != nil {
			b.Fatal(err)
		}
		fasthttp.ReleaseResponse(resp)
	}
	b.ReportAllocs()
	b.SetParallelism(8)
	cpu0 := processCPU()
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := newReq()
		resp := fasthttp.AcquireResponse()
		for pb.Next() {
			if err := do(req, resp); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	// CPU time of the whole process (client, server and upstream) per
	// request: steadier than wall time on a shared machine, and the client
	// and upstream parts are the same for every target.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func checkCall(status int, body []byte) error {
	if status != 200 || !json.Valid(body) || !containsBytes(body, `"amount":42`) {
		return fmt.Errorf("bad answer %d %s", status, body)
	}
	return nil
}

func containsBytes(b []byte, s string) bool {
	return len(b) >= len(s) && string(b) != "" && contains(string(b), s)
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func BenchmarkToolsCall(b *testing.B) {
	env := newBenchEnv(b, 10)
	legacy := map[string]string{"Authorization": "Bearer bench", "MCP-Protocol-Version": "2025-11-25"}
	b.Run("stoa", func(b *testing.B) { runLoad(b, env.stoaAddr, benchCall, legacy, checkCall) })
	b.Run("stoa-modern", func(b *testing.B) {
		runLoad(b, env.stoaAddr, benchCallModern(), map[string]string{"Authorization": "Bearer bench",
			"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "acme__billing__get_invoice_00000"}, checkCall)
	})
	b.Run("sdk", func(b *testing.B) {
		runLoad(b, env.sdkAddr, benchCall, map[string]string{"MCP-Protocol-Version": "2025-11-25"}, checkCall)
	})
}

// BenchmarkToolsList10k measures the first tools/list page of a tenant with
// 10,000 tools over loopback, one request at a time, and reports latency
// percentiles.
func BenchmarkToolsList10k(b *testing.B) {
	b.Run("tenant", func(b *testing.B) { benchToolsList(b, "bench") })
	// A caller whose Grants allow half the tools: the filtered list is
	// built on the first request of the catalog and then served like the
	// tenant's.
	b.Run("granted", func(b *testing.B) { benchToolsList(b, "bench-granted") })
}

func benchToolsList(b *testing.B, token string) {
	env := newBenchEnv(b, 10_000)
	hc := &fasthttp.HostClient{Addr: env.stoaAddr}
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://" + env.stoaAddr + "/mcp")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.SetBodyString(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`)
	resp := fasthttp.AcquireResponse()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("%v %d", err, resp.StatusCode())
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(resp.Body())), "resp-bytes")
}

func BenchmarkBuildCatalog10k(b *testing.B) {
	objs := benchObjects(10_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildCatalog(1, objs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandlerToolsCall measures the in-process handler (no network,
// a stub upstream) to show the MCP layer's own cost.
func BenchmarkHandlerToolsCall(b *testing.B) {
	srv := NewServer(Options{}, stubBackend{})
	cat, err := BuildCatalog(1, benchObjects(10))
	if err != nil {
		b.Fatal(err)
	}
	srv.SetCatalog(cat)
	for _, c := range []struct {
		name, body string
		headers    []string
	}{
		{"legacy", benchCall, []string{"MCP-Protocol-Version", "2025-11-25"}},
		{"modern", benchCallModern(), []string{"MCP-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "acme__billing__get_invoice_00000"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			for b.Loop() {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.Header.SetMethod("POST")
				ctx.Request.SetRequestURI("/mcp")
				ctx.Request.Header.SetContentType("application/json")
				ctx.Request.Header.Set("Authorization", "Bearer bench")
				for i := 0; i < len(c.headers); i += 2 {
					ctx.Request.Header.Set(c.headers[i], c.headers[i+1])
				}
				ctx.Request.SetBodyString(c.body)
				srv.Handler(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
		})
	}
}

type stubBackend struct{}

var stubBody = []byte(benchUpstreamBody)

func (stubBackend) Authenticate(context.Context, Credentials) (Caller, error) {
	return Caller{Tenant: "acme"}, nil
}

func (stubBackend) Call(context.Context, Caller, *Tool, *UpstreamRequest) (UpstreamResponse, error) {
	return UpstreamResponse{Status: 200, ContentType: "application/json", Body: stubBody}, nil
}

func (stubBackend) Info(Caller) PlatformInfo { return PlatformInfo{} }

// BenchmarkGrantedViewBuild is the one-off cost of filtering a 10,000-tool
// view for a new Grants key (first tools/list of a consumer per revision).
func BenchmarkGrantedViewBuild(b *testing.B) {
	cat, err := BuildCatalog(1, benchObjects(10_000))
	if err != nil {
		b.Fatal(err)
	}
	base := cat.viewFor(Caller{Tenant: "acme"})
	b.ReportAllocs()
	for b.Loop() {
		if v := base.filter(evenGrants{}); len(v.tools) != 2+5000 {
			b.Fatal(len(v.tools))
		}
	}
}
