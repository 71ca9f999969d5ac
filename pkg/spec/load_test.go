package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// tenantDoc is a valid Tenant document for tests to prepend.
const tenantDoc = `apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata:
  name: acme
spec:
  identity:
    issuer: https://idp.example.com/realms/acme
`

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		line, col int
		msg       string // substring of the first diagnostic
		hint      string // substring of its hint
	}{
		{"unknown field", "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: t, namespace: acme}\nspec:\n  upstrem: http://x\n",
			5, 3, `unknown field "upstrem" in Tool spec`, `did you mean "upstream"?`},
		{"unknown field case", "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: t, namespace: acme}\nspec:\n  route: {path_prefix: /x}\n",
			5, 11, `unknown field "path_prefix" in Tool spec.route`, `did you mean "pathPrefix"?`},
		{"unknown top-level field", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: a}\nspecs: {}\n",
			4, 1, `unknown field "specs" in object`, `did you mean "spec"?`},
		{"status", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: a}\nstatus: {}\n",
			4, 1, `unknown field "status"`, "status is reported by stoa"},
		{"unknown kind", "apiVersion: stoa.io/v1alpha1\nkind: Tol\nmetadata: {name: a}\n",
			2, 7, `unknown kind "Tol"`, `did you mean "Tool"?`},
		{"lower-case kind", "apiVersion: stoa.io/v1alpha1\nkind: tenant\nmetadata: {name: a}\n",
			2, 7, `unknown kind "tenant"`, `did you mean "Tenant"?`},
		{"missing kind", "apiVersion: stoa.io/v1alpha1\nmetadata: {name: a}\n", 1, 1, "missing kind", "Gateway, Tenant"},
		{"unknown apiVersion", "apiVersion: stoa.io/v2\nkind: Tenant\nmetadata: {name: a}\n",
			1, 13, `unknown apiVersion "stoa.io/v2"`, "supported: stoa.io/v1alpha1"},
		{"missing apiVersion", "kind: Tenant\nmetadata: {name: a}\n", 1, 1, "missing apiVersion", "add apiVersion"},
		{"missing metadata", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\n", 1, 1, "missing metadata", ""},
		{"missing name", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  labels: {a: b}\n", 3, 1, "missing metadata.name", ""},
		{"not a mapping", "- a\n- b\n", 1, 1, "a document must be a mapping", ""},
		{"wrong type string", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: a}\nspec: {displayName: [x]}\n",
			4, 21, "wrong type for spec.displayName: expected a string, got a list", ""},
		{"wrong type int", "apiVersion: stoa.io/v1alpha1\nkind: Plan\nmetadata: {name: a, namespace: b}\nspec: {quota: {daily: lots}}\n",
			4, 23, "expected an integer, got a string", ""},
		{"integer overflow", "apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata: {name: a}\nspec: {limits: {maxHeaders: 99999999999999999999}}\n",
			4, 29, "too large", ""},
		{"wrong type bool", "apiVersion: stoa.io/v1alpha1\nkind: Consumer\nmetadata: {name: a, namespace: b}\nspec: {suspended: 1}\n",
			4, 19, "expected a boolean", ""},
		{"duration as number", "apiVersion: stoa.io/v1alpha1\nkind: Webhook\nmetadata: {name: a, namespace: b}\nspec: {timeout: 10}\n",
			4, 17, `expected a duration such as "5s"`, `add a unit, e.g. "10s"`},
		{"rate as number", "apiVersion: stoa.io/v1alpha1\nkind: Plan\nmetadata: {name: a, namespace: b}\nspec: {rateLimit: 10}\n",
			4, 19, "expected a rate such as 100/s", ""},
		{"rate mapping unknown", "apiVersion: stoa.io/v1alpha1\nkind: Plan\nmetadata: {name: a, namespace: b}\nspec: {rateLimit: {rate: 1/s, brust: 2}}\n",
			4, 31, `unknown field "brust" in Plan spec.rateLimit`, `did you mean "burst"?`},
		{"input not a mapping", "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: a, namespace: b}\nspec:\n  operations:\n  - {name: x, input: [1]}\n",
			6, 22, "expected a mapping (a JSON Schema object)", ""},
		{"duplicate key", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: a\n  name: b\n", 5, 3, `duplicate key "name"`, ""},
		{"duplicate key in input", "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: a, namespace: b}\nspec:\n  operations:\n  - name: x\n    input:\n      type: object\n      type: string\n",
			9, 7, `duplicate key "type"`, ""},
		{"duplicate label", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: a\n  labels:\n    x: \"1\"\n    x: \"2\"\n", 7, 5, `duplicate key "x"`, ""},
		{"bad indentation deeper", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: a\nspec:\n  displayName: x\n    description: y\n",
			7, 5, `bad indentation: key "description"`, "same column"},
		{"bad indentation shallower", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n    name: a\n  labels: {}\n",
			5, 3, `bad indentation: key "labels"`, ""},
		{"tab", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n\tname: a\n", 4, 1, "tab character", "spaces"},
		{"unclosed flow", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: a\n", 3, 11, `"{" is never closed`, ""},
		{"unknown alias", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: *m\n", 3, 11, "unknown alias *m", ""},
		{"infinity in schema", "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: a, namespace: b}\nspec:\n  operations:\n  - {name: x, input: {maximum: .inf}}\n",
			6, 32, "cannot be represented in JSON", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Parse("in.yaml", []byte(tt.in))
			if len(diags) == 0 {
				t.Fatal("no diagnostics")
			}
			d := diags[0]
			if d.Line != tt.line || d.Column != tt.col || !strings.Contains(d.Message, tt.msg) || !strings.Contains(d.Hint, tt.hint) {
				t.Errorf("got %d:%d %q (hint %q), want %d:%d containing %q (hint %q)\nall: %v",
					d.Line, d.Column, d.Message, d.Hint, tt.line, tt.col, tt.msg, tt.hint, diags)
			}
			if d.File != "in.yaml" || d.Severity != SeverityError || d.SourceLine == "" {
				t.Errorf("diagnostic lacks file, severity or source line: %+v", d)
			}
		})
	}
}

func TestParseKeepsGoing(t *testing.T) {
	in := "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: a\n---\n" + tenantDoc +
		"---\n# only a comment\n---\n---\napiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: b, bogus: 1}\n"
	objs, diags := Parse("x.yaml", []byte(in))
	if len(objs) != 2 || objs[0].Metadata.Name != "acme" || objs[1].Metadata.Name != "b" {
		t.Fatalf("objects: %v", refs(objs))
	}
	if len(diags) != 2 || diags[0].Line != 3 || diags[1].Line != 18 {
		t.Fatalf("diagnostics: %v", diags)
	}
	if diags[1].Object == nil || diags[1].Object.String() != "Tenant/b" || diags[1].Path != "metadata.bogus" {
		t.Errorf("decode diagnostic lacks object or path: %+v", diags[1])
	}
	if objs[0].Source.Line != 5 || objs[0].Source.Column != 1 || objs[0].Source.File != "x.yaml" {
		t.Errorf("source = %+v", objs[0].Source)
	}
}

func refs(objs []*Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Ref().String())
	}
	return out
}

func TestAnchorsAndMerges(t *testing.T) {
	in := `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: t, namespace: acme}
spec:
  upstream: http://127.0.0.1:1
  tags: &tags [a, b]
  operations:
    - &get
      name: get
      method: GET
      path: /x
      tags: *tags
      input: &schema
        type: object
        properties: {id: {type: string}}
    - <<: *get
      name: get2
      input: *schema
    - !!map {name: tagged, method: !!str POST, path: /y}
`
	objs, diags := Parse("a.yaml", []byte(in))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	ops := objs[0].Spec.(*ToolSpec).Operations
	if len(ops) != 3 || ops[1].Name != "get2" || ops[1].Method != "GET" || ops[1].Path != "/x" ||
		!reflect.DeepEqual(ops[1].Tags, []string{"a", "b"}) || ops[1].Input["type"] != "object" || ops[2].Method != "POST" {
		t.Fatalf("operations: %+v", ops)
	}
	// Positions resolve through merges.
	if line, _, _ := objs[0].Source.Position("spec.operations[1].method", false); line != 10 {
		t.Errorf("merged method at line %d, want 10", line)
	}
}

func TestAliasExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: t, namespace: acme}\nspec:\n  operations:\n  - name: x\n    input:\n      a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("      a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	_, diags := Parse("laughs.yaml", []byte(b.String()))
	if len(diags) == 0 || !strings.Contains(diags.Error(), "too large after alias expansion") {
		t.Fatalf("want an expansion error, got %v", diags)
	}
}

func TestDecodePresets(t *testing.T) {
	in := `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: t, namespace: acme}
spec:
  upstreams:
    - url: http://127.0.0.1:1
    - {url: http://127.0.0.1:2, weight: 0}
    - {url: http://127.0.0.1:3, weight: 5}
  retries: {on: [5xx]}
`
	objs, diags := Parse("a.yaml", []byte(in))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	s := objs[0].Spec.(*ToolSpec)
	if w := []int{s.Upstreams[0].Weight, s.Upstreams[1].Weight, s.Upstreams[2].Weight}; !reflect.DeepEqual(w, []int{1, 0, 5}) {
		t.Errorf("weights = %v, want [1 0 5]", w)
	}
	if s.Retries.Attempts != 2 {
		t.Errorf("attempts = %d, want the default 2", s.Retries.Attempts)
	}
	objs, _ = Parse("b.yaml", []byte(strings.Replace(in, "retries: {on: [5xx]}", "retries: {attempts: 0}", 1)))
	if a := objs[0].Spec.(*ToolSpec).Retries.Attempts; a != 0 {
		t.Errorf("explicit attempts 0 became %d", a)
	}
}

func TestLoadPaths(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tenant := func(name string) string {
		return "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: " + name + "\n"
	}
	write("b.yaml", tenant("b"))
	write("a.yml", tenant("a"))
	write("sub/c.YAML", tenant("c"))
	write("notes.txt", tenant("ignored"))
	write(".hidden/d.yaml", tenant("hidden"))
	write(".e.yaml", tenant("hidden-file"))
	write("empty.yaml", "# nothing here\n---\n")
	write("explicit.txt", tenant("explicit"))
	if err := os.MkdirAll(filepath.Join(dir, "nothing"), 0o755); err != nil {
		t.Fatal(err)
	}

	objs, diags := Load([]string{dir, filepath.Join(dir, "explicit.txt"), "-"}, strings.NewReader(tenant("stdin")))
	if got, want := refs(objs), []string{"Tenant/a", "Tenant/b", "Tenant/c", "Tenant/explicit", "Tenant/stdin"}; !reflect.DeepEqual(got, want) {
		t.Errorf("objects = %v, want %v", got, want)
	}
	if len(diags) != 0 {
		t.Errorf("diagnostics: %v", diags)
	}
	if objs[4].Source.File != StdinName {
		t.Errorf("stdin file name = %q", objs[4].Source.File)
	}

	_, diags = Load([]string{filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "nothing")}, nil)
	if len(diags) != 2 || !strings.Contains(diags[0].Message, "no such file") || diags[0].Hint == "" ||
		diags[1].Severity != SeverityWarning {
		t.Errorf("diagnostics: %v", diags)
	}
	if !diags.HasErrors() {
		t.Error("a missing file must be an error")
	}
}

func TestPosition(t *testing.T) {
	in := `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: t
  namespace: acme
  labels: {"example.com/team": x}
spec:
  upstream: http://127.0.0.1:1
  rateLimit: 5/min
  route:
  operations:
    - name: a
      method: GET
    - name: b
      in: {id: path}
`
	objs, diags := Parse("p.yaml", []byte(in))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	src := objs[0].Source
	tests := []struct {
		path      string
		key       bool
		line, col int
	}{
		{"", false, 1, 1},
		{"metadata.name", false, 4, 9},
		{"metadata.name", true, 4, 3},
		{`metadata.labels["example.com/team"]`, false, 6, 32},
		{`metadata.labels["example.com/team"]`, true, 6, 12},
		{"spec.operations[1].name", false, 14, 13},
		{"spec.operations[1]", false, 14, 7},
		{"spec.operations[1].in.id", false, 15, 16},
		{"spec.operations[0].path", false, 12, 7}, // missing: its mapping
		{"spec.operations[7].name", false, 11, 3}, // missing index: the list's key
		{"spec.rateLimit.rate", false, 9, 14},     // bare rate: the scalar
		{"spec.route.pathPrefix", false, 10, 3},   // empty route: its key
		{"spec.timeouts.connect", false, 7, 1},    // missing: the spec key
		{"nonsense[x].y", false, 1, 1},            // unparsable: the document
		{"spec.upstream", false, 8, 13},
	}
	for _, tt := range tests {
		line, col, text := src.Position(tt.path, tt.key)
		if line != tt.line || col != tt.col {
			t.Errorf("Position(%q, %v) = %d:%d, want %d:%d", tt.path, tt.key, line, col, tt.line, tt.col)
		}
		if want := strings.Split(in, "\n")[line-1]; text != want {
			t.Errorf("Position(%q) line text = %q, want %q", tt.path, text, want)
		}
	}
	var nilSrc *Source
	if l, c, _ := nilSrc.Position("x", false); l != 0 || c != 0 {
		t.Error("nil Source must give no position")
	}
}

func TestSplitPath(t *testing.T) {
	got := splitPath(`spec.operations[12].in["a.b]c"].x`)
	want := []pathSeg{{key: "spec", index: -1}, {key: "operations", index: -1}, {index: 12}, {key: "in", index: -1}, {key: "a.b]c", index: -1}, {key: "x", index: -1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitPath = %+v", got)
	}
	if p := renderPath(want); p != `spec.operations[12].in["a.b]c"].x` {
		t.Errorf("renderPath = %s", p)
	}
}

func TestCRLFAndBOM(t *testing.T) {
	in := "\ufeffapiVersion: stoa.io/v1alpha1\r\nkind: Tenant\r\nmetadata:\r\n  name: a\r\n  bogus: 1\r\n"
	objs, diags := Parse("w.yaml", []byte(in))
	if len(objs) != 1 || len(diags) != 1 || diags[0].Line != 5 || diags[0].SourceLine != "  bogus: 1" {
		t.Fatalf("objs %v diags %+v", refs(objs), diags)
	}
}

func TestPathologicalInputs(t *testing.T) {
	diamond := "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  x0: &x0 {name: a}\n"
	for i := 1; i < 30; i++ {
		diamond += fmt.Sprintf("  x%d: &x%d {<<: [*x%d, *x%d]}\n", i, i, i-1, i-1)
	}
	diamond += "  <<: [*x29, *x29]\n"
	tests := []struct{ name, in, want string }{
		{"merge cycle", "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: &a {<<: *a}\n", "missing metadata.name"},
		{"merge diamond", diamond, `unknown field "x29"`},
		{"alias cycle in schema", "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: t, namespace: a}\nspec:\n  operations:\n  - name: x\n    input: &s {type: object, properties: {a: *s, b: *s}}\n", "alias refers to a value that contains it"},
		{"deep nesting", "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: t, namespace: a}\nspec:\n  operations:\n  - name: x\n    input: " + strings.Repeat("{a: ", 300) + "1" + strings.Repeat("}", 300) + "\n", "nesting too deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, diags := Parse("p.yaml", []byte(tt.in))
			if !strings.Contains(diags.Error(), tt.want) {
				t.Errorf("want %q in:\n%v", tt.want, diags)
			}
			if strings.Count(diags.Error(), "nesting too deep") > 1 {
				t.Errorf("nesting reported more than once:\n%v", diags)
			}
			for _, o := range objs {
				o.Source.Position("metadata.nothing.here", false)
				Default(o)
				Validate(objs, ValidateOptions{})
			}
		})
	}
}

func TestConcurrentLoadAndPositions(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "---\napiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: t%d\n  bogus: %d\n", i, i)
	}
	objs, diags := Parse("many.yaml", []byte(b.String()))
	if len(objs) != 200 || len(diags) != 200 {
		t.Fatalf("%d objects, %d diagnostics", len(objs), len(diags))
	}
	for i, d := range diags {
		if d.Line != 6*i+6 || d.Object.Name != fmt.Sprintf("t%d", i) {
			t.Fatalf("diagnostic %d out of order: %+v", i, d)
		}
	}
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			for _, o := range objs {
				o.Source.Position("metadata.name", false)
			}
			done <- true
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}
