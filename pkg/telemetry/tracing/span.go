package tracing

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Kind is a span's kind.
type Kind uint8

// Span kinds used by stoad.
const (
	KindInternal Kind = iota // work inside stoad: auth, limits, apply
	KindServer               // a request stoad answers: proxied request, MCP call
	KindClient               // a request stoad sends: upstream attempt, federated MCP call
)

// kindOpts are the start options of a child span of each kind, built
// once: an option is an interface value, allocated each time it is made.
var kindOpts = [...][]trace.SpanStartOption{
	KindInternal: {trace.WithSpanKind(trace.SpanKindInternal)},
	KindServer:   {trace.WithSpanKind(trace.SpanKindServer)},
	KindClient:   {trace.WithSpanKind(trace.SpanKindClient)},
}

// Incoming is what a request says about its caller's trace.
type Incoming struct {
	// Traceparent and Tracestate are the header values (or an MCP
	// request's params._meta members); empty when absent. They are read
	// during Start; Span.Tracestate returns a sub-slice of Tracestate.
	Traceparent, Tracestate []byte
	// Peer is the address that connected (not an X-Forwarded-For value):
	// under the "trusted" policy it decides whether the trace continues.
	Peer netip.Addr
	// Local marks a caller on stoad's own unix socket or stdio, trusted
	// like a trusted proxy.
	Local bool
	// Link is a traceparent recorded as a link, never continued: the
	// HTTP request's traceparent when an MCP message carries its own in
	// params._meta (the MCP conventions parent the span on the message
	// and link the transport's context).
	Link []byte
	// Start is when the work began (zero: now).
	Start time.Time
}

// Span is one span, or the ids of an unsampled one. The zero Span (tracing
// off) is valid: every method is a no-op, and it propagates nothing.
//
// A Span is a small value passed down the call chain and copied freely;
// copies share one recording, which ends once.
type Span struct {
	sc    SpanContext
	state []byte     // accepted incoming tracestate, propagated as is
	rec   *recording // nil unless sampled
}

// recording is a sampled span's SDK side. Name, attributes and status are
// kept here and handed to the SDK span once, at End: one lock and one
// exactly-sized attribute slice there instead of a lock and a slice growth
// per attribute, which was the largest cost of a sampled request.
type recording struct {
	span trace.Span
	ctx  context.Context // carries span: parent of children
	p    *pipeline
	kind Kind

	mu        sync.Mutex
	ended     bool
	errType   bool // error.type set by SetError: a status code does not replace it
	name      string
	attrs     []attribute.KeyValue
	status    codes.Code
	statusMsg string
}

// attrHint is the attribute capacity a span of each kind starts with:
// what the proxy sets on it.
var attrHint = [...]int{KindInternal: 4, KindServer: 20, KindClient: 10}

func (r *recording) add(kv ...attribute.KeyValue) {
	r.mu.Lock()
	if !r.ended {
		r.grow()
		r.attrs = append(r.attrs, kv...)
	}
	r.mu.Unlock()
}

// grow gives attrs its starting capacity on first use: spans that get no
// attribute (auth, limits) allocate none.
func (r *recording) grow() {
	if r.attrs == nil {
		r.attrs = make([]attribute.KeyValue, 0, attrHint[r.kind])
	}
}

func (r *recording) fail(errType, message string, kv ...attribute.KeyValue) {
	r.mu.Lock()
	if !r.ended {
		r.errType = true
		r.grow()
		r.attrs = append(r.attrs, attribute.String(AttrErrorType, errType))
		r.attrs = append(r.attrs, kv...)
		r.status, r.statusMsg = codes.Error, message
	}
	r.mu.Unlock()
}

func (r *recording) rename(name string) {
	r.mu.Lock()
	if !r.ended {
		r.name = name
	}
	r.mu.Unlock()
}

// Start begins a span: continuing the caller's trace when in carries a
// valid traceparent that the accept policy takes, otherwise a new trace
// (linked to an untrusted caller's, when sampled). in may be nil (a new
// trace, e.g. an apply from a file watch). Unsampled, it allocates
// nothing; off (nil Tracer or disabled), it is a nil check.
func (t *Tracer) Start(in *Incoming, name string, kind Kind) Span {
	if t == nil {
		return Span{}
	}
	for {
		p := t.cur.Load()
		if p == nil {
			return Span{}
		}
		// p refuses only when a reload retired it between the Load and the
		// span's start: the new configuration takes the span.
		if s, ok := p.start(in, name, kind); ok {
			return s
		}
	}
}

func (p *pipeline) start(in *Incoming, name string, kind Kind) (Span, bool) {
	var (
		s              Span
		parent, linked SpanContext
		continued      bool
		sampled        bool
	)
	if in != nil && len(in.Traceparent) > 0 {
		if sc, ok := ParseTraceparent(in.Traceparent); ok {
			if p.cfg.trusts(in.Peer, in.Local) {
				parent, continued = sc, true
				if ValidTracestate(in.Tracestate) {
					s.state = in.Tracestate
				}
			} else {
				linked = sc
			}
		}
	}
	if continued {
		// The random flag describes the trace id, so it travels with it.
		s.sc.TraceID, s.sc.Flags = parent.TraceID, parent.Flags&FlagRandom
		sampled = parent.Sampled()
	} else {
		s.sc.TraceID = newTraceID()
		sampled = p.sampleRoot(&s.sc.TraceID)
	}
	if !sampled {
		// Downstream still gets a trace to continue, not sampled, with a
		// span id of its own as the SDK gives a non-recording span.
		s.sc.SpanID = newSpanID()
		return s, true
	}
	ok := p.startRecording(&s, in, name, kind, parent, continued, linked)
	return s, ok
}

// startRecording starts the SDK span of a sampled root span; false when p
// is being shut down.
func (p *pipeline) startRecording(s *Span, in *Incoming, name string, kind Kind, parent SpanContext, continued bool, linked SpanContext) bool {
	ctx := context.Background()
	if continued {
		cfg := trace.SpanContextConfig{TraceID: parent.TraceID, SpanID: parent.SpanID, TraceFlags: trace.TraceFlags(parent.Flags), Remote: true}
		if s.state != nil {
			cfg.TraceState, _ = trace.ParseTraceState(string(s.state))
		}
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(cfg))
	} else {
		ctx = context.WithValue(ctx, presetTraceID{}, s.sc.TraceID)
	}
	opts := make([]trace.SpanStartOption, 0, 3)
	opts = append(opts, kindOpts[kind][0])
	if in != nil && !in.Start.IsZero() {
		opts = append(opts, trace.WithTimestamp(in.Start))
	}
	// OTel's HTTP conventions: an untrusted caller's context becomes a
	// link, so its trace can still be found from this one.
	links := make([]trace.Link, 0, 2)
	if linked.IsValid() {
		links = append(links, remoteLink(linked))
	}
	if in != nil && len(in.Link) > 0 {
		if sc, ok := ParseTraceparent(in.Link); ok && sc != parent && sc != linked {
			links = append(links, remoteLink(sc))
		}
	}
	if len(links) > 0 {
		opts = append(opts, trace.WithLinks(links...))
	}
	return p.record(s, ctx, name, kind, opts)
}

func remoteLink(sc SpanContext) trace.Link {
	return trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: sc.TraceID, SpanID: sc.SpanID, TraceFlags: trace.TraceFlags(sc.Flags), Remote: true,
	})}
}

// record starts an SDK span for s. It counts the span open first and then
// checks that p is not closed; retire closes p and then waits for the count
// to drop to zero, so a span is either refused here or waited for there,
// never started on a provider already shut down.
func (p *pipeline) record(s *Span, parent context.Context, name string, kind Kind, opts []trace.SpanStartOption) bool {
	p.inflight.Add(1)
	if p.closed.Load() {
		p.inflight.Add(-1)
		return false
	}
	ctx, span := p.tracer.Start(parent, name, opts...)
	sc := span.SpanContext()
	s.sc.TraceID, s.sc.SpanID, s.sc.Flags = sc.TraceID(), sc.SpanID(), byte(sc.TraceFlags())&knownFlags
	s.rec = &recording{span: span, ctx: ctx, p: p, kind: kind}
	return true
}

// StartChild begins a span under s: auth and limits (KindInternal), an
// upstream attempt or a federated MCP call (KindClient). Under an
// unsampled span it returns a copy of s's ids: nothing is recorded, and an
// upstream request carries s's span id.
func (s *Span) StartChild(name string, kind Kind) Span {
	if s.rec == nil {
		return *s
	}
	return s.startChild(name, kind)
}

// StartChildAt is StartChild for work that began at start, before s's
// sampling decision was known (the fast path checks a credential before
// it starts the request's span).
func (s *Span) StartChildAt(name string, kind Kind, start time.Time) Span {
	if s.rec == nil {
		return *s
	}
	c := Span{sc: s.sc, state: s.state}
	opts := []trace.SpanStartOption{kindOpts[kind][0], trace.WithTimestamp(start)}
	if !s.rec.p.record(&c, s.rec.ctx, name, kind, opts) {
		return Span{sc: s.sc, state: s.state}
	}
	return c
}

func (s *Span) startChild(name string, kind Kind) Span {
	c := Span{sc: s.sc, state: s.state}
	if !s.rec.p.record(&c, s.rec.ctx, name, kind, kindOpts[kind]) {
		// The parent outlived its configuration's drain timeout.
		return Span{sc: s.sc, state: s.state}
	}
	return c
}

// End ends s now. Ending twice, or ending a copy, is a no-op.
func (s *Span) End() {
	if s.rec != nil {
		s.rec.end(time.Time{})
	}
}

// EndAt ends s at t.
func (s *Span) EndAt(t time.Time) {
	if s.rec != nil {
		s.rec.end(t)
	}
}

func (r *recording) end(t time.Time) {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	r.ended = true
	r.mu.Unlock()
	if r.name != "" {
		r.span.SetName(r.name)
	}
	if len(r.attrs) > 0 {
		r.span.SetAttributes(r.attrs...)
	}
	if r.status != codes.Unset {
		r.span.SetStatus(r.status, r.statusMsg)
	}
	if t.IsZero() {
		r.span.End()
	} else {
		r.span.End(trace.WithTimestamp(t))
	}
	r.p.inflight.Add(-1)
}

// Recording reports whether s is sampled and records attributes. Guard
// work done only for a span (formatting, building an attribute struct)
// with it.
func (s *Span) Recording() bool { return s.rec != nil }

// IsValid reports whether s has ids to propagate: false only while
// tracing is off.
func (s *Span) IsValid() bool { return s.sc.IsValid() }

// Context returns s's ids.
func (s *Span) Context() SpanContext { return s.sc }

// AppendTraceparent appends the traceparent that a request sent on s's
// behalf carries (s's span id, so the receiver's span is s's child). It
// returns dst unchanged when s is not valid (tracing off).
func (s *Span) AppendTraceparent(dst []byte) []byte {
	if !s.sc.IsValid() {
		return dst
	}
	return s.sc.AppendTraceparent(dst)
}

// Tracestate is the caller's tracestate when its trace was continued and
// the value is valid, to be sent on unchanged; nil otherwise (then an
// outgoing request must carry no tracestate). It aliases
// Incoming.Tracestate.
func (s *Span) Tracestate() []byte { return s.state }

// SetName renames s (e.g. once the route is known).
func (s *Span) SetName(name string) {
	if s.rec != nil {
		s.rec.rename(name)
	}
}

// SetString sets a string attribute.
func (s *Span) SetString(key, value string) {
	if s.rec != nil {
		s.rec.add(attribute.String(key, value))
	}
}

// SetBytes sets a string attribute from bytes, copied only when recording.
func (s *Span) SetBytes(key string, value []byte) {
	if s.rec != nil {
		s.rec.add(attribute.String(key, string(value)))
	}
}

// SetInt sets an integer attribute.
func (s *Span) SetInt(key string, value int64) {
	if s.rec != nil {
		s.rec.add(attribute.Int64(key, value))
	}
}

// SetBool sets a boolean attribute.
func (s *Span) SetBool(key string, value bool) {
	if s.rec != nil {
		s.rec.add(attribute.Bool(key, value))
	}
}

// SetError marks s failed: error.type (a low-cardinality class such as
// "timeout" or the gateway's error code) and status Error with message.
// A later SetHTTPStatus keeps this error.type.
func (s *Span) SetError(errType, message string) {
	if s.rec != nil {
		s.rec.fail(errType, message)
	}
}

// ContextWithSpan returns ctx carrying s, for code that passes a context
// rather than a Span (it allocates: not for the proxy's hot path).
func ContextWithSpan(ctx context.Context, s Span) context.Context {
	if !s.sc.IsValid() {
		return ctx
	}
	return context.WithValue(ctx, spanKey{}, s)
}

// SpanFromContext returns the Span ctx carries, or the zero Span.
func SpanFromContext(ctx context.Context) Span {
	s, _ := ctx.Value(spanKey{}).(Span)
	return s
}

type spanKey struct{}
