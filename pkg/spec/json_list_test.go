package spec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// objectListSeeds are arrays DecodeObjects must read as json.Unmarshal
// does, or leave to it: empty, one and many objects (several batches),
// whitespace everywhere, nulls and other values among the objects, a bad
// object late in a long list, and what is not an array.
func objectListSeeds() []string {
	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprintf(`{"apiVersion":"stoa.io/v1alpha1","kind":"Tool","metadata":{"name":"t%d","namespace":"a"},"spec":{"upstream":"http://x/%d"}}`, i, i))
	}
	long := "[" + strings.Join(many, ",") + "]"
	return []string{
		`[]`, ` [ ] `, `[` + objectJSONSeeds[0] + `]`,
		" [\n " + objectJSONSeeds[0] + " ,\t" + objectJSONSeeds[2] + " \r\n] ",
		long,
		strings.Replace(long, `"upstream":"http://x/150"`, `"upstream":150`, 1),
		strings.Replace(long, `"kind":"Tool","metadata":{"name":"t199"`, `"kind":"Bogus","metadata":{"name":"t199"`, 1),
		`[null]`, `[` + objectJSONSeeds[0] + `,null]`, `[1]`, `[[]]`, `["x"]`,
		`null`, `{}`, `5`, `"[]"`,
	}
}

func TestDecodeObjectsMatchesEncodingJSON(t *testing.T) {
	for _, in := range objectListSeeds() {
		checkDecodeObjects(t, []byte(in))
	}
	if objs, ok := DecodeObjects([]byte(objectListSeeds()[4])); !ok || len(objs) != 200 || objs[199].Metadata.Name != "t199" {
		t.Fatalf("a list of 200 objects: ok %v, %d objects", ok, len(objs))
	}
	for _, in := range objectListSeeds()[5:] {
		if _, ok := DecodeObjects([]byte(in)); ok {
			t.Errorf("%.80s: decoded; want it left to encoding/json", in)
		}
	}
}

// checkDecodeObjects fails when DecodeObjects decodes valid JSON b other
// than json.Unmarshal does.
func checkDecodeObjects(t *testing.T, b []byte) {
	t.Helper()
	if !json.Valid(b) {
		return // DecodeObjects is given valid JSON only
	}
	got, ok := DecodeObjects(b)
	if !ok {
		return // left to encoding/json
	}
	var want []*Object
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%.200q: DecodeObjects decoded what json.Unmarshal refuses (%v)", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%.200q: DecodeObjects %d objects, json.Unmarshal %d, or they differ", b, len(got), len(want))
	}
}

// FuzzDecodeObjects holds DecodeObjects to json.Unmarshal on valid JSON.
func FuzzDecodeObjects(f *testing.F) {
	for _, s := range objectListSeeds() {
		f.Add([]byte(s))
	}
	for _, s := range objectJSONSeeds {
		f.Add([]byte("[" + s + "," + s + "]"))
	}
	f.Fuzz(checkDecodeObjects)
}

// TestCutMember: the member is cut where it is, exactly once, or not at
// all when encoding/json could read the object otherwise.
func TestCutMember(t *testing.T) {
	for _, c := range []struct{ in, value, rest string }{
		{`{"objects":[1,2]}`, `[1,2]`, `{"objects":null}`},
		{` { "a" : {"objects":1} , "objects" : [ {"]":"["} ] , "b":"}" } `, `[ {"]":"["} ]`, ` { "a" : {"objects":1} , "objects" : null , "b":"}" } `},
		{`{"objects":5}`, `5`, `{"objects":null}`},
	} {
		v, r, ok := CutMember([]byte(c.in), "objects")
		if !ok || string(v) != c.value || string(r) != c.rest {
			t.Errorf("%s: %v %q %q", c.in, ok, v, r)
		}
	}
	for _, in := range []string{`{}`, `[]`, `{"objects":1,"objects":2}`, `{"Objects":1}`, `{"objects":1,"OBJECTS":2}`,
		`{"\u006fbjects":1}`, `{"objects":1,"\u017fcope":1}`, `{"objects":1,"ſcope":1}`, `{"objects" 1}`, `{"objects":1 "a":2}`, `{"objects":"x`} {
		if _, _, ok := CutMember([]byte(in), "objects"); ok {
			t.Errorf("%s: cut", in)
		}
	}
}

// FuzzCutMember: what is cut puts back together to the input, and an input
// whose two parts are valid JSON is valid JSON.
func FuzzCutMember(f *testing.F) {
	for _, s := range []string{`{"objects":[1,2]}`, ` {"a":1, "objects" : [{"x":"]"}] ,"b":[]} `, `{"objects":[}`, `{"objects":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, rest, ok := CutMember(b, "objects")
		if !ok {
			return
		}
		i := strings.Index(string(rest), "null")
		for i >= 0 && string(rest[:i])+string(v)+string(rest[i+4:]) != string(b) {
			j := strings.Index(string(rest[i+1:]), "null")
			if j < 0 {
				i = -1
				break
			}
			i += 1 + j
		}
		if i < 0 {
			t.Fatalf("%q: cut %q, rest %q do not make it", b, v, rest)
		}
		if json.Valid(v) && json.Valid(rest) && !json.Valid(b) {
			t.Fatalf("%q: invalid, but its parts %q and %q are valid", b, v, rest)
		}
	})
}
