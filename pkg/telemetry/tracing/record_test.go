package tracing

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

// fullRecording is a span using every field the encoder writes: a remote
// parent, a tracestate with the optional whitespace and an empty member,
// a two-part name, attributes of every kind (one set twice), two links
// and a failure.
func fullRecording() *recording {
	r := newRecording(nil, KindServer)
	copy(r.traceID[:], "0123456789abcdef")
	copy(r.spanID[:], "spanid01")
	copy(r.parentID[:], "parent01")
	r.flags, r.remoteParent = FlagSampled|FlagRandom, true
	r.setState([]byte(" rojo=00f067aa0ba902b7 ,,\tcongo=t61rcWkgMzE"))
	r.name, r.name2 = "GET", "/acme/api"
	r.start, r.end = 1_700_000_000_000_000_000, 1_700_000_000_000_123_456
	r.putString(AttrHTTPMethod, "GET")
	r.putBytes(AttrURLPath, []byte("/acme/api/v1/items/42"))
	r.putInt(AttrServerPort, 8443)
	r.putInt("stoa.test.negative", -7)
	r.putBool(AttrDryRun, true)
	r.putBool("stoa.test.false", false)
	r.putAddr(AttrClientAddress, netip.MustParseAddr("::ffff:203.0.113.7"))
	r.putInt(AttrHTTPStatus, 200)
	r.putInt(AttrHTTPStatus, 504) // the last value wins
	r.links[0] = SpanContext{TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{4, 5}, Flags: FlagSampled}
	r.links[1] = SpanContext{TraceID: [16]byte{9}, SpanID: [8]byte{8}}
	r.nlinks = 2
	r.fail("upstream_timeout", "upstream did not answer in 30s")
	return r
}

// officialSpan converts r with the official OTLP types, as the SDK's
// exporter builds a span: the reference the encoder is checked against,
// and the alternative BenchmarkEncode measures.
func officialSpan(r *recording) *tracepb.Span {
	name := r.name
	if r.name2 != "" {
		name += " " + r.name2
	}
	s := &tracepb.Span{
		TraceId: append([]byte(nil), r.traceID[:]...), SpanId: append([]byte(nil), r.spanID[:]...),
		TraceState: string(r.state()), Name: name, Kind: tracepb.Span_SpanKind(otlpKind[r.kind]),
		StartTimeUnixNano: uint64(r.start), EndTimeUnixNano: uint64(r.end),
		DroppedAttributesCount: r.dropped, Status: &tracepb.Status{},
		Flags: uint32(r.flags) | flagHasIsRemote,
	}
	if r.remoteParent {
		s.Flags |= flagIsRemote
	}
	if r.parentID != [8]byte{} {
		s.ParentSpanId = append([]byte(nil), r.parentID[:]...)
	}
	for i := range r.attrs[:r.nattrs] {
		a := &r.attrs[i]
		v := &commonpb.AnyValue{}
		switch a.kind {
		case attrString:
			v.Value = &commonpb.AnyValue_StringValue{StringValue: a.s}
		case attrArena:
			v.Value = &commonpb.AnyValue_StringValue{StringValue: string(r.arenaBytes(a))}
		case attrInt:
			v.Value = &commonpb.AnyValue_IntValue{IntValue: a.i}
		case attrBool:
			v.Value = &commonpb.AnyValue_BoolValue{BoolValue: a.i != 0}
		}
		s.Attributes = append(s.Attributes, &commonpb.KeyValue{Key: a.key, Value: v})
	}
	for _, l := range r.links[:r.nlinks] {
		s.Links = append(s.Links, &tracepb.Span_Link{TraceId: append([]byte(nil), l.TraceID[:]...),
			SpanId: append([]byte(nil), l.SpanID[:]...), Flags: uint32(l.Flags) | flagHasIsRemote | flagIsRemote})
	}
	if r.failed {
		s.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: r.statusMsg}
	}
	return s
}

// decodeBatch encodes recs and the export request as the batcher does,
// and decodes it with the official types.
func decodeBatch(t *testing.T, recs ...*recording) *tracepb.ResourceSpans {
	t.Helper()
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
		Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "stoad"}}}}}
	enc := newEncoder(res, "https://opentelemetry.io/schemas/1.43.0")
	var part []byte
	for _, r := range recs {
		part = protowire.AppendTag(part, fScopeSpansSpans, protowire.BytesType)
		part = protowire.AppendBytes(part, appendSpan(nil, r))
	}
	raw := enc.appendRequest(nil, [][]byte{part})
	var got coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.ResourceSpans) != 1 {
		t.Fatalf("%d resource spans", len(got.ResourceSpans))
	}
	rs := got.ResourceSpans[0]
	if len(rs.ProtoReflect().GetUnknown()) != 0 || !proto.Equal(rs.Resource, res) || rs.SchemaUrl != "https://opentelemetry.io/schemas/1.43.0" {
		t.Fatalf("resource spans decoded as %v", rs)
	}
	if len(rs.ScopeSpans) != 1 || rs.ScopeSpans[0].Scope.GetName() != instrumentationName {
		t.Fatalf("scope spans %v", rs.ScopeSpans)
	}
	return rs
}

// TestEncodeMatchesOfficialTypes: the hand-written encoding decodes, with
// the official OTLP types, to the span the SDK's exporter would build.
func TestEncodeMatchesOfficialTypes(t *testing.T) {
	full := fullRecording()
	root := newRecording(nil, KindClient) // no parent, state, links, attributes or failure
	copy(root.traceID[:], "fedcba9876543210")
	copy(root.spanID[:], "spanid02")
	root.flags, root.name, root.start, root.end = FlagSampled, "POST", 1, 2
	rs := decodeBatch(t, full, root)
	spans := rs.ScopeSpans[0].Spans
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	for i, r := range []*recording{full, root} {
		if want := officialSpan(r); !proto.Equal(want, spans[i]) {
			t.Errorf("span %d differs from the official types':\nwant %v\ngot  %v", i, prototext.Format(want), prototext.Format(spans[i]))
		}
	}
	got := spans[0]
	if got.TraceState != "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" {
		t.Errorf("tracestate %q, want the SDK's normalised form", got.TraceState)
	}
	if got.Name != "GET /acme/api" || got.Flags != 0x303 || got.Status.Code != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("name %q flags %#x status %v", got.Name, got.Flags, got.Status)
	}
	attrs := map[string]*commonpb.AnyValue{}
	for _, kv := range got.Attributes {
		if attrs[kv.Key] != nil {
			t.Errorf("attribute %s twice", kv.Key)
		}
		attrs[kv.Key] = kv.Value
	}
	if attrs[AttrHTTPStatus].GetIntValue() != 504 || attrs[AttrClientAddress].GetStringValue() != "203.0.113.7" ||
		attrs["stoa.test.negative"].GetIntValue() != -7 || !attrs[AttrDryRun].GetBoolValue() ||
		attrs[AttrErrorType].GetStringValue() != "upstream_timeout" || attrs[AttrURLPath].GetStringValue() != "/acme/api/v1/items/42" {
		t.Errorf("attributes %v", attrs)
	}
	if got := spans[1]; got.ParentSpanId != nil || got.Flags != 0x101 || got.Status == nil || got.Status.Code != tracepb.Status_STATUS_CODE_UNSET {
		t.Errorf("root span %v", got)
	}
}

// TestAttributeLimit: past maxAttrs attributes are dropped and counted,
// as the SDK counts what passes its limit.
func TestAttributeLimit(t *testing.T) {
	r := newRecording(nil, KindInternal)
	copy(r.traceID[:], "0123456789abcdef")
	copy(r.spanID[:], "spanid01")
	r.name = "x"
	for i := 0; i < maxAttrs+5; i++ {
		r.putInt("k"+strconv.Itoa(i), int64(i))
	}
	r.putInt("k0", -1) // an existing key is still updated
	s := decodeBatch(t, r).ScopeSpans[0].Spans[0]
	if len(s.Attributes) != maxAttrs || s.DroppedAttributesCount != 5 || s.Attributes[0].Value.GetIntValue() != -1 {
		t.Errorf("%d attributes, %d dropped, first %v", len(s.Attributes), s.DroppedAttributesCount, s.Attributes[0])
	}
}

// TestStaleSpanCopy: a copy of a span used after the span ended changes
// nothing, even once its recording has been reused by another span.
func TestStaleSpanCopy(t *testing.T) {
	srv := otlptest.NewServer(t)
	tr := newTracer(t, testConfig(srv))
	first := tr.Start(nil, "first", KindServer)
	stale := first
	first.End()
	// The pool hands the recording out again (same goroutine, same P).
	second := tr.Start(nil, "second", KindServer)
	stale.SetString("stoa.test.leak", "x")
	stale.SetHTTPStatus(500)
	stale.SetName("renamed")
	stale.End()
	second.SetString(AttrTenant, "acme")
	second.End()
	flush(t, tr)
	spans := srv.WaitSpans(t, 2)
	if len(spans) != 2 {
		t.Fatalf("%d spans exported:\n%s", len(spans), otlptest.Dump(spans))
	}
	for _, s := range spans {
		if _, ok := s.Attrs["stoa.test.leak"]; ok || s.StatusCode == "error" || s.Name == "renamed" {
			t.Errorf("stale copy changed span %s: %+v", s.Name, s)
		}
	}
	if s := otlptest.One(t, spans, "second"); s.Attrs[AttrTenant] != "acme" {
		t.Errorf("second span %+v", s)
	}
}

// TestGroupedCalls: the calls that set several attributes, or set a
// status and end, under one lock record what the separate calls record;
// on a stale copy they change nothing.
func TestGroupedCalls(t *testing.T) {
	srv := otlptest.NewServer(t)
	tr := newTracer(t, testConfig(srv))
	sp := tr.Start(nil, "HTTP", KindServer)
	// Routed before the span started: the route with the rest.
	sp.SetHTTPServerRequest(&HTTPServer{Method: []byte("GET"), Path: []byte("/acme/x"), Host: []byte("gw:8080"),
		Peer: netip.MustParseAddrPort("10.0.0.9:5000"), Client: netip.MustParseAddr("192.0.2.1"),
		Route: "/acme", Tenant: "acme", Tool: "x", Consumer: "c1"}, []byte("req-7"))
	auth := sp.StartChild("auth", KindInternal)
	auth.SetStrings(AttrAuthMethod, "api_key", AttrAuthOutcome, "allowed", "stoa.test.odd")
	auth.EndAt(Now())
	att := sp.StartChild("HTTP", KindClient)
	att.SetHTTPClient(&HTTPClient{Method: []byte("GET"), Scheme: "http", Host: "up:9000", Path: []byte("/x"),
		ResendCount: 1, Upstream: "http://up:9000"})
	stale := att
	att.EndHTTP(404)
	stale.EndHTTP(200)
	stale.SetStrings("stoa.test.leak", "x")
	// A span routed after it started (fasthttp's path).
	late := tr.Start(nil, "HTTP", KindServer)
	late.SetHTTPServer(&HTTPServer{Method: []byte("POST"), Path: []byte("/b/y")})
	late.SetHTTPRoute(&HTTPRoute{Method: []byte("POST"), Route: "/b", Client: netip.MustParseAddr("192.0.2.2"),
		Tenant: "b", Tool: "y"}, []byte("req-8"))
	late.EndHTTPAt(503, time.Now())
	sp.EndHTTP(200)
	flush(t, tr)
	spans := srv.WaitSpans(t, 4)
	root := otlptest.One(t, spans, "GET /acme")
	for k, want := range map[string]any{AttrHTTPRoute: "/acme", AttrTenant: "acme", AttrTool: "x", AttrConsumer: "c1",
		AttrRequestID: "req-7", AttrClientAddress: "192.0.2.1", AttrPeerAddress: "10.0.0.9", AttrServerAddress: "gw",
		AttrHTTPStatus: int64(200)} {
		if got := root.Attrs[k]; got != want {
			t.Errorf("server span %s = %v (%T), want %v", k, got, got, want)
		}
	}
	if root.StatusCode == "error" {
		t.Errorf("server span failed on 200: %+v", root)
	}
	a := otlptest.One(t, spans, "auth")
	if a.Attrs[AttrAuthMethod] != "api_key" || a.Attrs[AttrAuthOutcome] != "allowed" || len(a.Attrs) != 2 {
		t.Errorf("auth span attributes %v", a.Attrs)
	}
	c := otlptest.One(t, spans, "GET")
	if c.Attrs[AttrHTTPStatus] != int64(404) || c.StatusCode != "error" || c.Attrs[AttrErrorType] != "404" ||
		c.Attrs[AttrUpstream] != "http://up:9000" || c.Attrs[AttrHTTPResendCount] != int64(1) || c.Attrs["stoa.test.leak"] != nil {
		t.Errorf("attempt span %+v", c)
	}
	l := otlptest.One(t, spans, "POST /b")
	if l.Attrs[AttrHTTPRoute] != "/b" || l.Attrs[AttrTenant] != "b" || l.Attrs[AttrRequestID] != "req-8" ||
		l.Attrs[AttrClientAddress] != "192.0.2.2" || l.Attrs[AttrHTTPStatus] != int64(503) || l.StatusCode != "error" {
		t.Errorf("late-routed span %+v", l)
	}
}

// TestStaleSpanCopyConcurrent: a stale copy used from another goroutine
// while its recording is reused by new spans changes none of them (and,
// under -race, races with nothing: taking a recording from the pool writes
// no field a stale copy reads).
func TestStaleSpanCopyConcurrent(t *testing.T) {
	srv := otlptest.NewServer(t)
	tr := newTracer(t, testConfig(srv))
	first := tr.Start(nil, "first", KindServer)
	stale := first
	first.End()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			stale.SetString("stoa.test.leak", "x")
			stale.SetName("renamed")
			stale.End()
		}
	}()
	const n = 200
	for range n {
		sp := tr.Start(nil, "reused", KindServer)
		sp.SetString(AttrTenant, "acme")
		sp.End()
	}
	close(stop)
	wg.Wait()
	flush(t, tr)
	spans := srv.WaitSpans(t, n+1)
	for _, s := range spans {
		if _, ok := s.Attrs["stoa.test.leak"]; ok || s.Name == "renamed" {
			t.Fatalf("stale copy changed span %s: %+v", s.Name, s)
		}
	}
}

// TestQueueFullDropsSpans: while the collector hangs, ending spans never
// blocks; what the queue cannot hold is dropped and counted, and every
// span is either exported or counted as dropped.
func TestQueueFullDropsSpans(t *testing.T) {
	srv, unblock := hangingCollector(t)
	c := Config{Enabled: true, Endpoint: srv.URL, SampleRatio: 1, QueueSize: 8, BatchTimeout: time.Hour}
	tr := newTracer(t, c)
	const total = 200
	for i := 0; i < total; i++ {
		sp := tr.Start(nil, "x", KindServer)
		sp.End()
	}
	if d := tr.Status().Dropped; d == 0 {
		t.Fatal("a full queue dropped nothing")
	}
	unblock()
	flush(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	s := tr.Status()
	if s.Exported+s.Dropped != total || s.Failed != 0 {
		t.Errorf("exported %d + dropped %d != %d (failed %d)", s.Exported, s.Dropped, total, s.Failed)
	}
	rt := &Runtime{Tracer: tr}
	if n := len(rt.Collectors()); n != 3 {
		t.Errorf("%d collectors", n)
	}
}

// BenchmarkEncode compares encoding a proxied request's server span (about
// 20 attributes) with protowire, as the batcher does, to building the
// official types' message and marshalling it, as the SDK's exporter does.
func BenchmarkEncode(b *testing.B) {
	r := fullRecording()
	for _, k := range []string{AttrURLScheme, AttrServerAddress, AttrPeerAddress, AttrUserAgent, AttrProtocolVersion,
		AttrHTTPRoute, AttrTenant, AttrTool, AttrConsumer, AttrRequestID, AttrPeerPort} {
		r.putBytes(k, []byte("some-value-of-a-usual-length"))
	}
	b.Run("protowire", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = appendSpan(buf[:0], r)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("official-types", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var err error
			buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], officialSpan(r))
			if err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
}

// TestEncodeBytesMatchOfficial: the encoder writes the official
// marshaller's bytes, not merely bytes that decode alike: fields in number
// order, minimal varints, and lengths at the one-, two- and three-byte
// boundaries of a varint (values, a name and a status message of 127, 128,
// 16383 and 16384 bytes).
func TestEncodeBytesMatchOfficial(t *testing.T) {
	check := func(name string, r *recording) {
		t.Helper()
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(officialSpan(r))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendSpan(nil, r); !bytes.Equal(got, want) {
			t.Errorf("%s: encoded %d bytes differ from the official marshaller's %d:\ngot  %x\nwant %x", name, len(got), len(want), got, want)
		}
	}
	check("full", fullRecording())
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 70000} {
		r := fullRecording()
		v := strings.Repeat("v", n)
		r.name, r.name2 = v, ""
		r.putString(AttrUserAgent, v)
		r.putBytes(AttrURLPath, []byte(v))
		r.putString(strings.Repeat("k", max(1, min(n, 300))), "x")
		r.putInt("stoa.test.big", int64(n)<<40)
		r.statusMsg = v
		check(fmt.Sprintf("values of %d bytes", n), r)
		r.name2 = "/route"
		check(fmt.Sprintf("two-part name of %d bytes", n), r)
	}
	r := fullRecording()
	for i := range maxAttrs + 3 {
		r.putInt(fmt.Sprintf("stoa.test.%d", i), int64(i))
	}
	check("dropped attributes", r)
	r = newRecording(nil, KindInternal)
	r.start, r.end, r.nlinks = 1, 2, 1
	check("bare", r)
}

// TestSpanTimesOneScale: a time the caller read with time.Now (a request's
// start, its answer) is put on the scale of the times spans read
// themselves — the clock anchor's wall time plus the monotonic distance —
// so that a parent ended at a caller's time and its children agree even
// when the wall clock has moved since the anchor; a time without a
// monotonic reading (Now's) is its wall time.
func TestSpanTimesOneScale(t *testing.T) {
	wall := time.Unix(0, 1_700_000_000_123_456_789)
	if got := nanos(wall); got != wall.UnixNano() {
		t.Errorf("nanos of a wall-only time = %d, want %d", got, wall.UnixNano())
	}
	if got, want := nanos(Now()), now(); got > want || want-got > int64(time.Second) {
		t.Errorf("nanos(Now()) = %d, now() = %d", got, want)
	}
	defer anchorClock()
	// The wall clock as of the anchor was an hour ahead of what time.Now
	// now says (a step back since).
	base := time.Now()
	clock.Store(&clockAnchor{wall: base.UnixNano() + int64(time.Hour), mono: base})
	read := time.Now()
	got, own := nanos(read), now()
	if d := own - got; d < 0 || d > int64(time.Second) {
		t.Errorf("nanos(time.Now()) = %d, now() = %d: %v apart, want the same scale", got, own, time.Duration(d))
	}
	if d := got - read.UnixNano(); d < int64(59*time.Minute) {
		t.Errorf("nanos(time.Now()) followed the wall clock (%v from it), not the anchor", time.Duration(d))
	}
}

// hangingCollector is an OTLP/HTTP receiver that holds every export
// request until unblock is called (at the latest when the test ends).
func hangingCollector(t *testing.T) (srv *httptest.Server, unblock func()) {
	release := make(chan struct{})
	var once sync.Once
	unblock = func() { once.Do(func() { close(release) }) }
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(unblock)
	return srv, unblock
}
