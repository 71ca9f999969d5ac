package mcp

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// applyObjects mirrors scripts/bench-apply.sh: n Tools of two operations
// across m tenants.
func applyObjects(n, m int) []*spec.Object {
	var objs []*spec.Object
	for t := range m {
		objs = append(objs, &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTenant,
			Metadata: spec.Metadata{Name: fmt.Sprintf("tenant-%02d", t)}, Spec: &spec.TenantSpec{}})
	}
	for i := range n {
		objs = append(objs, &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool,
			Metadata: spec.Metadata{Name: fmt.Sprintf("tool-%05d", i), Namespace: fmt.Sprintf("tenant-%02d", i%m)},
			Spec: &spec.ToolSpec{Protocol: "rest", Description: fmt.Sprintf("Generated tool %d.", i),
				Upstream: fmt.Sprintf("http://127.0.0.1:18081/t%d", i),
				Operations: []spec.Operation{
					{Name: "get_item", Method: "GET", Path: "/items/{id}", Description: "Fetch one item.",
						Input: map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}, "required": []any{"id"}}},
					{Name: "create_item", Method: "POST", Path: "/items",
						Input: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}},
				}}})
	}
	return objs
}

func BenchmarkBuildCatalogApply(b *testing.B) {
	objs := applyObjects(10_000, 20)
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := BuildCatalog(1, objs); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time (GC included) is steadier than wall time on a busy machine.
	b.ReportMetric(float64((processCPU()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// TestCatalogHeap measures the live heap of a bench-apply catalog (go test
// -run CatalogHeap -v) and keeps it from growing back: 53.9 MB when every
// entry was encoded at build time, 15.5 MB since lists are encoded on
// first use. The bound leaves room for the runtime's own variations.
func TestCatalogHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	objs := applyObjects(10_000, 20)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	c, err := BuildCatalog(1, objs)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	mb := (float64(ms.HeapAlloc) - float64(before)) / (1 << 20)
	t.Logf("catalog of %d tools: %.1f MB live", c.Len(), mb)
	if mb > 30 {
		t.Errorf("a catalog of %d tools holds %.1f MB, more than the 30 MB bound; encode what is rarely read on first use", c.Len(), mb)
	}
	runtime.KeepAlive(c)
}

func TestCatalogHeapProfile(t *testing.T) {
	if os.Getenv("STOA_HEAP_PROFILE") == "" {
		t.Skip("set STOA_HEAP_PROFILE=file")
	}
	runtime.MemProfileRate = 512
	c, err := BuildCatalog(1, applyObjects(10_000, 20))
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	f, _ := os.Create(os.Getenv("STOA_HEAP_PROFILE"))
	pprof.WriteHeapProfile(f)
	f.Close()
	runtime.KeepAlive(c)
}
