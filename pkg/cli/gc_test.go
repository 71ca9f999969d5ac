package cli

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestCollectLate: no garbage collection until the heap limit, and after
// the first collection the usual pacing, without the limit.
func TestCollectLate(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	collectLate()
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Fatalf("GC percent %d before the first collection, want off", p)
	}
	if l := debug.SetMemoryLimit(-1); l != lateGCHeap {
		t.Fatalf("memory limit %d, want %d", l, lateGCHeap)
	}
	// The cleanup runs on its own goroutine after the collection; wait for
	// it as long as it takes (a busy machine delays it, nothing else).
	for i := 0; ; i++ {
		runtime.GC()
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		if p == 400 {
			break
		}
		if i == 1000 {
			t.Fatalf("GC percent still %d after %d collections", p, i)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Fatalf("memory limit %d after the first collection, want none", l)
	}
}
