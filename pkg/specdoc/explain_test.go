package specdoc

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/internal/golden"
)

func TestResolve(t *testing.T) {
	m := Default()
	tests := []struct {
		path, kind, field, label string
		wantErr                  string
	}{
		{path: "tool", kind: "Tool"},
		{path: "tools", kind: "Tool"},
		{path: "ts.policies", kind: "ToolSet", field: "spec.policies", label: "ToolSetPolicies"},
		{path: "tool.spec.auth.type", kind: "Tool", field: "spec.auth.type", label: "string"},
		{path: "tool.auth.type", kind: "Tool", field: "spec.auth.type", label: "string"},
		{path: "Tool.Operations.Method", kind: "Tool", field: "spec.operations.method", label: "string"},
		{path: "tool.metadata.name", kind: "Tool", field: "metadata.name", label: "string"},
		{path: "gateway.xdp.perSource", kind: "Gateway", field: "spec.xdp.perSource", label: "RateLimit"},
		{path: "tool.operations.input", kind: "Tool", field: "spec.operations.input", label: "object"},
		{path: "tool.tags", kind: "Tool", field: "spec.tags", label: "[]string"},
		{path: "tool.operations.in", kind: "Tool", field: "spec.operations.in", label: "map[string]string"},
		{path: "nope", wantErr: `unknown kind "nope"`},
		{path: "tool.upstrem", wantErr: `Tool.spec has no field "upstrem"`},
		{path: "tool.auth.type.x", wantErr: "has no fields"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			n, err := m.Resolve(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Kind != tt.kind || n.Path != tt.field {
				t.Fatalf("resolved %s %s", n.Kind, n.Path)
			}
			if tt.label != "" && n.Field.Type.Label() != tt.label {
				t.Fatalf("label %s, want %s", n.Field.Type.Label(), tt.label)
			}
		})
	}
}

func TestExplainGolden(t *testing.T) {
	m := Default()
	for _, tt := range []struct {
		path      string
		recursive bool
	}{{"tool", false}, {"tool.auth", false}, {"tool.rateLimit", false}, {"gateway", true}} {
		n, err := m.Resolve(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := m.Explain(&b, n, tt.recursive); err != nil {
			t.Fatal(err)
		}
		name := strings.ReplaceAll(tt.path, ".", "_")
		if tt.recursive {
			name += "_recursive"
		}
		golden.Check(t, filepath.Join("testdata", name+".golden"), []byte(b.String()))
	}
}

func TestEveryKindDocumented(t *testing.T) {
	m := Default()
	if len(m.KindNames()) != 8 {
		t.Fatalf("kinds: %v", m.KindNames())
	}
	for _, k := range m.KindNames() {
		t.Run(k, func(t *testing.T) {
			specType := m.Types[m.Kinds[k]]
			if specType == nil || specType.Doc == "" {
				t.Fatalf("%s has no documented spec type", k)
			}
			var walk func(ty *Type, path string, seen map[string]bool)
			walk = func(ty *Type, path string, seen map[string]bool) {
				for _, f := range ty.Fields {
					if f.Doc == "" {
						t.Errorf("%s.%s has no doc comment in pkg/spec", path, f.Name)
					}
					if sub := m.Object(f.Type); sub != nil && !seen[sub.Name] {
						seen[sub.Name] = true
						walk(sub, path+"."+f.Name, seen)
					}
				}
			}
			walk(specType, strings.ToLower(k)+".spec", map[string]bool{})
		})
	}
}
