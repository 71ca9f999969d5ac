package spec

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// DecodeObjects decodes b, valid JSON (a json.RawMessage the decoder
// filled), as json.Unmarshal decodes it into []*Object, with the objects
// decoded on all processors: stoad decodes 10,000 of them per large
// apply, and each is independent. ok is false for anything but an array
// of JSON objects that all decode, and then nothing is returned: the
// caller decodes b with encoding/json, which gives the exact result or
// error (with the position it names). Equal schemas of the objects are
// one value (ShareSchemas).
func DecodeObjects(b []byte) (objs []*Object, ok bool) {
	elems, ok := splitArray(b)
	if !ok {
		return nil, false
	}
	objs = make([]*Object, len(elems))
	for i := range objs {
		objs[i] = new(Object)
	}
	const batch = 64
	workers := min(runtime.GOMAXPROCS(0), (len(elems)+batch-1)/batch)
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	work := func() {
		for !failed.Load() {
			lo := int(next.Add(batch)) - batch
			if lo >= len(elems) {
				return
			}
			for i := lo; i < min(lo+batch, len(elems)); i++ {
				if objs[i].UnmarshalJSON(elems[i]) != nil {
					failed.Store(true)
					return
				}
			}
		}
	}
	if workers <= 1 {
		work()
	} else {
		for range workers {
			wg.Go(work)
		}
		wg.Wait()
	}
	if failed.Load() {
		return nil, false
	}
	ShareSchemas(objs)
	return objs, true
}

// splitArray returns the elements of the JSON array b when every one is
// an object; b must be valid JSON.
func splitArray(b []byte) (elems [][]byte, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return [][]byte{}, skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '{' {
			return nil, false
		}
		end := skipValue(b, i)
		if end < 0 {
			return nil, false
		}
		elems = append(elems, b[i:end])
		i = skipSpace(b, end)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return elems, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}
