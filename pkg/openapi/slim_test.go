package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

func TestDropExamples(t *testing.T) {
	in := `{"openapi":"3.0.3","info":{"title":"t","version":"1"},
	"paths":{"/a":{"post":{
		"parameters":[{"name":"q","in":"query","example":"x","examples":{"one":{"$ref":"#/components/examples/big"}},"schema":{"type":"string","example":"kept"}}],
		"requestBody":{"content":{"application/json":{"example":{"a":1},"examples":{"e":{"value":1}},
			"schema":{"type":"object","example":{"kept":true},"properties":{"examples":{"type":"string"},"example":{"type":"array","examples":[["kept"]]}}}}}},
		"responses":{"200":{"description":"ok","headers":{"example":{"schema":{"type":"string"}}},
			"content":{"application/json":{"examples":{"x":{"$ref":"#/components/examples/big"}}}}}}}}},
	"components":{"examples":{"big":{"value":[1,2,3]}},
		"schemas":{"examples":{"type":"object","example":{"k":"v"}},"Pet":{"type":"object","properties":{"example":{"type":"string"}}}}}}`
	out, err := dropExamples([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	json.Unmarshal([]byte(`{"openapi":"3.0.3","info":{"title":"t","version":"1"},
	"paths":{"/a":{"post":{
		"parameters":[{"name":"q","in":"query","schema":{"type":"string","example":"kept"}}],
		"requestBody":{"content":{"application/json":{
			"schema":{"type":"object","example":{"kept":true},"properties":{"examples":{"type":"string"},"example":{"type":"array","examples":[["kept"]]}}}}}},
		"responses":{"200":{"description":"ok","headers":{"example":{"schema":{"type":"string"}}},
			"content":{"application/json":{}}}}}}},
	"components":{
		"schemas":{"examples":{"type":"object","example":{"k":"v"}},"Pet":{"type":"object","properties":{"example":{"type":"string"}}}}}}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %s", out)
	}
	// The document still loads, with the schema examples the importer uses.
	doc, err := Parse(context.Background(), []byte(in), "t.json", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := doc.Operations(Filter{})
	js, _ := json.Marshal(ops[0].Op.Input)
	if !bytes.Contains(js, []byte(`"examples":[{"kept":true}]`)) && !bytes.Contains(js, []byte(`"kept"`)) {
		t.Errorf("schema examples lost: %s", js)
	}
	for _, bad := range []string{``, `{`, `{"a":}`, `{"a":1,}`, `[1 2]`, `{"a" 1}`, `"abc`} {
		if _, err := dropExamples([]byte(bad)); err == nil {
			t.Errorf("dropExamples(%q) accepted invalid JSON", bad)
		}
	}
}

// FuzzDropExamples: whatever the input, the output of valid JSON is valid
// JSON, and a document without example members is unchanged.
func FuzzDropExamples(f *testing.F) {
	for _, s := range []string{`{"paths":{"/a":{"get":{"examples":{"a":1}}}}}`, `{"components":{"examples":{"x":1},"schemas":{"s":{"example":1}}}}`,
		`[1,"a\"b",{"example":null}]`, `{"a":[{"b":{"content":{"x/y":{"example":[]}}}}]}`, `{}`, `"x"`, `-1.5e+3`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := dropExamples(in)
		if !json.Valid(in) {
			return
		}
		if err != nil {
			t.Fatalf("valid JSON refused: %q: %v", in, err)
		}
		if !json.Valid(out) {
			t.Fatalf("output %q of %q is not JSON", out, in)
		}
		if !bytes.Contains(in, []byte(`example`)) {
			var a, b any
			json.Unmarshal(in, &a)
			json.Unmarshal(out, &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%q changed to %q", in, out)
			}
		}
	})
}

// TestJSONExternalRefs: JSON documents (parsed without kin-openapi's YAML
// pass) still follow $refs to other files.
func TestJSONExternalRefs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "common.json"), []byte(`{"components":{"schemas":{"Pet":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}}}`), 0o644)
	main := `{"openapi":"3.0.3","info":{"title":"t","version":"1"},"servers":[{"url":"http://x"}],
	"paths":{"/pets":{"post":{"operationId":"addPet","requestBody":{"required":true,"content":{"application/json":{"schema":{"$ref":"common.json#/components/schemas/Pet"}}}},"responses":{"200":{"description":"ok"}}}}}}`
	path := filepath.Join(dir, "api.json")
	os.WriteFile(path, []byte(main), 0o644)
	doc, err := Load(context.Background(), path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ops, warns := doc.Operations(Filter{})
	if len(ops) != 1 || len(warns) != 0 || ops[0].Op.Input["properties"].(map[string]any)["name"] == nil {
		t.Fatalf("ops %+v warnings %v", ops, warns)
	}
}

// TestAllOfLargeBase: a body that extends a large shared schema (a $defs
// entry) still has its members as arguments.
func TestAllOfLargeBase(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzImport", "json-allof-large-base"))
	if err != nil {
		t.Fatal(err)
	}
	// The seed file is "go test fuzz v1" followed by []byte("…").
	line := bytes.SplitN(b, []byte("\n"), 3)[1]
	doc, err := strconv.Unquote(string(bytes.TrimSuffix(bytes.TrimPrefix(line, []byte("[]byte(")), []byte(")"))))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(context.Background(), []byte(doc), "a.json", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ops, warns := d.Operations(Filter{})
	if len(ops) != 1 || len(warns) != 0 {
		t.Fatalf("ops %d warnings %v", len(ops), warns)
	}
	props := ops[0].Op.Input["properties"].(map[string]any)
	if props["p0"] == nil || props["p69"] == nil || props["z"] == nil || ops[0].Op.In["body"] == "payload" {
		t.Errorf("members not flattened: %v", ops[0].Op.Input)
	}
}
