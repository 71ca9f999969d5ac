package spec

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
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

// CutMember finds the top-level member name of the JSON object b and
// returns its value and b with that value replaced by null, so that the
// rest can be decoded apart from it: stoad reads the objects of an apply
// request (megabytes) on all processors and the few other members with
// encoding/json, without scanning the objects for the envelope first.
//
// b need not be valid: when rest and value are each valid JSON, so was
// b. ok is false when b is not an object, holds the member not exactly
// once, or has a member name encoding/json could match to name other than
// by equality (another case, escapes, any non-ASCII letter: it matches
// names by Unicode case folding), and then the caller decodes b whole.
func CutMember(b []byte, name string) (value, rest []byte, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, nil, false
	}
	start, end := -1, -1
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil, nil, false
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, nil, false
		}
		kEnd, esc := scanString(b, i)
		if kEnd < 0 || esc {
			return nil, nil, false
		}
		key := b[i+1 : kEnd]
		for _, c := range key {
			if c >= utf8.RuneSelf {
				return nil, nil, false
			}
		}
		match := string(key) == name
		if !match && strings.EqualFold(string(key), name) {
			return nil, nil, false
		}
		i = skipSpace(b, kEnd+1)
		if i >= len(b) || b[i] != ':' {
			return nil, nil, false
		}
		i = skipSpace(b, i+1)
		vEnd := skipValue(b, i)
		if vEnd < 0 {
			return nil, nil, false
		}
		if match {
			if start >= 0 {
				return nil, nil, false // the decoder keeps the last
			}
			start, end = i, vEnd
		}
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			break
		}
		return nil, nil, false
	}
	if start < 0 {
		return nil, nil, false
	}
	rest = make([]byte, 0, len(b)-(end-start)+4)
	rest = append(rest, b[:start]...)
	rest = append(rest, "null"...)
	rest = append(rest, b[end:]...)
	return b[start:end], rest, true
}
