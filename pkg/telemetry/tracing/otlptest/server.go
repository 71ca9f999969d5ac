// Package otlptest is an OTLP/HTTP trace receiver for tests: it runs in
// the test process, decodes export requests with the official OTLP
// protobuf types and records the spans, so a test can assert the span
// tree stoad exported.
package otlptest

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TracesPath is where the receiver takes export requests.
const TracesPath = "/v1/traces"

// maxBody bounds one export request (after decompression).
const maxBody = 16 << 20

// Span is one received span, flattened for assertions.
type Span struct {
	TraceID, SpanID, ParentSpanID string // lower-case hex; ParentSpanID "" for a root
	TraceState                    string
	Flags                         uint32
	Name                          string
	Kind                          string // "server", "client", "internal", "producer", "consumer"
	Start, End                    time.Time
	Attrs                         map[string]any // string, int64, float64, bool, []any
	StatusCode                    string         // "unset", "ok", "error"
	StatusMessage                 string
	Links                         []Link
	Resource                      map[string]any
	Scope                         string
}

// Link is a received span link.
type Link struct {
	TraceID, SpanID string
}

// Request is one export request as received.
type Request struct {
	Header http.Header
	Spans  int
}

// Server is an OTLP/HTTP receiver on a loopback port.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	spans    []Span
	requests []Request
	fail     []int // statuses to answer the next requests with
	changed  chan struct{}
}

// NewServer starts a receiver, closed when tb's test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{changed: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	tb.Cleanup(s.srv.Close)
	return s
}

// Endpoint is the receiver's traces URL, for tracing.Config.Endpoint.
func (s *Server) Endpoint() string { return s.srv.URL + TracesPath }

// FailNext makes the next len(statuses) export requests fail with those
// HTTP statuses (their spans are not recorded).
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	s.fail = append(s.fail, statuses...)
	s.mu.Unlock()
}

// Spans returns the spans received so far, in arrival order.
func (s *Server) Spans() []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Span(nil), s.spans...)
}

// Requests returns the export requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// waitLimit bounds WaitSpans. It is no performance assertion: exports
// happen on flush or after the batch timeout, and a busy machine may be
// slow; the limit only keeps a broken test from hanging.
const waitLimit = 30 * time.Second

// WaitSpans waits until at least n spans have arrived and returns them;
// the test fails if they do not arrive.
func (s *Server) WaitSpans(tb testing.TB, n int) []Span {
	tb.Helper()
	deadline := time.After(waitLimit)
	for {
		s.mu.Lock()
		got, ch := len(s.spans), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Spans()
		}
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("otlptest: %d spans received, want %d:\n%s", got, n, Dump(s.Spans()))
			return nil
		}
	}
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != TracesPath {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "unsupported content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, maxBody)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, "bad gzip body: "+err.Error(), http.StatusBadRequest)
			return
		}
		body = io.LimitReader(zr, maxBody+1)
	default:
		http.Error(w, "unsupported content encoding "+enc, http.StatusUnsupportedMediaType)
		return
	}
	raw, err := io.ReadAll(body)
	if err != nil || len(raw) > maxBody {
		http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		http.Error(w, "bad protobuf: "+err.Error(), http.StatusBadRequest)
		return
	}
	spans := flatten(&req)

	s.mu.Lock()
	s.requests = append(s.requests, Request{Header: r.Header.Clone(), Spans: len(spans)})
	var status int
	if len(s.fail) > 0 {
		status, s.fail = s.fail[0], s.fail[1:]
	} else {
		s.spans = append(s.spans, spans...)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	if status != 0 {
		http.Error(w, "export refused by test", status)
		return
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func flatten(req *coltracepb.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s := Span{
					TraceID:       hex.EncodeToString(sp.GetTraceId()),
					SpanID:        hex.EncodeToString(sp.GetSpanId()),
					ParentSpanID:  hex.EncodeToString(sp.GetParentSpanId()),
					TraceState:    sp.GetTraceState(),
					Flags:         sp.GetFlags(),
					Name:          sp.GetName(),
					Kind:          kindName(sp.GetKind()),
					Start:         time.Unix(0, int64(sp.GetStartTimeUnixNano())),
					End:           time.Unix(0, int64(sp.GetEndTimeUnixNano())),
					Attrs:         attrMap(sp.GetAttributes()),
					StatusCode:    statusName(sp.GetStatus().GetCode()),
					StatusMessage: sp.GetStatus().GetMessage(),
					Resource:      res,
					Scope:         ss.GetScope().GetName(),
				}
				for _, l := range sp.GetLinks() {
					s.Links = append(s.Links, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())})
				}
				out = append(out, s)
			}
		}
	}
	return out
}

func kindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "internal"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	}
	return "unspecified"
}

func statusName(c tracepb.Status_StatusCode) string {
	switch c {
	case tracepb.Status_STATUS_CODE_OK:
		return "ok"
	case tracepb.Status_STATUS_CODE_ERROR:
		return "error"
	}
	return "unset"
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		var out []any
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, value(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return attrMap(x.KvlistValue.GetValues())
	}
	return nil
}

// Find returns the spans named name.
func Find(spans []Span, name string) []Span {
	var out []Span
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// One returns the one span named name; the test fails if there is not
// exactly one.
func One(tb testing.TB, spans []Span, name string) Span {
	tb.Helper()
	got := Find(spans, name)
	if len(got) != 1 {
		tb.Fatalf("otlptest: %d spans named %q, want 1:\n%s", len(got), name, Dump(spans))
		return Span{}
	}
	return got[0]
}

// Children returns parent's child spans, by start time.
func Children(spans []Span, parent Span) []Span {
	var out []Span
	for _, s := range spans {
		if s.TraceID == parent.TraceID && s.ParentSpanID == parent.SpanID {
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Dump renders spans as an indented tree per trace, for failure messages.
func Dump(spans []Span) string {
	var b bytes.Buffer
	byID := map[string]bool{}
	for _, s := range spans {
		byID[s.TraceID+s.SpanID] = true
	}
	var walk func(s Span, depth int)
	walk = func(s Span, depth int) {
		fmt.Fprintf(&b, "%s%s [%s] trace=%s span=%s parent=%s status=%s %v\n",
			strings.Repeat("  ", depth), s.Name, s.Kind, s.TraceID, s.SpanID, s.ParentSpanID, s.StatusCode, s.Attrs)
		for _, c := range Children(spans, s) {
			walk(c, depth+1)
		}
	}
	for _, s := range spans {
		if s.ParentSpanID == "" || !byID[s.TraceID+s.ParentSpanID] {
			walk(s, 0)
		}
	}
	return b.String()
}
