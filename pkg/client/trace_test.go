package client

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// TestTraceContextFromEnvironment: TRACEPARENT and TRACESTATE go to stoad
// as traceparent and tracestate headers on a remote context (the unix
// socket's are TestChangeSpans' in pkg/daemon); values that could break
// the request (control characters, oversized) are not sent, and a bad
// TRACESTATE never costs the TRACEPARENT.
func TestTraceContextFromEnvironment(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []http.Header
	)
	srv := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	}))
	r := newRemote(t, RemoteOptions{Server: srv.URL, RootCAs: trusting(srv)})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		name, traceparent, tracestate string
		wantTP, wantTS                string
	}{
		{"both", tp, "ci=job-7", tp, "ci=job-7"},
		{"none", "", "ci=job-7", "", ""},
		{"newline in traceparent", tp + "\r\nX-Evil: 1", "", "", ""},
		{"bad tracestate", tp, "a=1\nb=2", tp, ""},
		{"oversized tracestate", tp, strings.Repeat("a", 9000), tp, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TRACEPARENT", tc.traceparent)
			t.Setenv("TRACESTATE", tc.tracestate)
			mu.Lock()
			seen = nil
			mu.Unlock()
			if _, err := r.Rollback(context.Background(), &api.RollbackRequest{DryRun: true}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 1 {
				t.Fatalf("%d requests", len(seen))
			}
			if got := seen[0].Get("traceparent"); got != tc.wantTP {
				t.Errorf("traceparent %q, want %q", got, tc.wantTP)
			}
			if got := seen[0].Get("tracestate"); got != tc.wantTS {
				t.Errorf("tracestate %q, want %q", got, tc.wantTS)
			}
			if seen[0].Get("X-Evil") != "" {
				t.Error("a header was injected")
			}
		})
	}
}
