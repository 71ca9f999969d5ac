package tracing

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// A sampled span is recorded into a recording: a fixed-size, pooled
// record of ids, times, name, status and typed attributes, with the bytes
// it must copy (tracestate, values read from request buffers) in a small
// arena of its own. Ending it encodes it as OTLP protobuf, queues the bytes
// (or hands them to its parent while the parent is open; export.go) and
// returns it to the pool. Nothing on the request's path allocates once the
// pool is warm.
//
// This replaces the SDK's span objects on every path (the proxy's, MCP's,
// the control side's): the SDK spent about 2.5–3 µs of CPU per span on
// them, their attribute slices, its batch processor's channel and the
// conversion to protobuf, several times what a proxied request costs
// (docs/tracing.md, Cost). The export itself stays the official
// exporter's OTLP/HTTP client (export.go).

// maxAttrs bounds a span's attributes. The richest span (a proxied
// request's server span) sets about 20; more are dropped and counted in
// the span's dropped_attributes_count, as the SDK does past its limit.
const maxAttrs = 32

// maxArenaKeep is the arena capacity a recording keeps when pooled: a span
// that copied a very long value (a user agent, a path) does not pin that
// much memory in the pool.
const maxArenaKeep = 4 << 10

type attrKind uint8

const (
	attrString attrKind = iota + 1 // s
	attrArena                      // arena[off:off+n], packed in i
	attrInt                        // i
	attrBool                       // i != 0
)

// attr is one attribute. Keys are the package's constants or the caller's
// strings; string values are kept as given (like the SDK's attribute
// values) or, when read from a buffer the caller reuses, copied into the
// recording's arena.
type attr struct {
	key  string
	kind attrKind
	s    string
	i    int64
}

// recording is a sampled span. Its fields are written by the span's
// owner under mu until End. End increments gen under mu, encodes the span
// and returns the recording to the pool, which gives it to another span
// of that new generation: a stale Span copy (ended, then used) sees gen
// differ under mu and does nothing. gen is written only there, so taking
// a recording from the pool needs no lock (the pool orders the End before
// the reuse).
type recording struct {
	mu  sync.Mutex
	gen uint32

	p       *pipeline
	kind    Kind
	errType bool // error.type set by SetError: a status code does not replace it
	failed  bool // status Error
	unique  bool // put appends without looking for the key (setHTTPServer)
	// The span's name is name, or name + " " + name2 (names built from a
	// method and a route or tool, without concatenating per span).
	name, name2 string
	statusMsg   string

	traceID      [16]byte
	spanID       [8]byte
	parentID     [8]byte // zero for a root span
	flags        byte    // W3C flags of the span's context
	remoteParent bool
	// state is the span's tracestate, a copy in the arena (stateN bytes at
	// 0): the parent's, as the SDK gives every span of a continued trace.
	stateN     uint32
	start, end int64 // Unix nanoseconds
	links      [2]SpanContext
	nlinks     uint8
	nattrs     uint8
	dropped    uint32 // attributes beyond maxAttrs
	attrs      [maxAttrs]attr
	arena      []byte
	enc        []byte // the span encoded at End (export.go)

	// up is the parent's recording (a child started with StartChild) and
	// upGen the parent span's generation: a child that ends while its
	// parent is open hands its encoding to the parent (kids) instead of
	// the queue, and the parent queues the lot with its own (export.go,
	// queue.push).
	up    *recording
	upGen uint32
	// kids are the ended descendants' spans, encoded as fields 2 of
	// ScopeSpans (tag, length, Span), nkids of them.
	kids  []byte
	nkids int
}

var recordings = sync.Pool{New: func() any { return new(recording) }}

// newRecording returns a cleared recording of p for a new span.
func newRecording(p *pipeline, kind Kind) *recording {
	r := recordings.Get().(*recording)
	r.p, r.kind = p, kind
	r.errType, r.failed, r.unique = false, false, false
	r.name, r.name2, r.statusMsg = "", "", ""
	r.parentID, r.remoteParent = [8]byte{}, false
	r.stateN, r.nlinks, r.nattrs, r.dropped = 0, 0, 0, 0
	r.end = 0
	r.arena = r.arena[:0]
	r.kids, r.nkids = r.kids[:0], 0
	return r
}

// release returns an ended recording to the pool, without the
// references it held.
func (r *recording) release() {
	clear(r.attrs[:r.nattrs])
	r.nattrs = 0
	r.p, r.up = nil, nil
	r.name, r.name2, r.statusMsg = "", "", ""
	if cap(r.arena) > maxArenaKeep {
		r.arena = nil
	}
	if cap(r.enc) > 4*maxArenaKeep {
		r.enc = nil
	}
	if cap(r.kids) > maxKidsBytes {
		r.kids = nil
	}
	recordings.Put(r)
}

// open locks r for the owner of generation gen; false (unlocked) when the
// span has ended (and r may have been recycled).
func (r *recording) open(gen uint32) bool {
	r.mu.Lock()
	if r.gen != gen {
		r.mu.Unlock()
		return false
	}
	return true
}

// setState copies a tracestate into the arena, normalised as the SDK's
// TraceState.String() writes it: members joined by ',' without the
// optional whitespace or empty members the header may hold.
func (r *recording) setState(b []byte) {
	if len(b) == 0 {
		return
	}
	a := r.arena[:0]
	for len(b) > 0 {
		i := indexByte(b, ',')
		var m []byte
		if i < 0 {
			m, b = b, nil
		} else {
			m, b = b[:i], b[i+1:]
		}
		if m = trimOWS(m); len(m) == 0 {
			continue
		}
		if len(a) > 0 {
			a = append(a, ',')
		}
		a = append(a, m...)
	}
	r.arena = a
	r.stateN = uint32(len(a))
}

func (r *recording) state() []byte { return r.arena[:r.stateN] }

// put sets key to a; a key set twice keeps its last value, as the SDK
// does. Called with mu held.
func (r *recording) put(a attr) {
	if !r.unique {
		for i := range r.attrs[:r.nattrs] {
			if r.attrs[i].key == a.key {
				r.attrs[i] = a
				return
			}
		}
	}
	if int(r.nattrs) == maxAttrs {
		r.dropped++
		return
	}
	r.attrs[r.nattrs] = a
	r.nattrs++
}

func (r *recording) putString(key, v string) { r.put(attr{key: key, kind: attrString, s: v}) }

func (r *recording) putInt(key string, v int64) { r.put(attr{key: key, kind: attrInt, i: v}) }

func (r *recording) putBool(key string, v bool) {
	var i int64
	if v {
		i = 1
	}
	r.put(attr{key: key, kind: attrBool, i: i})
}

// putBytes copies v into the arena.
func (r *recording) putBytes(key string, v []byte) {
	off := len(r.arena)
	r.arena = append(r.arena, v...)
	r.put(attr{key: key, kind: attrArena, i: int64(off)<<32 | int64(len(v))})
}

// putArena sets key to the arena's bytes from off to its end.
func (r *recording) putArena(key string, off int) {
	r.put(attr{key: key, kind: attrArena, i: int64(off)<<32 | int64(len(r.arena)-off)})
}

// putAddr writes an address's text into the arena (netip's String
// allocates; AppendTo does not).
func (r *recording) putAddr(key string, a netip.Addr) {
	off := len(r.arena)
	r.arena = a.Unmap().AppendTo(r.arena)
	r.put(attr{key: key, kind: attrArena, i: int64(off)<<32 | int64(len(r.arena)-off)})
}

// arenaBytes returns an attrArena value's bytes.
func (r *recording) arenaBytes(a *attr) []byte {
	off, n := a.i>>32, a.i&0xffffffff
	return r.arena[off : off+n]
}

func (r *recording) fail(errType, message string) {
	r.errType, r.failed, r.statusMsg = true, true, message
	r.putString(AttrErrorType, errType)
}

// Now is the time as span times read it (the monotonic clock only, see
// now): for a time taken only to end a span with EndAt, a clock read
// cheaper than time.Now's two. It carries no monotonic reading.
func Now() time.Time { return time.Unix(0, now()) }

// nanos is t as Unix nanoseconds, or now when t is zero. A t read with
// time.Now is placed on the same scale as now's times: the anchor's wall
// time plus t's distance from it on the monotonic clock (t.Sub uses the
// monotonic readings when both times have one). A span that takes a time
// the caller read (a request's start, its answer) and its children that read
// their own then agree, even while the wall clock is stepped or slewed; a t
// without a monotonic reading (Now, time.Unix) is its wall time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return now()
	}
	a := clock.Load()
	return a.wall + int64(t.Sub(a.mono))
}

// clockAnchor pairs a wall-clock reading with the same instant on the
// monotonic clock.
type clockAnchor struct {
	wall int64 // Unix nanoseconds
	mono time.Time
}

// reanchorEvery bounds how long span times follow the monotonic clock
// alone: a stepped wall clock (or NTP's slewing) shows in span times
// within this.
const reanchorEvery = 100 * time.Millisecond

var clock atomic.Pointer[clockAnchor]

func init() { anchorClock() }

func anchorClock() *clockAnchor {
	t := time.Now()
	a := &clockAnchor{wall: t.UnixNano(), mono: t}
	clock.Store(a)
	return a
}

// now is the time for a span's start or end, in Unix nanoseconds. It
// reads the monotonic clock only, offset from an anchor taken with
// time.Now at most reanchorEvery ago: time.Now reads the wall and the
// monotonic clocks, and on virtual machines each read can cost a few
// hundred nanoseconds, a large part of a span's cost.
func now() int64 {
	a := clock.Load()
	d := time.Since(a.mono) // the monotonic clock only
	if d > reanchorEvery || d < 0 {
		a = anchorClock()
		d = 0
	}
	return a.wall + int64(d)
}
