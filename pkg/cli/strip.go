package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// stoad stores objects with every default filled in (so `stoa get -o yaml`
// shows what is in force). An export must instead read like what a person
// writes, and apply back to the very same objects. stripDefaults finds that
// form by asking pkg/spec itself: a field is left out when decoding the
// object without it and applying the defaults gives back the stored object
// exactly. So the rule can never drift from spec.Default — including the
// values the decoder fills in (retry attempts, upstream weights), derived
// defaults (route.pathPrefix from tenant and name) and explicit values that
// happen to equal their default, which are dropped too (they re-apply the
// same).

// stripDefaults returns o's JSON encoding without the fields that defaults
// restore, keeping the field order of o's encoding.
func stripDefaults(o *spec.Object) ([]byte, error) {
	d := spec.Clone(o)
	spec.Default(d)
	full, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	tree, err := decodeOrdered(full)
	if err != nil {
		return nil, err
	}
	root, ok := tree.(*orderedObject)
	if !ok {
		return nil, fmt.Errorf("strip defaults: %s is not a JSON object", o.Ref())
	}
	// Only inside spec: apiVersion, kind and metadata are identity and
	// labels, never defaults; spec itself stays even when empty.
	specTree, ok := root.get("spec").(*orderedObject)
	if !ok || d.Spec == nil {
		return full, nil
	}
	want, err := json.Marshal(d.Spec)
	if err != nil {
		return nil, err
	}
	var buf []byte
	// same reports whether specTree, decoded and defaulted the way stoad
	// does, gives back the stored spec exactly.
	same := func() bool {
		buf = appendOrdered(buf[:0], specTree)
		s := spec.NewSpec(d.Kind)
		if err := json.Unmarshal(buf, s); err != nil {
			return false
		}
		// Defaults may derive from the envelope (a Tool's route from its
		// tenant and name); Default reads metadata, never writes it.
		spec.Default(&spec.Object{APIVersion: d.APIVersion, Kind: d.Kind, Metadata: d.Metadata, Spec: s})
		got, err := json.Marshal(s)
		return err == nil && bytes.Equal(got, want)
	}
	pruneObject(specTree, reflect.TypeOf(d.Spec), same)
	shortenRates(specTree, same)
	return appendOrdered(nil, root), nil
}

// shortenRates writes rate limits that are just a rate in the short form
// people write (`rateLimit: 100/s` rather than `rateLimit: {rate: 100/s}`),
// where the decoder reads both the same.
func shortenRates(obj *orderedObject, same func() bool) {
	for _, k := range obj.keys {
		switch c := obj.get(k).(type) {
		case *orderedObject:
			if r, ok := c.get("rate").(string); ok && len(c.keys) == 1 {
				obj.vals[k] = r
				if !same() {
					obj.vals[k] = c
				}
				continue
			}
			shortenRates(c, same)
		case []any:
			for _, e := range c {
				if eo, ok := e.(*orderedObject); ok {
					shortenRates(eo, same)
				}
			}
		}
	}
}

// pruneObject removes every member of obj (a JSON object of Go type t)
// that same() says is implied: whole subtrees first (one check for an
// all-default `timeouts:`), then member by member inside what must stay.
// It descends only into struct-typed members: defaults are written into
// typed fields, never into free-form maps such as an operation's input
// schema, which can be large.
func pruneObject(obj *orderedObject, t reflect.Type, same func() bool) {
	fields := jsonFields(t)
	for _, k := range append([]string(nil), obj.keys...) {
		v := obj.get(k)
		i := obj.remove(k)
		if same() {
			continue
		}
		obj.insert(i, k, v)
		ft, ok := fields[k]
		if !ok {
			continue
		}
		switch c := v.(type) {
		case *orderedObject:
			if ft.Kind() != reflect.Struct {
				continue
			}
			pruneObject(c, ft, same)
			if len(c.keys) == 0 { // what is left may now be implied too
				i := obj.remove(k)
				if !same() {
					obj.insert(i, k, v)
				}
			}
		case []any:
			// List items are never defaults themselves (removing one
			// changes the list), but their fields may be.
			if ft.Kind() != reflect.Slice || deref(ft.Elem()).Kind() != reflect.Struct {
				continue
			}
			for _, e := range c {
				if eo, ok := e.(*orderedObject); ok {
					pruneObject(eo, deref(ft.Elem()), same)
				}
			}
		}
	}
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// jsonFieldCache maps a struct type to its members' types by JSON name.
var jsonFieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields returns t's members by JSON name (pointers dereferenced,
// embedded structs flattened); empty for types that are not structs.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	t = deref(t)
	if v, ok := jsonFieldCache.Load(t); ok {
		return v.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	if t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" {
				maps.Copy(out, jsonFields(f.Type))
				continue
			}
			if name == "" {
				name = f.Name
			}
			out[name] = deref(f.Type)
		}
	}
	jsonFieldCache.Store(t, out)
	return out
}

// orderedObject is a JSON object that keeps its members' order, so an
// export lists fields in the order of the Go types (and of the docs).
type orderedObject struct {
	keys []string
	vals map[string]any
}

func (o *orderedObject) get(k string) any { return o.vals[k] }

// remove deletes k and returns its position (for insert).
func (o *orderedObject) remove(k string) int {
	for i, kk := range o.keys {
		if kk == k {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			delete(o.vals, k)
			return i
		}
	}
	return -1
}

func (o *orderedObject) insert(i int, k string, v any) {
	if i < 0 || i > len(o.keys) {
		i = len(o.keys)
	}
	o.keys = append(o.keys[:i], append([]string{k}, o.keys[i:]...)...)
	o.vals[k] = v
}

// MarshalJSON writes the members in order.
func (o *orderedObject) MarshalJSON() ([]byte, error) { return appendOrdered(nil, o), nil }

// appendOrdered appends the JSON encoding of a decodeOrdered value to b.
// Written by hand: the checks above encode the spec dozens of times per
// object, and encoding/json re-validates every nested Marshaler's output.
func appendOrdered(b []byte, v any) []byte {
	switch v := v.(type) {
	case *orderedObject:
		b = append(b, '{')
		for i, k := range v.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendOrdered(b, v.vals[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendOrdered(b, e)
		}
		return append(b, ']')
	case string:
		return appendString(b, v)
	case json.Number:
		return append(b, v...)
	case bool:
		return strconv.AppendBool(b, v)
	case nil:
		return append(b, "null"...)
	}
	panic(fmt.Sprintf("appendOrdered: unexpected %T", v))
}

// appendString appends s as a JSON string (as encoding/json writes it,
// without HTML escaping).
func appendString(b []byte, s string) []byte {
	if isPlain(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// isPlain reports whether s needs no escaping in JSON.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// decodeOrdered decodes JSON keeping object member order; numbers stay
// json.Number so they re-encode exactly.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return decodeValue(dec)
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		obj := &orderedObject{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			obj.keys = append(obj.keys, k)
			obj.vals[k] = v
		}
		_, err := dec.Token() // '}'
		return obj, err
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token() // ']'
		return arr, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}
