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
	"testing"
	"time"

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

func newTraceEnv(t *testing.T, slow bool, cfg tracing.Config) *traceEnv {
	t.Helper()
	return newTraceEnvTB(t, slow, cfg)
}

func newTraceEnvTB(t testing.TB, slow bool, cfg tracing.Config) *traceEnv {
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
		func(o *Options) { o.Tracer = tr })
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
			children := otlptest.Children(spans, server)
			if len(children) != 1 {
				t.Fatalf("%d children of the server span, want the upstream attempt:\n%s", len(children), otlptest.Dump(spans))
			}
			client := children[0]
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
			for _, secret := range []string{"query-secret", "api_key", te.key} {
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
				if server.ParentSpanID != "" || len(otlptest.Children(spans, server)) != 1 || otlptest.Children(spans, server)[0].SpanID != span {
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
				spans := te.col.WaitSpans(t, 2)
				if len(spans) != 2 || len(spansOf(spans, clientTrace)) != 2 {
					t.Errorf("want only the sampled parent's two spans:\n%s", otlptest.Dump(spans))
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
			if denied.Attrs["http.response.status_code"] != int64(403) || len(otlptest.Children(spans, denied)) != 0 {
				t.Errorf("denied request span: %+v", denied)
			}
			missing := spansOf(spans, fmt.Sprintf("%032x", 2))
			if len(missing) != 1 || missing[0].Attrs["http.response.status_code"] != int64(404) || missing[0].Attrs["http.route"] != nil {
				t.Errorf("no-route span:\n%s", otlptest.Dump(missing))
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
