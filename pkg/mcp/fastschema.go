package mcp

import (
	"encoding/json"
	"regexp"
	"strconv"
	"unicode/utf8"

	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

// fastSchema checks the arguments of the input schemas most tools have —
// a flat object of strings, numbers, integers, booleans and arrays of
// those, with enums, patterns, lengths, bounds and required members —
// straight from the raw JSON, without decoding it into Go values and
// without allocating. It only ever answers "valid" when the full
// validator (jsonschema) would: whenever it cannot be sure (escaped
// strings under a pattern, 1.0 for an integer, a member it does not know,
// a nested object) it answers unsure, and the full validator decides.
// Invalid arguments always go to the full validator too, which writes the
// message the model reads; the fast path is never a second source of
// error text. FuzzFastSchema holds the two to the same verdicts.
type fastSchema struct {
	props    []fastProp
	required uint64 // bit i: props[i] is required
	closed   bool   // additionalProperties: false
}

type fastProp struct {
	name string
	leaf *fastLeaf // nil: any value (a name listed only in required)
}

// value kinds, as bits of fastLeaf.types.
const (
	kString uint8 = 1 << iota
	kNumber
	kInteger
	kBoolean
	kNull
	kArray
	kObject
)

type fastLeaf struct {
	types   uint8 // 0: any type
	hasEnum bool
	enum    []string // enum and const: string members only (else not compiled)
	pattern *regexp.Regexp
	// minLen/maxLen count code points; -1 is unset.
	minLen, maxLen int
	// Bounds, each with its presence bit (1 minimum, 2 maximum, 4
	// exclusiveMinimum, 8 exclusiveMaximum).
	bounds               uint8
	min, max, xmin, xmax float64
	items                *fastLeaf // arrays: every element; nil: any
	minItems, maxItems   int       // -1 is unset
}

type fastVerdict uint8

const (
	fastUnsure fastVerdict = iota
	fastValid
	fastInvalid
)

// draft2020 is the only $schema the fast path accepts: earlier drafts
// assert "format" and differ in other details.
const draft2020 = "https://json-schema.org/draft/2020-12/schema"

// annotationOnly lists keywords that never constrain a value in draft
// 2020-12 as the full validator is configured (format is an annotation
// unless assertions are enabled, which they are not).
var annotationOnly = map[string]bool{
	"title": true, "description": true, "$comment": true, "examples": true, "default": true,
	"deprecated": true, "readOnly": true, "writeOnly": true, "format": true,
	"contentMediaType": true, "contentEncoding": true,
}

// compileFast returns the fast validator of a root schema, or nil when it
// uses anything the fast path does not implement.
func compileFast(root map[string]any) *fastSchema {
	fs := &fastSchema{}
	for k, v := range root {
		switch k {
		case "type":
			if v != "object" {
				return nil
			}
		case "$schema":
			if v != draft2020 {
				return nil
			}
		case "properties", "required":
		case "additionalProperties":
			b, ok := v.(bool)
			if !ok {
				return nil
			}
			fs.closed = !b
		default:
			if !annotationOnly[k] {
				return nil
			}
		}
	}
	if p, ok := root["properties"]; ok {
		props, ok := p.(map[string]any)
		if !ok {
			return nil
		}
		for name, ps := range props {
			var leaf *fastLeaf
			switch ps := ps.(type) {
			case bool:
				if !ps {
					return nil
				}
			case map[string]any:
				if leaf = compileLeaf(ps, true); leaf == nil {
					return nil
				}
			default:
				return nil
			}
			fs.props = append(fs.props, fastProp{name: name, leaf: leaf})
		}
	}
	if r, ok := root["required"]; ok {
		req, ok := r.([]any)
		if !ok {
			return nil
		}
		for _, n := range req {
			name, ok := n.(string)
			if !ok {
				return nil
			}
			i := fs.index(name)
			if i < 0 {
				fs.props = append(fs.props, fastProp{name: name})
				i = len(fs.props) - 1
			}
			if i >= 64 {
				return nil
			}
			fs.required |= 1 << i
		}
	}
	if len(fs.props) > 64 {
		return nil
	}
	return fs
}

func (fs *fastSchema) index(name string) int {
	for i := range fs.props {
		if fs.props[i].name == name {
			return i
		}
	}
	return -1
}

// indexBytes is index for a raw key; no allocation.
func (fs *fastSchema) indexBytes(name []byte) int {
	for i := range fs.props {
		if fs.props[i].name == string(name) {
			return i
		}
	}
	return -1
}

func compileLeaf(s map[string]any, allowItems bool) *fastLeaf {
	l := &fastLeaf{minLen: -1, maxLen: -1, minItems: -1, maxItems: -1}
	for k, v := range s {
		switch k {
		case "type":
			switch t := v.(type) {
			case string:
				bit := typeBit(t)
				if bit == 0 {
					return nil
				}
				l.types = bit
			case []any:
				if len(t) == 0 {
					return nil
				}
				for _, e := range t {
					name, ok := e.(string)
					bit := typeBit(name)
					if !ok || bit == 0 || l.types&bit != 0 {
						return nil
					}
					l.types |= bit
				}
			default:
				return nil
			}
		case "enum":
			vals, ok := v.([]any)
			if !ok || len(vals) == 0 {
				return nil
			}
			for _, e := range vals {
				str, ok := e.(string)
				if !ok {
					return nil
				}
				l.enum = append(l.enum, str)
			}
			if l.hasEnum {
				return nil // enum and const together
			}
			l.hasEnum = true
		case "const":
			str, ok := v.(string)
			if !ok || l.hasEnum {
				return nil
			}
			l.hasEnum, l.enum = true, []string{str}
		case "pattern":
			p, ok := v.(string)
			if !ok {
				return nil
			}
			re, err := regexp.Compile(p)
			if err != nil {
				return nil
			}
			l.pattern = re
		case "minLength", "maxLength", "minItems", "maxItems":
			n, ok := count(v)
			if !ok {
				return nil
			}
			switch k {
			case "minLength":
				l.minLen = n
			case "maxLength":
				l.maxLen = n
			case "minItems":
				l.minItems = n
			case "maxItems":
				l.maxItems = n
			}
		case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
			num, ok := v.(json.Number)
			if !ok {
				return nil
			}
			f, ok := exactFloat([]byte(num))
			if !ok {
				return nil
			}
			switch k {
			case "minimum":
				l.bounds, l.min = l.bounds|1, f
			case "maximum":
				l.bounds, l.max = l.bounds|2, f
			case "exclusiveMinimum":
				l.bounds, l.xmin = l.bounds|4, f
			case "exclusiveMaximum":
				l.bounds, l.xmax = l.bounds|8, f
			}
		case "items":
			if !allowItems {
				return nil
			}
			switch it := v.(type) {
			case bool:
				if !it {
					return nil
				}
			case map[string]any:
				if l.items = compileLeaf(it, false); l.items == nil {
					return nil
				}
			default:
				return nil
			}
		default:
			if !annotationOnly[k] {
				return nil
			}
		}
	}
	return l
}

func typeBit(t string) uint8 {
	switch t {
	case "string":
		return kString
	case "number":
		return kNumber
	case "integer":
		return kInteger
	case "boolean":
		return kBoolean
	case "null":
		return kNull
	case "array":
		return kArray
	}
	return 0 // "object" and unknown names: not compiled
}

// count reads a non-negative integer keyword value.
func count(v any) (int, bool) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(string(num))
	return n, err == nil && n >= 0
}

// exactFloat parses a JSON number that float64 compares exactly with any
// other such number: no exponent and at most 15 digits, so distinct
// decimals stay distinct and ordered once converted. Others are not
// handled (the full validator compares them as rationals).
func exactFloat(b []byte) (float64, bool) {
	digits := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '-' || c == '.':
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 15 {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(b), 64)
	return f, err == nil
}

// check validates args (a syntactically valid JSON object, "null" or
// absent; the envelope decoder checked the syntax).
func (fs *fastSchema) check(args []byte) fastVerdict {
	i := rpc.SkipSpace(args, 0)
	if i >= len(args) || args[i] == 'n' {
		if fs.required != 0 {
			return fastInvalid
		}
		return fastValid
	}
	it := rpc.NewTrustedIterator(args)
	var seen uint64
	verdict := fastValid
	for {
		key, val, ok := it.Next()
		if !ok {
			break
		}
		if it.KeyEscaped || !utf8.Valid(key) {
			// The full validator sees the unescaped key, or one with
			// U+FFFD replacements, which may be a property name.
			return fastUnsure
		}
		p := fs.indexBytes(key)
		if p < 0 {
			if fs.closed {
				verdict = fastInvalid
				continue
			}
			// Another member: duplicates of it and its nested values
			// are not tracked here.
			return fastUnsure
		}
		if seen&(1<<p) != 0 {
			return fastInvalid // a duplicate key
		}
		seen |= 1 << p
		var v fastVerdict
		if leaf := fs.props[p].leaf; leaf != nil {
			v = leaf.check(val)
		} else {
			v = anyValue(val)
		}
		switch v {
		case fastUnsure:
			return fastUnsure
		case fastInvalid:
			verdict = fastInvalid
		}
	}
	if it.Err() != nil {
		return fastUnsure
	}
	if seen&fs.required != fs.required {
		return fastInvalid
	}
	return verdict
}

// anyValue accepts any scalar; objects and arrays may hold duplicate keys
// the full validator refuses, so they are left to it.
func anyValue(val []byte) fastVerdict {
	switch val[0] {
	case '{', '[':
		return fastUnsure
	}
	return fastValid
}

func (l *fastLeaf) check(val []byte) fastVerdict {
	switch c := val[0]; {
	case c == '"':
		return l.checkString(val)
	case c == '{':
		if l.types != 0 || l.hasEnum {
			return fastInvalid // not an object type, and no string equals it
		}
		return fastUnsure
	case c == '[':
		return l.checkArray(val)
	case c == 't' || c == 'f':
		return l.scalar(kBoolean)
	case c == 'n':
		return l.scalar(kNull)
	default:
		return l.checkNumber(val)
	}
}

// scalar checks true, false and null: their type, and that no enum of
// strings can hold them.
func (l *fastLeaf) scalar(kind uint8) fastVerdict {
	if l.types != 0 && l.types&kind == 0 || l.hasEnum {
		return fastInvalid
	}
	return fastValid
}

func (l *fastLeaf) checkString(raw []byte) fastVerdict {
	if l.types != 0 && l.types&kString == 0 {
		return fastInvalid
	}
	if !l.hasEnum && l.pattern == nil && l.minLen < 0 && l.maxLen < 0 {
		return fastValid
	}
	s := raw[1 : len(raw)-1]
	for _, c := range s {
		if c == '\\' {
			return fastUnsure // its value needs unescaping
		}
	}
	if !utf8.Valid(s) {
		return fastUnsure // decoded with U+FFFD replacements
	}
	if l.hasEnum {
		found := false
		for _, e := range l.enum {
			if e == string(s) {
				found = true
				break
			}
		}
		if !found {
			return fastInvalid
		}
	}
	if l.minLen >= 0 || l.maxLen >= 0 {
		n := utf8.RuneCount(s)
		if l.minLen >= 0 && n < l.minLen || l.maxLen >= 0 && n > l.maxLen {
			return fastInvalid
		}
	}
	if l.pattern != nil && !l.pattern.Match(s) {
		return fastInvalid
	}
	return fastValid
}

func (l *fastLeaf) checkNumber(raw []byte) fastVerdict {
	if l.hasEnum {
		return fastInvalid
	}
	integral := true
	for _, c := range raw {
		if c == '.' || c == 'e' || c == 'E' {
			integral = false
			break
		}
	}
	if l.types != 0 && l.types&kNumber == 0 {
		switch {
		case l.types&kInteger == 0:
			return fastInvalid
		case !integral:
			return fastUnsure // 1.0 and 1e2 are integers to JSON Schema
		}
	}
	if l.bounds == 0 {
		return fastValid
	}
	f, ok := exactFloat(raw)
	if !ok {
		return fastUnsure
	}
	if l.bounds&1 != 0 && f < l.min || l.bounds&2 != 0 && f > l.max ||
		l.bounds&4 != 0 && f <= l.xmin || l.bounds&8 != 0 && f >= l.xmax {
		return fastInvalid
	}
	return fastValid
}

func (l *fastLeaf) checkArray(raw []byte) fastVerdict {
	if l.types != 0 && l.types&kArray == 0 || l.hasEnum {
		return fastInvalid
	}
	verdict := fastValid
	n := 0
	for i := rpc.SkipSpace(raw, 1); i < len(raw) && raw[i] != ']'; {
		end, err := rpc.SkipValue(raw, i)
		if err != nil {
			return fastUnsure
		}
		elem := raw[i:end]
		n++
		var v fastVerdict
		if l.items != nil {
			v = l.items.check(elem)
		} else {
			v = anyValue(elem)
		}
		switch v {
		case fastUnsure:
			return fastUnsure
		case fastInvalid:
			verdict = fastInvalid
		}
		i = rpc.SkipSpace(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i = rpc.SkipSpace(raw, i+1)
		}
	}
	if l.minItems >= 0 && n < l.minItems || l.maxItems >= 0 && n > l.maxItems {
		return fastInvalid
	}
	return verdict
}
