package spec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// objectJSONSeeds are envelopes the one-pass decoder must read exactly as
// the two-pass one: every kind, specs null and absent, kinds spelled with
// escapes or twice, members in any order, and broken ones.
var objectJSONSeeds = []string{
	`{"apiVersion":"stoa.io/v1alpha1","kind":"Tool","metadata":{"name":"t","namespace":"a"},"spec":{"upstream":"http://x","rateLimit":"10/s","operations":[{"name":"get","method":"GET","path":"/a","input":{"type":"object"}}]}}`,
	`{"spec":{"upstream":"http://x"},"metadata":{"name":"t","namespace":"a"},"kind":"Tool","apiVersion":"stoa.io/v1alpha1"}`,
	`{"apiVersion":"stoa.io/v1alpha1","kind":"Tenant","metadata":{"name":"a"},"spec":null}`,
	`{"apiVersion":"stoa.io/v1alpha1","kind":"Tenant","metadata":{"name":"a"}}`,
	`{"apiVersion":"stoa.io/v1alpha1","kind":"Gateway","metadata":{"name":"default"},"spec":{"trustedProxies":["10.0.0.0/8"]}}`,
	`{"kind":"T\u006fol","metadata":{"name":"t"},"spec":{"upstream":"http://x"}}`,
	`{"kind":"Tenant","kind":"Tool","metadata":{"name":"t"},"spec":{"upstream":"http://x"}}`,
	`{"kind":"Tool","spec":{"kind":"Tenant","upstream":"http://x"},"metadata":{"name":"t"}}`,
	`{"kind":"Tool","metadata":{"name":"t","labels":{"a\"b":"}{"}},"spec":{"description":"a \" , } ] [ {"}}`,
	`{"kind":"Tool","n":1.5e3,"t":true,"f":false,"z":null,"a":[1,[2,{"x":"]"}]],"spec":{}}`,
	`{"kind":"Bogus","spec":{}}`,
	`{"kind":5,"spec":{}}`,
	`{"kind":"Tool","metadata":{"name":"t"},"spec":{"upstream":5}}`,
	`{"kind":"Tool","metadata":{"name":"t"},"spec":{"rateLimit":"lots"}}`,
	`{"kind":"Tool","metadata":{"name":"t"},"spec":[]}`,
	`{"metadata":{"name":"t"}}`,
	`{"kind":"Tool","metadata":{"name":"t"},"spec":{"upstream":"http://a"},"spec":{"description":"b"}}`,
	`{"kind":"Tool","metadata":{"name":"t"},"spec":{"upstream":"http://a"},"spec":null}`,
	`{"kind":"Tool","metadata":{"name":"t"},"spec":{"upstream":"http://a"},"SPEC":{"description":"b"}}`,
	`{"kind":"Tenant","KIND":"Tool","metadata":{"name":"t"},"spec":{"upstream":"http://a"}}`,
	`{"Kind":"Tool","metadata":{"name":"t"},"spec":{"upstream":"http://a"}}`,
	"{\"kind\":\"Tenant\",\"\u212aind\":\"Tool\",\"metadata\":{\"name\":\"t\"},\"spec\":{}}",
	"{\"kind\":\"Tool\",\"metadata\":{\"name\":\"t\"},\"spec\":{\"upstream\":\"http://a\"},\"\u017fpec\":{\"description\":\"b\"}}",
	`{"kind":"Tool","metadata":{"name":"t"},"spec":{"upstream":"http://a"},"sp\u0065c":{"description":"b"}}`,
	` { "kind" : "Tenant" , "metadata" : { "name" : "a" } } `,
	`[]`, `"Tool"`, `null`, `{}`, `{"kind":"Tool"`, `{"kind":"Tool",}`, ``,
}

// decodeBoth decodes b with the one-pass decoder and the two-pass one.
func decodeBoth(b []byte) (one, two *Object, errOne, errTwo error) {
	one, two = new(Object), new(Object)
	return one, two, json.Unmarshal(b, one), json.Unmarshal(b, (*twoPass)(two))
}

// twoPass decodes an Object with the two-pass decoder only.
type twoPass Object

func (t *twoPass) UnmarshalJSON(b []byte) error { return (*Object)(t).unmarshalTwoPass(b) }

// showObject renders a decoded object with its spec's fields (%#v shows
// only the spec's address).
func showObject(o *Object) string {
	return fmt.Sprintf("%+v spec %T%+v", *o, o.Spec, o.Spec)
}

func TestObjectUnmarshalJSONMatchesTwoPass(t *testing.T) {
	for _, in := range objectJSONSeeds {
		one, two, errOne, errTwo := decodeBoth([]byte(in))
		if (errOne == nil) != (errTwo == nil) || (errOne != nil && errOne.Error() != errTwo.Error()) {
			t.Errorf("%s:\none-pass error %v\ntwo-pass error %v", in, errOne, errTwo)
			continue
		}
		if errOne == nil && !reflect.DeepEqual(one, two) {
			t.Errorf("%s:\none-pass %s\ntwo-pass %s", in, showObject(one), showObject(two))
		}
	}
}

func TestObjectUnmarshalJSON(t *testing.T) {
	var o Object
	if err := json.Unmarshal([]byte(objectJSONSeeds[0]), &o); err != nil {
		t.Fatal(err)
	}
	ts, ok := o.Spec.(*ToolSpec)
	if !ok || ts.Upstream != "http://x" || ts.RateLimit.Rate != MustRate("10/s") || ts.Operations[0].Input["type"] != "object" {
		t.Fatalf("decoded %#v", o.Spec)
	}
	// A null spec is the kind's empty spec, never a nil one.
	if err := json.Unmarshal([]byte(objectJSONSeeds[2]), &o); err != nil || o.Spec == nil || o.Kind != KindTenant {
		t.Fatalf("null spec: %#v %v", o, err)
	}
	// The kind the decoder keeps (the last) decides the spec's type.
	if err := json.Unmarshal([]byte(objectJSONSeeds[6]), &o); err != nil || o.Kind != KindTool {
		t.Fatalf("duplicate kind: %#v %v", o, err)
	}
	if _, ok := o.Spec.(*ToolSpec); !ok {
		t.Fatalf("duplicate kind: spec %T", o.Spec)
	}
	for in, want := range map[string]string{
		objectJSONSeeds[10]: `unknown kind "Bogus"`,
		objectJSONSeeds[12]: "Tool t: spec: json: cannot unmarshal number",
	} {
		if err := json.Unmarshal([]byte(in), &o); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
}

func TestPeekKind(t *testing.T) {
	for in, want := range map[string]string{
		`{"kind":"Tool"}`:                       "Tool",
		`{"a":{"kind":"x"},"kind":"Plan"}`:      "Plan",
		`{"a":"\"kind\":\"x\"","kind":"Plan"}`:  "Plan",
		`{"kind":"Tool","kind":"Plan"}`:         "Plan",
		`{"a":[{"kind":"x"}],"b":1,"kind":"W"}`: "W",
		`{"kind":"T\u006fol"}`:                  "",
		`{"KIND":"Tool"}`:                       "Tool",
		`{"kind":"Tool","spec":{},"Spec":{}}`:   "",
		`{"kind":"Tool","k\u00e9":1}`:           "",
		"{\"kind\":\"Tool\",\"\u017fpec\":{}}":  "",
		`{"k\u0069nd":"Tool"}`:                  "",
		`{"kind":1}`:                            "",
		`{"other":1}`:                           "",
		`[{"kind":"Tool"}]`:                     "",
	} {
		got, ok := peekKind([]byte(in))
		if string(got) != want || ok != (want != "") {
			t.Errorf("peekKind(%s) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// FuzzObjectUnmarshalJSON checks that the one-pass decoder reads every
// input as the two-pass decoder does: the same object or the same error.
func FuzzObjectUnmarshalJSON(f *testing.F) {
	for _, s := range objectJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		one, two, errOne, errTwo := decodeBoth(b)
		if (errOne == nil) != (errTwo == nil) || (errOne != nil && errOne.Error() != errTwo.Error()) {
			t.Fatalf("%q:\none-pass error %v\ntwo-pass error %v", b, errOne, errTwo)
		}
		if errOne == nil && !reflect.DeepEqual(one, two) {
			t.Fatalf("%q:\none-pass %s\ntwo-pass %s", b, showObject(one), showObject(two))
		}
	})
}
