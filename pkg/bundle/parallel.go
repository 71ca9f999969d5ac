package bundle

import (
	"bytes"
	"runtime"
	"sync"
)

// forEach runs fn(i, buf) for i in [0, n) on up to GOMAXPROCS goroutines,
// each with its own buffer, and returns the error of the lowest i that
// failed, so a parallel run reports what a sequential one would.
// Encoding and decoding 10,000 objects is most of a bundle's cost, and
// objects are independent.
func forEach(n int, fn func(i int, buf *bytes.Buffer) error) error {
	workers := min(runtime.GOMAXPROCS(0), n/64+1)
	if workers <= 1 {
		var buf bytes.Buffer
		for i := 0; i < n; i++ {
			if err := fn(i, &buf); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		firstAt  = n
	)
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for i := lo; i < hi; i++ {
				if err := fn(i, &buf); err != nil {
					mu.Lock()
					if i < firstAt {
						firstAt, firstErr = i, err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
