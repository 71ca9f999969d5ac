package policy

import (
	"encoding/json"
	"sync"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Headers gives a policy the request headers. Names are lower case;
// repeated headers are joined with ", " (RFC 9110 §5.3). The proxy
// implements it over its own header type so that nothing is copied.
type Headers interface {
	// Header returns the value of the header with the lower-case name.
	Header(name string) (string, bool)
	// Len is the number of distinct header names.
	Len() int
	// Range calls fn for every header until fn returns false.
	Range(fn func(name, value string) bool)
}

// HeaderMap is Headers over a map whose keys are lower-case names.
type HeaderMap map[string]string

// Header implements Headers.
func (h HeaderMap) Header(name string) (string, bool) { v, ok := h[name]; return v, ok }

// Len implements Headers.
func (h HeaderMap) Len() int { return len(h) }

// Range implements Headers.
func (h HeaderMap) Range(fn func(name, value string) bool) {
	for k, v := range h {
		if !fn(k, v) {
			return
		}
	}
}

// Caller is who makes a request. Build one per authenticated principal
// and keep it with the principal (the auth cache holds principals for a
// token's lifetime): the CEL values derived from it are built once, on
// first use, and shared by every request of that caller. A Caller must not
// be changed after it is first used.
type Caller struct {
	Tenant    string
	Consumer  string
	Subject   string
	Issuer    string
	ClientID  string
	Method    string // "api_key", "jwt" or "none"
	Admin     bool
	Scopes    []string
	Groups    []string
	Audiences []string
	// Claims are the token's claims as JSON decodes them (json.Number or
	// float64 for numbers).
	Claims map[string]any

	once sync.Once
	vals [vCallerAudiences - vCallerTenant + 1]ref.Val
}

// celVal returns the CEL value of one caller variable.
func (c *Caller) celVal(id varID) ref.Val {
	c.once.Do(func() {
		v := &c.vals
		v[vCallerTenant-vCallerTenant] = types.String(c.Tenant)
		v[vCallerConsumer-vCallerTenant] = types.String(c.Consumer)
		v[vCallerSubject-vCallerTenant] = types.String(c.Subject)
		v[vCallerIssuer-vCallerTenant] = types.String(c.Issuer)
		v[vCallerClientID-vCallerTenant] = types.String(c.ClientID)
		v[vCallerMethod-vCallerTenant] = types.String(c.Method)
		v[vCallerAdmin-vCallerTenant] = types.Bool(c.Admin)
		v[vCallerClaims-vCallerTenant] = jsonMap(c.Claims)
		v[vCallerScopes-vCallerTenant] = types.NewStringList(adapter, c.Scopes)
		v[vCallerGroups-vCallerTenant] = types.NewStringList(adapter, c.Groups)
		v[vCallerAudiences-vCallerTenant] = types.NewStringList(adapter, c.Audiences)
	})
	return c.vals[id-vCallerTenant]
}

// anonymous is the caller of a request that carries no credential.
var anonymous = &Caller{Method: "none"}

// Target is what a request is for. Build one per route or operation when
// the route table is built; like Caller its CEL values are built once.
type Target struct {
	Tenant    string // the Tool's namespace
	Tool      string
	Operation string

	once sync.Once
	vals [3]ref.Val
}

func (t *Target) celVal(id varID) ref.Val {
	t.once.Do(func() {
		t.vals[0] = types.String(t.Tool)
		t.vals[1] = types.String(t.Tenant)
		t.vals[2] = types.String(t.Operation)
	})
	return t.vals[id-vToolName]
}

var noTarget = &Target{}

// Input is what a policy sees of one request. The zero value is a request
// with no caller, no target, no headers and no arguments. Inputs are
// cheap to fill per request (no field is converted until a rule reads it
// on the CEL path) and may live on the stack or in a per-request struct.
type Input struct {
	Caller *Caller // nil: anonymous
	Target *Target // nil: empty names

	Method   string
	Path     string
	Host     string
	Headers  Headers // nil: no headers
	SourceIP string
	// Arguments are the MCP tools/call arguments; nil for proxy requests.
	Arguments map[string]any
}

func (in *Input) caller() *Caller {
	if in.Caller == nil {
		return anonymous
	}
	return in.Caller
}

func (in *Input) target() *Target {
	if in.Target == nil {
		return noTarget
	}
	return in.Target
}

// adapter converts Go values to CEL the way this package documents: JSON
// numbers (json.Number, float64) become doubles, other Go numbers ints.
var adapter types.Adapter = jsonAdapter{}

type jsonAdapter struct{}

func (jsonAdapter) NativeToValue(v any) ref.Val {
	switch x := v.(type) {
	case json.Number:
		f, ok := jsonNumber(x)
		if !ok {
			return types.NewErr("invalid JSON number %q", string(x))
		}
		return types.Double(f)
	case map[string]any:
		return jsonMap(x)
	case []any:
		return types.NewDynamicList(adapter, x)
	case nil:
		return types.NullValue
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// jsonMap is the CEL value of a JSON object; nil is the empty map.
func jsonMap(m map[string]any) ref.Val {
	if m == nil {
		return emptyMap
	}
	return types.NewStringInterfaceMap(adapter, m)
}

var emptyMap = types.NewStringInterfaceMap(adapter, map[string]any{})
