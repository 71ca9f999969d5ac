package mcp

import (
	"strings"
	"testing"
)

// TestTruncatedResultNamesWhatWasSent: a result cut at the cap says how
// much the upstream sent — its declared length, or "more than" what was
// read when it declared none — never the size of the read buffer.
func TestTruncatedResultNamesWhatWasSent(t *testing.T) {
	s := &Server{opts: Options{MaxResultBytes: 16}}
	tool := &Tool{Tenant: "acme"}
	read := []byte(strings.Repeat("a", 33)) // the backend read cap + 1
	for _, tc := range []struct {
		name string
		resp UpstreamResponse
		want string
	}{
		{"declared", UpstreamResponse{Status: 200, ContentType: "text/plain", Body: read, Truncated: true, Size: 5 << 20}, "the upstream sent 5242880 bytes"},
		{"undeclared", UpstreamResponse{Status: 200, ContentType: "text/plain", Body: read, Truncated: true, Size: -1}, "the upstream sent more than 32 bytes"},
		{"whole", UpstreamResponse{Status: 200, ContentType: "text/plain", Body: []byte(strings.Repeat("b", 20)), Size: 20}, "the upstream sent 20 bytes"},
		{"binary", UpstreamResponse{Status: 200, ContentType: "application/octet-stream", Body: append([]byte{0xff, 0xfe}, read...), Truncated: true, Size: 1 << 30}, "The upstream sent 1073741824 bytes of application/octet-stream"},
		// A truncated body is never parsed as JSON, even when its first
		// bytes are.
		{"json", UpstreamResponse{Status: 200, ContentType: "application/json", Body: []byte(`{"a":1}`), Truncated: true, Size: 9 << 20}, "the upstream sent 9437184 bytes"},
	} {
		got := string(s.appendUpstreamResult(nil, tool, &tc.resp, eraModern))
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: %s; want it to contain %q", tc.name, got, tc.want)
		}
	}
}
