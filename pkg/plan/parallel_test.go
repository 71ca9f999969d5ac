package plan

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
)

func TestForEachVisitsEachOnceAndReportsTheFirstError(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, 1000} {
		seen := make([]atomic.Int32, n)
		if err := ForEach(n, func(i int, buf *bytes.Buffer) error {
			buf.WriteByte('x') // each goroutine's own buffer: -race would see sharing
			seen[i].Add(1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for i := range seen {
			if c := seen[i].Load(); c != 1 {
				t.Fatalf("n=%d: index %d visited %d times", n, i, c)
			}
		}
	}
	// Failures in several batches: the lowest index's error, as a
	// sequential loop would stop at.
	err := ForEach(1000, func(i int, _ *bytes.Buffer) error {
		if i%300 == 299 {
			return fmt.Errorf("item %d", i)
		}
		return nil
	})
	if err == nil || err.Error() != "item 299" {
		t.Fatalf("error %v, want item 299", err)
	}
}
