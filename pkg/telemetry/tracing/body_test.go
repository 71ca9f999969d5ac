package tracing

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

// TestRequestBytesMatchOfficial: the export request the batcher writes is,
// byte for byte, what the official client marshalled when it was handed
// the batch as a tracepb.ResourceSpans carrying the encoded scope_spans
// field in its unknown fields — with batches whose lengths take one, two
// and three bytes, and parts split as the queue's shards split them.
func TestRequestBytesMatchOfficial(t *testing.T) {
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
		Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "stoad"}}}}}
	enc := newEncoder(res, "https://opentelemetry.io/schemas/1.43.0")
	if enc.err != nil {
		t.Fatal(enc.err)
	}
	for _, n := range []int{0, 1, 2, 60, 400, 2048} {
		var parts [queueShards][]byte
		for i := range n {
			r := fullRecording()
			r.spanID[0] = byte(i)
			p := &parts[i%queueShards]
			*p = protowire.AppendTag(*p, fScopeSpansSpans, protowire.BytesType)
			*p = protowire.AppendBytes(*p, appendSpan(nil, r))
		}
		// The official client's request, as the batcher built it before.
		raw := protowire.AppendTag(nil, fResourceScopes, protowire.BytesType)
		ss := append([]byte(nil), enc.scope...)
		for _, p := range parts {
			ss = append(ss, p...)
		}
		raw = protowire.AppendBytes(raw, ss)
		rs := &tracepb.ResourceSpans{Resource: res, SchemaUrl: "https://opentelemetry.io/schemas/1.43.0"}
		rs.ProtoReflect().SetUnknown(protoreflect.RawFields(raw))
		want, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}})
		if err != nil {
			t.Fatal(err)
		}
		got := enc.appendRequest([]byte("stale"), parts[:])
		if !bytes.Equal(got[5:], want) {
			t.Errorf("%d spans: %d bytes differ from the official client's %d", n, len(got)-5, len(want))
		}
	}
}

// TestBodyReaderLifetime: a reader fails after Close, a body is not
// handed out after its upload ended, and the buffer goes back to the
// pool only when the upload and every reader are done with it.
func TestBodyReaderLifetime(t *testing.T) {
	pool := newBodyPool()
	b := pool.get()
	b.buf = append(b.buf, "0123456789"...)
	u := &upload{b: b}
	r1, n, err := u.open()
	if err != nil || n != 10 {
		t.Fatalf("open: %d, %v", n, err)
	}
	r2, err := u.reader()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r2); err != nil || string(got) != "0123456789" {
		t.Fatalf("read %q, %v", got, err)
	}
	_ = r2.Close()
	_ = r2.Close() // a second Close drops no second reference
	u.end()
	if _, err := u.reader(); err != errUploadDone {
		t.Errorf("reader after the upload ended: %v", err)
	}
	if len(pool.free) != 0 {
		t.Fatal("body pooled while a reader is open")
	}
	var p [4]byte
	if n, err := r1.Read(p[:]); n != 4 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	_ = r1.Close()
	if _, err := r1.Read(p[:]); err != errBodyClosed {
		t.Errorf("read after close: %v", err)
	}
	if len(pool.free) != 1 {
		t.Fatal("body not pooled after its last reader closed")
	}
	if again := pool.get(); again != b || len(again.buf) != 0 || again.refs.Load() != 1 {
		t.Errorf("pooled body not reset: %d bytes, %d refs", len(again.buf), again.refs.Load())
	}
}

// TestExportBodyReuse: the batcher reuses export bodies while net/http
// may still be reading the last one. The receiver answers every other
// request before reading its body — the client's transport then still
// writes the body after RoundTrip returned — and reads the others slowly,
// in small pieces; spans end on several goroutines at once, so batches
// follow each other. Under -race, a body written while the transport
// still reads it is reported; every request read in full must decode to
// intact spans (each span's name and attribute carry the same number),
// none twice.
func TestExportBodyReuse(t *testing.T) {
	for _, comp := range []string{CompressionNone, CompressionGzip} {
		t.Run("compression="+comp, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[int64]bool{}
			var requests, decoded atomic.Int64
			var bad []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if requests.Add(1)%2 == 0 {
					w.Header().Set("Content-Type", "application/x-protobuf")
					w.Header().Set("Connection", "close") // the transport may still be writing
					return
				}
				var body io.Reader = r.Body
				if r.Header.Get("Content-Encoding") == "gzip" {
					zr, err := newGzipReader(r.Body)
					if err != nil {
						http.Error(w, err.Error(), 400)
						return
					}
					body = zr
				}
				var raw []byte
				p := make([]byte, 512)
				for i := 0; ; i++ {
					n, err := body.Read(p)
					raw = append(raw, p[:n]...)
					if err != nil {
						break
					}
					if i%16 == 0 {
						time.Sleep(10 * time.Microsecond)
					}
				}
				var req coltracepb.ExportTraceServiceRequest
				if err := proto.Unmarshal(raw, &req); err != nil {
					mu.Lock()
					bad = append(bad, err.Error())
					mu.Unlock()
					http.Error(w, err.Error(), 400)
					return
				}
				decoded.Add(1)
				mu.Lock()
				for _, rs := range req.ResourceSpans {
					for _, ss := range rs.ScopeSpans {
						for _, s := range ss.Spans {
							var seq int64 = -1
							for _, kv := range s.Attributes {
								if kv.Key == "stoa.test.seq" {
									seq = kv.Value.GetIntValue()
								}
							}
							if s.Name != "span-"+strconv.FormatInt(seq, 10) || seen[seq] {
								bad = append(bad, fmt.Sprintf("span %q seq %d (seen before: %v)", s.Name, seq, seen[seq]))
							}
							seen[seq] = true
						}
					}
				}
				mu.Unlock()
				w.Header().Set("Content-Type", "application/x-protobuf")
			}))
			defer srv.Close()
			c := Config{Enabled: true, Endpoint: srv.URL + otlptest.TracesPath, SampleRatio: 1,
				BatchTimeout: time.Millisecond, QueueSize: 2048, Compression: comp, ServiceName: "stoad-test"}
			tr := newTracer(t, c)
			// Spans end until the receiver has had 40 requests (or each
			// goroutine ended its share), in batches of up to 128 spans.
			const workers, each, wantRequests = 4, 25_000, 40
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each && requests.Load() < wantRequests; i++ {
						seq := int64(w*each + i)
						sp := tr.Start(&Incoming{}, "span-"+strconv.FormatInt(seq, 10), KindInternal)
						sp.SetInt("stoa.test.seq", seq)
						sp.SetString(AttrUserAgent, "Mozilla/5.0 (X11; Linux x86_64) a value long enough to fill the buffers")
						sp.End()
					}
				}()
			}
			wg.Wait()
			flush(t, tr)
			mu.Lock()
			defer mu.Unlock()
			for _, b := range bad {
				t.Error(b)
			}
			if decoded.Load() == 0 || len(seen) == 0 {
				t.Fatalf("no request read in full (%d requests)", requests.Load())
			}
			t.Logf("%d requests, %d read in full, %d spans checked", requests.Load(), decoded.Load(), len(seen))
		})
	}
}

// TestExportRetryResendsBody: a retried export request (the collector
// answered 503) carries the same body again: the client asks for a new
// body each attempt, and exportTransport gives it a new reader of the
// batch's buffer.
func TestExportRetryResendsBody(t *testing.T) {
	for _, comp := range []string{CompressionNone, CompressionGzip} {
		t.Run("compression="+comp, func(t *testing.T) {
			srv := otlptest.NewServer(t)
			c := testConfig(srv)
			c.Compression = comp
			tr := newTracer(t, c)
			srv.FailNext(http.StatusServiceUnavailable)
			for i := range 3 {
				sp := tr.Start(&Incoming{}, "retried", KindServer)
				sp.SetInt("stoa.test.seq", int64(i))
				sp.End()
			}
			flush(t, tr)
			spans := srv.WaitSpans(t, 3)
			reqs := srv.Requests()
			if len(reqs) != 2 || reqs[0].Spans != 3 || reqs[1].Spans != 3 || len(spans) != 3 {
				t.Fatalf("requests %+v, %d spans; want the refused request of 3 spans and its retry", reqs, len(spans))
			}
			for _, r := range reqs {
				if r.Header.Get("User-Agent") == "" || r.Header.Get("Content-Type") != "application/x-protobuf" {
					t.Errorf("request headers %v", r.Header)
				}
				if got, want := r.Header.Get("Content-Encoding"), map[string]string{CompressionGzip: "gzip"}[comp]; got != want {
					t.Errorf("Content-Encoding %q, want %q", got, want)
				}
			}
			if st := tr.Status(); st.Exported != 3 || st.Failed != 0 {
				t.Errorf("status %+v", st)
			}
		})
	}
}

func newGzipReader(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }
