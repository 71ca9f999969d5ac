package openapi

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func petstore(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("testdata", "petstore.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const toolSpec = `apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: acme}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: pets
  namespace: acme
spec:
  protocol: rest
  openapi: %s
  operations:
    - name: list_pets
      method: GET
      path: /pets
      description: Explicit wins.
`

func load(t *testing.T, dir string, opts ExpandOptions) ([]*spec.Object, spec.Diagnostics) {
	t.Helper()
	objs, diags := spec.Load([]string{dir}, nil)
	diags = Expand(context.Background(), objs, diags, opts)
	return objs, diags
}

func toolOf(objs []*spec.Object) (*spec.Object, *spec.ToolSpec) {
	for _, o := range objs {
		if ts, ok := o.Spec.(*spec.ToolSpec); ok {
			return o, ts
		}
	}
	return nil, nil
}

func TestExpand(t *testing.T) {
	// The OpenAPI document sits in the specs directory: the loader's
	// complaints about it (it is not a stoa spec) are dropped.
	dir := writeFiles(t, map[string]string{
		"specs/tool.yaml":         strings.Replace(toolSpec, "%s", "./api/petstore.yaml", 1),
		"specs/api/petstore.yaml": petstore(t),
	})
	objs, diags := load(t, filepath.Join(dir, "specs"), ExpandOptions{})
	if diags.HasErrors() {
		t.Fatalf("diagnostics:\n%s", diags.Error())
	}
	o, ts := toolOf(objs)
	if ts.Upstream != "http://petstore.example.com/v1" {
		t.Errorf("upstream = %q", ts.Upstream)
	}
	var names []string
	for _, op := range ts.Operations {
		names = append(names, op.Name)
	}
	if got := strings.Join(names, ","); got != "list_pets,create_pets,show_pet_by_id,update_pet,delete_pet,get_store_inventory" {
		t.Errorf("operations = %s", got)
	}
	if ts.Operations[0].Description != "Explicit wins." {
		t.Errorf("explicit operation replaced: %+v", ts.Operations[0])
	}
	raw, ok := StoredDocument(o)
	if !ok || string(raw) != petstore(t) {
		t.Errorf("stored document missing or different (ok=%v, %d bytes)", ok, len(raw))
	}
	for _, ob := range objs {
		spec.Default(ob)
	}
	if d := spec.Validate(objs, spec.ValidateOptions{}); d.HasErrors() {
		t.Fatalf("expanded specs invalid:\n%s", d.Error())
	}
	// Expanding the same files again gives the same annotation (no-op apply).
	objs2, _ := load(t, filepath.Join(dir, "specs"), ExpandOptions{})
	o2, _ := toolOf(objs2)
	if o2.Metadata.Annotations[DocumentAnnotation] != o.Metadata.Annotations[DocumentAnnotation] {
		t.Error("stored document is not deterministic")
	}
}

func TestExpandErrorsPointAtOpenAPILine(t *testing.T) {
	long := strings.Replace(toolSpec, "name: pets\n", "name: pets-with-a-really-quite-long-tool-name-x\n", 1)
	cases := []struct {
		name, spec string
		files      map[string]string
		opts       ExpandOptions
		want, hint string
	}{
		{name: "missing file", spec: strings.Replace(toolSpec, "%s", "./nope.yaml", 1),
			want: "no such file", hint: "relative to this spec file"},
		{name: "remote not allowed", spec: strings.Replace(toolSpec, "%s", "https://example.com/api.yaml", 1),
			want: "remote documents are not fetched", hint: "save the document"},
		{name: "not openapi", spec: strings.Replace(toolSpec, "%s", "./other.yaml", 1),
			files: map[string]string{"other.yaml": "hello: world\n"}, want: "not an OpenAPI document"},
		{name: "name too long", spec: strings.Replace(long, "%s", "./p.yaml", 1),
			files: map[string]string{"p.yaml": petstore(t)}, want: "characters long", hint: "x-mcp-name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{"tool.yaml": c.spec}
			for k, v := range c.files {
				files[k] = v
			}
			dir := writeFiles(t, files)
			_, diags := load(t, filepath.Join(dir, "tool.yaml"), c.opts)
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			var d *spec.Diagnostic
			for _, x := range diags {
				if x.Severity == spec.SeverityError {
					d = x
					break
				}
			}
			if !strings.Contains(d.Message, c.want) || !strings.Contains(d.Hint, c.hint) {
				t.Errorf("got %q (hint %q), want %q / %q", d.Message, d.Hint, c.want, c.hint)
			}
			// openapi: is on line 13 of the file, its value at column 12.
			if d.File != filepath.Join(dir, "tool.yaml") || d.Line != 13 || d.Column != 12 || !strings.Contains(d.SourceLine, "openapi:") {
				t.Errorf("position %s:%d:%d %q, want the openapi: line", d.File, d.Line, d.Column, d.SourceLine)
			}
		})
	}
}

func TestExpandStdinRelativeToDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{"petstore.yaml": petstore(t)})
	objs, diags := spec.Load([]string{"-"}, strings.NewReader(strings.Replace(toolSpec, "%s", "petstore.yaml", 1)))
	diags = Expand(context.Background(), objs, diags, ExpandOptions{Dir: dir})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if _, ts := toolOf(objs); len(ts.Operations) != 6 {
		t.Errorf("%d operations", len(ts.Operations))
	}
}

func TestSchemaBlowUpIsBounded(t *testing.T) {
	// 40 schemas, each referring to the next twice: 2^40 nodes if inlined
	// naively.
	var b strings.Builder
	b.WriteString("openapi: 3.0.3\ninfo: {title: t, version: '1'}\nservers: [{url: 'http://x'}]\npaths:\n  /a:\n    post:\n      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/S0'}}}}\n      responses: {'200': {description: ok}}\ncomponents:\n  schemas:\n")
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "    S%d: {type: object, properties: {l: {$ref: '#/components/schemas/S%d'}, r: {$ref: '#/components/schemas/S%d'}}}\n", i, i+1, i+1)
	}
	b.WriteString("    S40: {type: string}\n")
	doc, err := Parse(context.Background(), []byte(b.String()), "big.yaml", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ops, warns := doc.Operations(Filter{})
	if len(ops) != 1 || len(warns) != 0 {
		t.Fatalf("ops %d, warnings %v", len(ops), warns)
	}
	// Each schema is written once: large ones under $defs, referenced.
	js, err := json.Marshal(ops[0].Op.Input)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) > 64<<10 || !strings.Contains(string(js), `"$defs"`) {
		t.Errorf("input is %d bytes: %.400s", len(js), js)
	}
	if _, err := mcp.BuildCatalog(1, []*spec.Object{{APIVersion: spec.APIVersion, Kind: spec.KindTool,
		Metadata: spec.Metadata{Name: "big", Namespace: "acme"},
		Spec:     &spec.ToolSpec{Upstream: "http://x", Operations: []spec.Operation{ops[0].Op}}}}); err != nil {
		t.Errorf("the input does not compile: %v", err)
	}
}
