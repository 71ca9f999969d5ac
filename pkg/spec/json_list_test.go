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
