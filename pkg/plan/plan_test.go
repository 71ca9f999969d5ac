package plan

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/internal/golden"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

func tenant(name string) *spec.Object {
	o := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: name}, Spec: &spec.TenantSpec{DisplayName: name}}
	spec.Default(o)
	return o
}

func tool(ns, name, upstream string) *spec.Object {
	o := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool, Metadata: spec.Metadata{Name: name, Namespace: ns},
		Spec: &spec.ToolSpec{Upstream: upstream}}
	spec.Default(o)
	return o
}

func toolSet(ns, name string, tools ...string) *spec.Object {
	o := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindToolSet, Metadata: spec.Metadata{Name: name, Namespace: ns},
		Spec: &spec.ToolSetSpec{Tools: tools}}
	spec.Default(o)
	return o
}

func refs(changes []Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, string(c.Op)+" "+c.Ref.String())
	}
	return out
}

func TestComputeOrdersByDependency(t *testing.T) {
	live := []*spec.Object{tenant("old"), tool("old", "gone", "http://a"), toolSet("old", "set", "gone"), tenant("acme"), tool("acme", "billing", "http://a")}
	desired := []*spec.Object{toolSet("acme", "ts", "billing", "inv"), tool("acme", "inv", "http://i"), tool("acme", "billing", "http://b"), tenant("acme"), tenant("globex")}
	changes, sum := Compute(live, desired, Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }})
	got := strings.Join(refs(changes), "\n")
	want := strings.Join([]string{
		"create Tenant/globex",
		"update Tool/acme/billing",
		"create Tool/acme/inv",
		"create ToolSet/acme/ts",
		// Deletes come last, in reverse dependency order.
		"delete ToolSet/old/set",
		"delete Tool/old/gone",
		"delete Tenant/old",
	}, "\n")
	if got != want {
		t.Fatalf("changes:\n%s\nwant:\n%s", got, want)
	}
	if sum != (Summary{Create: 3, Update: 1, Delete: 3, Unchanged: 1}) {
		t.Fatalf("summary %+v", sum)
	}
}

func TestComputeIdenticalIsEmpty(t *testing.T) {
	live := []*spec.Object{tenant("acme"), tool("acme", "billing", "http://a")}
	desired := []*spec.Object{tenant("acme"), tool("acme", "billing", "http://a")}
	changes, sum := Compute(live, desired, Options{})
	if len(changes) != 0 || !sum.Empty() || sum.Unchanged != 2 {
		t.Fatalf("identical input planned %v (%+v)", refs(changes), sum)
	}
}

func TestPruneNeedsScope(t *testing.T) {
	live := []*spec.Object{tenant("acme"), tool("acme", "a", "http://a"), tool("globex", "b", "http://b")}
	desired := []*spec.Object{tenant("acme")}
	// Prune without a scope deletes nothing.
	if changes, _ := Compute(live, desired, Options{Prune: true}); len(changes) != 0 {
		t.Fatalf("unscoped prune deleted %v", refs(changes))
	}
	inAcme := func(o *spec.Object) bool { return o.Metadata.Namespace == "acme" }
	changes, _ := Compute(live, desired, Options{Prune: true, PruneScope: inAcme})
	if got := refs(changes); len(got) != 1 || got[0] != "delete Tool/acme/a" {
		t.Fatalf("scoped prune: %v", got)
	}
}

func TestDeletesAndApply(t *testing.T) {
	live := []*spec.Object{tenant("acme"), tool("acme", "a", "http://a")}
	changes, _ := Compute(live, nil, Options{Deletes: []spec.Ref{{Kind: spec.KindTool, Namespace: "acme", Name: "a"}, {Kind: spec.KindTool, Namespace: "acme", Name: "missing"}}})
	if got := refs(changes); len(got) != 1 || got[0] != "delete Tool/acme/a" {
		t.Fatalf("deletes: %v", got)
	}
	next := Apply(live, changes)
	if len(next) != 1 || next[0].Kind != spec.KindTenant {
		t.Fatalf("apply: %v", next)
	}
	// Apply returns a new slice; live is untouched.
	if len(live) != 2 {
		t.Fatal("Apply modified its input")
	}
}

func TestEqualIgnoresSource(t *testing.T) {
	a, b := tool("acme", "a", "http://a"), tool("acme", "a", "http://a")
	a.Source = &spec.Source{File: "x.yaml", Line: 3}
	if !Equal(a, b) {
		t.Fatal("Source must not affect equality")
	}
	b.Spec.(*spec.ToolSpec).Description = "changed"
	if Equal(a, b) {
		t.Fatal("a changed description must count")
	}
}

func TestRenderTextGolden(t *testing.T) {
	before := tool("acme", "billing", "http://127.0.0.1:9001/v1")
	after := tool("acme", "billing", "http://127.0.0.1:9001/v2")
	after.Spec.(*spec.ToolSpec).Description = "Invoices."
	changes := []Change{
		{Op: Create, Ref: tenant("globex").Ref(), After: tenant("globex")},
		{Op: Update, Ref: after.Ref(), Before: before, After: after},
		{Op: Delete, Ref: toolSet("acme", "old", "billing").Ref(), Before: toolSet("acme", "old", "billing")},
	}
	var buf bytes.Buffer
	if err := RenderText(&buf, changes, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "render.golden"), buf.Bytes())
	if strings.Contains(buf.String(), "\x1b[") {
		t.Fatal("colour without RenderOptions.Color")
	}
	buf.Reset()
	_ = RenderText(&buf, changes, RenderOptions{Color: true})
	if !strings.Contains(buf.String(), "\x1b[") {
		t.Fatal("no colour with RenderOptions.Color")
	}
}

func BenchmarkCompute10k(b *testing.B) {
	var live, desired []*spec.Object
	for i := 0; i < 10000; i++ {
		live = append(live, tool("acme", "t"+string(rune('a'+i%26))+strings.Repeat("x", i%7)+string(rune('0'+i%10))+string(rune(i)), "http://a"))
	}
	for _, o := range live {
		cp := *o
		desired = append(desired, &cp)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Compute(live, desired, Options{})
	}
}
