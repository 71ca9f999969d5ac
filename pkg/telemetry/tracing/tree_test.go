package tracing

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

const (
	clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpan  = "00f067aa0ba902b7"
)

func proxiedRequest(traceparent, tracestate string) *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://gw.example:8080/acme/billing/invoices/42?secret=1")
	req.Header.SetHost("gw.example:8080")
	req.Header.SetMethod("GET")
	req.Header.Set("User-Agent", "test-client/1.0")
	if traceparent != "" {
		req.Header.Set(HeaderTraceparent, traceparent)
	}
	if tracestate != "" {
		req.Header.Set(HeaderTracestate, tracestate)
	}
	return req
}

// TestProxySpanTree: a trusted client's sampled trace is continued; the
// request's server span has auth, limits and one client span per
// upstream attempt as children, and the upstream receives the answering
// attempt's span id in traceparent with the client's tracestate.
func TestProxySpanTree(t *testing.T) {
	srv := otlptest.NewServer(t)
	cfg := testConfig(srv)
	cfg.SampleRatio = 0 // the client's sampled flag decides
	tr := newTracer(t, cfg)
	up := newUpstream(t, 200)
	p := &simProxy{tr: tr, upstreams: []string{closedAddr(t), up.addr}}

	req := proxiedRequest("00-"+clientTrace+"-"+clientSpan+"-01", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	defer fasthttp.ReleaseRequest(req)
	var resp fasthttp.Response
	peer := netip.MustParseAddrPort("10.1.2.3:50000") // inside Trusted
	if code := p.serve(req, &resp, peer); code != 200 {
		t.Fatalf("status %d", code)
	}
	flush(t, tr)
	spans := srv.WaitSpans(t, 5)

	root := otlptest.One(t, spans, "GET /acme/billing")
	if root.TraceID != clientTrace || root.ParentSpanID != clientSpan {
		t.Fatalf("server span trace=%s parent=%s, want the client's %s/%s", root.TraceID, root.ParentSpanID, clientTrace, clientSpan)
	}
	if root.Kind != "server" || root.StatusCode != "unset" {
		t.Errorf("server span kind=%s status=%s", root.Kind, root.StatusCode)
	}
	if root.TraceState != "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" {
		t.Errorf("server span tracestate %q", root.TraceState)
	}
	wantAttrs(t, root, map[string]any{
		"http.request.method": "GET", "url.path": "/acme/billing/invoices/42", "url.scheme": "http",
		"http.route": "/acme/billing", "server.address": "gw.example", "server.port": int64(8080),
		"network.peer.address": "10.1.2.3", "network.peer.port": int64(50000), "client.address": "10.1.2.3",
		"user_agent.original": "test-client/1.0", "network.protocol.version": "1.1",
		"http.response.status_code": int64(200), "stoa.tenant": "acme", "stoa.tool": "billing", "stoa.request_id": "req-1",
	})
	for k := range root.Attrs {
		if strings.Contains(k, "query") {
			t.Errorf("server span records the query: %s", k)
		}
	}
	if root.Resource["service.name"] != "stoad-test" {
		t.Errorf("resource %v", root.Resource)
	}

	kids := otlptest.Children(spans, root)
	var names []string
	for _, k := range kids {
		names = append(names, k.Name+"/"+k.Kind)
	}
	if got := strings.Join(names, " "); got != "auth/internal limits/internal GET/client GET/client" {
		t.Fatalf("children %q:\n%s", got, otlptest.Dump(spans))
	}
	failed, ok := kids[2], kids[3]
	if failed.StatusCode != "error" || failed.Attrs["error.type"] != "connect_error" || failed.Attrs["http.request.resend_count"] != nil {
		t.Errorf("first attempt: status=%s attrs=%v", failed.StatusCode, failed.Attrs)
	}
	wantAttrs(t, ok, map[string]any{
		"http.request.method": "GET", "server.address": "127.0.0.1", "url.full": "http://" + up.addr + "/acme/billing/invoices/42",
		"http.request.resend_count": int64(1), "http.response.status_code": int64(200),
	})
	if ok.StatusCode != "unset" {
		t.Errorf("answered attempt status %s", ok.StatusCode)
	}

	got := up.received()
	if len(got) != 1 {
		t.Fatalf("upstream got %d requests", len(got))
	}
	if want := "00-" + clientTrace + "-" + ok.SpanID + "-01"; got[0].traceparent != want {
		t.Errorf("upstream traceparent %q, want %q (the answering attempt's span)", got[0].traceparent, want)
	}
	if got[0].tracestate != "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" {
		t.Errorf("upstream tracestate %q", got[0].tracestate)
	}
}

// TestProxyUntrustedClient: under the default policy a client outside
// Trusted starts a new trace that links to its own; its tracestate is not
// passed on, and an upstream error fails the server span.
func TestProxyUntrustedClient(t *testing.T) {
	srv := otlptest.NewServer(t)
	tr := newTracer(t, testConfig(srv))
	up := newUpstream(t, 503)
	p := &simProxy{tr: tr, upstreams: []string{up.addr}}

	req := proxiedRequest("00-"+clientTrace+"-"+clientSpan+"-00", "rojo=1")
	defer fasthttp.ReleaseRequest(req)
	var resp fasthttp.Response
	if code := p.serve(req, &resp, netip.MustParseAddrPort("192.0.2.7:4000")); code != 503 {
		t.Fatalf("status %d", code)
	}
	flush(t, tr)
	spans := srv.WaitSpans(t, 4)
	root := otlptest.One(t, spans, "GET /acme/billing")
	if root.TraceID == clientTrace || root.ParentSpanID != "" {
		t.Fatalf("untrusted client's trace continued: trace=%s parent=%s", root.TraceID, root.ParentSpanID)
	}
	if len(root.Links) != 1 || root.Links[0].TraceID != clientTrace || root.Links[0].SpanID != clientSpan {
		t.Errorf("links %v, want the client's span", root.Links)
	}
	if root.StatusCode != "error" || root.Attrs["error.type"] != "503" {
		t.Errorf("server span status=%s error.type=%v, want error/503", root.StatusCode, root.Attrs["error.type"])
	}
	att := otlptest.One(t, spans, "GET")
	if att.StatusCode != "error" || att.Attrs["error.type"] != "503" {
		t.Errorf("attempt status=%s error.type=%v", att.StatusCode, att.Attrs["error.type"])
	}
	got := up.received()
	if len(got) != 1 || got[0].traceparent != "00-"+root.TraceID+"-"+att.SpanID+"-01" || got[0].tracestate != "" {
		t.Errorf("upstream got %+v", got)
	}
}

// TestProxyAuthFailure: a refused request still has its span, failed
// auth child included; nothing goes upstream.
func TestProxyAuthFailure(t *testing.T) {
	srv := otlptest.NewServer(t)
	tr := newTracer(t, testConfig(srv))
	up := newUpstream(t, 200)
	p := &simProxy{tr: tr, upstreams: []string{up.addr}, authFails: true}
	req := proxiedRequest("", "")
	defer fasthttp.ReleaseRequest(req)
	var resp fasthttp.Response
	p.serve(req, &resp, netip.MustParseAddrPort("10.0.0.1:1"))
	flush(t, tr)
	spans := srv.WaitSpans(t, 2)
	root := otlptest.One(t, spans, "GET /acme/billing")
	auth := otlptest.One(t, spans, "auth")
	if auth.ParentSpanID != root.SpanID || auth.StatusCode != "error" || auth.StatusMessage != "missing or invalid credentials" {
		t.Errorf("auth span %+v", auth)
	}
	// 4xx is not a server span error (HTTP conventions).
	if root.StatusCode != "unset" || root.Attrs["http.response.status_code"] != int64(401) {
		t.Errorf("server span status=%s attrs=%v", root.StatusCode, root.Attrs)
	}
	if len(up.received()) != 0 {
		t.Error("refused request reached the upstream")
	}
}

func wantAttrs(t *testing.T, s otlptest.Span, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got, ok := s.Attrs[k]; !ok || got != v {
			t.Errorf("span %q: %s = %#v, want %#v", s.Name, k, got, v)
		}
	}
}

// TestStartChildAt: a child begun at an earlier time (work done before the
// parent's sampling decision was known) starts then, under its parent;
// under an unsampled parent it is the parent's ids, recording nothing.
func TestStartChildAt(t *testing.T) {
	srv := otlptest.NewServer(t)
	tr := newTracer(t, testConfig(srv))
	begin := time.Now().Add(-time.Millisecond).Truncate(time.Microsecond)
	sp := tr.Start(&Incoming{Start: begin}, "server", KindServer)
	a := sp.StartChildAt("auth", KindInternal, begin)
	a.EndAt(begin.Add(100 * time.Microsecond))
	sp.End()
	flush(t, tr)
	spans := srv.WaitSpans(t, 2)
	server, auth := otlptest.One(t, spans, "server"), otlptest.One(t, spans, "auth")
	if auth.ParentSpanID != server.SpanID || auth.Kind != "internal" {
		t.Errorf("auth span parent %s kind %s, want internal under %s", auth.ParentSpanID, auth.Kind, server.SpanID)
	}
	if !auth.Start.Equal(begin) || !auth.End.Equal(begin.Add(100*time.Microsecond)) {
		t.Errorf("auth span %v – %v, want %v – %v", auth.Start, auth.End, begin, begin.Add(100*time.Microsecond))
	}

	off := newTracer(t, Config{Enabled: true, Endpoint: srv.Endpoint(), SampleRatio: 0})
	un := off.Start(nil, "server", KindServer)
	c := un.StartChildAt("auth", KindInternal, begin)
	if c.Recording() || c.Context() != un.Context() {
		t.Errorf("child of an unsampled span: recording %v, ids %v, want the parent's %v", c.Recording(), c.Context(), un.Context())
	}
	if n := testing.AllocsPerRun(100, func() { c := un.StartChildAt("auth", KindInternal, begin); c.End() }); n != 0 {
		t.Errorf("%v allocations under an unsampled span", n)
	}
}
