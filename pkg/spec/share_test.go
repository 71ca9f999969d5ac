package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// checkShareSchemas shares the schemas of objs and fails unless every
// object still encodes as before and equals want (the same objects decoded
// apart), value for value.
func checkShareSchemas(t *testing.T, objs, want []*Object) {
	t.Helper()
	before := make([][]byte, len(objs))
	for i, o := range objs {
		before[i], _ = json.Marshal(o)
	}
	ShareSchemas(objs)
	for i, o := range objs {
		if b, _ := json.Marshal(o); string(b) != string(before[i]) {
			t.Fatalf("object %d encodes differently once shared:\n%s\nwant\n%s", i, b, before[i])
		}
		if !reflect.DeepEqual(o, want[i]) {
			t.Fatalf("object %d differs once shared: %+v\nwant %+v", i, o.Spec, want[i].Spec)
		}
	}
}

// inputs lists the input schemas of objs' operations.
func inputs(objs []*Object) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if t, ok := o.Spec.(*ToolSpec); ok {
			for _, op := range t.Operations {
				out = append(out, op.Input)
			}
		}
	}
	return out
}

func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// TestShareSchemas runs every spec in testdata and the examples twice
// through ShareSchemas: nothing changes but identity, and the second copy
// of every schema is the first.
func TestShareSchemas(t *testing.T) {
	var paths []string
	for _, g := range []string{"testdata/valid/*.yaml", "testdata/golden/*.yaml", "../../examples/*/*.yaml", "../../examples/*/*/*.yaml"} {
		p, _ := filepath.Glob(g)
		paths = append(paths, p...)
	}
	var a, b, want []*Object
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, dst := range []*[]*Object{&a, &b, &want} {
			objs, _ := Parse(p, data)
			*dst = append(*dst, objs...)
		}
	}
	checkShareSchemas(t, append(append([]*Object{}, a...), b...), append(append([]*Object{}, want...), want...))
	ia, ib := inputs(a), inputs(b)
	shared := 0
	for i := range ia {
		if ia[i] == nil {
			continue
		}
		if !sameMap(ia[i], ib[i]) {
			t.Errorf("schema %d: the second copy is not the first", i)
		}
		shared++
	}
	if shared < 5 {
		t.Fatalf("only %d schemas in the specs checked", shared)
	}
}

// TestShareSchemasParts: equal parts are shared too, and what only looks
// alike (null and [], 0 and -0, 1 and "1") is not.
func TestShareSchemasParts(t *testing.T) {
	tool := func(schemas ...string) *Object {
		s := &ToolSpec{}
		for _, sc := range schemas {
			var m map[string]any
			if err := json.Unmarshal([]byte(sc), &m); err != nil {
				t.Fatal(err)
			}
			s.Operations = append(s.Operations, Operation{Name: "op", Input: m})
		}
		return &Object{APIVersion: APIVersion, Kind: KindTool, Metadata: Metadata{Name: "t", Namespace: "a"}, Spec: s}
	}
	schemas := []string{
		`{"type":"object","properties":{"id":{"type":"string"},"n":{"type":"number","minimum":0}}}`,
		`{"type":"object","properties":{"name":{"type":"string"},"n":{"type":"number","minimum":-0}}}`,
		`{"type":"object","properties":{"a":{"enum":null},"b":{"enum":[]},"c":{"enum":[1]},"d":{"enum":["1"]},"e":{"enum":[true]},"f":{"enum":[{}]}}}`,
	}
	objs := []*Object{tool(schemas...), tool(schemas...)}
	want := []*Object{tool(schemas...), tool(schemas...)}
	checkShareSchemas(t, objs, want)
	in := inputs(objs)
	props := func(i int) map[string]any { return in[i]["properties"].(map[string]any) }
	if !sameMap(props(0)["id"].(map[string]any), props(1)["name"].(map[string]any)) {
		t.Error(`{"type":"string"} is not shared`)
	}
	if sameMap(props(0)["n"].(map[string]any), props(1)["n"].(map[string]any)) {
		t.Error(`minimum 0 and -0 are shared`)
	}
	p := props(2)
	for _, pair := range [][2]string{{"a", "b"}, {"c", "d"}, {"c", "e"}, {"b", "f"}} {
		if reflect.DeepEqual(p[pair[0]], p[pair[1]]) {
			t.Errorf("%s and %s were made equal", pair[0], pair[1])
		}
	}
	for i := 0; i < 3; i++ {
		if !sameMap(in[i], in[i+3]) {
			t.Errorf("schema %d is not shared", i)
		}
	}
}

// FuzzShareSchemas: any JSON object as a schema, three times over (two
// copies of it and one with a member changed), keeps its encoding and
// value; the two copies become one.
func FuzzShareSchemas(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"type":"object"}`, `{"a":null,"b":[],"c":{},"d":[null,[],{}],"e":-0,"f":0,"g":1e400}`,
		`{"type":"object","properties":{"id":{"type":"string"},"q":{"type":"string"}},"required":["id"]}`,
		`{"x":{"x":{"x":{"x":{"x":{"x":[{"x":[1,"1",true,false,null]}]}}}}}}`,
		`{"oneOf":[{"type":"string"},{"type":"string"},{"type":"integer","enum":[1,2,3]}],"\u2028":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var probe map[string]any
		if json.Unmarshal(data, &probe) != nil || probe == nil {
			return
		}
		decode := func() map[string]any {
			var m map[string]any
			_ = json.Unmarshal(data, &m)
			return m
		}
		changed := decode()
		changed["\x00changed"] = true
		mk := func() []*Object {
			s := &ToolSpec{Operations: []Operation{{Name: "a", Input: decode()}, {Name: "b", Input: decode()}}}
			s2 := &ToolSpec{Operations: []Operation{{Name: "c", Input: changed}}}
			return []*Object{{Kind: KindTool, Spec: s}, {Kind: KindTool, Spec: s2}}
		}
		objs, want := mk(), mk()
		checkShareSchemas(t, objs, want)
		in := inputs(objs)
		if !sameMap(in[0], in[1]) {
			t.Fatal("two copies of one schema are not shared")
		}
		if sameMap(in[0], in[2]) {
			t.Fatal("a changed schema is shared with the original")
		}
	})
}
