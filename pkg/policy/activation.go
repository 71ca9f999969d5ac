package policy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"sync"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

// activation resolves the declared variables from an Input for cel-go.
// It is pooled; caller and target values come pre-built from Caller and
// Target, so a rule that reads only those and constants allocates nothing
// beyond what cel-go itself does. Per-request strings are boxed on first
// read (one 16-byte allocation each: the floor of the CEL path).
type activation struct {
	in      *Input
	headers headerMap
	vals    [numVars]ref.Val
}

var activationPool = sync.Pool{New: func() any { return new(activation) }}

func getActivation(in *Input) *activation {
	a := activationPool.Get().(*activation)
	a.in = in
	a.headers.h = in.Headers
	return a
}

func (a *activation) release() {
	*a = activation{}
	activationPool.Put(a)
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	id, ok := varByName(name)
	if !ok {
		return nil, false
	}
	return a.value(id), true
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) value(id varID) ref.Val {
	if v := a.vals[id]; v != nil {
		return v
	}
	in := a.in
	var v ref.Val
	switch id {
	case vRequestMethod:
		v = methodVal(in.Method)
	case vRequestPath:
		v = types.String(in.Path)
	case vRequestHost:
		v = types.String(in.Host)
	case vRequestHeaders:
		v = &a.headers
	case vSourceIP:
		v = types.String(in.SourceIP)
	case vMCPArguments:
		v = jsonMap(in.Arguments)
	case vToolName, vToolTenant, vOperationName:
		v = in.target().celVal(id)
	default:
		v = in.caller().celVal(id)
	}
	a.vals[id] = v
	return v
}

// Boxed HTTP methods: the common ones cost no allocation.
var methodVals = map[string]ref.Val{}

func init() {
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"} {
		methodVals[m] = types.String(m)
	}
}

func methodVal(m string) ref.Val {
	if v, ok := methodVals[m]; ok {
		return v
	}
	return types.String(m)
}

// jsonNumber converts a JSON number to the double CEL sees. Out-of-range
// numbers become ±Inf, as a JSON decoder into float64 would round them.
func jsonNumber(n json.Number) (float64, bool) {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

// headerMap is request.headers for cel-go: a map(string, string) over the
// Headers interface, without copying the headers into a Go map.
type headerMap struct{ h Headers }

var (
	headerMapType               = types.NewMapType(types.StringType, types.StringType)
	_             traits.Mapper = (*headerMap)(nil)
)

func (m *headerMap) get(k ref.Val) (string, bool, ref.Val) {
	s, ok := k.(types.String)
	if !ok {
		return "", false, types.NewErr("unsupported key type %s for request.headers", k.Type())
	}
	if m.h == nil {
		return "", false, nil
	}
	v, found := m.h.Header(string(s))
	return v, found, nil
}

func (m *headerMap) Find(k ref.Val) (ref.Val, bool) {
	v, ok, err := m.get(k)
	if err != nil {
		return err, true
	}
	if !ok {
		return nil, false
	}
	return types.String(v), true
}

func (m *headerMap) Contains(k ref.Val) ref.Val {
	_, ok, err := m.get(k)
	if err != nil {
		return err
	}
	return types.Bool(ok)
}

func (m *headerMap) Get(k ref.Val) ref.Val {
	v, ok := m.Find(k)
	if !ok {
		return types.NewErr("no such key: %v", k)
	}
	return v
}

func (m *headerMap) Size() ref.Val {
	if m.h == nil {
		return types.IntZero
	}
	return types.Int(m.h.Len())
}

func (m *headerMap) snapshot() map[string]string {
	out := map[string]string{}
	if m.h != nil {
		m.h.Range(func(k, v string) bool { out[k] = v; return true })
	}
	return out
}

func (m *headerMap) Iterator() traits.Iterator {
	return types.DefaultTypeAdapter.NativeToValue(m.snapshot()).(traits.Mapper).Iterator()
}

func (m *headerMap) IsZeroValue() bool { return m.h == nil || m.h.Len() == 0 }

func (m *headerMap) ConvertToNative(typeDesc reflect.Type) (any, error) {
	return types.DefaultTypeAdapter.NativeToValue(m.snapshot()).ConvertToNative(typeDesc)
}

func (m *headerMap) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return m
	case types.TypeType:
		return headerMapType
	}
	return types.NewErr("type conversion error from request.headers to %s", t)
}

func (m *headerMap) Equal(other ref.Val) ref.Val {
	return types.DefaultTypeAdapter.NativeToValue(m.snapshot()).Equal(other)
}

func (m *headerMap) Type() ref.Type { return headerMapType }

func (m *headerMap) Value() any { return m.snapshot() }
