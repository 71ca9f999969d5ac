package spec

import (
	"encoding/json"
	"hash/maphash"
	"math"
	"reflect"
)

// ShareSchemas makes equal parts of the objects' JSON Schemas (operation
// inputs) one value: every equal schema, property or list is kept once.
// Decoded apart, 10,000 Tools whose operations take the same arguments
// hold 20,000 copies of the same few maps (~20 MB of stoad's live heap
// for the specs of `make bench-apply`); schemas are written by hand or
// generated from an OpenAPI document, and repeat themselves
// ({"type": "string"} most of all).
//
// Schemas are never modified once decoded (whoever needs a changed one,
// such as the MCP catalog stripping invisible characters, copies it), so
// sharing is invisible to readers. ShareSchemas itself writes only into
// the maps and lists of objs, which must not be shared with anything yet:
// call it right after decoding them.
func ShareSchemas(objs []*Object) {
	var sh sharer
	for _, o := range objs {
		t, ok := o.Spec.(*ToolSpec)
		if !ok || t == nil {
			continue
		}
		for i := range t.Operations {
			op := &t.Operations[i]
			if op.Input == nil {
				continue
			}
			if sh.table == nil {
				sh.table = make(map[uint64][]any)
				sh.seed = maphash.MakeSeed()
			}
			v, _ := sh.share(op.Input, 0)
			op.Input = v.(map[string]any)
		}
	}
}

// shareDepth bounds the recursion; deeper parts stay as they are (schemas
// are much shallower: MaxSchemaDepth).
const shareDepth = 64

// sharer holds one instance of every map and list seen so far, by hash.
type sharer struct {
	seed  maphash.Seed
	table map[uint64][]any
}

// share returns the instance equal to v (v itself if it is the first) and
// v's hash. Maps and lists are shared bottom-up: when a map is looked up,
// its members already are instances, so equal members are the same map or
// list and compare by identity.
func (sh *sharer) share(v any, depth int) (any, uint64) {
	switch x := v.(type) {
	case map[string]any:
		if x == nil || depth >= shareDepth {
			return v, sh.opaque(v)
		}
		var h uint64
		for k, e := range x {
			ne, eh := sh.share(e, depth+1)
			if !sameRef(ne, e) {
				x[k] = ne
			}
			// Order-independent: the sum of the members' hashes.
			h += mix(maphash.String(sh.seed, k) ^ eh)
		}
		h = mix(h ^ uint64(len(x)) ^ 0x6d6170)
		for _, c := range sh.table[h] {
			if m, ok := c.(map[string]any); ok && shallowEqualMaps(m, x) {
				return m, h
			}
		}
		sh.table[h] = append(sh.table[h], x)
		return x, h
	case []any:
		if x == nil || depth >= shareDepth {
			return v, sh.opaque(v)
		}
		h := uint64(len(x)) ^ 0x6c697374
		for i, e := range x {
			ne, eh := sh.share(e, depth+1)
			if !sameRef(ne, e) {
				x[i] = ne
			}
			h = mix(h*31 + eh)
		}
		for _, c := range sh.table[h] {
			if l, ok := c.([]any); ok && shallowEqualLists(l, x) {
				return l, h
			}
		}
		sh.table[h] = append(sh.table[h], x)
		return x, h
	case string:
		return v, maphash.String(sh.seed, x)
	case float64:
		return v, mix(math.Float64bits(x) ^ 0x666c74)
	case bool:
		if x {
			return v, 0x74727565
		}
		return v, 0x66616c73
	case nil:
		return v, 0x6e756c6c
	case json.Number:
		return v, mix(maphash.String(sh.seed, string(x)) ^ 0x6e756d)
	}
	return v, sh.opaque(v)
}

// opaque hashes what share does not look into (nil maps and lists, which
// encode as null, and anything too deep): it is never in the table, and
// as a member it compares by identity or DeepEqual (sameMember), so any
// constant will do.
func (sh *sharer) opaque(any) uint64 { return 0x6f7061717565 }

// mix is a 64-bit finaliser (splitmix64's), so sums of hashes stay
// spread.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// sameRef reports whether a and b are the same map or list (or equal
// scalars): what share returns for a member is either the member itself
// or an equal instance.
func sameRef(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer()
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false // nil encodes as null, an empty list as []
		}
		return len(x) == 0 || &x[0] == &y[0]
	}
	return false
}

// sameMember compares two members that are instances (or scalars).
func sameMember(a, b any) bool {
	switch x := a.(type) {
	case map[string]any, []any:
		return sameRef(a, b)
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		// Bits, not ==: -0 and 0 encode differently, and NaN (which JSON
		// cannot hold) would never match itself.
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	case json.Number:
		y, ok := b.(json.Number)
		return ok && x == y
	}
	return reflect.TypeOf(a) == reflect.TypeOf(b) && reflect.DeepEqual(a, b)
}

func shallowEqualMaps(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || !sameMember(x, y) {
			return false
		}
	}
	return true
}

func shallowEqualLists(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameMember(a[i], b[i]) {
			return false
		}
	}
	return true
}
