package plan

import (
	"bytes"
	"runtime"
	"sync"
	"sync/atomic"
)

// ForEach runs fn(i, buf) for i in [0, n) on up to GOMAXPROCS goroutines,
// in batches of 64, each goroutine with its own buffer, and returns the
// error of the lowest i that failed, so a parallel run reports what a
// sequential one would. Encoding, digesting and decoding 10,000 objects
// are most of a large apply's cost, and objects are independent.
func ForEach(n int, fn func(i int, buf *bytes.Buffer) error) error {
	const batch = 64
	workers := min(runtime.GOMAXPROCS(0), (n+batch-1)/batch)
	if workers <= 1 {
		var buf bytes.Buffer
		for i := range n {
			if err := fn(i, &buf); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		firstAt  = n
	)
	for range workers {
		wg.Go(func() {
			var buf bytes.Buffer
			for {
				lo := int(next.Add(batch)) - batch
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+batch, n); i++ {
					if err := fn(i, &buf); err != nil {
						mu.Lock()
						if i < firstAt {
							firstAt, firstErr = i, err
						}
						mu.Unlock()
						break
					}
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}
