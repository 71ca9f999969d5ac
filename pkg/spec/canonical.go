package spec

import (
	"bytes"
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unsafe"
)

// AppendCanonical appends the canonical JSON encoding of o to dst: exactly
// what a json.Encoder with SetEscapeHTML(false) writes for it (struct
// field order, sorted map keys, a final newline). Digests of live objects
// and bundles are taken from these bytes, so they must never change:
// FuzzCanonical and TestCanonical hold this encoder to encoding/json byte
// for byte.
//
// It exists for speed (stoad encodes every desired object of an apply,
// the CLI digests every object it loads): the encoder for each type is
// built once, reads fields through their offsets, and writes the JSON
// Schemas of operations (map[string]any) without reflection. Whatever it
// does not know exactly as encoding/json does (custom marshalers other
// than spec's own texts, embedded structs, floats out of the plain range,
// strings that need more than ASCII escapes, maps of structs...) is
// handed to encoding/json for that value.
func AppendCanonical(dst []byte, o *Object) ([]byte, error) {
	e := canonicalEncoder(objectType)
	dst, err := e(dst, unsafe.Pointer(o))
	if err != nil {
		return dst, err
	}
	return append(dst, '\n'), nil
}

var objectType = reflect.TypeFor[Object]()

// encFunc appends the encoding of the value of its type at p.
type encFunc func(dst []byte, p unsafe.Pointer) ([]byte, error)

var encoders sync.Map // reflect.Type -> encFunc

// canonicalEncoder returns the encoder of t, building it once.
func canonicalEncoder(t reflect.Type) encFunc {
	if e, ok := encoders.Load(t); ok {
		return e.(encFunc)
	}
	// Recursive types: whoever asks while t is being built gets an
	// indirection that waits for it.
	var (
		wg sync.WaitGroup
		f  encFunc
	)
	wg.Add(1)
	e, loaded := encoders.LoadOrStore(t, encFunc(func(dst []byte, p unsafe.Pointer) ([]byte, error) {
		wg.Wait()
		return f(dst, p)
	}))
	if loaded {
		return e.(encFunc)
	}
	f = buildEncoder(t)
	wg.Done()
	encoders.Store(t, f)
	return f
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// buildEncoder returns t's encoder; p always points at an addressable
// value of t (a field, a slice element, a pointer's target), as
// encoding/json sees them, which is what decides whether methods with
// pointer receivers are used.
func buildEncoder(t reflect.Type) encFunc {
	switch t {
	case durationType:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return appendJSONString(dst, (*Duration)(p).text), nil
		}
	case quantityType:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return appendJSONString(dst, (*Quantity)(p).text), nil
		}
	case rateType:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return appendJSONString(dst, (*Rate)(p).text), nil
		}
	case anyMapType:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return appendAnyMap(dst, *(*map[string]any)(p))
		}
	}
	if t.Implements(marshalerType) || t.Implements(textMarshalerType) ||
		reflect.PointerTo(t).Implements(marshalerType) || reflect.PointerTo(t).Implements(textMarshalerType) {
		return fallbackEncoder(t)
	}
	switch t.Kind() {
	case reflect.String:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return appendJSONString(dst, *(*string)(p)), nil
		}
	case reflect.Bool:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return strconv.AppendBool(dst, *(*bool)(p)), nil
		}
	case reflect.Int:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return strconv.AppendInt(dst, int64(*(*int)(p)), 10), nil
		}
	case reflect.Int64:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return strconv.AppendInt(dst, *(*int64)(p), 10), nil
		}
	case reflect.Int32:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return strconv.AppendInt(dst, int64(*(*int32)(p)), 10), nil
		}
	case reflect.Uint32:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return strconv.AppendUint(dst, uint64(*(*uint32)(p)), 10), nil
		}
	case reflect.Uint64:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return strconv.AppendUint(dst, *(*uint64)(p), 10), nil
		}
	case reflect.Float64:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return appendFloat64(dst, *(*float64)(p))
		}
	case reflect.Pointer:
		return ptrEncoder(t)
	case reflect.Slice:
		return sliceEncoder(t)
	case reflect.Map:
		return mapEncoder(t)
	case reflect.Struct:
		return structEncoder(t)
	case reflect.Interface:
		return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			return appendInterface(dst, reflect.NewAt(t, p).Elem())
		}
	}
	return fallbackEncoder(t)
}

// fallbackEncoder has encoding/json encode the value at p, given the
// pointer so that the value is addressable there too.
func fallbackEncoder(t reflect.Type) encFunc {
	return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
		return appendMarshal(dst, reflect.NewAt(t, p).Interface())
	}
}

var fallbackPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// appendMarshal appends what a json.Encoder without HTML escaping writes
// for v, without the newline.
func appendMarshal(dst []byte, v any) ([]byte, error) {
	buf := fallbackPool.Get().(*bytes.Buffer)
	defer fallbackPool.Put(buf)
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, err
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...), nil
}

func ptrEncoder(t reflect.Type) encFunc {
	elem := t.Elem()
	var once sync.Once
	var e encFunc
	return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
		q := *(*unsafe.Pointer)(p)
		if q == nil {
			return append(dst, "null"...), nil
		}
		once.Do(func() { e = canonicalEncoder(elem) })
		return e(dst, q)
	}
}

func sliceEncoder(t reflect.Type) encFunc {
	elem := t.Elem()
	if elem.Kind() == reflect.Uint8 {
		return fallbackEncoder(t) // base64, or a marshaler's
	}
	size := elem.Size()
	var once sync.Once
	var e encFunc
	return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
		h := (*sliceHeader)(p)
		if h.data == nil {
			return append(dst, "null"...), nil
		}
		once.Do(func() { e = canonicalEncoder(elem) })
		dst = append(dst, '[')
		var err error
		for i := 0; i < h.len; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = e(dst, unsafe.Add(h.data, uintptr(i)*size)); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}
}

type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

// mapEncoder handles maps with string keys whose values encoding/json
// writes without asking whether they are addressable (map values never
// are): strings, booleans, integers. Anything else goes to encoding/json.
func mapEncoder(t reflect.Type) encFunc {
	if t.Key().Kind() != reflect.String {
		return fallbackEncoder(t)
	}
	switch el := t.Elem(); {
	case el.Kind() != reflect.String,
		el.Implements(marshalerType), el.Implements(textMarshalerType),
		reflect.PointerTo(el).Implements(marshalerType), reflect.PointerTo(el).Implements(textMarshalerType):
		return fallbackEncoder(t)
	}
	return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
		m := reflect.NewAt(t, p).Elem()
		if m.IsNil() {
			return append(dst, "null"...), nil
		}
		kv := make([][2]string, 0, m.Len())
		for it := m.MapRange(); it.Next(); {
			kv = append(kv, [2]string{it.Key().String(), it.Value().String()})
		}
		slices.SortFunc(kv, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		dst = append(dst, '{')
		for i, e := range kv {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, e[0])
			dst = append(dst, ':')
			dst = appendJSONString(dst, e[1])
		}
		return append(dst, '}'), nil
	}
}

// field is one encoded struct field.
type field struct {
	name      string // `"name":`, encoded
	offset    uintptr
	typ       reflect.Type
	omitEmpty bool
	omitZero  bool
	enc       encFunc
}

func structEncoder(t reflect.Type) encFunc {
	var fields []*field
	seen := map[string]bool{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return fallbackEncoder(t) // promoted fields: encoding/json's rules
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if !validTag(name) {
			name = ""
		}
		if name == "" {
			name = sf.Name
		}
		f := &field{offset: sf.Offset, typ: sf.Type}
		for opts != "" {
			var o string
			o, opts, _ = strings.Cut(opts, ",")
			switch o {
			case "omitempty":
				f.omitEmpty = true
			case "omitzero":
				f.omitZero = true
			case "string":
				return fallbackEncoder(t) // quoted values
			}
		}
		if seen[name] {
			return fallbackEncoder(t) // conflicting names
		}
		seen[name] = true
		nb, err := json.Marshal(name)
		if err != nil || bytes.ContainsAny(nb, `\<>&`) {
			return fallbackEncoder(t)
		}
		f.name = string(nb) + ":"
		fields = append(fields, f)
	}
	var once sync.Once
	return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
		once.Do(func() {
			for _, f := range fields {
				f.enc = canonicalEncoder(f.typ)
			}
		})
		dst = append(dst, '{')
		first := true
		var err error
		for _, f := range fields {
			fp := unsafe.Add(p, f.offset)
			if f.omitEmpty && isEmpty(f.typ, fp) {
				continue
			}
			if f.omitZero && isZero(f.typ, fp) {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, f.name...)
			if dst, err = f.enc(dst, fp); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	}
}

// validTag is encoding/json's isValidTag.
func validTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// isEmpty is encoding/json's isEmptyValue for the value of t at p.
func isEmpty(t reflect.Type, p unsafe.Pointer) bool {
	switch t.Kind() {
	case reflect.String:
		return *(*string)(p) == ""
	case reflect.Slice:
		return (*sliceHeader)(p).len == 0
	case reflect.Pointer:
		return *(*unsafe.Pointer)(p) == nil
	case reflect.Bool:
		return !*(*bool)(p)
	case reflect.Int:
		return *(*int)(p) == 0
	case reflect.Int64:
		return *(*int64)(p) == 0
	}
	v := reflect.NewAt(t, p).Elem()
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

type isZeroer interface{ IsZero() bool }

var isZeroerType = reflect.TypeFor[isZeroer]()

// isZero is encoding/json's test for omitzero, for the value of t at p
// (which is addressable).
func isZero(t reflect.Type, p unsafe.Pointer) bool {
	switch t {
	case durationType:
		return (*Duration)(p).text == ""
	case quantityType:
		return (*Quantity)(p).text == ""
	case rateType:
		return (*Rate)(p).text == ""
	}
	v := reflect.NewAt(t, p).Elem()
	switch {
	case t.Kind() == reflect.Interface && t.Implements(isZeroerType):
		return v.IsNil() || (v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil()) || v.Interface().(isZeroer).IsZero()
	case t.Kind() == reflect.Pointer && t.Implements(isZeroerType):
		return v.IsNil() || v.Interface().(isZeroer).IsZero()
	case t.Implements(isZeroerType):
		return v.Interface().(isZeroer).IsZero()
	case reflect.PointerTo(t).Implements(isZeroerType):
		return v.Addr().Interface().(isZeroer).IsZero()
	}
	return v.IsZero()
}

// appendInterface encodes an interface value as encoding/json does: nil is
// null; a pointer's target is addressable, anything else is not, so it
// goes to encoding/json unless it is plain JSON data.
func appendInterface(dst []byte, v reflect.Value) ([]byte, error) {
	if v.IsNil() {
		return append(dst, "null"...), nil
	}
	e := v.Elem()
	if e.Kind() == reflect.Pointer {
		q := e.UnsafePointer()
		if q == nil {
			return append(dst, "null"...), nil
		}
		if e.Type().Implements(marshalerType) || e.Type().Implements(textMarshalerType) {
			return appendMarshal(dst, e.Interface())
		}
		return canonicalEncoder(e.Type().Elem())(dst, q)
	}
	return appendAny(dst, e.Interface())
}

// appendAny encodes JSON data (what json.Unmarshal makes of JSON into
// an any, or a YAML decoder) directly, anything else with encoding/json.
func appendAny(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendJSONString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case float64:
		return appendFloat64(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case map[string]any:
		return appendAnyMap(dst, x)
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		var err error
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendAny(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}
	return appendMarshal(dst, v)
}

func appendAnyMap(dst []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	// One pass over the map, members sorted by name (names are unique).
	type member struct {
		k string
		v any
	}
	var arr [16]member
	ms := arr[:0]
	for k, v := range m {
		ms = append(ms, member{k, v})
	}
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.k, b.k) })
	dst = append(dst, '{')
	var err error
	for i, e := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, e.k)
		dst = append(dst, ':')
		if dst, err = appendAny(dst, e.v); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// appendFloat64 is encoding/json's float encoding (ES6 number to string);
// NaN and infinities are left to encoding/json for its error.
func appendFloat64(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return appendMarshal(dst, f)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// appendJSONString writes s quoted. Printable ASCII without quotes or
// backslashes is written as it is; anything else as encoding/json writes
// it.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return appendEscaped(dst, s)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func appendEscaped(dst []byte, s string) []byte {
	out, err := appendMarshal(dst, s)
	if err != nil {
		panic("spec: encoding/json cannot encode a string: " + err.Error())
	}
	return out
}
