package cli

import (
	"bytes"
	"encoding/json"
	"fmt"

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
	want, err := defaultedJSON(o)
	if err != nil {
		return nil, err
	}
	tree, err := decodeOrdered(want)
	if err != nil {
		return nil, err
	}
	root, ok := tree.(*orderedObject)
	if !ok {
		return nil, fmt.Errorf("strip defaults: %s is not a JSON object", o.Ref())
	}
	same := func() bool {
		b, err := json.Marshal(root)
		if err != nil {
			return false
		}
		var c spec.Object
		if err := json.Unmarshal(b, &c); err != nil {
			return false
		}
		got, err := defaultedJSON(&c)
		return err == nil && bytes.Equal(got, want)
	}
	// Only inside spec: apiVersion, kind and metadata are identity and
	// labels, never defaults; spec itself stays even when empty.
	if s, ok := root.get("spec").(*orderedObject); ok {
		pruneObject(s, same)
		shortenRates(s, same)
	}
	return json.Marshal(root)
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

// defaultedJSON is the canonical encoding of o with defaults applied.
func defaultedJSON(o *spec.Object) ([]byte, error) {
	c := spec.Clone(o)
	spec.Default(c)
	return json.Marshal(c)
}

// pruneObject removes every member of obj that same() says is implied,
// whole subtrees first (one check for an all-default `timeouts:`), then
// member by member inside what must stay.
func pruneObject(obj *orderedObject, same func() bool) {
	for _, k := range append([]string(nil), obj.keys...) {
		v := obj.get(k)
		i := obj.remove(k)
		if same() {
			continue
		}
		obj.insert(i, k, v)
		switch c := v.(type) {
		case *orderedObject:
			pruneObject(c, same)
			if len(c.keys) == 0 { // what is left may now be implied too
				i := obj.remove(k)
				if !same() {
					obj.insert(i, k, v)
				}
			}
		case []any:
			// List items are never defaults themselves (removing one
			// changes the list), but their fields may be.
			for _, e := range c {
				if eo, ok := e.(*orderedObject); ok {
					pruneObject(eo, same)
				}
			}
		}
	}
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
func (o *orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
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
