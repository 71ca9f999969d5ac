// Package tracing records OpenTelemetry traces of stoad's work — proxied
// requests, MCP tool calls, apply and rollback — and exports them over
// OTLP/HTTP with the official Go SDK.
//
// It is built for the proxy's hot path. A Tracer is created once and its
// configuration swapped on reload (Prepare); while tracing is off every
// call is a nil check and nothing is parsed or allocated. While on, the
// sampling decision is made here, on traceparent bytes, before the SDK is
// touched: a request that is not sampled gets ids for propagation but no
// SDK span, and allocates nothing. Only sampled spans go through the SDK.
//
// Spans are values (Span) passed down the call chain; there is no context
// plumbing on the hot path. ContextWithSpan exists for code that already
// carries a context.Context.
package tracing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// instrumentationName is the instrumentation scope of every span.
const instrumentationName = "github.com/stoa-gateway/stoa"

// Tracer is stoad's tracing: one per daemon, shared by the proxy, the MCP
// server and the control side. Its methods are safe for concurrent use; a
// nil *Tracer is valid and off.
type Tracer struct {
	cur  atomic.Pointer[pipeline]
	mu   sync.Mutex // serialises swaps and Stop
	log  *slog.Logger
	exp  exportStats
	wg   sync.WaitGroup // replaced pipelines still draining
	down atomic.Int32   // how many
}

// New returns a Tracer that is off until a Config with Enabled is swapped
// in. log receives export failures (rate-limited) and drain warnings.
func New(log *slog.Logger) *Tracer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tracer{log: log}
}

// Enabled reports whether tracing is on. It is one atomic load: callers
// use it to skip peeking at headers when tracing is off.
func (t *Tracer) Enabled() bool {
	return t != nil && t.cur.Load() != nil
}

// pipeline is one configuration's sampler, span queue and exporter.
type pipeline struct {
	cfg    *resolved
	always bool   // ratio ≥ 1
	bound  uint64 // TraceIDRatioBased's upper bound for 0 < ratio < 1
	q      *queue
	b      *batcher
	client *http.Client
	closed atomic.Bool // retiring: no new recording span
}

// Prepare validates c, reads its secrets and builds its exporter without
// touching what is serving, and returns the function that swaps it in
// (which cannot fail). An identical configuration swaps nothing. The
// replaced configuration keeps exporting the spans it started: it is shut
// down once they have all ended, or after its DrainTimeout.
func (t *Tracer) Prepare(c Config) (swap func(), err error) {
	if !c.Enabled {
		return func() { t.swap(nil) }, nil
	}
	r, err := c.resolve()
	if err != nil {
		return nil, err
	}
	if cur := t.cur.Load(); cur != nil && reflect.DeepEqual(cur.cfg, r) {
		return func() {}, nil
	}
	exp, client, err := newExporter(r)
	if err != nil {
		return nil, err
	}
	return func() {
		// The batching goroutine is started only here, so a revision that
		// another runtime refuses leaves nothing running.
		p := newPipeline(r, exp, client, &t.exp, t.log)
		go p.b.run()
		t.swap(p)
	}, nil
}

// newPipeline builds the pipeline of r; its batcher is not running yet.
func newPipeline(r *resolved, exp otlptrace.Client, client *http.Client, st *exportStats, log *slog.Logger) *pipeline {
	p := &pipeline{cfg: r, client: client}
	switch {
	case r.ratio >= 1:
		p.always = true
	case r.ratio > 0:
		p.bound = uint64(r.ratio * (1 << 63))
	}
	p.q = newQueue(r.queueSize, &st.dropped)
	p.b = &batcher{
		q: p.q, client: exp, stats: st, log: log, endpoint: r.endpoint,
		timeout: r.batchTimeout, export: r.exportTimeout,
		enc: newEncoder(otlpResource(r), semconv.SchemaURL), gzip: r.gzip, bodies: newBodyPool(),
		flushc: make(chan chan struct{}), stopc: make(chan struct{}), done: make(chan struct{}),
	}
	return p
}

// otlpResource is the resource of every span of r: the service, the SDK
// whose exporter sends them, and the configured attributes, sorted by key
// as the SDK's resource writes them.
func otlpResource(r *resolved) *resourcepb.Resource {
	attrs := []attribute.KeyValue{
		semconv.ServiceName(r.service),
		semconv.TelemetrySDKName("opentelemetry"),
		semconv.TelemetrySDKLanguageGo,
		semconv.TelemetrySDKVersion(sdk.Version()),
	}
	if r.version != "" {
		attrs = append(attrs, semconv.ServiceVersion(r.version))
	}
	for _, k := range sortedKeys(r.resource) {
		attrs = append(attrs, attribute.String(k, r.resource[k]))
	}
	set := attribute.NewSet(attrs...)
	res := &resourcepb.Resource{}
	for it := set.Iter(); it.Next(); {
		kv := it.Attribute()
		res.Attributes = append(res.Attributes, &commonpb.KeyValue{
			Key: string(kv.Key), Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: kv.Value.Emit()}},
		})
	}
	return res
}

// swap installs p (nil: off) and retires the pipeline it replaces.
func (t *Tracer) swap(p *pipeline) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.cur.Swap(p)
	if old == nil || old == p {
		return
	}
	t.wg.Add(1)
	t.down.Add(1)
	go func() {
		defer t.wg.Done()
		defer t.down.Add(-1)
		t.retire(context.Background(), old)
	}()
}

// drainPoll is how often a retiring pipeline checks for open spans.
const drainPoll = 10 * time.Millisecond

// retire waits for old's open spans to end (at most its drain timeout or
// until ctx ends), then flushes and shuts it down.
func (t *Tracer) retire(ctx context.Context, old *pipeline) {
	deadline := time.Now().Add(old.cfg.drainTimeout)
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	drain := func() {
		for old.q.open() > 0 && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				deadline = time.Time{}
			case <-tick.C:
			}
		}
	}
	// Spans still open may start children: close only once they are done,
	// then wait out any start that raced with the close (record).
	drain()
	old.closed.Store(true)
	drain()
	if n := old.q.open(); n > 0 {
		t.log.Warn("tracing: replaced configuration shut down with spans still open; they are not exported", "spans", n)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), old.cfg.exportTimeout+time.Second)
	defer cancel()
	if ctx.Err() != nil {
		// Stop's deadline has passed: still flush, but briefly.
		sctx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
	}
	old.b.stop(sctx)
	if err := old.b.client.Stop(sctx); err != nil {
		t.log.Warn("tracing: shut down exporter", "err", err)
	}
	old.client.CloseIdleConnections()
}

// Stop turns tracing off and flushes what was recorded, waiting for open
// spans and pending exports within ctx.
func (t *Tracer) Stop(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	old := t.cur.Swap(nil)
	t.mu.Unlock()
	if old != nil {
		t.retire(ctx, old)
	}
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("stop tracing: replaced configurations still flushing: " + ctx.Err().Error())
	}
}

// ForceFlush exports every finished span now (tests, and `stoad` before a
// planned exit).
func (t *Tracer) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if p := t.cur.Load(); p != nil {
		return p.b.flush(ctx)
	}
	return nil
}

// Status is tracing's line in `stoa status`.
type Status struct {
	Enabled     bool
	Endpoint    string
	SampleRatio float64
	Accept      string
	// Exported and Failed count spans sent to the collector, and spans
	// whose export request failed, since stoad started; Dropped counts
	// spans not queued for export because the queue was full (the
	// collector slower than the spans came) or the configuration was
	// shut down.
	Exported, Failed, Dropped uint64
	// LastError is the last export failure (empty after a success).
	LastError   string
	LastErrorAt time.Time
	// Draining counts replaced configurations still exporting.
	Draining int
}

// Status reports the current configuration and export counters.
func (t *Tracer) Status() Status {
	if t == nil {
		return Status{}
	}
	s := Status{Exported: t.exp.exported.Load(), Failed: t.exp.failed.Load(), Dropped: t.exp.dropped.Load(), Draining: int(t.down.Load())}
	if p := t.cur.Load(); p != nil {
		s.Enabled, s.Endpoint, s.SampleRatio, s.Accept = true, p.cfg.endpoint, p.cfg.ratio, p.cfg.accept
	}
	t.exp.mu.Lock()
	s.LastError, s.LastErrorAt = t.exp.lastErr, t.exp.lastErrAt
	t.exp.mu.Unlock()
	return s
}

// newExporter builds the OTLP/HTTP client of r: the official exporter's
// (otlptracehttp), which the batcher hands encoded spans. Every option is
// given explicitly, with stoad's own HTTP client: OTEL_EXPORTER_OTLP_*
// variables in stoad's environment do not change what the spec says.
func newExporter(r *resolved) (otlptrace.Client, *http.Client, error) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if r.caPEM != "" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(r.caPEM))
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client := &http.Client{Transport: exportTransport{base: tr}, Timeout: r.exportTimeout}
	comp := otlptracehttp.NoCompression
	if r.gzip {
		comp = otlptracehttp.GzipCompression
	}
	headers := make(map[string]string, len(r.headers))
	for k, v := range r.headers {
		headers[k] = v
	}
	c := otlptracehttp.NewClient(
		otlptracehttp.WithEndpointURL(r.endpoint),
		otlptracehttp.WithHeaders(headers),
		otlptracehttp.WithCompression(comp),
		otlptracehttp.WithTimeout(r.exportTimeout),
		otlptracehttp.WithHTTPClient(client),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{
			Enabled: true, InitialInterval: time.Second, MaxInterval: 5 * time.Second, MaxElapsedTime: r.exportTimeout,
		}),
	)
	if err := c.Start(context.Background()); err != nil {
		return nil, nil, errors.New("tracing: build OTLP exporter: " + err.Error())
	}
	return c, client, nil
}

// exportStats counts exports across configurations.
type exportStats struct {
	exported, failed, dropped atomic.Uint64
	mu                        sync.Mutex
	lastErr                   string
	lastErrAt                 time.Time
	lastLog                   time.Time
	failing                   bool
}

// exportLogEvery rate-limits export failure logs: a collector that is down
// would otherwise log every batch.
const exportLogEvery = time.Minute

// record counts one export request of n spans, and reports a failure
// (logged at most once a minute) or the recovery from one.
func (st *exportStats) record(n int, err error, log *slog.Logger, endpoint string) {
	if err == nil {
		st.exported.Add(uint64(n))
		st.mu.Lock()
		if st.failing {
			st.failing, st.lastErr = false, ""
			log.Info("tracing: exporting again", "endpoint", endpoint)
		}
		st.mu.Unlock()
		return
	}
	st.failed.Add(uint64(n))
	now := time.Now()
	st.mu.Lock()
	st.failing, st.lastErr, st.lastErrAt = true, err.Error(), now
	logIt := now.Sub(st.lastLog) >= exportLogEvery
	if logIt {
		st.lastLog = now
	}
	st.mu.Unlock()
	if logIt {
		log.Warn("tracing: export failed; spans dropped (is the collector up?)", "endpoint", endpoint, "spans", n, "err", err)
	}
}

// newTraceID returns 16 random bytes, never all zero. math/rand/v2's
// global source is ChaCha8 per thread: fast and lock-free.
func newTraceID() (id [16]byte) {
	for id == [16]byte{} {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() (id [8]byte) {
	for id == [8]byte{} {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}

// sampleRoot is TraceIDRatioBased's decision on a new trace id, bit for
// bit as the SDK takes it, so stoad samples the traces another SDK with
// the same ratio samples.
func (p *pipeline) sampleRoot(id *[16]byte) bool {
	if p.always {
		return true
	}
	return binary.BigEndian.Uint64(id[8:])>>1 < p.bound
}
