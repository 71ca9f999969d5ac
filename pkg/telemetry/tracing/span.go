package tracing

import (
	"context"
	"net/netip"
	"time"
)

// Kind is a span's kind.
type Kind uint8

// Span kinds used by stoad.
const (
	KindInternal Kind = iota // work inside stoad: auth, limits, apply
	KindServer               // a request stoad answers: proxied request, MCP call
	KindClient               // a request stoad sends: upstream attempt, federated MCP call
)

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
	p     *pipeline  // rec's pipeline: where children are recorded
	gen   uint32     // rec's generation this Span belongs to (record.go)
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
	var start time.Time
	if in != nil {
		start = in.Start
	}
	r := p.record(&s, kind, name, nanos(start))
	if r == nil {
		return s, false
	}
	if continued {
		r.parentID, r.remoteParent = parent.SpanID, true
		r.setState(s.state)
	}
	// OTel's HTTP conventions: an untrusted caller's context becomes a
	// link, so its trace can still be found from this one.
	if linked.IsValid() {
		r.links[r.nlinks] = linked
		r.nlinks++
	}
	if in != nil && len(in.Link) > 0 {
		if sc, ok := ParseTraceparent(in.Link); ok && sc != parent && sc != linked {
			r.links[r.nlinks] = sc
			r.nlinks++
		}
	}
	return s, true
}

// record starts the recording of s (its trace id and, for a continued
// trace, flags already set), giving s a new span id. It counts the span
// open first (in its queue shard's counter) and then checks that p is not
// closed; retire closes p and then waits for the counters' sum to drop to
// zero (each span adds and removes its one in the same shard, so a sum read
// shard by shard after the close misses no span started before it), so a span is either refused
// here (nil) or waited for there, never recorded into a pipeline already
// shut down.
func (p *pipeline) record(s *Span, kind Kind, name string, start int64) *recording {
	open := &p.q.shards[shardOf(&s.sc.TraceID)].open
	open.Add(1)
	if p.closed.Load() {
		open.Add(-1)
		return nil
	}
	r := newRecording(p, kind)
	s.sc.SpanID = newSpanID()
	s.sc.Flags = s.sc.Flags&knownFlags | FlagSampled
	r.traceID, r.spanID, r.flags = s.sc.TraceID, s.sc.SpanID, s.sc.Flags
	r.name, r.start = name, start
	s.rec, s.p, s.gen = r, p, r.gen
	return r
}

// StartChild begins a span under s: auth and limits (KindInternal), an
// upstream attempt or a federated MCP call (KindClient). Under an
// unsampled span it returns a copy of s's ids: nothing is recorded, and an
// upstream request carries s's span id.
func (s *Span) StartChild(name string, kind Kind) Span {
	if s.rec == nil {
		return *s
	}
	return s.startChild(name, kind, now())
}

// StartChildAt is StartChild for work that began at start, before s's
// sampling decision was known (the fast path checks a credential before
// it starts the request's span).
func (s *Span) StartChildAt(name string, kind Kind, start time.Time) Span {
	if s.rec == nil {
		return *s
	}
	return s.startChild(name, kind, nanos(start))
}

func (s *Span) startChild(name string, kind Kind, start int64) Span {
	c := Span{sc: s.sc, state: s.state}
	r := s.p.record(&c, kind, name, start)
	if r == nil {
		// The parent outlived its configuration's drain timeout.
		return Span{sc: s.sc, state: s.state}
	}
	r.up, r.upGen = s.rec, s.gen
	r.parentID = s.sc.SpanID
	r.setState(s.state)
	return c
}

// End ends s now. Ending twice, or ending a copy, is a no-op.
func (s *Span) End() {
	if s.rec != nil {
		s.end(now())
	}
}

// EndAt ends s at t.
func (s *Span) EndAt(t time.Time) {
	if s.rec != nil {
		s.end(nanos(t))
	}
}

func (s *Span) end(t int64) {
	if s.rec.open(s.gen) {
		s.endLocked(t)
	}
}

// endLocked ends s at t; s.rec is locked (open) and is unlocked.
func (s *Span) endLocked(t int64) {
	r := s.rec
	r.gen++ // ended: every copy of s is stale from here
	r.end = t
	r.mu.Unlock()
	// Queued before it stops counting as open: a retiring pipeline waits
	// for the count, then flushes its queue, so the span is in that flush.
	open := &s.p.q.shards[shardOf(&r.traceID)].open
	r.encode()
	if !r.toParent() {
		s.p.q.push(r)
	}
	r.release()
	open.Add(-1)
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
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.name, s.rec.name2 = name, ""
		s.rec.mu.Unlock()
	}
}

// SetNamePair names s first + " " + second ("GET /acme/billing") without
// building the string on the request's path.
func (s *Span) SetNamePair(first, second string) {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.name, s.rec.name2 = first, second
		s.rec.mu.Unlock()
	}
}

// SetAddr sets an address attribute (client.address) without formatting
// it on the request's path.
func (s *Span) SetAddr(key string, a netip.Addr) {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.putAddr(key, a)
		s.rec.mu.Unlock()
	}
}

// SetString sets a string attribute.
func (s *Span) SetString(key, value string) {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.putString(key, value)
		s.rec.mu.Unlock()
	}
}

// SetStrings sets string attributes under one lock: keys and values
// alternate (key, value, key, value, …); a key without a value is ignored.
func (s *Span) SetStrings(kv ...string) {
	if s.rec != nil && s.rec.open(s.gen) {
		for i := 0; i+1 < len(kv); i += 2 {
			s.rec.putString(kv[i], kv[i+1])
		}
		s.rec.mu.Unlock()
	}
}

// SetBytes sets a string attribute from bytes, copied only when recording.
func (s *Span) SetBytes(key string, value []byte) {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.putBytes(key, value)
		s.rec.mu.Unlock()
	}
}

// SetInt sets an integer attribute.
func (s *Span) SetInt(key string, value int64) {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.putInt(key, value)
		s.rec.mu.Unlock()
	}
}

// SetBool sets a boolean attribute.
func (s *Span) SetBool(key string, value bool) {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.putBool(key, value)
		s.rec.mu.Unlock()
	}
}

// SetError marks s failed: error.type (a low-cardinality class such as
// "timeout" or the gateway's error code) and status Error with message.
// A later SetHTTPStatus keeps this error.type.
func (s *Span) SetError(errType, message string) {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.fail(errType, message)
		s.rec.mu.Unlock()
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
