package openapi

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzImport feeds arbitrary documents to the importer: it must never
// panic, and whatever it imports must encode as JSON (the printed spec) and
// print as YAML.
func FuzzImport(f *testing.F) {
	for _, name := range []string{"petstore.yaml", "shop.yaml", "swagger2.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("openapi: 3.1.0\ninfo: {title: t, version: '1'}\nservers: [{url: 'http://x'}]\npaths:\n  /a/{b}:\n    post:\n      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/R'}}}}\ncomponents:\n  schemas:\n    R: {type: object, properties: {r: {$ref: '#/components/schemas/R'}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		doc, err := Parse(context.Background(), data, filepath.Join(t.TempDir(), "doc.yaml"), LoadOptions{})
		if err != nil {
			return
		}
		obj, _, err := doc.Tool(ImportOptions{Tenant: "t", Name: "n", Upstream: "http://127.0.0.1:1"})
		if err != nil {
			return
		}
		if _, err := json.Marshal(obj); err != nil {
			t.Fatalf("imported Tool does not encode: %v", err)
		}
		if _, err := YAML(obj, "doc.yaml"); err != nil {
			t.Fatalf("imported Tool does not print: %v", err)
		}
	})
}
