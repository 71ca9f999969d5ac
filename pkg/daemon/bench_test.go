package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/internal/benchspecs"
	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/specload"
)

// benchSpecs writes the spec set of scripts/bench-apply.sh — n Tools with
// two operations each across m tenants, one file per tenant — with every
// description suffixed by variant, and returns the directory.
func benchSpecs(tb testing.TB, n, m int, variant string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := benchspecs.WriteDir(dir, n, m, variant); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// benchDaemon starts an in-process stoad with the default runtimes on a
// fresh state directory and returns a client of its LocalAPI and a
// function that stops it.
func benchDaemon(b *testing.B) (*client.Client, *Daemon, func()) {
	b.Helper()
	sock, err := os.MkdirTemp("", "stoa-bench")
	if err != nil {
		b.Fatal(err)
	}
	state, err := os.MkdirTemp("", "stoa-bench-state")
	if err != nil {
		b.Fatal(err)
	}
	cfg := &Config{StateDir: state, Socket: filepath.Join(sock, "s.sock"), MCPSocket: filepath.Join(sock, "m.sock"),
		Listen: "127.0.0.1:0", LogLevel: "warn"}
	d, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Runtimes: DefaultRuntimes})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for !d.Ready() {
		select {
		case err := <-done:
			b.Fatalf("stoad stopped during start-up: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return client.New(cfg.Socket), d, func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("stoad: %v", err)
		}
		os.RemoveAll(sock)
		os.RemoveAll(state)
	}
}

// loadWire loads specs as `stoa apply` does: defaulted objects for the
// CLI's own checks, and the objects as written for the request.
func loadWire(b *testing.B, dir string) json.RawMessage {
	b.Helper()
	res, err := specload.Load(context.Background(), []string{dir}, specload.Options{KeepRaw: true})
	if err != nil {
		b.Fatal(err)
	}
	if res.Diagnostics.HasErrors() {
		b.Fatal(res.Diagnostics.Error())
	}
	return res.Raw
}

// BenchmarkApply10kTools measures stoad's side of `make bench-apply`
// in-process, through the real LocalAPI and runtimes: the request as the
// CLI sends it (objects as written), decoded, planned, validated,
// compiled by every runtime, committed and swapped in. first: into an
// empty state; update: every Tool changed; one: the whole request with
// one Tool changed; noop: the full request when
// nothing changed (the CLI skips it when the digests match); diff: a dry
// run of 10,000 new objects with the objects in the answer, as
// `stoa diff` asks.
func BenchmarkApply10kTools(b *testing.B) {
	const n, m = 10000, 20
	wireA := loadWire(b, benchSpecs(b, n, m, ""))
	wireB := loadWire(b, benchSpecs(b, n, m, " (v2)"))
	wireOne := loadWire(b, oneToolChanged(b, benchSpecs(b, n, m, ""), m, 4242))
	ctx := context.Background()
	apply := func(b *testing.B, c *client.Client, req api.ApplyRequest, wire json.RawMessage) *api.ApplyResponse {
		resp, err := c.ApplyEncoded(ctx, &req, wire)
		if err != nil {
			b.Fatal(err)
		}
		return resp
	}
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		var cpu time.Duration
		for b.Loop() {
			b.StopTimer()
			c, _, stop := benchDaemon(b)
			b.StartTimer()
			start := processCPUTime()
			if r := apply(b, c, api.ApplyRequest{}, wireA); r.Summary.Create != n+m {
				b.Fatalf("summary %+v", r.Summary)
			}
			cpu += processCPUTime() - start
			b.StopTimer()
			stop()
			b.StartTimer()
		}
		b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/op")
	})
	b.Run("update", func(b *testing.B) {
		c, _, stop := benchDaemon(b)
		defer stop()
		apply(b, c, api.ApplyRequest{}, wireA)
		wires := []json.RawMessage{wireB, wireA}
		b.ReportAllocs()
		defer reportCPU(b, processCPUTime())
		i := 0
		for b.Loop() {
			if r := apply(b, c, api.ApplyRequest{}, wires[i%2]); r.Summary.Update != n {
				b.Fatalf("summary %+v", r.Summary)
			}
			i++
		}
	})
	b.Run("one", func(b *testing.B) {
		// The whole request, one Tool changed: what `stoa apply -f dir`
		// sends after editing one file.
		c, _, stop := benchDaemon(b)
		defer stop()
		apply(b, c, api.ApplyRequest{}, wireA)
		wires := []json.RawMessage{wireOne, wireA}
		b.ReportAllocs()
		defer reportCPU(b, processCPUTime())
		i := 0
		for b.Loop() {
			if r := apply(b, c, api.ApplyRequest{}, wires[i%2]); r.Summary.Update != 1 {
				b.Fatalf("summary %+v", r.Summary)
			}
			i++
		}
	})
	b.Run("noop", func(b *testing.B) {
		c, _, stop := benchDaemon(b)
		defer stop()
		apply(b, c, api.ApplyRequest{}, wireA)
		b.ReportAllocs()
		defer reportCPU(b, processCPUTime())
		for b.Loop() {
			if r := apply(b, c, api.ApplyRequest{}, wireA); !r.Summary.Empty() {
				b.Fatalf("summary %+v", r.Summary)
			}
		}
	})
	b.Run("diff", func(b *testing.B) {
		c, _, stop := benchDaemon(b)
		defer stop()
		b.ReportAllocs()
		defer reportCPU(b, processCPUTime())
		for b.Loop() {
			if r := apply(b, c, api.ApplyRequest{DryRun: true, WithObjects: true}, wireA); r.Summary.Create != n+m {
				b.Fatalf("summary %+v", r.Summary)
			}
		}
	})
}

// oneToolChanged changes tool i's description in the spec directory of
// benchSpecs (m tenants) and returns the directory.
func oneToolChanged(tb testing.TB, dir string, m, i int) string {
	tb.Helper()
	f := filepath.Join(dir, fmt.Sprintf("tenant-%02d.yaml", i%m))
	b, err := os.ReadFile(f)
	if err != nil {
		tb.Fatal(err)
	}
	old := fmt.Sprintf("Generated tool %d.", i)
	if !strings.Contains(string(b), old) {
		tb.Fatalf("%s: no %q", f, old)
	}
	if err := os.WriteFile(f, []byte(strings.Replace(string(b), old, fmt.Sprintf("Generated tool %d (one).", i), 1)), 0o600); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// reportCPU adds the CPU time per operation since start (all threads, the
// client's included) to the results: on a shared machine it drifts far
// less than wall time.
func reportCPU(b *testing.B, start time.Duration) {
	if start != 0 {
		b.ReportMetric(float64(processCPUTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
	}
}
