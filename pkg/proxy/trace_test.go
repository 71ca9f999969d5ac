package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

// traceEnv is a proxy tracing to an in-process OTLP receiver, with a
// recording upstream.
type traceEnv struct {
	e   *testEnv
	up  *recordingUpstream
	tr  *tracing.Tracer
	col *otlptest.Server
	key string
}

func newTraceEnv(t *testing.T, slow bool, cfg tracing.Config, opts ...envOption) *traceEnv {
	t.Helper()
	return newTraceEnvTB(t, slow, cfg, opts...)
}

func newTraceEnvTB(t testing.TB, slow bool, cfg tracing.Config, opts ...envOption) *traceEnv {
	t.Helper()
	col := otlptest.NewServer(t)
	tr := tracing.New(slog.New(slog.DiscardHandler))
	cfg.Enabled, cfg.Endpoint = true, col.Endpoint()
	swap, err := tr.Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	swap()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tr.Stop(ctx)
	})
	up := newRecordingUpstream(t)
	up.setAnswer([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	e := newEnv(t, tenant("acme", "")+consumers+tool("acme", "t", "http://"+up.ln.Addr().String()+"/base", "auth: {type: apiKey}"),
		append([]envOption{func(o *Options) { o.Tracer = tr }}, opts...)...)
	e.p.slowOnly.Store(slow)
	key := e.addKey("acme", "shop", nil)
	return &traceEnv{e: e, up: up, tr: tr, col: col, key: key}
}

// flush exports what has ended.
func (te *traceEnv) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := te.tr.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
}

// spansOf returns the spans of one trace.
func spansOf(spans []otlptest.Span, traceID string) []otlptest.Span {
	var out []otlptest.Span
	for _, s := range spans {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

var traceparentRE = regexp.MustCompile(`(?i)\r\ntraceparent: *(00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01]))\r\n`)

// upstreamTrace returns the one traceparent the upstream received, and
// its tracestate lines.
func upstreamTrace(t *testing.T, req []byte) (tp, traceID, spanID, flags string, tracestate []string) {
	t.Helper()
	all := traceparentRE.FindAllSubmatch(req, -1)
	if len(all) != 1 {
		t.Fatalf("upstream got %d traceparent fields, want 1:\n%s", len(all), req)
	}
	m := all[0]
	for _, line := range strings.Split(string(req), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "tracestate") {
			tracestate = append(tracestate, strings.TrimSpace(v))
		}
	}
	return string(m[1]), string(m[2]), string(m[3]), string(m[4]), tracestate
}

const (
	clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpan  = "00f067aa0ba902b7"
)

// TestTracingBothPaths: a proxied request on each path is a server span
// continuing a trusted client's trace, with one client span for the
// upstream attempt whose id the upstream receives in a new traceparent
// (with the client's tracestate), and the attributes of the HTTP
// conventions; no query string, key or credential is recorded.
func TestTracingBothPaths(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast", true: "fasthttp"}[slow], func(t *testing.T) {
			te := newTraceEnv(t, slow, tracing.Config{SampleRatio: 1, Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
			// Raw, so the path that served it shows: the fast path keeps
			// the client's lower-case field name, fasthttp canonicalises it.
			r := rawGet(t, te.e.addr, "GET /acme/t/items/1?api_key=query-secret HTTP/1.1\r\nHost: gw\r\nx-api-key: "+te.key+
				"\r\nUser-Agent: trace-test/1\r\ntraceparent: 00-"+clientTrace+"-"+clientSpan+"-01\r\ntracestate: vendor=abc\r\nx-lower: a\r\n\r\n")
			if r.StatusCode != 200 {
				t.Fatalf("status %d", r.StatusCode)
			}
			got := te.up.take()
			if len(got) != 1 {
				t.Fatalf("upstream got %d requests", len(got))
			}
			if fast := bytes.Contains(got[0], []byte("\r\nx-lower: a\r\n")); fast == slow {
				t.Fatalf("served by the fast path: %v, want %v", fast, !slow)
			}
			_, upTrace, upSpan, flags, ts := upstreamTrace(t, got[0])
			if upTrace != clientTrace || flags != "01" || upSpan == clientSpan {
				t.Errorf("upstream traceparent %s-%s-%s: want the client's trace, sampled, a span of the gateway's", upTrace, upSpan, flags)
			}
			if len(ts) != 1 || ts[0] != "vendor=abc" {
				t.Errorf("upstream tracestate %q, want the client's", ts)
			}

			te.flush(t)
			spans := spansOf(te.col.WaitSpans(t, 2), clientTrace)
			server := otlptest.One(t, spans, "GET /acme/t")
			if server.Kind != "server" || server.ParentSpanID != clientSpan {
				t.Errorf("server span kind %s parent %s, want server under the client's %s:\n%s", server.Kind, server.ParentSpanID, clientSpan, otlptest.Dump(spans))
			}
			// The tool checks an API key and has no limit: auth and the
			// upstream attempt (TestTracingAuthLimits has the rest).
			children := otlptest.Children(spans, server)
			if len(children) != 2 {
				t.Fatalf("%d children of the server span, want auth and the upstream attempt:\n%s", len(children), otlptest.Dump(spans))
			}
			client := otlptest.One(t, children, "GET")
			if client.Kind != "client" || client.Name != "GET" || client.SpanID != upSpan {
				t.Errorf("attempt span %s %s id %s; upstream was told %s", client.Kind, client.Name, client.SpanID, upSpan)
			}
			for k, want := range map[string]any{
				"http.request.method": "GET", "url.path": "/acme/t/items/1", "url.scheme": "http", "http.route": "/acme/t",
				"http.response.status_code": int64(200), "stoa.tenant": "acme", "stoa.tool": "t", "stoa.consumer": "shop",
				"stoa.request_id": r.Header.Get("X-Request-Id"), "user_agent.original": "trace-test/1",
				"client.address": "127.0.0.1", "network.peer.address": "127.0.0.1",
			} {
				if server.Attrs[k] != want {
					t.Errorf("server span %s = %#v, want %#v", k, server.Attrs[k], want)
				}
			}
			upHost := te.up.ln.Addr().String()
			for k, want := range map[string]any{
				"http.request.method": "GET", "url.full": "http://" + upHost + "/base/items/1",
				"server.address": "127.0.0.1", "http.response.status_code": int64(200),
			} {
				if client.Attrs[k] != want {
					t.Errorf("attempt span %s = %#v, want %#v", k, client.Attrs[k], want)
				}
			}
			dump := fmt.Sprint(spans)
			for _, secret := range []string{"query-secret", "api_key=", te.key} {
				if strings.Contains(dump, secret) {
					t.Errorf("a span records %q:\n%s", secret, dump)
				}
			}
		})
	}
}

// TestTracingPropagation: who is continued and what the upstream gets,
// on both paths — a new trace for a client without one, a new trace
// linked to an untrusted client's (whose tracestate is dropped),
// parent-based sampling at ratio 0 (nothing recorded for a new trace,
// but a traceparent upstream; a sampled trusted parent is recorded), and
// trace headers passing through untouched while tracing is off.
func TestTracingPropagation(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast", true: "fasthttp"}[slow], func(t *testing.T) {
			get := func(te *traceEnv, headers ...string) []byte {
				t.Helper()
				r := te.e.do("GET", "/acme/t/x", append([]string{"X-Api-Key", te.key}, headers...)...)
				if r.Status != 200 {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
				got := te.up.take()
				if len(got) != 1 {
					t.Fatalf("upstream got %d requests", len(got))
				}
				return got[0]
			}

			t.Run("new trace", func(t *testing.T) {
				te := newTraceEnv(t, slow, tracing.Config{SampleRatio: 1})
				_, trace, span, flags, ts := upstreamTrace(t, get(te))
				if flags != "01" || len(ts) != 0 {
					t.Errorf("flags %s tracestate %q", flags, ts)
				}
				te.flush(t)
				spans := spansOf(te.col.WaitSpans(t, 2), trace)
				server := otlptest.One(t, spans, "GET /acme/t")
				if server.ParentSpanID != "" || otlptest.One(t, otlptest.Children(spans, server), "GET").SpanID != span {
					t.Errorf("want a root server span with the upstream attempt under it:\n%s", otlptest.Dump(spans))
				}
			})

			t.Run("untrusted client", func(t *testing.T) {
				te := newTraceEnv(t, slow, tracing.Config{SampleRatio: 1, Accept: tracing.AcceptNone})
				_, trace, _, _, ts := upstreamTrace(t, get(te, "traceparent", "00-"+clientTrace+"-"+clientSpan+"-01", "tracestate", "vendor=abc"))
				if trace == clientTrace || len(ts) != 0 {
					t.Errorf("an untrusted client's trace went upstream: trace %s, tracestate %q", trace, ts)
				}
				te.flush(t)
				server := otlptest.One(t, spansOf(te.col.WaitSpans(t, 2), trace), "GET /acme/t")
				if len(server.Links) != 1 || server.Links[0].TraceID != clientTrace || server.Links[0].SpanID != clientSpan {
					t.Errorf("server span links %+v, want the client's context", server.Links)
				}
			})

			t.Run("ratio 0", func(t *testing.T) {
				te := newTraceEnv(t, slow, tracing.Config{SampleRatio: 0, Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
				_, trace, _, flags, _ := upstreamTrace(t, get(te))
				if flags != "00" || trace == clientTrace {
					t.Errorf("unsampled new trace went upstream with flags %s", flags)
				}
				_, trace2, _, flags2, _ := upstreamTrace(t, get(te, "traceparent", "00-"+clientTrace+"-"+clientSpan+"-00"))
				if trace2 != clientTrace || flags2 != "00" {
					t.Errorf("an unsampled parent: upstream trace %s flags %s", trace2, flags2)
				}
				_, trace3, _, flags3, _ := upstreamTrace(t, get(te, "traceparent", "00-"+clientTrace+"-"+clientSpan+"-01"))
				if trace3 != clientTrace || flags3 != "01" {
					t.Errorf("a sampled parent: upstream trace %s flags %s", trace3, flags3)
				}
				te.flush(t)
				spans := te.col.WaitSpans(t, 3)
				if len(spans) != 3 || len(spansOf(spans, clientTrace)) != 3 {
					t.Errorf("want only the sampled parent's three spans (server, auth, attempt):\n%s", otlptest.Dump(spans))
				}
			})

			t.Run("off", func(t *testing.T) {
				te := newTraceEnv(t, slow, tracing.Config{SampleRatio: 1})
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := te.tr.Stop(ctx); err != nil {
					t.Fatal(err)
				}
				req := get(te, "traceparent", "00-"+clientTrace+"-"+clientSpan+"-01", "tracestate", "vendor=abc")
				tp, _, _, _, ts := upstreamTrace(t, req)
				if tp != "00-"+clientTrace+"-"+clientSpan+"-01" || len(ts) != 1 || ts[0] != "vendor=abc" {
					t.Errorf("tracing off changed the trace headers: %s %q", tp, ts)
				}
				if n := len(te.col.Spans()); n != 0 {
					t.Errorf("%d spans exported while off", n)
				}
			})
		})
	}
}

// TestTracingRefusals: a request the proxy refuses (no route, a policy)
// is a server span with its status and no upstream attempt.
func TestTracingRefusals(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast", true: "fasthttp"}[slow], func(t *testing.T) {
			te := newTraceEnv(t, slow, tracing.Config{SampleRatio: 1, Accept: tracing.AcceptAll})
			te.e.apply(tenant("acme", "") + consumers + tool("acme", "t", "http://"+te.up.ln.Addr().String()+"/base",
				"auth: {type: apiKey}\npolicy: {rules: [{name: ro, deny: 'request.method == \"DELETE\"'}]}"))
			tp := func(n int) string { return fmt.Sprintf("00-%032x-%s-01", n, clientSpan) }
			if r := te.e.do("DELETE", "/acme/t/x", "X-Api-Key", te.key, "traceparent", tp(1)); r.Status != 403 {
				t.Fatalf("DELETE: status %d", r.Status)
			}
			if r := te.e.do("GET", "/nowhere", "traceparent", tp(2)); r.Status != 404 {
				t.Fatalf("no route: status %d", r.Status)
			}
			if got := te.up.take(); len(got) != 0 {
				t.Fatalf("refused requests reached the upstream")
			}
			te.flush(t)
			spans := te.col.WaitSpans(t, 2)
			denied := otlptest.One(t, spansOf(spans, fmt.Sprintf("%032x", 1)), "DELETE /acme/t")
			// The credential was checked (auth), the policy denied: no limits, no attempt.
			if c := otlptest.Children(spans, denied); denied.Attrs["http.response.status_code"] != int64(403) || len(c) != 1 || c[0].Name != "auth" {
				t.Errorf("denied request span: %+v", denied)
			}
			missing := spansOf(spans, fmt.Sprintf("%032x", 2))
			if len(missing) != 1 || missing[0].Attrs["http.response.status_code"] != int64(404) || missing[0].Attrs["http.route"] != nil {
				t.Errorf("no-route span:\n%s", otlptest.Dump(missing))
			}
		})
	}
}

// TestTracingAuthLimits: on each path, a sampled request's server span
// has an auth span (how the caller authenticated, the outcome) and a
// limits span (the outcome, the limit that refused) under it, beside the
// upstream attempt; a refusal ends the tree there, with the gateway's
// error code as error.type. No credential is recorded.
func TestTracingAuthLimits(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast", true: "fasthttp"}[slow], func(t *testing.T) {
			var refuse atomic.Bool // the admission check (subscriptions, quotas) refuses
			admit := func(o *Options) {
				o.Admit = func(tenant, tool string, p *auth.Principal, now time.Time) *Rejection {
					if refuse.Load() {
						return &Rejection{Status: 429, Code: "quota_exceeded", Message: "quota of plan gold exhausted"}
					}
					return nil
				}
			}
			te := newTraceEnv(t, slow, tracing.Config{SampleRatio: 1, Accept: tracing.AcceptAll}, admit)
			up := "http://" + te.up.ln.Addr().String() + "/base"
			te.e.apply(tenant("acme", "") + tenant("globex", "") + consumers +
				tool("acme", "t", up, "auth: {type: apiKey}\nrateLimit: {rate: 1/h, burst: 2}") +
				tool("acme", "open", up, "auth: {type: none}"))
			other := te.e.addKey("globex", "bot", nil)
			n := 0
			send := func(path string, want int, headers ...string) (trace string) {
				t.Helper()
				n++
				trace = fmt.Sprintf("%032x", n)
				r := te.e.do("GET", path, append(headers, "traceparent", "00-"+trace+"-"+clientSpan+"-01")...)
				if r.Status != want {
					t.Fatalf("GET %s: status %d, want %d: %s", path, r.Status, want, r.Body)
				}
				te.up.take()
				return trace
			}
			key := []string{"X-Api-Key", te.key}
			allowed := send("/acme/t/x", 200, key...)
			refuse.Store(true)
			quota := send("/acme/t/x", 429, key...)
			refuse.Store(false)
			badKey := send("/acme/t/x", 401, "X-Api-Key", te.key[:len(te.key)-4]+"AAAA")
			jwt := send("/acme/t/x", 401, "Authorization", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig")
			none := send("/acme/t/x", 401)
			otherTenant := send("/acme/t/x", 403, "X-Api-Key", other)
			open := send("/acme/open/x", 200)
			send("/acme/t/x", 200, key...) // the burst's second call
			limited := send("/acme/t/x", 429, key...)
			te.flush(t)
			all := te.col.WaitSpans(t, 1)

			// tree checks the spans of one trace: the server span's children
			// by name, each with its attributes.
			tree := func(name, trace string, want map[string]map[string]any) {
				t.Helper()
				spans := spansOf(all, trace)
				server := otlptest.One(t, spans, "GET "+map[bool]string{true: "/acme/open", false: "/acme/t"}[name == "open"])
				if server.ParentSpanID != clientSpan || server.Kind != "server" {
					t.Errorf("%s: server span parent %s kind %s", name, server.ParentSpanID, server.Kind)
				}
				children := otlptest.Children(spans, server)
				if len(children) != len(want) || len(spans) != len(want)+1 {
					t.Fatalf("%s: %d spans, %d under the server span, want %d children:\n%s", name, len(spans), len(children), len(want), otlptest.Dump(spans))
				}
				for _, c := range children {
					attrs, ok := want[c.Name]
					if !ok {
						t.Errorf("%s: unexpected child %q:\n%s", name, c.Name, otlptest.Dump(spans))
						continue
					}
					for k, v := range attrs {
						if k == "status" {
							if c.StatusCode != v {
								t.Errorf("%s: %s span status %s, want %s", name, c.Name, c.StatusCode, v)
							}
							continue
						}
						if c.Attrs[k] != v {
							t.Errorf("%s: %s span %s = %#v, want %#v", name, c.Name, k, c.Attrs[k], v)
						}
					}
					if wantKind := map[bool]string{true: "client", false: "internal"}[c.Name == "GET"]; c.Kind != wantKind {
						t.Errorf("%s: %s span kind %s, want %s", name, c.Name, c.Kind, wantKind)
					}
				}
			}
			authOK := map[string]any{"stoa.auth.method": "api_key", "stoa.auth.outcome": "allowed", "status": "unset", "error.type": nil}
			limitsOK := map[string]any{"stoa.limits.outcome": "allowed", "stoa.limit.scope": nil, "status": "unset", "error.type": nil}
			attempt := map[string]any{"http.response.status_code": int64(200)}
			tree("allowed", allowed, map[string]map[string]any{"auth": authOK, "limits": limitsOK, "GET": attempt})
			tree("quota", quota, map[string]map[string]any{"auth": authOK, "limits": {
				"stoa.limits.outcome": "refused", "stoa.limit.scope": "quota", "error.type": "quota_exceeded", "status": "error"}})
			tree("rate limited", limited, map[string]map[string]any{"auth": authOK, "limits": {
				"stoa.limits.outcome": "rate_limited", "stoa.limit.scope": "tool", "error.type": "rate_limited", "status": "error"}})
			refused := func(method, outcome, errType string) map[string]map[string]any {
				return map[string]map[string]any{"auth": {"stoa.auth.method": method, "stoa.auth.outcome": outcome, "error.type": errType, "status": "error"}}
			}
			tree("bad key", badKey, refused("api_key", "unauthorized", "unauthorized"))
			tree("bearer token", jwt, refused("jwt", "unauthorized", "unauthorized"))
			tree("no credential", none, refused("none", "unauthorized", "unauthorized"))
			tree("other tenant", otherTenant, refused("api_key", "other_tenant", "forbidden"))
			// A public tool without limits: nothing to check, no span for it.
			tree("open", open, map[string]map[string]any{"GET": attempt})

			dump := fmt.Sprint(all)
			for _, secret := range []string{te.key, other, te.key[:len(te.key)-4], "eyJhbGciOiJub25lIn0"} {
				if strings.Contains(dump, secret) {
					t.Errorf("a span records a credential %q", secret)
				}
			}
		})
	}
}

// rawGet sends raw on a new connection and reads the answer.
func rawGet(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

var traceparentLine = regexp.MustCompile(`(?im)^traceparent: 00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$`)

// FuzzTracingPathsAgree sends the same request through a traced proxy on
// the fast path and one on fasthttp's path only, and requires the same
// answer and the same upstream request from both, trace headers included
// (a new trace id and the gateway's span ids, random, are blanked).
func FuzzTracingPathsAgree(f *testing.F) {
	for _, r := range []string{
		"GET /acme/t/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $KEY\r\n\r\n",
		"GET /acme/t/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $KEY\r\ntraceparent: 00-" + clientTrace + "-" + clientSpan + "-01\r\ntracestate: a=1,b=2\r\n\r\n",
		"GET /acme/t/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $KEY\r\nTraceparent: 00-" + clientTrace + "-" + clientSpan + "-00\r\nTracestate: a=1\r\nTracestate: b=2\r\n\r\n",
		"GET /acme/t/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $KEY\r\ntraceparent: 00-" + clientTrace + "-" + clientSpan + "-01\r\ntraceparent: 00-" + clientTrace + "-" + clientSpan + "-00\r\n\r\n",
		"GET /acme/t/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $KEY\r\ntraceparent: 01-" + clientTrace + "-" + clientSpan + "-01-xyz\r\ntracestate: =bad\r\n\r\n",
		"POST /acme/t/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $KEY\r\ntraceparent: 00-" + clientTrace + "-" + clientSpan + "-03\r\nContent-Length: 2\r\n\r\nhi",
		"GET /acme/t/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $KEY\r\ntraceparent:  00-" + strings.ToUpper(clientTrace) + "-" + clientSpan + "-01 \r\n\r\n",
	} {
		f.Add([]byte(r))
	}
	// Ratio 0: new traces are not recorded; a client's sampled ones are,
	// so the fuzzer also runs the recording code.
	cfg := tracing.Config{SampleRatio: 0, Accept: tracing.AcceptAll}
	fast, slow := newTraceEnvTB(f, false, cfg), newTraceEnvTB(f, true, cfg)
	norm := func(te *traceEnv, reqTrace string, ups []string) string {
		s := strings.ReplaceAll(strings.Join(ups, "\n"), te.up.ln.Addr().String(), "UP")
		return traceparentLine.ReplaceAllStringFunc(s, func(line string) string {
			m := traceparentLine.FindStringSubmatch(line)
			id := m[1]
			if id != reqTrace {
				id = "NEW"
			}
			return "traceparent: 00-" + id + "-SPAN-" + m[2]
		})
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		var answers, ups [2]string
		for i, te := range []*traceEnv{fast, slow} {
			r := bytes.ReplaceAll(req, []byte("$KEY"), []byte(te.key))
			a, u := equivEnv{te.e, te.up}.exchangeRaw(t, r, bytes.HasPrefix(r, []byte("HEAD ")))
			answers[i], ups[i] = a, norm(te, clientTrace, u)
		}
		if answers[0] != answers[1] {
			t.Errorf("client got (fast path):\n%s\n(fasthttp path):\n%s", answers[0], answers[1])
		}
		if ups[0] != ups[1] {
			t.Errorf("upstream received (fast path):\n%q\n(fasthttp path):\n%q", ups[0], ups[1])
		}
	})
}

// TestTracingRepeatedBlock: a keep-alive client repeating its header
// block gets a new trace context upstream for every request; the fast
// path's kept upstream field lines never carry an attempt's traceparent.
func TestTracingRepeatedBlock(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast", true: "fasthttp"}[slow], func(t *testing.T) {
			te := newTraceEnv(t, slow, tracing.Config{SampleRatio: 1})
			seen := map[string]bool{}
			for range 3 {
				r := te.e.do("GET", "/acme/t/x", "X-Api-Key", te.key)
				if r.Status != 200 {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
				got := te.up.take()
				if len(got) != 1 {
					t.Fatalf("upstream got %d requests", len(got))
				}
				tp, _, _, _, _ := upstreamTrace(t, got[0])
				if seen[tp] {
					t.Fatalf("traceparent %s sent upstream twice", tp)
				}
				seen[tp] = true
			}
		})
	}
}

// TestTracingUnsampledAllocs: with a credential and limits to check (where
// a sampled request gets auth and limits spans), a request that tracing
// does not record allocates no more on fasthttp's path than one without a
// Tracer: tracing off, on at ratio 0 (a new trace), and a client's
// unsampled trace continued. (The fast path's figures are
// BenchmarkServeInMemory's allocs/op.)
func TestTracingUnsampledAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	allocs := func(t *testing.T, ratio float64, traceparent string) float64 {
		bp := newBenchProxy(t, benchAPIKeyLimitsObjects("UP", ""))
		bp.req.Header.Set("X-Api-Key", benchKey(t, bp.p.opts.Auth))
		if traceparent != "" {
			bp.req.Header.Set("traceparent", traceparent)
		}
		if ratio >= -1 {
			bp.p.opts.Tracer = benchTracerConfig(t, ratio, tracing.Config{Accept: tracing.AcceptAll})
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&bp.req, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 50000}, nil)
		do := func() {
			bp.req.CopyTo(&ctx.Request)
			ctx.Response.Reset()
			bp.p.serve(&ctx)
			if c := ctx.Response.StatusCode(); c != 200 {
				t.Fatalf("status %d: %s", c, ctx.Response.Body())
			}
		}
		for range 100 { // pools, limiter keys
			do()
		}
		return testing.AllocsPerRun(500, do)
	}
	base := allocs(t, -2, "")
	for _, tc := range []struct {
		name        string
		ratio       float64 // < 0: off
		traceparent string
	}{
		{"off", -1, ""}, {"ratio 0", 0, ""},
		{"unsampled parent", 1, "00-" + clientTrace + "-" + clientSpan + "-00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := allocs(t, tc.ratio, tc.traceparent); n != base {
				t.Errorf("%v allocations per request, %v without a Tracer", n, base)
			}
		})
	}
}

// TestCallTracingAttempts: a Call (an MCP tools/call of a REST operation)
// made under the caller's span records, as children of that span, a
// limits span and one client span per upstream attempt — a 503 then a
// retry answered 200 — and each attempt's request carries its own span id
// and the caller's tracestate, replacing trace headers the caller set.
// Under an unsampled span nothing is recorded and the upstream still gets
// the trace, unsampled.
func TestCallTracingAttempts(t *testing.T) {
	col := otlptest.NewServer(t)
	tr := tracing.New(slog.New(slog.DiscardHandler))
	swap, err := tr.Prepare(tracing.Config{Enabled: true, Endpoint: col.Endpoint(), SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	swap()
	t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	up := newUpstream(t, "u")
	var (
		hits atomic.Int32
		mu   sync.Mutex
		tps  []string
		tss  [][]string
	)
	up.handle(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tps = append(tps, strings.Join(r.Header.Values("traceparent"), "|"))
		tss = append(tss, r.Header.Values("tracestate"))
		mu.Unlock()
		if hits.Add(1)%2 == 1 {
			w.WriteHeader(503)
			return
		}
		w.Write([]byte("ok"))
	})
	e := newEnv(t, tool("acme", "api", up.URL+"/r", "retries: {attempts: 2, on: [5xx]}\ncircuitBreaker: {consecutiveFailures: 1000}\nrateLimit: 1000/s"),
		func(o *Options) { o.Tracer = tr })
	call := func(parent tracing.Span) {
		t.Helper()
		resp, err := e.p.Call(context.Background(), &CallRequest{Tenant: "acme", Tool: "api", Method: "GET", Path: []byte("/items"),
			Header: [][2][]byte{{[]byte("traceparent"), []byte("00-11111111111111111111111111111111-2222222222222222-01")},
				{[]byte("tracestate"), []byte("forged=1")}},
			Trace: parent})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 200 {
			t.Fatalf("status %d, want the retry's 200", resp.Status)
		}
		resp.Release()
	}

	root := tr.Start(&tracing.Incoming{Traceparent: []byte("00-" + clientTrace + "-" + clientSpan + "-01"),
		Tracestate: []byte("vendor=abc"), Local: true}, "tools/call acme__api__items", tracing.KindServer)
	call(root)
	root.End()
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := col.WaitSpans(t, 4)
	server := otlptest.One(t, spans, "tools/call acme__api__items")
	kids := otlptest.Children(spans, server)
	if len(kids) != 3 {
		t.Fatalf("children of the tools/call span: %d, want limits and two attempts:\n%s", len(kids), otlptest.Dump(spans))
	}
	lim := otlptest.One(t, kids, "limits")
	if lim.Attrs[tracing.AttrLimitsOutcome] != "allowed" {
		t.Errorf("limits span %+v", lim.Attrs)
	}
	attempts := otlptest.Find(kids, "GET")
	if len(attempts) != 2 {
		t.Fatalf("%d attempt spans:\n%s", len(attempts), otlptest.Dump(spans))
	}
	first, second := attempts[0], attempts[1]
	if first.Start.After(second.Start) {
		first, second = second, first
	}
	if first.Kind != "client" || first.Attrs[tracing.AttrHTTPStatus] != int64(503) || first.StatusCode != "error" || first.Attrs[tracing.AttrErrorType] != "503" {
		t.Errorf("first attempt %+v", first)
	}
	if second.Attrs[tracing.AttrHTTPStatus] != int64(200) || second.Attrs[tracing.AttrHTTPResendCount] != int64(1) || second.StatusCode == "error" {
		t.Errorf("retry %+v", second)
	}
	if _, ok := first.Attrs[tracing.AttrHTTPResendCount]; ok {
		t.Errorf("first attempt has a resend count: %+v", first.Attrs)
	}
	// The path holds an MCP tool's arguments: spans carry the origin only.
	for _, a := range attempts {
		if u, _ := a.Attrs[tracing.AttrURLFull].(string); u != up.URL {
			t.Errorf("url.full %q, want the upstream's origin %q", u, up.URL)
		}
	}
	mu.Lock()
	if want := []string{"00-" + clientTrace + "-" + first.SpanID + "-01", "00-" + clientTrace + "-" + second.SpanID + "-01"}; fmt.Sprint(tps) != fmt.Sprint(want) {
		t.Errorf("upstream traceparents %q, want %q (each attempt's own)", tps, want)
	}
	for i, ts := range tss {
		if len(ts) != 1 || ts[0] != "vendor=abc" {
			t.Errorf("attempt %d tracestate %q, want the caller's", i, ts)
		}
	}
	tps, tss = nil, nil
	mu.Unlock()

	// Unsampled: no span; the trace goes upstream, unsampled, with a span
	// id of the gateway's and the caller's tracestate.
	n := len(col.Spans())
	un := tr.Start(&tracing.Incoming{Traceparent: []byte("00-" + clientTrace + "-" + clientSpan + "-00"), Tracestate: []byte("vendor=abc"),
		Local: true}, "tools/call acme__api__items", tracing.KindServer)
	if un.Recording() {
		t.Fatal("an unsampled caller's call is recorded")
	}
	call(un)
	un.End()
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := col.Spans(); len(got) != n {
		t.Errorf("an unsampled call exported spans:\n%s", otlptest.Dump(got[n:]))
	}
	mu.Lock()
	defer mu.Unlock()
	sc := un.Context()
	want := string(sc.AppendTraceparent(nil))
	if !strings.HasSuffix(want, "-00") || len(tps) != 2 || tps[0] != want || tps[1] != want || fmt.Sprint(tss) != "[[vendor=abc] [vendor=abc]]" {
		t.Errorf("unsampled: upstream traceparents %q tracestates %q, want %s twice with the caller's tracestate", tps, tss, want)
	}
}
