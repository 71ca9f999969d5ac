package openapi

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// argType is the type an argument declares, read through its $defs entry.
func argType(s any, defs map[string]any) any {
	m, _ := s.(map[string]any)
	if r, ok := m["$ref"].(string); ok {
		m, _ = defs[strings.TrimPrefix(r, "#/$defs/")].(map[string]any)
	}
	return m["type"]
}

// danglingRefs lists the $refs of input that name no $defs entry.
func danglingRefs(input map[string]any) []string {
	defs, _ := input["$defs"].(map[string]any)
	var out []string
	for _, n := range defRefs(input, nil) {
		if _, ok := defs[n]; !ok {
			out = append(out, n)
		}
	}
	return out
}

// TestFitInput: each step in turn, on inputs built to need it.
func TestFitInput(t *testing.T) {
	long := strings.Repeat("Long reference documentation. ", 20)
	leaf := map[string]any{"type": "object", "description": long, "title": "Leaf",
		"properties": map[string]any{
			// Property names that are keywords elsewhere are names here.
			"description": map[string]any{"type": "string", "description": long},
			"title":       map[string]any{"type": "string", "enum": []any{"title", "description"}, "default": "title"},
			"x-name":      map[string]any{"type": "integer", "examples": []any{1}},
		}}
	mid := map[string]any{"type": []any{"object", "null"}, "description": long,
		"properties": map[string]any{"leaf": map[string]any{"$ref": "#/$defs/Leaf"}, "pad": map[string]any{"type": "string", "enum": enumOf(40)}}}
	top := map[string]any{"oneOf": []any{map[string]any{"$ref": "#/$defs/Mid"}, map[string]any{"type": "string"}}, "description": long}
	input := func() map[string]any {
		return map[string]any{"type": "object", "required": []any{"owner", "item"},
			"properties": map[string]any{
				"owner": map[string]any{"type": "string", "description": "The account owner."},
				"item":  map[string]any{"$ref": "#/$defs/Top", "description": "The item."},
				"extra": map[string]any{"type": "object", "description": "Extra.", "properties": map[string]any{
					"note": map[string]any{"type": "string", "description": long}}},
			},
			"$defs": map[string]any{"Leaf": leaf, "Mid": mid, "Top": top}}
	}
	full := spec.SchemaSize(input(), 1<<20)

	cases := []struct {
		name  string
		limit int
		check func(t *testing.T, out map[string]any, w string)
	}{
		{"fits", full, func(t *testing.T, out map[string]any, w string) {
			if w != "" || !reflect.DeepEqual(out, input()) {
				t.Errorf("a schema that fits changed: %q", w)
			}
		}},
		{"prose in $defs", full - 1, func(t *testing.T, out map[string]any, w string) {
			defs := out["$defs"].(map[string]any)
			l := defs["Leaf"].(map[string]any)
			for _, k := range []string{"description", "title"} {
				if _, ok := l[k]; ok {
					t.Errorf("Leaf keeps its %s", k)
				}
			}
			lp := l["properties"].(map[string]any)
			if _, ok := lp["description"]; !ok {
				t.Error("the property named description was dropped")
			}
			if _, ok := lp["x-name"]; !ok {
				t.Error("the property named x-name was dropped")
			}
			if !reflect.DeepEqual(lp["title"], leaf["properties"].(map[string]any)["title"]) {
				t.Errorf("data (enum, default) changed: %v", lp["title"])
			}
			if _, ok := lp["x-name"].(map[string]any)["examples"]; ok {
				t.Error("examples kept inside $defs")
			}
			// Arguments are not touched yet.
			note := out["properties"].(map[string]any)["extra"].(map[string]any)["properties"].(map[string]any)["note"]
			if note.(map[string]any)["description"] != long {
				t.Error("step 1 dropped a description outside $defs")
			}
			if !strings.Contains(w, "inside $defs") || strings.Contains(w, "nested") || strings.Contains(w, "still") {
				t.Errorf("warning: %s", w)
			}
		}},
		{"nested prose", 1500, func(t *testing.T, out map[string]any, w string) {
			props := out["properties"].(map[string]any)
			extra := props["extra"].(map[string]any)
			if _, ok := extra["properties"].(map[string]any)["note"].(map[string]any)["description"]; ok {
				t.Error("a nested description was kept")
			}
			if extra["description"] != "Extra." || props["item"].(map[string]any)["description"] != "The item." {
				t.Error("an argument lost its description")
			}
			if !strings.Contains(w, "nested") || strings.Contains(w, "$defs entr") {
				t.Errorf("warning: %s", w)
			}
		}},
		{"$defs entries", 1100, func(t *testing.T, out map[string]any, w string) {
			defs := out["$defs"].(map[string]any)
			// The deepest entry goes first; Top, which the argument names,
			// keeps its oneOf.
			if _, ok := defs["Leaf"].(map[string]any)["properties"]; ok {
				t.Errorf("Leaf (deepest) kept: %v", defs["Leaf"])
			}
			if _, ok := defs["Top"].(map[string]any)["oneOf"]; !ok {
				t.Errorf("Top was elided before deeper entries: %v", defs["Top"])
			}
			if !strings.Contains(w, "$defs entr") || !strings.Contains(w, "Leaf") {
				t.Errorf("warning: %s", w)
			}
		}},
		{"unreachable", 100, func(t *testing.T, out map[string]any, w string) {
			// Every $defs entry the arguments do not name directly is
			// gone, Top is its type and a note, the arguments keep
			// their description; and the warning says it is not enough.
			defs := out["$defs"].(map[string]any)
			if len(defs) != 1 || defs["Top"].(map[string]any)["description"] != elidedNote {
				t.Errorf("$defs: %v", defs)
			}
			item := out["properties"].(map[string]any)["item"].(map[string]any)
			if item["description"] != "The item." {
				t.Errorf("item: %v", item)
			}
			if !strings.Contains(w, "still too large") || !strings.Contains(w, "2 entries no longer referenced") {
				t.Errorf("warning: %s", w)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := input()
			before := mustJSON(t, in)
			out, w := (&refForms{limit: tc.limit}).fitInput("get_item", in)
			t.Logf("%d → %d bytes: %s", full, spec.SchemaSize(out, 1<<20), w)
			if mustJSON(t, in) != before {
				t.Fatal("fitInput modified its input (shared with other operations)")
			}
			if n := spec.SchemaSize(out, 1<<20); n > tc.limit && !strings.Contains(w, "still too large") {
				t.Errorf("%d bytes, over the %d limit", n, tc.limit)
			}
			if w != "" && (!strings.Contains(w, "get_item") || !strings.Contains(w, "cut to")) {
				t.Errorf("warning does not name the operation and the sizes: %s", w)
			}
			// What tools/list shows at the top never changes.
			if !reflect.DeepEqual(out["required"], in["required"]) || out["type"] != "object" {
				t.Errorf("top level changed: %v", out)
			}
			op, ip := out["properties"].(map[string]any), in["properties"].(map[string]any)
			od, _ := out["$defs"].(map[string]any)
			id, _ := in["$defs"].(map[string]any)
			for n, p := range ip {
				if got, want := argType(op[n], od), argType(p, id); !reflect.DeepEqual(got, want) {
					t.Errorf("argument %s: type %v, was %v", n, got, want)
				}
			}
			if len(op) != len(ip) {
				t.Errorf("arguments %v, were %v", op, ip)
			}
			if d := danglingRefs(out); len(d) > 0 {
				t.Errorf("references to missing $defs entries: %v", d)
			}
			tc.check(t, out, w)
		})
	}
}

func enumOf(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("value-%03d", i)
	}
	return out
}

// TestFitInputUnreducible: an argument with no $defs and a huge inline
// schema keeps its name, type and description.
func TestFitInputUnreducible(t *testing.T) {
	in := map[string]any{"type": "object", "properties": map[string]any{
		"state": map[string]any{"type": "string", "description": "The state.", "enum": enumOf(20000)},
		"id":    map[string]any{"type": "integer", "minimum": uint64(1)},
	}, "required": []any{"state"}}
	out, w := (&refForms{}).fitInput("set_state", in)
	if n := spec.SchemaSize(out, 1<<30); n > spec.MaxSchemaBytes {
		t.Fatalf("%d bytes", n)
	}
	state := out["properties"].(map[string]any)["state"].(map[string]any)
	if state["type"] != "string" || !strings.HasPrefix(state["description"].(string), "The state.") {
		t.Errorf("state: %v", state)
	}
	if !reflect.DeepEqual(out["properties"].(map[string]any)["id"], in["properties"].(map[string]any)["id"]) {
		t.Error("id, small, was cut too")
	}
	if !strings.Contains(w, "set_state") || !strings.Contains(w, "arguments state") && !strings.Contains(w, "argument state") {
		t.Errorf("warning: %s", w)
	}
}

// TestLargeDocumentFits: every operation of the GitHub-sized document
// fits spec.MaxSchemaBytes once imported; those that had to be cut keep
// what tools/list shows at the top (argument names, types, required,
// placement), validate (also read back from the printed YAML), compile,
// and are each named by a warning. The shared converted schemas are not
// modified by cutting.
func TestLargeDocumentFits(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a GitHub-sized import (13 MB): not with -short or -race")
	}
	doc, err := Parse(context.Background(), largeDocument(), "github.json", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doc.refForms().limit = 1 << 30
	uncut, _ := doc.Operations(Filter{})
	before := map[string]string{}
	for _, imp := range uncut {
		if spec.SchemaSize(imp.Op.Input, spec.MaxSchemaBytes) > spec.MaxSchemaBytes {
			before[imp.Op.Name] = mustJSON(t, imp.Op.Input)
		}
	}
	doc.refForms().limit = 0
	obj, warns, err := doc.Tool(ImportOptions{Tenant: "gh", Name: "github"})
	if err != nil {
		t.Fatal(err)
	}
	ops := obj.Spec.(*spec.ToolSpec).Operations
	if len(ops) != len(uncut) || len(before) == 0 {
		t.Fatalf("%d operations, %d before cutting, %d too large", len(ops), len(uncut), len(before))
	}
	cutWarns := 0
	for _, w := range warns {
		if strings.Contains(w, "as JSON, over the 128 KiB limit; cut to") {
			cutWarns++
			if strings.Contains(w, "still too large") {
				t.Error(w)
			}
		}
	}
	if cutWarns != len(before) {
		t.Errorf("%d warnings about cut schemas, %d operations too large", cutWarns, len(before))
	}
	t.Logf("%d of %d operations cut to fit", len(before), len(ops))

	cut := *obj
	ts := *obj.Spec.(*spec.ToolSpec)
	ts.Operations = nil
	for i, op := range ops {
		if n := spec.SchemaSize(op.Input, spec.MaxSchemaBytes); n > spec.MaxSchemaBytes {
			t.Errorf("%s: input over the cap", op.Name)
		}
		if _, was := before[op.Name]; !was {
			continue
		}
		ts.Operations = append(ts.Operations, op)
		orig := uncut[i].Op
		if !reflect.DeepEqual(op.In, orig.In) || !reflect.DeepEqual(op.Input["required"], orig.Input["required"]) {
			t.Errorf("%s: in or required changed", op.Name)
		}
		np, op0 := op.Input["properties"].(map[string]any), orig.Input["properties"].(map[string]any)
		names, names0 := slices.Sorted(maps.Keys(np)), slices.Sorted(maps.Keys(op0))
		if !slices.Equal(names, names0) {
			t.Errorf("%s: arguments %v, were %v", op.Name, names, names0)
		}
		defs, _ := op.Input["$defs"].(map[string]any)
		defs0, _ := orig.Input["$defs"].(map[string]any)
		for _, n := range names {
			if got, want := argType(np[n], defs), argType(op0[n], defs0); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: argument %s has type %v, was %v", op.Name, n, got, want)
			}
			if d, _ := op0[n].(map[string]any)["description"].(string); d != "" {
				if got, _ := np[n].(map[string]any)["description"].(string); !strings.HasPrefix(got, d) {
					t.Errorf("%s: argument %s lost its description", op.Name, n)
				}
			}
		}
		if d := danglingRefs(op.Input); len(d) > 0 {
			t.Errorf("%s: references to missing $defs entries: %v", op.Name, d)
		}
	}
	for _, imp := range uncut {
		if b, ok := before[imp.Op.Name]; ok && mustJSON(t, imp.Op.Input) != b {
			t.Fatalf("%s: cutting modified the shared schemas", imp.Op.Name)
		}
	}

	// The cut operations validate and compile as imported, and as
	// `stoa import openapi` prints them (numbers read back as numbers).
	cut.Spec = &ts
	spec.Default(&cut)
	if diags := spec.Validate([]*spec.Object{&cut}, spec.ValidateOptions{SkipReferences: true}); diags.HasErrors() {
		t.Fatalf("invalid: %v", diags)
	}
	if _, err := mcp.BuildCatalog(1, []*spec.Object{&cut}); err != nil {
		t.Fatal(err)
	}
	// Printed, the cut operations are 20 MiB of YAML: more than a spec
	// file may hold (16 MiB); read back in parts.
	all := ts.Operations
	for i := 0; i < len(all); i += 20 {
		part := cut
		pts := ts
		pts.Operations = all[i:min(i+20, len(all))]
		part.Spec = &pts
		y, err := YAML(&part, "github.json")
		if err != nil {
			t.Fatal(err)
		}
		objs, diags := spec.Parse("github.yaml", y)
		if diags.HasErrors() || len(objs) != 1 {
			t.Fatalf("printed Tool: %v", diags)
		}
		if diags := spec.Validate(objs, spec.ValidateOptions{SkipReferences: true}); diags.HasErrors() {
			t.Fatalf("printed Tool is invalid: %v", diags)
		}
	}
}

// TestExpandCutSchemaWarns: a Tool naming a document with an operation
// whose input is over the cap gets the operation, cut to fit, and a
// warning at its openapi: line.
func TestExpandCutSchemaWarns(t *testing.T) {
	var b strings.Builder
	b.WriteString("openapi: 3.0.3\ninfo: {title: t, version: '1'}\nservers: [{url: 'http://x'}]\npaths:\n  /things:\n    post:\n" +
		"      operationId: createThing\n" +
		"      requestBody: {required: true, content: {application/json: {schema: {type: object, required: [name], properties: {" +
		"name: {type: string, description: The name.}, spec: {$ref: '#/components/schemas/Spec'}}}}}}\n" +
		"      responses: {'200': {description: ok}}\ncomponents:\n  schemas:\n    Spec:\n      type: object\n      properties:\n")
	for i := range 80 {
		fmt.Fprintf(&b, "        p%d: {type: string, description: '%s'}\n", i, strings.Repeat("Documentation. ", 130))
	}
	dir := writeFiles(t, map[string]string{
		"tool.yaml": strings.Replace(toolSpec, "%s", "./api.yaml", 1),
		"api.yaml":  b.String(),
	})
	objs, diags := load(t, dir, ExpandOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	found := false
	for _, d := range diags {
		if strings.Contains(d.Message, "input schema of create_thing is") && strings.Contains(d.Message, "cut to") {
			found = true
			if d.Severity != spec.SeverityWarning || d.Line != 13 || !strings.Contains(d.SourceLine, "openapi:") {
				t.Errorf("warning at %s:%d:%d (%s): %s", d.File, d.Line, d.Column, d.Severity, d.Message)
			}
		}
	}
	if !found {
		t.Fatalf("no warning about the cut schema: %v", diags)
	}
	_, ts := toolOf(objs)
	var op *spec.Operation
	for i := range ts.Operations {
		if ts.Operations[i].Name == "create_thing" {
			op = &ts.Operations[i]
		}
	}
	if op == nil {
		t.Fatal("create_thing not imported")
	}
	if n := spec.SchemaSize(op.Input, 1<<30); n > spec.MaxSchemaBytes {
		t.Errorf("input is %d bytes", n)
	}
	props := op.Input["properties"].(map[string]any)
	if props["name"].(map[string]any)["description"] != "The name." || !reflect.DeepEqual(op.Input["required"], []any{"name"}) {
		t.Errorf("arguments changed: %v", op.Input)
	}
	if diags := spec.Validate(objs, spec.ValidateOptions{}); diags.HasErrors() {
		t.Fatal(diags)
	}
}
