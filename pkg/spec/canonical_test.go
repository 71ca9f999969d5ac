package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// stdCanonical is the canonical encoding as it was defined first: a
// json.Encoder without HTML escaping.
func stdCanonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

// checkCanonical fails unless AppendCanonical writes exactly what
// encoding/json writes for o, or fails where it fails.
func checkCanonical(t *testing.T, o *Object) {
	t.Helper()
	want, werr := stdCanonical(o)
	got, gerr := AppendCanonical([]byte("prefix"), o)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%s: error %v, encoding/json %v", o.Ref(), gerr, werr)
	}
	if werr != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("%s:\n%s\nencoding/json:\n%s", o.Ref(), got[min(len(got), len("prefix")):], want)
	}
}

// checkCanonicalData checks the objects of a spec document: as parsed, as
// defaulted, and as decoded from their JSON (stoad's form).
func checkCanonicalData(t *testing.T, data []byte) {
	t.Helper()
	objs, _ := Parse("f.yaml", data)
	for _, o := range objs {
		checkCanonical(t, o)
		b, err := json.Marshal(o)
		Default(o)
		checkCanonical(t, o)
		if err != nil {
			continue
		}
		var d Object
		if json.Unmarshal(b, &d) == nil {
			checkCanonical(t, &d)
			Default(&d)
			checkCanonical(t, &d)
		}
	}
}

// checkSpecFiles runs check on each file's bytes in a subtest, and fails
// unless the files hold at least ten specs' worth and every main kind.
func checkSpecFiles(t *testing.T, paths []string, check func(*testing.T, []byte)) {
	t.Helper()
	if len(paths) < 10 {
		t.Fatalf("only %d spec files found", len(paths))
	}
	kinds := map[Kind]bool{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		objs, _ := Parse(p, b)
		for _, o := range objs {
			kinds[o.Kind] = true
		}
		t.Run(filepath.Base(p), func(t *testing.T) { check(t, b) })
	}
	for _, k := range []Kind{KindGateway, KindTenant, KindTool, KindPlan, KindSubscription, KindWebhook} {
		if !kinds[k] {
			t.Errorf("no %s in the specs checked", k)
		}
	}
}

func canonicalSpecFiles(t testing.TB) []string {
	var paths []string
	for _, g := range []string{"testdata/valid/*.yaml", "testdata/golden/*.yaml", "testdata/invalid/*.yaml", "testdata/stored/*.yaml",
		"../../examples/*/*.yaml", "../../examples/*/*/*.yaml"} {
		p, _ := filepath.Glob(g)
		paths = append(paths, p...)
	}
	return paths
}

// TestCanonical holds AppendCanonical to encoding/json on every spec in
// testdata and the examples, and on the JSON seeds of the decoder.
func TestCanonical(t *testing.T) {
	checkSpecFiles(t, canonicalSpecFiles(t), checkCanonicalData)
	for _, s := range objectJSONSeeds {
		var o Object
		if json.Unmarshal([]byte(s), &o) == nil {
			checkCanonical(t, &o)
		}
	}
	checkCanonicalData(t, []byte(tenantDoc+"---\n"+toolDoc))
}

// TestCanonicalSchemas: JSON Schemas hold any JSON; numbers, strings
// that need escapes, nulls, empty and nested containers encode as
// encoding/json encodes them, and what it cannot encode fails.
func TestCanonicalSchemas(t *testing.T) {
	values := []any{
		nil, true, false, "", "plain", "quote\" back\\slash", "<html> & \u2028\u2029", "\x00\x1f\x7f", "caf\u00e9 \U0001F600",
		string([]byte{0xff, 'a', 0xc0}), 0.0, math.Copysign(0, -1), 1.0, -1.5, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, 5e-324,
		math.MaxFloat64, 3, int64(-4), []any{}, []any(nil), map[string]any{}, map[string]any(nil),
		[]any{1.0, "x", nil, []any{map[string]any{"a": []any{}}}}, json.Number("12"), []string{"s"}, map[string]int{"b": 1, "a": 2},
		struct{ A int }{1},
	}
	for i, v := range values {
		o := &Object{APIVersion: APIVersion, Kind: KindTool, Metadata: Metadata{Name: "t", Namespace: "a", Labels: map[string]string{"z": "1", "a": "<2>"}},
			Spec: &ToolSpec{Operations: []Operation{{Name: "op", Input: map[string]any{"v": v, fmt.Sprint("k", i): i, "\u00e9": "x", "": v}}}}}
		checkCanonical(t, o)
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), []any{math.Inf(-1)}, func() {}} {
		o := &Object{Kind: KindTool, Spec: &ToolSpec{Operations: []Operation{{Input: map[string]any{"v": bad}}}}}
		checkCanonical(t, o) // both fail
		if _, err := AppendCanonical(nil, o); err == nil {
			t.Errorf("%v: encoded", bad)
		}
	}
}

// The encoder's general rules, on types spec does not have (yet): each
// must encode as encoding/json does, through its own path or by handing
// the value to encoding/json.
type (
	canonText   string
	canonPtrMsh struct{ N int }
	canonValMsh struct{ N int }
	canonEmbed  struct{ A, B string }
	canonZeroer struct{ N int }
	canonWeird  struct {
		canonEmbed
		Hidden   string `json:"-"`
		Dash     string `json:"-,"`
		Quoted   int    `json:"quoted,string"`
		BadTag   string `json:"a\"b"`
		Bytes    []byte
		F32      float32
		U8       uint8
		Arr      [2]int
		Ptr      *canonPtrMsh
		Val      canonPtrMsh
		ValM     canonValMsh
		Text     canonText
		MapS     map[string]canonText
		MapT     map[canonText]string
		MapI     map[int]string
		MapV     map[string]canonPtrMsh
		Any      any
		Zero     canonZeroer       `json:",omitzero"`
		ZeroP    *canonZeroer      `json:",omitzero"`
		Empty    map[string]string `json:",omitempty"`
		Iface    json.Marshaler    `json:",omitempty"`
		unexport int
	}
)

func (c canonText) MarshalText() ([]byte, error) { return []byte("<" + string(c) + ">"), nil }
func (c *canonPtrMsh) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(` { "ptr" : %d } `, c.N)), nil
}
func (c canonValMsh) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`[%d, "<&>"]`, c.N)), nil
}
func (c canonZeroer) IsZero() bool { return c.N == 7 }

// conflict returns a struct with two fields named "x" (encoding/json drops
// both), built at run time: vet rightly refuses it in source.
func conflict() any {
	t := reflect.StructOf([]reflect.StructField{
		{Name: "A", Type: reflect.TypeFor[string](), Tag: `json:"x"`},
		{Name: "B", Type: reflect.TypeFor[string](), Tag: `json:"x"`},
		{Name: "C", Type: reflect.TypeFor[string]()},
	})
	v := reflect.New(t)
	for i := range 3 {
		v.Elem().Field(i).SetString(string(rune('a' + i)))
	}
	return v.Interface()
}

func TestCanonicalFallbacks(t *testing.T) {
	for i, v := range []any{
		&canonWeird{},
		&canonWeird{canonEmbed: canonEmbed{"a", "b"}, Hidden: "h", Dash: "d", Quoted: 5, BadTag: "x", Bytes: []byte("hi"), F32: 1.5,
			U8: 3, Arr: [2]int{1, 2}, Ptr: &canonPtrMsh{4}, Val: canonPtrMsh{5}, ValM: canonValMsh{6}, Text: "t",
			MapS: map[string]canonText{"k": "v"}, MapT: map[canonText]string{"b": "1", "a": "2"}, MapI: map[int]string{2: "x", 10: "y"},
			MapV: map[string]canonPtrMsh{"k": {1}}, Any: canonPtrMsh{2}, Zero: canonZeroer{7}, ZeroP: &canonZeroer{7},
			Empty: map[string]string{}, Iface: canonValMsh{1}, unexport: 1},
		&canonWeird{Any: &canonPtrMsh{3}, Zero: canonZeroer{1}, ZeroP: &canonZeroer{1}, Empty: map[string]string{"<": ">"}},
		conflict(),
	} {
		want, werr := stdCanonical(v)
		rv := reflect.ValueOf(v)
		got, gerr := canonicalEncoder(rv.Type().Elem())(nil, rv.UnsafePointer())
		got = append(got, '\n')
		if (werr != nil) != (gerr != nil) || werr == nil && !bytes.Equal(got, want) {
			t.Errorf("%d:\n%s (%v)\nencoding/json:\n%s (%v)", i, got, gerr, want, werr)
		}
	}
}

// FuzzCanonical holds AppendCanonical to encoding/json on anything that
// parses as a spec document.
func FuzzCanonical(f *testing.F) {
	for _, p := range canonicalSpecFiles(f) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(tenantDoc + "---\n" + toolDoc))
	f.Fuzz(func(t *testing.T, data []byte) { checkCanonicalData(t, data) })
}

// FuzzCanonicalJSON: any JSON object stoad could be sent, decoded as an
// object, encodes as encoding/json encodes it.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range objectJSONSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"apiVersion":"stoa.io/v1alpha1","kind":"Tool","metadata":{"name":"t","namespace":"a","labels":{"b":"\u2028","a":"<"}},"spec":{"upstream":"http://x","operations":[{"name":"o","method":"GET","path":"/","input":{"type":"object","x":[1.5e300,-0,1e-7,null,{"\ud800":"\u00e9"}]},"timeout":"5s"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Object
		if json.Unmarshal(data, &o) != nil {
			return
		}
		checkCanonical(t, &o)
		Default(&o)
		checkCanonical(t, &o)
	})
}
