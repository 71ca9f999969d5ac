package tracing

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

var (
	sampledTP   = []byte("00-" + clientTrace + "-" + clientSpan + "-01")
	unsampledTP = []byte("00-" + clientTrace + "-" + clientSpan + "-00")
)

// hotPath is what the proxy does per request with tracing: start, two
// children, one attempt whose traceparent is formatted, status, end.
func hotPath(tr *Tracer, in *Incoming, buf []byte) []byte {
	var sp Span
	if tr.Enabled() {
		sp = tr.Start(in, "HTTP", KindServer)
	}
	if sp.Recording() {
		sp.SetHTTPServer(&HTTPServer{Method: []byte("GET"), Path: []byte("/acme/x"), Route: "/acme"})
	}
	a := sp.StartChild("auth", KindInternal)
	a.End()
	l := sp.StartChild("limits", KindInternal)
	l.End()
	att := sp.StartChild("HTTP", KindClient)
	if att.Recording() {
		att.SetHTTPClient(&HTTPClient{Method: []byte("GET"), Scheme: "http", Host: "127.0.0.1:9", Path: []byte("/x")})
	}
	buf = att.AppendTraceparent(buf[:0])
	att.SetHTTPStatus(200)
	att.End()
	sp.SetHTTPStatus(200)
	sp.End()
	return buf
}

func TestOff(t *testing.T) {
	var buf [TraceparentLen]byte
	in := &Incoming{Traceparent: sampledTP, Peer: netip.MustParseAddr("10.0.0.1")}
	for name, tr := range map[string]*Tracer{"nil": nil, "never enabled": New(nil), "disabled": func() *Tracer {
		tr := New(nil)
		apply(t, tr, Config{})
		return tr
	}()} {
		t.Run(name, func(t *testing.T) {
			if tr.Enabled() {
				t.Fatal("Enabled")
			}
			sp := tr.Start(in, "x", KindServer)
			if sp.IsValid() || sp.Recording() || sp.Tracestate() != nil {
				t.Fatalf("off Start returned %+v", sp)
			}
			if out := hotPath(tr, in, buf[:0]); len(out) != 0 {
				t.Fatalf("off span propagates %q", out)
			}
			if n := testing.AllocsPerRun(200, func() { hotPath(tr, in, buf[:0]) }); n != 0 {
				t.Errorf("off: %v allocations per request", n)
			}
			if s := tr.Status(); s.Enabled {
				t.Errorf("status %+v", s)
			}
			if err := tr.Stop(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestUnsampledAllocatesNothing: on, but not sampled, the whole request
// path allocates nothing and still propagates a trace downstream.
func TestUnsampledAllocatesNothing(t *testing.T) {
	srv := otlptest.NewServer(t)
	cfg := testConfig(srv)
	cfg.SampleRatio = 0
	tr := newTracer(t, cfg)
	var buf [TraceparentLen]byte
	cases := map[string]*Incoming{
		"no traceparent":             {Peer: netip.MustParseAddr("192.0.2.1")},
		"trusted, parent unsampled":  {Traceparent: unsampledTP, Tracestate: []byte("a=b"), Peer: netip.MustParseAddr("10.9.9.9")},
		"untrusted, parent sampled":  {Traceparent: sampledTP, Peer: netip.MustParseAddr("192.0.2.1")},
		"malformed traceparent":      {Traceparent: []byte("00-zz"), Peer: netip.MustParseAddr("10.9.9.9")},
		"trusted local, unsampled":   {Traceparent: unsampledTP, Local: true},
		"untrusted, bad tracestate":  {Traceparent: unsampledTP, Tracestate: []byte("A=1"), Peer: netip.MustParseAddr("192.0.2.1")},
		"ipv4-mapped trusted parent": {Traceparent: unsampledTP, Peer: netip.MustParseAddr("::ffff:10.1.1.1")},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			out := hotPath(tr, in, buf[:0])
			sc, ok := ParseTraceparent(out)
			if !ok || sc.Sampled() {
				t.Fatalf("upstream traceparent %q: parsed=%v sampled=%v", out, ok, sc.Sampled())
			}
			continued := sc.TraceID == [16]byte(mustHex(clientTrace))
			wantContinued := strings.HasPrefix(name, "trusted") || strings.HasPrefix(name, "ipv4-mapped")
			if continued != wantContinued {
				t.Errorf("continued = %v, want %v (%q)", continued, wantContinued, out)
			}
			if sc.SpanID == [8]byte(mustHex(clientSpan)) {
				t.Error("the caller's span id was passed on as stoad's")
			}
			if n := testing.AllocsPerRun(200, func() { hotPath(tr, in, buf[:0]) }); n != 0 {
				t.Errorf("%v allocations per unsampled request", n)
			}
		})
	}
	flush(t, tr)
	if got := srv.Spans(); len(got) != 0 {
		t.Errorf("unsampled requests exported %d spans", len(got))
	}
}

func mustHex(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		b[i], _ = hexByte(s[2*i], s[2*i+1])
	}
	return b
}

func TestAcceptPolicy(t *testing.T) {
	trusted := netip.MustParseAddr("10.0.0.5")
	untrusted := netip.MustParseAddr("203.0.113.5")
	tests := []struct {
		accept    string
		peer      netip.Addr
		local     bool
		continued bool
	}{
		{"", trusted, false, true},
		{"", untrusted, false, false},
		{"", netip.Addr{}, false, false},
		{"", netip.Addr{}, true, true},
		{AcceptTrusted, untrusted, false, false},
		{AcceptAll, untrusted, false, true},
		{AcceptAll, netip.Addr{}, false, true},
		{AcceptNone, trusted, false, false},
		{AcceptNone, netip.Addr{}, true, false},
	}
	srv := otlptest.NewServer(t)
	for _, tt := range tests {
		cfg := testConfig(srv)
		cfg.Accept, cfg.SampleRatio = tt.accept, 0
		tr := newTracer(t, cfg)
		sp := tr.Start(&Incoming{Traceparent: sampledTP, Tracestate: []byte("k=v"), Peer: tt.peer, Local: tt.local}, "x", KindServer)
		continued := sp.Context().TraceID == [16]byte(mustHex(clientTrace))
		// A continued sampled parent is recorded even at ratio 0.
		if continued != tt.continued || sp.Recording() != tt.continued {
			t.Errorf("accept=%q peer=%v local=%v: continued=%v recording=%v, want %v", tt.accept, tt.peer, tt.local, continued, sp.Recording(), tt.continued)
		}
		if (sp.Tracestate() != nil) != tt.continued {
			t.Errorf("accept=%q peer=%v: tracestate %q kept=%v", tt.accept, tt.peer, sp.Tracestate(), !tt.continued)
		}
		sp.End()
	}
}

// TestSamplerMatchesSDK: new traces are sampled exactly as the SDK's
// ParentBased(TraceIDRatioBased(r)) samples them.
func TestSamplerMatchesSDK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ratio := range []float64{0, 0.001, 0.1, 0.5, 0.9, 1} {
		p := newPipeline(&resolved{ratio: ratio, drainTimeout: time.Second, exportTimeout: time.Second, queueSize: 1}, nil, nil, &exportStats{}, nil)
		sdk := sdktrace.TraceIDRatioBased(ratio)
		hits := 0
		for i := 0; i < 20000; i++ {
			var id [16]byte
			binary.BigEndian.PutUint64(id[:8], rng.Uint64())
			binary.BigEndian.PutUint64(id[8:], rng.Uint64())
			mine := p.sampleRoot(&id)
			theirs := sdk.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: trace.TraceID(id)}).Decision == sdktrace.RecordAndSample
			if mine != theirs {
				t.Fatalf("ratio %v, trace %x: sampled=%v, SDK says %v", ratio, id, mine, theirs)
			}
			if mine {
				hits++
			}
		}
		t.Logf("ratio %v: %d of 20000 sampled", ratio, hits)
	}
}

// TestReloadKeepsInflightSpans: a span started before a reload is
// exported by the configuration that started it, after the swap; spans
// started after go to the new one; the old one is then shut down.
func TestReloadKeepsInflightSpans(t *testing.T) {
	a, b := otlptest.NewServer(t), otlptest.NewServer(t)
	tr := newTracer(t, testConfig(a))
	old := tr.cur.Load()

	inflight := tr.Start(nil, "before reload", KindServer)
	child := inflight.StartChild("child", KindInternal)
	apply(t, tr, testConfig(b))
	if tr.cur.Load() == old {
		t.Fatal("new configuration not swapped in")
	}
	after := tr.Start(nil, "after reload", KindServer)
	after.End()
	child.End()
	inflight.End()

	flush(t, tr)
	gotB := b.WaitSpans(t, 1)
	gotA := a.WaitSpans(t, 2)
	otlptest.One(t, gotB, "after reload")
	if len(otlptest.Find(gotB, "before reload")) != 0 {
		t.Error("in-flight span exported by the new configuration")
	}
	root := otlptest.One(t, gotA, "before reload")
	if c := otlptest.One(t, gotA, "child"); c.ParentSpanID != root.SpanID {
		t.Errorf("child parent %s, want %s", c.ParentSpanID, root.SpanID)
	}
	waitDrained(t, tr)
}

func waitDrained(t *testing.T, tr *Tracer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for tr.Status().Draining > 0 {
		if time.Now().After(deadline) {
			t.Fatal("replaced configuration never shut down")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReloadIdenticalIsNoop(t *testing.T) {
	srv := otlptest.NewServer(t)
	tr := newTracer(t, testConfig(srv))
	p := tr.cur.Load()
	apply(t, tr, testConfig(srv))
	if tr.cur.Load() != p || tr.Status().Draining != 0 {
		t.Fatal("identical configuration rebuilt the pipeline")
	}
	c := testConfig(srv)
	c.SampleRatio = 0.5
	apply(t, tr, c)
	if tr.cur.Load() == p {
		t.Fatal("changed ratio not applied")
	}
	if s := tr.Status(); s.SampleRatio != 0.5 || !s.Enabled || s.Endpoint != srv.Endpoint() || s.Accept != AcceptTrusted {
		t.Errorf("status %+v", s)
	}
	apply(t, tr, Config{})
	if tr.Enabled() {
		t.Fatal("disabled configuration left tracing on")
	}
	waitDrained(t, tr)
}

// TestReloadDrainTimeout: a span never ended does not hold the old
// configuration open past its drain timeout; ending it later is harmless.
func TestReloadDrainTimeout(t *testing.T) {
	a, b := otlptest.NewServer(t), otlptest.NewServer(t)
	c := testConfig(a)
	c.DrainTimeout = 20 * time.Millisecond
	tr := newTracer(t, c)
	stuck := tr.Start(nil, "stuck", KindServer)
	done := tr.Start(nil, "done", KindServer)
	done.End()
	apply(t, tr, testConfig(b))
	waitDrained(t, tr)
	a.WaitSpans(t, 1) // the ended span was flushed at shutdown
	stuck.End()
	stuck.End()
	if got := otlptest.Find(a.Spans(), "stuck"); len(got) != 0 {
		t.Errorf("span ended after shutdown was exported: %v", got)
	}
}

func TestStopFlushes(t *testing.T) {
	srv := otlptest.NewServer(t)
	c := testConfig(srv)
	c.BatchTimeout = time.Hour // only Stop sends it
	tr := New(nil)
	apply(t, tr, c)
	sp := tr.Start(nil, "last", KindServer)
	sp.End()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := srv.Spans(); len(got) != 1 || got[0].Name != "last" {
		t.Fatalf("after Stop the receiver has %v", got)
	}
	if tr.Enabled() {
		t.Error("enabled after Stop")
	}
}

func TestSecretHeaders(t *testing.T) {
	srv := otlptest.NewServer(t)
	t.Setenv("STOA_TEST_OTLP_TOKEN", "Bearer s3cret-token")
	file := filepath.Join(t.TempDir(), "tenant")
	if err := os.WriteFile(file, []byte("tenant-7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testConfig(srv)
	c.Headers = map[string]string{"X-Scope": "stoa"}
	c.SecretHeaders = map[string]spec.SecretRef{"Authorization": {Env: "STOA_TEST_OTLP_TOKEN"}, "X-Tenant": {File: file}}
	tr := newTracer(t, c)
	sp := tr.Start(nil, "x", KindServer)
	sp.End()
	flush(t, tr)
	srv.WaitSpans(t, 1)
	h := srv.Requests()[0].Header
	if h.Get("Authorization") != "Bearer s3cret-token" || h.Get("X-Tenant") != "tenant-7" || h.Get("X-Scope") != "stoa" {
		t.Errorf("export headers %v", h)
	}

	// A reload re-reads the secret: rotation needs no restart.
	t.Setenv("STOA_TEST_OTLP_TOKEN", "Bearer rotated")
	apply(t, tr, c)
	sp = tr.Start(nil, "y", KindServer)
	sp.End()
	flush(t, tr)
	srv.WaitSpans(t, 2)
	reqs := srv.Requests()
	if got := reqs[len(reqs)-1].Header.Get("Authorization"); got != "Bearer rotated" {
		t.Errorf("after rotation Authorization = %q", got)
	}

	c.SecretHeaders["Authorization"] = spec.SecretRef{Env: "STOA_TEST_OTLP_UNSET"}
	_, err := tr.Prepare(c)
	if err == nil || !strings.Contains(err.Error(), "STOA_TEST_OTLP_UNSET") || !strings.Contains(err.Error(), "tracing.headers.Authorization") {
		t.Fatalf("missing secret: err = %v", err)
	}
	if strings.Contains(err.Error(), "rotated") {
		t.Fatalf("error shows a secret: %v", err)
	}
	if !tr.Enabled() {
		t.Fatal("failed Prepare changed what is serving")
	}
}

func TestProblems(t *testing.T) {
	base := func() Config {
		return Config{Enabled: true, Endpoint: "http://127.0.0.1:4318/v1/traces", SampleRatio: 1}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		field  string
	}{
		{"no endpoint", func(c *Config) { c.Endpoint = "" }, "endpoint"},
		{"bad scheme", func(c *Config) { c.Endpoint = "grpc://collector:4317" }, "endpoint"},
		{"no host", func(c *Config) { c.Endpoint = "http:///v1/traces" }, "endpoint"},
		{"credentials in URL", func(c *Config) { c.Endpoint = "https://user:pw@collector/v1/traces" }, "endpoint"},
		{"fragment", func(c *Config) { c.Endpoint = "https://collector/v1/traces#x" }, "endpoint"},
		{"not a URL", func(c *Config) { c.Endpoint = "http://[::1" }, "endpoint"},
		{"ratio above 1", func(c *Config) { c.SampleRatio = 1.5 }, "sampleRatio"},
		{"ratio negative", func(c *Config) { c.SampleRatio = -0.1 }, "sampleRatio"},
		{"accept", func(c *Config) { c.Accept = "trusted-only" }, "accept"},
		{"compression", func(c *Config) { c.Compression = "zstd" }, "compression"},
		{"header name", func(c *Config) { c.Headers = map[string]string{"Bad Header": "x"} }, "headers.Bad Header"},
		{"header value", func(c *Config) { c.Headers = map[string]string{"X-A": "a\r\nInjected: 1"} }, "headers.X-A"},
		{"reserved header", func(c *Config) { c.Headers = map[string]string{"Content-Type": "text/plain"} }, "headers.Content-Type"},
		{"header twice", func(c *Config) {
			c.Headers = map[string]string{"Authorization": "x"}
			c.SecretHeaders = map[string]spec.SecretRef{"Authorization": {Env: "X"}}
		}, "headers.Authorization"},
		{"secret ref empty", func(c *Config) { c.SecretHeaders = map[string]spec.SecretRef{"Authorization": {}} }, "headers.Authorization"},
		{"secret ref both", func(c *Config) {
			c.SecretHeaders = map[string]spec.SecretRef{"Authorization": {Env: "A", File: "/b"}}
		}, "headers.Authorization"},
		{"negative timeout", func(c *Config) { c.ExportTimeout = -time.Second }, "exportTimeout"},
		{"negative queue", func(c *Config) { c.QueueSize = -1 }, "queueSize"},
		{"service.name as attribute", func(c *Config) { c.ResourceAttributes = map[string]string{"service.name": "x"} }, "resourceAttributes.service.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			ps := c.Problems()
			if len(ps) != 1 || ps[0].Field != tt.field {
				t.Fatalf("problems %v, want one on %s", ps, tt.field)
			}
			if _, err := New(nil).Prepare(c); err == nil || !strings.HasPrefix(err.Error(), "tracing."+tt.field+": ") {
				t.Errorf("Prepare error %v", err)
			}
			c.Enabled = false
			if ps := c.Problems(); len(ps) != 0 {
				t.Errorf("disabled config has problems %v", ps)
			}
		})
	}
	c := base()
	c.Endpoint = "https://collector.example"
	r, err := c.resolve()
	if err != nil || r.endpoint != "https://collector.example/v1/traces" || r.accept != AcceptTrusted || r.service != "stoad" || r.gzip {
		t.Errorf("defaults: %+v %v", r, err)
	}
	c.CAFile = filepath.Join(t.TempDir(), "none.pem")
	if _, err := c.resolve(); err == nil || !strings.Contains(err.Error(), "tracing.caFile") {
		t.Errorf("missing CA file: %v", err)
	}
}

// TestExportFailureReported: a refused export is counted and reported in
// Status and logged once, never with header values; a success clears it.
func TestExportFailureReported(t *testing.T) {
	srv := otlptest.NewServer(t)
	c := testConfig(srv)
	c.Headers = map[string]string{"Authorization": "Bearer do-not-print"}
	w := &testWriter{t: t}
	tr := newTracerLog(t, c, w)
	srv.FailNext(400, 400)
	for i := 0; i < 2; i++ {
		sp := tr.Start(nil, "x", KindServer)
		sp.End()
		flush(t, tr)
	}
	s := tr.Status()
	if s.Failed != 2 || s.LastError == "" || s.LastErrorAt.IsZero() {
		t.Fatalf("status after failures %+v", s)
	}
	if strings.Count(w.String(), "export failed") != 1 {
		t.Errorf("want one failure log line, got:\n%s", w.String())
	}
	if strings.Contains(w.String()+s.LastError, "do-not-print") {
		t.Error("header value in logs or status")
	}
	sp := tr.Start(nil, "ok", KindServer)
	sp.End()
	flush(t, tr)
	if s := tr.Status(); s.LastError != "" || s.Exported < 1 {
		t.Errorf("status after recovery %+v", s)
	}
}

// TestConcurrentReload: requests on several goroutines while the
// configuration flips between two collectors; every span ended before
// Stop reaches one of them, whole (with its child), none twice.
func TestConcurrentReload(t *testing.T) {
	a, b := otlptest.NewServer(t), otlptest.NewServer(t)
	cfgs := [2]Config{testConfig(a), testConfig(b)}
	for i := range cfgs {
		cfgs[i].QueueSize = 1 << 14
	}
	tr := New(nil)
	apply(t, tr, cfgs[0])
	const workers, perWorker = 4, 150
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf [TraceparentLen]byte
			for i := 0; i < perWorker; i++ {
				hotPath(tr, &Incoming{Peer: netip.MustParseAddr("10.0.0.1"), Traceparent: sampledTP}, buf[:0])
			}
		}()
	}
	for i := 1; i <= 6; i++ {
		apply(t, tr, cfgs[i%2])
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	spans := append(a.Spans(), b.Spans()...)
	if want := workers * perWorker * 4; len(spans) != want {
		t.Fatalf("%d spans exported, want %d", len(spans), want)
	}
	seen := map[string]bool{}
	for _, s := range spans {
		if seen[s.SpanID] {
			t.Fatalf("span %s exported twice", s.SpanID)
		}
		seen[s.SpanID] = true
	}
	for _, s := range spans {
		if s.Kind != "server" && !seen[s.ParentSpanID] {
			t.Fatalf("child %s lost its parent %s", s.Name, s.ParentSpanID)
		}
	}
}

func TestContextWithSpan(t *testing.T) {
	srv := otlptest.NewServer(t)
	tr := newTracer(t, testConfig(srv))
	sp := tr.Start(nil, "x", KindServer)
	defer sp.End()
	ctx := ContextWithSpan(context.Background(), sp)
	got := SpanFromContext(ctx)
	if got.Context() != sp.Context() || !got.Recording() {
		t.Errorf("span from context %+v", got)
	}
	if ctx := ContextWithSpan(context.Background(), Span{}); ctx != context.Background() {
		t.Error("zero span stored in context")
	}
	if empty := SpanFromContext(context.Background()); empty.IsValid() {
		t.Error("span from empty context")
	}
}
