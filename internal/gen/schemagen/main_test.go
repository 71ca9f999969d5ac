package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const root = "../../.."

// TestGeneratedFilesUpToDate fails when pkg/spec changed but the schemas
// and explain docs were not regenerated.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(root, f.Path))
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("%s is out of date with pkg/spec; regenerate with: make generate-schemas", f.Path)
		}
	}
	// No stale schema for a kind that no longer exists.
	entries, _ := os.ReadDir(filepath.Join(root, specsDir))
	want := map[string]bool{}
	for _, f := range files {
		want[filepath.Base(f.Path)] = true
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("%s/%s is not generated any more; delete it", specsDir, e.Name())
		}
	}
}

func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(root, specsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	s, err := c.Compile(abs)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return s
}

// documents splits multi-document YAML into JSON-shaped values.
func documents(t *testing.T, data []byte) []any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if v == nil {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, doc)
	}
}

// TestSchemasAcceptValidSpecs checks every example and the loader's valid
// test specs against all.json and their kind's own schema.
func TestSchemasAcceptValidSpecs(t *testing.T) {
	all := compile(t, "all.json")
	byKind := map[string]*jsonschema.Schema{}
	var paths []string
	for _, glob := range []string{"examples/*/*.yaml", "pkg/spec/testdata/valid/*.yaml"} {
		m, _ := filepath.Glob(filepath.Join(root, glob))
		for _, p := range m {
			// examples/bad holds deliberate mistakes (the README's
			// diagnostics); the schema must reject those.
			if strings.HasPrefix(filepath.ToSlash(p), root+"/examples/bad/") {
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				for i, doc := range documents(t, data) {
					if all.Validate(doc) == nil {
						t.Errorf("%s document %d: all.json accepts a deliberately bad spec", p, i+1)
					}
				}
				continue
			}
			paths = append(paths, p)
		}
	}
	if len(paths) < 3 {
		t.Fatalf("found only %d spec files", len(paths))
	}
	kinds := map[string]bool{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(filepath.ToSlash(p), root+"/examples/") && !strings.Contains(string(data), "yaml-language-server: $schema=../../specs/stoa.io/v1alpha1/all.json") {
			t.Errorf("%s lacks the yaml-language-server modeline", p)
		}
		for i, doc := range documents(t, data) {
			kind, _ := doc.(map[string]any)["kind"].(string)
			kinds[kind] = true
			if err := all.Validate(doc); err != nil {
				t.Errorf("%s document %d (%s) rejected by all.json:\n%v", p, i+1, kind, err)
			}
			if byKind[kind] == nil {
				byKind[kind] = compile(t, strings.ToLower(kind)+".json")
			}
			if err := byKind[kind].Validate(doc); err != nil {
				t.Errorf("%s document %d rejected by %s.json:\n%v", p, i+1, strings.ToLower(kind), err)
			}
		}
	}
	if len(kinds) < 8 {
		t.Errorf("valid specs cover only kinds %v; want all eight", kinds)
	}
}

// TestSchemasRejectMistakes checks that the schemas catch what an editor
// should underline.
func TestSchemasRejectMistakes(t *testing.T) {
	all := compile(t, "all.json")
	const tool = `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: billing-api, namespace: acme}
spec:
  upstream: http://127.0.0.1:9001
  auth: {type: apiKey}
  rateLimit: 100/s
  operations:
    - name: get_invoice
      method: GET
      path: /invoices/{id}
`
	if err := all.Validate(documents(t, []byte(tool))[0]); err != nil {
		t.Fatalf("base document invalid: %v", err)
	}
	tests := []struct{ name, from, to string }{
		{"unknown field", "upstream:", "upstrem:"},
		{"unknown kind", "kind: Tool", "kind: Tol"},
		{"wrong apiVersion", "stoa.io/v1alpha1", "stoa.io/v1"},
		{"bad rate", "rateLimit: 100/s", "rateLimit: 100/sec"},
		{"bad rate object", "rateLimit: 100/s", "rateLimit: {rate: 100/s, burst: many}"},
		{"rate object without rate", "rateLimit: 100/s", "rateLimit: {burst: 5}"},
		{"auth type", "type: apiKey", "type: basic"},
		{"method", "method: GET", "method: FETCH"},
		{"operation name", "name: get_invoice", "name: Get Invoice"},
		{"missing namespace", "namespace: acme}", "labels: {a: b}}"},
		{"bad name", "name: billing-api,", "name: Billing_API,"},
		{"duration", "rateLimit: 100/s", "timeouts: {total: 5 seconds}"},
		{"missing spec", "spec:\n", "other:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(tool, tt.from, tt.to, 1)
			if src == tool {
				t.Fatalf("%q not in the base document", tt.from)
			}
			if err := all.Validate(documents(t, []byte(src))[0]); err == nil {
				t.Errorf("all.json accepted:\n%s", src)
			}
		})
	}
	tenant := "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: acme, namespace: acme}\nspec: {}\n"
	if err := all.Validate(documents(t, []byte(tenant))[0]); err == nil {
		t.Error("all.json accepted a Tenant with a namespace")
	}
}

func TestRulesMatchFields(t *testing.T) {
	m, err := BuildModel(filepath.Join(root, "pkg", "spec"))
	if err != nil {
		t.Fatal(err)
	}
	f := m.Types["ToolAuth"].Field("type")
	if f == nil || !f.Required || len(f.Enum) != 4 {
		t.Fatalf("ToolAuth.type = %+v", f)
	}
	if m.Types["RateLimit"].StringForm == "" {
		t.Error("RateLimit lost its string form")
	}
}
