package tracing

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

// testConfig is an enabled Config exporting to srv.
func testConfig(srv *otlptest.Server) Config {
	return Config{
		Enabled:      true,
		Endpoint:     srv.Endpoint(),
		SampleRatio:  1,
		BatchTimeout: 50 * time.Millisecond,
		DrainTimeout: 10 * time.Second,
		ServiceName:  "stoad-test",
		Trusted:      []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}
}

// newTracer returns a Tracer running c, stopped when the test ends.
func newTracer(t testing.TB, c Config) *Tracer {
	t.Helper()
	return newTracerLog(t, c, &testWriter{t: t})
}

// newTracerLog is newTracer logging to w.
func newTracerLog(t testing.TB, c Config, w io.Writer) *Tracer {
	t.Helper()
	tr := New(slog.New(slog.NewTextHandler(w, nil)))
	apply(t, tr, c)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = tr.Stop(ctx)
	})
	return tr
}

func apply(t testing.TB, tr *Tracer, c Config) {
	t.Helper()
	swap, err := tr.Prepare(c)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	swap()
}

func flush(t testing.TB, tr *Tracer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct {
	t  testing.TB
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func (w *testWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// upstream is a loopback fasthttp server that records the trace headers
// of the requests it gets.
type upstream struct {
	addr string
	mu   sync.Mutex
	got  []http2Trace
}

type http2Trace struct{ traceparent, tracestate string }

func newUpstream(t testing.TB, status int) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: ln.Addr().String()}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		u.mu.Lock()
		u.got = append(u.got, http2Trace{
			traceparent: string(ctx.Request.Header.Peek(HeaderTraceparent)),
			tracestate:  string(ctx.Request.Header.Peek(HeaderTracestate)),
		})
		u.mu.Unlock()
		ctx.SetStatusCode(status)
		ctx.SetBodyString(`{"ok":true}`)
	}}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	return u
}

func (u *upstream) received() []http2Trace {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http2Trace(nil), u.got...)
}

// closedAddr is a loopback address nothing listens on: a connect to it
// is refused at once.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
