package tracing

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Ending a span encodes it as an OTLP Span message at once, while its
// recording is still in the CPU's cache. A child whose parent is still
// open hands the bytes to the parent's recording (recording.toParent);
// a span without an open parent appends its bytes, and its descendants',
// to one of a few shards of the queue (a mutex and a byte slice each).
// Then the recording goes back to its pool: a span costs its encoding, one
// uncontended lock and a copy, and a request's spans reach the queue's
// (cold) buffer in one copy. One batcher goroutine per configuration swaps the shards'
// buffers out when one has its share of a batch, when the batch timeout
// passes, or on a flush, writes the export request into a reused buffer and
// sends it with the official exporter's OTLP/HTTP client (otlptracehttp:
// its retries, headers, TLS and compression; body.go). Queuing recordings and encoding them in the batcher
// instead cost about twice as much CPU: by then every recording of a
// batch had left the cache.

// queueShards spreads ending spans over locks. A span's shard is picked
// from its trace id, so the spans of one request (started and ended on
// one CPU, most often) use one shard: its lock, span count and buffer
// stay in that CPU's cache for the request, rather than each span pulling
// a random shard's cache lines from the other CPUs.
const queueShards = 4

// shardOf is the shard of the spans of trace id.
func shardOf(id *[16]byte) int { return int(id[15] % queueShards) }

// maxBatch is about the most spans sent in one export request. An export
// request costs the batcher about 60 µs of CPU whatever its size (the
// HTTP exchange, the loopback writes; estimated from BenchmarkProxyTracing's
// CPU per request with batches of 512 and of 2048),
// 0.12 µs per span in batches of 512 (the SDK's default) and 0.03 µs in
// batches of 2048. The batcher is woken when a shard holds a quarter of
// its capacity (queue.kickAt), so that the rest of the queue takes the
// spans that end while a batch is sent: the default queueSize (2048)
// sends about 512 spans a request, a queueSize of 8192 or more 2048.
const maxBatch = 2048

// maxBufKeep is the capacity a shard's buffer keeps between batches: a
// burst does not pin its memory.
const maxBufKeep = 1 << 20

type shard struct {
	mu  sync.Mutex
	buf []byte // encoded spans, each as field 2 of ScopeSpans: tag, length, Span
	n   int    // spans in buf
	// open counts the shard's recording spans not yet ended (span.go,
	// record): one counter per shard rather than one the CPUs share.
	open atomic.Int64
	_    [16]byte
}

// queue holds ended spans, encoded, until the batcher takes them.
type queue struct {
	shards  [queueShards]shard
	cap     int           // spans per shard
	kickAt  int           // a shard with this many spans wakes the batcher (maxBatch)
	kick    chan struct{} // capacity 1
	stopped atomic.Bool   // the batcher has exited: spans are dropped
	dropped *atomic.Uint64
}

func newQueue(size int, dropped *atomic.Uint64) *queue {
	q := &queue{kick: make(chan struct{}, 1), dropped: dropped}
	q.cap = max(1, (size+queueShards-1)/queueShards)
	q.kickAt = max(1, min(q.cap/4, maxBatch/queueShards))
	return q
}

// maxKidsBytes bounds the encoded descendants a span holds (recording.kids):
// past it, a child that ends is queued on its own.
const maxKidsBytes = 16 << 10

// encode encodes the ended span r into r.enc, while its recording is still in
// the CPU's cache.
func (r *recording) encode() { r.enc = appendSpan(r.enc[:0], r) }

// toParent hands the ended, encoded span r (and the descendants it holds) to
// its parent when the parent is still open: the parent queues them with its
// own encoding when it ends. A request's spans then reach the queue in one
// copy, under one lock of its shard, rather than one each: the queue's
// buffer is cold (last touched a batch ago, by the batcher) and each copy
// into it stalled on its cache misses at the lock's release; the parent's
// buffer is in the cache. False, and r unchanged, when r has no parent, the
// parent has ended or holds maxKidsBytes already.
func (r *recording) toParent() bool {
	up := r.up
	if up == nil {
		return false
	}
	n := 1 + sizeLen(len(r.enc)) + len(r.enc) + len(r.kids)
	if !up.open(r.upGen) {
		return false
	}
	if len(up.kids)+n > maxKidsBytes {
		up.mu.Unlock()
		return false
	}
	up.kids = appendLen(append(up.kids, fScopeSpansSpans<<3|wBytes), len(r.enc))
	up.kids = append(up.kids, r.enc...)
	up.kids = append(up.kids, r.kids...)
	up.nkids += 1 + r.nkids
	up.mu.Unlock()
	return true
}

// push queues an ended, encoded span and the descendants it holds. When its
// shard has no room for them (the collector is slower than the spans come)
// they are dropped and counted, never the request. r is not used after.
func (q *queue) push(r *recording) {
	k := 1 + r.nkids
	sh := &q.shards[shardOf(&r.traceID)]
	sh.mu.Lock()
	if q.stopped.Load() || sh.n+k > q.cap {
		sh.mu.Unlock()
		q.dropped.Add(uint64(k))
		return
	}
	sh.buf = appendLen(append(sh.buf, fScopeSpansSpans<<3|wBytes), len(r.enc))
	sh.buf = append(sh.buf, r.enc...)
	sh.buf = append(sh.buf, r.kids...)
	was := sh.n
	sh.n += k
	n := sh.n
	sh.mu.Unlock()
	if was < q.kickAt && n >= q.kickAt {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
}

// open counts the recording spans not yet ended. Read after
// pipeline.closed is set, it is 0 once the last of them ended (record).
func (q *queue) open() int64 {
	var n int64
	for i := range q.shards {
		n += q.shards[i].open.Load()
	}
	return n
}

// take swaps shard i's buffer for spare and returns it with its span
// count.
func (q *queue) take(i int, spare []byte) ([]byte, int) {
	sh := &q.shards[i]
	sh.mu.Lock()
	buf, n := sh.buf, sh.n
	sh.buf, sh.n = spare[:0], 0
	sh.mu.Unlock()
	return buf, n
}

// batcher exports one configuration's spans.
type batcher struct {
	q        *queue
	client   otlptrace.Client
	stats    *exportStats
	log      *slog.Logger
	endpoint string
	timeout  time.Duration // batch timeout
	export   time.Duration // export timeout
	enc      encoder
	gzip     bool
	gz       *gzip.Writer // the batcher's, reused
	bodies   bodyPool
	flushc   chan chan struct{}
	stopc    chan struct{}
	done     chan struct{}
	spare    [queueShards][]byte
}

func (b *batcher) run() {
	defer close(b.done)
	t := time.NewTimer(b.timeout)
	defer t.Stop()
	for {
		var reply chan struct{}
		stop := false
		select {
		case <-b.q.kick:
		case <-t.C:
		case reply = <-b.flushc:
		case <-b.stopc:
			stop = true
			b.q.stopped.Store(true) // before the last take: push drops after it
		}
		b.exportQueued()
		if reply != nil {
			close(reply)
		}
		if stop {
			return
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(b.timeout)
	}
}

// exportQueued exports every queued span: one request, or one per shard
// when more than a batch is queued.
func (b *batcher) exportQueued() {
	var parts [queueShards][]byte
	var counts [queueShards]int
	total := 0
	for i := range parts {
		parts[i], counts[i] = b.q.take(i, b.spare[i])
		total += counts[i]
	}
	if total > maxBatch {
		for i := range parts {
			if counts[i] > 0 {
				b.upload(parts[i:i+1], counts[i])
			}
		}
	} else if total > 0 {
		b.upload(parts[:], total)
	}
	for i, p := range parts {
		if cap(p) > maxBufKeep {
			p = nil
		}
		b.spare[i] = p[:0]
	}
}

// upload sends parts (encoded spans) as one export request: the batcher
// writes the body into a pooled buffer, the official client sends it
// (exportTransport, body.go).
func (b *batcher) upload(parts [][]byte, n int) {
	if b.enc.err != nil {
		b.stats.record(n, b.enc.err, b.log, b.endpoint)
		return
	}
	body := b.bodies.get()
	body.buf = b.enc.appendRequest(body.buf[:0], parts)
	if b.gzip {
		body = b.compress(body)
	}
	u := &upload{b: body}
	ctx, cancel := context.WithTimeout(withUpload(context.Background(), u), b.export)
	err := b.client.UploadTraces(ctx, nil)
	cancel()
	u.end()
	b.stats.record(n, err, b.log, b.endpoint)
}

// compress returns raw gzipped into another pooled body, and releases raw.
func (b *batcher) compress(raw *exportBody) *exportBody {
	z := b.bodies.get()
	w := (*appendWriter)(&z.buf)
	if b.gz == nil {
		b.gz = gzip.NewWriter(w)
	} else {
		b.gz.Reset(w)
	}
	_, _ = b.gz.Write(raw.buf) // an appendWriter does not fail
	_ = b.gz.Close()
	b.gz.Reset(io.Discard)
	raw.release()
	return z
}

// appendWriter appends what is written to its slice.
type appendWriter []byte

func (w *appendWriter) Write(p []byte) (int, error) {
	*w = append(*w, p...)
	return len(p), nil
}

// flush exports what is queued now and waits for it, within ctx.
func (b *batcher) flush(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case b.flushc <- reply:
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop exports what is queued and ends the batcher.
func (b *batcher) stop(ctx context.Context) {
	close(b.stopc)
	select {
	case <-b.done:
	case <-ctx.Done():
	}
}

// encoder writes spans as OTLP protobuf with protowire, straight from the
// recordings, and the export request around them: an
// ExportTraceServiceRequest of one ResourceSpans, byte for byte what the
// official client marshalled from a tracepb.ResourceSpans whose resource
// and schema URL were ordinary fields and whose scope_spans field (2) was
// carried as already-encoded bytes in its unknown fields
// (TestRequestBytesMatchOfficial): the resource and schema URL first, as
// the marshaller writes known fields in order, then the scope_spans field.
// A collector decodes the same bytes it would get from tracepb.ScopeSpans
// values; building those (a message, key-value and value objects per
// attribute) and marshalling them cost several times more
// (BenchmarkEncode).
type encoder struct {
	head  []byte // ResourceSpans' resource and schema_url fields, marshalled once
	err   error  // marshalling them failed: every export fails with it, as the client's would
	scope []byte // the encoded InstrumentationScope, field 1 of ScopeSpans
}

// Field numbers of the OTLP trace protocol (opentelemetry/proto/trace/v1,
// common/v1).
const (
	fRequestResourceSpans = 1 // ExportTraceServiceRequest (collector/trace/v1)

	fScopeSpansScope = 1
	fScopeSpansSpans = 2
	fScopeName       = 1
	fResourceScopes  = 2

	fSpanTraceID      = 1
	fSpanSpanID       = 2
	fSpanTraceState   = 3
	fSpanParentSpanID = 4
	fSpanName         = 5
	fSpanKind         = 6
	fSpanStart        = 7
	fSpanEnd          = 8
	fSpanAttributes   = 9
	fSpanDroppedAttrs = 10
	fSpanLinks        = 13
	fSpanStatus       = 15
	fSpanFlags        = 16

	fLinkTraceID = 1
	fLinkSpanID  = 2
	fLinkFlags   = 6

	fStatusMessage = 2
	fStatusCode    = 3

	fKVKey   = 1
	fKVValue = 2

	fAnyString = 1
	fAnyBool   = 2
	fAnyInt    = 3
)

// OTLP span flags: the low byte is the W3C flags; these say whether the
// parent was remote, as the SDK writes them.
const (
	flagHasIsRemote = uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	flagIsRemote    = uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
)

var otlpKind = [...]uint64{
	KindInternal: uint64(tracepb.Span_SPAN_KIND_INTERNAL),
	KindServer:   uint64(tracepb.Span_SPAN_KIND_SERVER),
	KindClient:   uint64(tracepb.Span_SPAN_KIND_CLIENT),
}

func newEncoder(res *resourcepb.Resource, schemaURL string) encoder {
	var scope []byte
	scope = protowire.AppendTag(scope, fScopeSpansScope, protowire.BytesType)
	var name []byte
	name = protowire.AppendTag(name, fScopeName, protowire.BytesType)
	name = protowire.AppendString(name, instrumentationName)
	scope = protowire.AppendBytes(scope, name)
	head, err := proto.Marshal(&tracepb.ResourceSpans{Resource: res, SchemaUrl: schemaURL})
	if err != nil {
		err = fmt.Errorf("failed to marshal request body in protobuf: %w", err)
	}
	return encoder{head: head, err: err, scope: scope}
}

// appendRequest appends the export request of encoded spans (parts:
// fields 2 of ScopeSpans) to b.
func (e *encoder) appendRequest(b []byte, parts [][]byte) []byte {
	ss := len(e.scope) // ScopeSpans
	for _, p := range parts {
		ss += len(p)
	}
	rs := len(e.head) + 1 + sizeLen(ss) + ss // ResourceSpans
	b = slices.Grow(b, 1+sizeLen(rs)+rs)
	b = appendLen(append(b, fRequestResourceSpans<<3|wBytes), rs)
	b = append(b, e.head...)
	b = appendLen(append(b, fResourceScopes<<3|wBytes), ss)
	b = append(b, e.scope...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// The encoding below writes tags as the bytes they are and lengths through appendLen,
// whose one- and two-byte cases are inlined: a span is then mostly copies
// of its ids, names and values. protowire's general functions are kept for
// the rare long value. The bytes are the official marshaller's, byte for
// byte (TestEncodeBytesMatchOfficial).

// Wire types (protowire's, untyped).
const (
	wVarint  = 0
	wFixed64 = 1
	wBytes   = 2
	wFixed32 = 5
)

// Tags of the fields appendSpan writes: one byte each, but for the span's
// flags (field 16), whose tag is two.
const (
	tSpanTraceID      = fSpanTraceID<<3 | wBytes
	tSpanSpanID       = fSpanSpanID<<3 | wBytes
	tSpanTraceState   = fSpanTraceState<<3 | wBytes
	tSpanParentSpanID = fSpanParentSpanID<<3 | wBytes
	tSpanName         = fSpanName<<3 | wBytes
	tSpanKind         = fSpanKind<<3 | wVarint
	tSpanStart        = fSpanStart<<3 | wFixed64
	tSpanEnd          = fSpanEnd<<3 | wFixed64
	tSpanAttributes   = fSpanAttributes<<3 | wBytes
	tSpanDroppedAttrs = fSpanDroppedAttrs<<3 | wVarint
	tSpanLinks        = fSpanLinks<<3 | wBytes
	tSpanStatus       = fSpanStatus<<3 | wBytes
	tSpanFlags0       = (fSpanFlags<<3|wFixed32)&0x7f | 0x80 // field 16: a two-byte tag
	tSpanFlags1       = (fSpanFlags<<3 | wFixed32) >> 7
	tLinkTraceID      = fLinkTraceID<<3 | wBytes
	tLinkSpanID       = fLinkSpanID<<3 | wBytes
	tLinkFlags        = fLinkFlags<<3 | wFixed32
	tStatusMessage    = fStatusMessage<<3 | wBytes
	tStatusCode       = fStatusCode<<3 | wVarint
	tKVKey            = fKVKey<<3 | wBytes
	tKVValue          = fKVValue<<3 | wBytes
	tAnyString        = fAnyString<<3 | wBytes
	tAnyBool          = fAnyBool<<3 | wVarint
	tAnyInt           = fAnyInt<<3 | wVarint
)

// appendLen appends n as a varint: a length or a small count.
func appendLen(b []byte, n int) []byte {
	switch {
	case n < 1<<7:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, byte(n)|0x80, byte(n>>7))
	}
	return protowire.AppendVarint(b, uint64(n))
}

// sizeLen is appendLen's size for n ≥ 0.
func sizeLen(n int) int {
	switch {
	case n < 1<<7:
		return 1
	case n < 1<<14:
		return 2
	}
	return protowire.SizeVarint(uint64(n))
}

// appendField appends a length-delimited field with a one-byte tag.
func appendField[S string | []byte](b []byte, t byte, v S) []byte {
	b = appendLen(append(b, t), len(v))
	return append(b, v...)
}

// appendSpan appends r as an OTLP Span message (its fields, no tag or
// length of its own).
func appendSpan(b []byte, r *recording) []byte {
	b = append(b, tSpanTraceID, 16)
	b = append(b, r.traceID[:]...)
	b = append(b, tSpanSpanID, 8)
	b = append(b, r.spanID[:]...)
	if r.stateN > 0 {
		b = appendField(b, tSpanTraceState, r.state())
	}
	if r.parentID != [8]byte{} {
		b = append(b, tSpanParentSpanID, 8)
		b = append(b, r.parentID[:]...)
	}
	switch {
	case r.name2 == "" && r.name == "":
		// proto3 omits an empty string.
	case r.name2 == "":
		b = appendField(b, tSpanName, r.name)
	default:
		b = appendLen(append(b, tSpanName), len(r.name)+1+len(r.name2))
		b = append(b, r.name...)
		b = append(b, ' ')
		b = append(b, r.name2...)
	}
	// Span kinds are 1–3: one byte.
	b = append(b, tSpanKind, byte(otlpKind[r.kind]), tSpanStart)
	b = binary.LittleEndian.AppendUint64(b, uint64(max(0, r.start)))
	b = append(b, tSpanEnd)
	b = binary.LittleEndian.AppendUint64(b, uint64(max(0, r.end)))
	for i := range r.attrs[:r.nattrs] {
		b = appendKeyValue(b, r, &r.attrs[i])
	}
	if r.dropped > 0 {
		b = append(b, tSpanDroppedAttrs)
		b = protowire.AppendVarint(b, uint64(r.dropped))
	}
	for i := range r.links[:r.nlinks] {
		l := &r.links[i]
		b = append(b, tSpanLinks, 2+16+2+8+1+4, tLinkTraceID, 16)
		b = append(b, l.TraceID[:]...)
		b = append(b, tLinkSpanID, 8)
		b = append(b, l.SpanID[:]...)
		b = append(b, tLinkFlags)
		b = binary.LittleEndian.AppendUint32(b, uint32(l.Flags)|flagHasIsRemote|flagIsRemote)
	}
	// The SDK always writes a status; an unset one is an empty message.
	if r.failed {
		n := 2
		if r.statusMsg != "" {
			n += 1 + sizeLen(len(r.statusMsg)) + len(r.statusMsg)
		}
		b = appendLen(append(b, tSpanStatus), n)
		if r.statusMsg != "" {
			b = appendField(b, tStatusMessage, r.statusMsg)
		}
		b = append(b, tStatusCode, byte(tracepb.Status_STATUS_CODE_ERROR))
	} else {
		b = append(b, tSpanStatus, 0)
	}
	flags := uint32(r.flags) | flagHasIsRemote
	if r.remoteParent {
		flags |= flagIsRemote
	}
	b = append(b, tSpanFlags0, tSpanFlags1)
	return binary.LittleEndian.AppendUint32(b, flags)
}

// appendKeyValue appends attribute a as a KeyValue (field 9 of Span).
func appendKeyValue(b []byte, r *recording, a *attr) []byte {
	// AnyValue: one field.
	var vn int
	var v []byte
	switch a.kind {
	case attrString:
		vn = 1 + sizeLen(len(a.s)) + len(a.s)
	case attrArena:
		v = r.arenaBytes(a)
		vn = 1 + sizeLen(len(v)) + len(v)
	case attrInt:
		vn = 1 + protowire.SizeVarint(uint64(a.i))
	case attrBool:
		vn = 2
	}
	kvn := 1 + sizeLen(len(a.key)) + len(a.key) + 1 + sizeLen(vn) + vn
	b = appendLen(append(b, tSpanAttributes), kvn)
	b = appendField(b, tKVKey, a.key)
	b = appendLen(append(b, tKVValue), vn)
	switch a.kind {
	case attrString:
		b = appendField(b, tAnyString, a.s)
	case attrArena:
		b = appendField(b, tAnyString, v)
	case attrInt:
		b = append(b, tAnyInt)
		b = protowire.AppendVarint(b, uint64(a.i))
	case attrBool:
		b = append(b, tAnyBool, byte(a.i))
	}
	return b
}
