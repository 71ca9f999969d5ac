package otlptest

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func request(t *testing.T) []byte {
	t.Helper()
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "svc")}},
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: "scope"},
			Spans: []*tracepb.Span{
				{TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{2}, 8), Name: "root", Kind: tracepb.Span_SPAN_KIND_SERVER,
					Attributes: []*commonpb.KeyValue{str("k", "v"), {Key: "n", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 7}}}}},
				{TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{3}, 8), ParentSpanId: bytes.Repeat([]byte{2}, 8), Name: "child",
					Kind: tracepb.Span_SPAN_KIND_CLIENT, Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom"}},
			},
		}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t *testing.T, url, ctype, enc string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServer(t *testing.T) {
	s := NewServer(t)
	body := request(t)
	if code := post(t, s.Endpoint(), "application/x-protobuf", "", body); code != 200 {
		t.Fatalf("plain export: %d", code)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	if code := post(t, s.Endpoint(), "application/x-protobuf", "gzip", gz.Bytes()); code != 200 {
		t.Fatalf("gzip export: %d", code)
	}
	spans := s.WaitSpans(t, 4)
	root := One(t, spans[:2], "root")
	if root.Kind != "server" || root.Attrs["k"] != "v" || root.Attrs["n"] != int64(7) || root.Resource["service.name"] != "svc" || root.Scope != "scope" || root.ParentSpanID != "" {
		t.Errorf("root %+v", root)
	}
	kids := Children(spans[:2], root)
	if len(kids) != 1 || kids[0].Name != "child" || kids[0].StatusCode != "error" || kids[0].StatusMessage != "boom" {
		t.Errorf("children %+v", kids)
	}

	for _, c := range []struct {
		url, ctype, enc string
		body            []byte
		want            int
	}{
		{s.Endpoint(), "application/json", "", []byte("{}"), http.StatusUnsupportedMediaType},
		{s.Endpoint(), "application/x-protobuf", "br", body, http.StatusUnsupportedMediaType},
		{s.Endpoint(), "application/x-protobuf", "gzip", body, http.StatusBadRequest},
		{s.Endpoint(), "application/x-protobuf", "", []byte{0xff, 0xff}, http.StatusBadRequest},
		{s.srv.URL + "/v1/metrics", "application/x-protobuf", "", body, http.StatusNotFound},
	} {
		if code := post(t, c.url, c.ctype, c.enc, c.body); code != c.want {
			t.Errorf("%s %s %s: %d, want %d", c.url, c.ctype, c.enc, code, c.want)
		}
	}
	s.FailNext(503)
	if code := post(t, s.Endpoint(), "application/x-protobuf", "", body); code != 503 {
		t.Errorf("FailNext: %d", code)
	}
	if got := len(s.Spans()); got != 4 {
		t.Errorf("%d spans after refused and bad exports, want 4", got)
	}
	if got := len(s.Requests()); got != 3 {
		t.Errorf("%d requests recorded, want 3 (decoded ones)", got)
	}
}
