//go:build unix

package specload

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/internal/benchspecs"
	"github.com/stoa-gateway/stoa/pkg/plan"
)

// genBenchApply writes the spec set of scripts/bench-apply.sh: n Tools
// with two operations each across m tenants, one file per tenant.
func genBenchApply(tb testing.TB, n, m int) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := benchspecs.WriteDir(dir, n, m, ""); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// BenchmarkApplyCLI10k measures the CLI's side of `stoa apply` on the
// `make bench-apply` specs (10,000 Tools, 20 tenants): load is what every
// apply does before it talks to stoad (read, decode, default, validate);
// raw is what a first apply adds, the request form; digest is what a no-op
// apply adds to find that nothing changed.
func BenchmarkApplyCLI10k(b *testing.B) {
	dir := genBenchApply(b, 10000, 20)
	load := func(b *testing.B) *Result {
		res, err := Load(context.Background(), []string{dir}, Options{KeepRaw: true, DeferRaw: true})
		if err != nil || len(res.Diagnostics) > 0 || len(res.Objects) != 10020 {
			b.Fatalf("%v: %d objects, %v", err, len(res.Objects), res.Diagnostics)
		}
		return res
	}
	b.Run("load", func(b *testing.B) {
		b.ReportAllocs()
		cpu := processCPUTime()
		for b.Loop() {
			load(b)
		}
		reportCPU(b, cpu)
	})
	b.Run("load+raw", func(b *testing.B) {
		b.ReportAllocs()
		cpu := processCPUTime()
		for b.Loop() {
			if raw, err := load(b).EncodeRaw(); err != nil || len(raw) < 10020 {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
	b.Run("digest", func(b *testing.B) {
		objs := load(b).Objects
		b.ReportAllocs()
		cpu := processCPUTime()
		for b.Loop() {
			if len(plan.DigestAll(objs)) != len(objs) {
				b.Fatal("digests missing")
			}
		}
		reportCPU(b, cpu)
	})
}

// processCPUTime is the user+system CPU time of this process: on a shared
// machine wall time is mostly the other jobs.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	if start == 0 {
		return
	}
	b.ReportMetric(float64(processCPUTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
}
