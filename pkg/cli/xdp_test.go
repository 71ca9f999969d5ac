package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
)

func TestDataValue(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{float64(1234567), "1234567"},
		{1.5, "1.5"},
		{"generic", "generic"},
		{true, "true"},
		{[]any{"s-c", "s-a"}, "s-c, s-a"},
		{[]any{float64(8080)}, "8080"},
		{map[string]any{"passed": float64(3e6), "dropped_rate": float64(12)}, "dropped_rate=12 passed=3000000"},
		{nil, "<nil>"},
	} {
		if got := dataValue(tc.in); got != tc.want {
			t.Errorf("dataValue(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// fakeXDPDaemon serves the XDP LocalAPI routes on a unix socket and
// records what it was asked.
func fakeXDPDaemon(t *testing.T) (socket string, got *[]string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "stoa-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket = filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	until := time.Date(2026, 5, 4, 12, 10, 0, 0, time.UTC)
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET "+api.PathXDPStatus, func(w http.ResponseWriter, r *http.Request) {
		write(w, 200, api.XDPStatus{Enabled: true, Attached: true, Mode: "generic",
			Interfaces: []api.XDPInterface{{Name: "eth0", Mode: "generic"}}, Ports: []int{8080},
			PerSource:  &api.XDPRate{Rate: "2000/s", PerSecond: 2000, Burst: 4000, Count: "packets"},
			Escalation: &api.XDPEscalation{After: 50, WithinSeconds: 60, BlockSeconds: 600},
			Counters:   api.XDPCounters{Passed: 100, DroppedRate: 7, DroppedBlock: 3}, TrackedSources: 2, Blocks: 1,
			TopSources: []api.XDPSource{{Addr: "198.51.100.7", Passed: 10, Dropped: 7}}})
	})
	mux.HandleFunc("GET "+api.PathXDPBlocks, func(w http.ResponseWriter, r *http.Request) {
		write(w, 200, api.XDPBlockList{Items: []api.XDPBlock{{Source: "198.51.100.7/32", Reason: "escalated: 51 rejections in 1m0s", Until: until, ExpiresInSeconds: 599.6}}})
	})
	mux.HandleFunc("POST "+api.PathXDPBlocks, func(w http.ResponseWriter, r *http.Request) {
		var req api.XDPBlockRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		calls = append(calls, "block "+req.CIDR+" "+req.For+" "+req.Reason)
		write(w, 200, api.XDPBlock{Source: req.CIDR + "/32", Reason: req.Reason, Until: until})
	})
	mux.HandleFunc("POST "+api.PathXDPUnblock, func(w http.ResponseWriter, r *http.Request) {
		var req api.XDPUnblockRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		calls = append(calls, "unblock "+req.CIDR)
		write(w, 200, api.XDPUnblockResponse{Source: req.CIDR + "/32", Removed: req.CIDR == "198.51.100.7"})
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return socket, &calls
}

func TestXDPCommands(t *testing.T) {
	socket, calls := fakeXDPDaemon(t)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Run(context.Background(), append([]string{"--socket", socket}, args...), &IOStreams{Out: &out, ErrOut: &errb})
		return code, out.String(), errb.String()
	}
	for _, tc := range []struct {
		args       []string
		code       int
		out, err   string
		notOut     string
		wantCalled string
	}{
		{args: []string{"xdp", "status"}, out: "interfaces:   eth0 (generic)"},
		{args: []string{"xdp", "status"}, out: "packets:      passed 100, dropped 10 (rate 7, deny 0, block 3)"},
		{args: []string{"xdp", "status"}, out: "escalation:   after 50 rejections within 1m0s, block for 10m0s"},
		{args: []string{"xdp", "status"}, out: "top sources:  198.51.100.7"},
		{args: []string{"xdp", "status", "-o", "json"}, out: `"perSecond": 2000`},
		{args: []string{"xdp", "blocks"}, out: "198.51.100.7/32   escalated: 51 rejections in 1m0s"},
		{args: []string{"xdp", "blocks", "-o", "json"}, out: `"expiresInSeconds": 599.6`},
		{args: []string{"xdp", "block", "198.51.100.9", "--for", "10m", "--reason", "stuffing"}, out: "blocked 198.51.100.9/32 until",
			wantCalled: "block 198.51.100.9 10m stuffing"},
		{args: []string{"xdp", "block", "198.51.100.9"}, code: ExitFailure, err: "--for is required", notOut: "blocked"},
		{args: []string{"xdp", "unblock", "198.51.100.7"}, out: "unblocked 198.51.100.7/32", wantCalled: "unblock 198.51.100.7"},
		{args: []string{"xdp", "unblock", "198.51.100.8"}, err: "was not blocked", notOut: "unblocked"},
		{args: []string{"xdp", "unblock", "198.51.100.8", "-o", "json"}, out: `"removed": false`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			*calls = nil
			code, out, errOut := run(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) ||
				(tc.notOut != "" && strings.Contains(out, tc.notOut)) {
				t.Fatalf("exit %d\n--- stdout\n%s--- stderr\n%s", code, out, errOut)
			}
			if tc.wantCalled != "" && (len(*calls) != 1 || (*calls)[0] != tc.wantCalled) {
				t.Fatalf("daemon calls %q, want %q", *calls, tc.wantCalled)
			}
		})
	}
}
