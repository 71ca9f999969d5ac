package yamlenc_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/yamlenc"
)

// toolListJSON is what `stoa get tools -o yaml` renders: a List of n Tool
// objects with defaults applied, as the JSON the daemon returns.
func toolListJSON(tb testing.TB, n int) []byte {
	tb.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: acme\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: tool-%d
  namespace: acme
  labels: {team: team-%d, tier: "gold"}
spec:
  description: "Generated tool number %d: fetches and creates items."
  upstream: http://127.0.0.1:9001/api/%d
  rateLimit: 100/s
  timeouts: {connect: 1s, total: 20s}
  operations:
    - name: get_item
      method: GET
      path: /items/{id}
      description: Fetch one item by id.
      input:
        type: object
        properties: {id: {type: string, pattern: "^[a-z0-9-]+$"}}
        required: [id]
    - name: create_item
      method: POST
      path: /items
      input:
        type: object
        properties:
          name: {type: string, maxLength: 100}
          count: {type: integer, minimum: 0}
      rateLimit: {rate: 10/s, burst: 5}
`, i, i%7, i, i)
	}
	objs, diags := spec.Parse("tools.yaml", []byte(b.String()))
	if len(diags) > 0 {
		tb.Fatalf("parse: %v", diags)
	}
	items := make([]*spec.Object, 0, n)
	for _, o := range objs {
		if o.Kind == spec.KindTool {
			spec.Default(o)
			items = append(items, o)
		}
	}
	if len(items) != n {
		tb.Fatalf("got %d tools, want %d", len(items), n)
	}
	out, err := json.Marshal(map[string]any{"apiVersion": spec.APIVersion, "kind": "List", "items": items})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// BenchmarkFromJSON compares yamlenc with goccy/go-yaml turning the same
// JSON into order-preserving YAML.
func BenchmarkFromJSON(b *testing.B) {
	in := toolListJSON(b, 1000)
	b.Run("yamlenc", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if _, err := yamlenc.FromJSON(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("goccy", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if _, err := yaml.JSONToYAML(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	// goccy's encoder alone: the JSON is decoded into an ordered
	// yaml.MapSlice tree by encoding/json first, as a wrapper would.
	b.Run("goccy-marshal", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			v, err := orderedFromJSON(in)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := yaml.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
