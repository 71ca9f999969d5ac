package spec

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestListDocument: a kubectl-style List expands into its items, each
// positioned at its own place, in YAML as `stoa get -o yaml` prints it and
// in JSON as `-o json` does.
func TestListDocument(t *testing.T) {
	in := `apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: stoa.io/v1alpha1
  kind: Tenant
  metadata:
    name: acme
- apiVersion: stoa.io/v1alpha1
  kind: Tool
  metadata:
    name: billing
    namespace: acme
  spec:
    upstream: http://127.0.0.1:9001
    rateLimit: 5/week
`
	objs, diags := Parse("l.yaml", []byte(in))
	if len(objs) != 2 || objs[0].Kind != KindTenant || objs[1].Kind != KindTool {
		t.Fatalf("objects: %v %v", objs, diags)
	}
	if s := objs[1].Source; s.Line != 10 || s.Column != 3 {
		t.Errorf("second item at %d:%d, want 10:3", s.Line, s.Column)
	}
	// A bad rate is the decoder's diagnostic, at the value.
	d := findDiag(diags, "spec.rateLimit.rate", "invalid rate")
	if d == nil || d.File != "l.yaml" || d.Line != 17 || d.Column != 16 || d.Object == nil || d.Object.Name != "billing" {
		t.Fatalf("diagnostic in an item: %+v (all: %v)", d, diags)
	}

	// The same as JSON on one line, as a pipe from `stoa get -o json`.
	b, _ := json.Marshal(map[string]any{"apiVersion": APIVersion, "kind": "List", "items": []any{
		map[string]any{"apiVersion": APIVersion, "kind": "Tool", "metadata": map[string]any{"name": "t", "namespace": "acme"},
			"spec": map[string]any{"upstream": "http://127.0.0.1:1", "rateLimit": "5/week"}},
	}})
	objs, diags = Parse("l.json", b)
	if len(objs) != 1 || len(diags) != 1 {
		t.Fatalf("json list: %v %v", objs, diags)
	}
	if d := findDiag(diags, "spec.rateLimit.rate", "invalid rate"); d == nil || d.Line != 1 || !strings.HasPrefix(string(b[d.Column-1:]), `"5/week"`) {
		t.Fatalf("json position: %+v", d)
	}
}

func TestListProblems(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		line, col int
		msg       string
	}{
		{"api version", "apiVersion: apps/v1\nkind: List\nitems: []\n", 1, 13, "unknown apiVersion"},
		{"missing api version", "kind: List\nitems: []\n", 1, 1, "missing apiVersion"},
		{"missing items", "apiVersion: v1\nkind: List\n", 1, 1, "missing items"},
		{"items not a list", "apiVersion: v1\nkind: List\nitems: {a: 1}\n", 3, 8, "expected a list of objects"},
		{"unknown field", "apiVersion: v1\nkind: List\nitem: []\n", 3, 1, `unknown field "item" in List`},
		{"nested list", "apiVersion: v1\nkind: List\nitems:\n- kind: List\n  items: []\n", 4, 3, "cannot contain another List"},
		{"item problem", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: stoa.io/v1alpha1\n  kind: Toool\n  metadata: {name: x}\n", 5, 9, `unknown kind "Toool"`},
		{"metadata scalar", "apiVersion: v1\nkind: List\nmetadata: 3\nitems: []\n", 3, 11, "expected a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Parse("l.yaml", []byte(tc.in))
			if len(diags) == 0 {
				t.Fatal("no diagnostic")
			}
			d := diags[0]
			if d.Line != tc.line || d.Column != tc.col || !strings.Contains(d.Message, tc.msg) {
				t.Errorf("got %d:%d %q, want %d:%d %q", d.Line, d.Column, d.Message, tc.line, tc.col, tc.msg)
			}
		})
	}
	// An empty List is no objects and no problem.
	if objs, diags := Parse("l.yaml", []byte("apiVersion: v1\nkind: List\nitems: []\n")); len(objs) != 0 || len(diags) != 0 {
		t.Errorf("empty list: %v %v", objs, diags)
	}
}
