//go:build unix

package specload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/plan"
)

// genBenchApply writes the spec set of scripts/bench-apply.sh: n Tools
// with two operations each across m tenants, one file per tenant.
func genBenchApply(tb testing.TB, n, m int) string {
	tb.Helper()
	dir := tb.TempDir()
	for t := range m {
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: tenant-%02d\nspec:\n  displayName: Tenant %d\n", t, t)
		for i := t; i < n; i += m {
			fmt.Fprintf(&b, `---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: tool-%05d
  namespace: tenant-%02d
spec:
  protocol: rest
  description: Generated tool %d.
  upstream: http://127.0.0.1:18081/t%d
  auth:
    type: apiKey
  rateLimit: 100/s
  operations:
    - name: get_item
      method: GET
      path: /items/{id}
      description: Fetch one item.
      input:
        type: object
        properties:
          id: {type: string}
        required: [id]
    - name: create_item
      method: POST
      path: /items
      input:
        type: object
        properties:
          name: {type: string}
`, i, t, i, i)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("tenant-%02d.yaml", t)), []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
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
