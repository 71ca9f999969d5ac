package policy

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// yamlScalar parses src with goccy (as pkg/spec does) and returns the
// value of the last mapping value in the document and where it starts, as
// pkg/spec's Source.Position would report it.
func yamlScalar(t testing.TB, src string) (string, Position, bool) {
	t.Helper()
	f, err := parser.Parse(lexer.Tokenize(src), 0)
	if err != nil || len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return "", Position{}, false
	}
	var node ast.Node
	ast.Walk(walker(func(n ast.Node) {
		if mv, ok := n.(*ast.MappingValueNode); ok {
			node = mv.Value
		}
	}), f.Docs[0].Body)
	var tk *token.Token
	var value string
	switch v := node.(type) {
	case *ast.StringNode:
		tk, value = v.GetToken(), v.Value
	case *ast.LiteralNode:
		tk, value = v.Start, v.Value.Value
	default:
		return "", Position{}, false
	}
	if tk == nil || tk.Position == nil {
		return "", Position{}, false
	}
	return value, Position{Line: tk.Position.Line, Column: tk.Position.Column}, true
}

type walker func(ast.Node)

func (w walker) Visit(n ast.Node) ast.Visitor { w(n); return w }

func TestMapOffset(t *testing.T) {
	cases := []struct {
		name   string
		src    string
		needle string // the text inside the value to locate
		want   Position
	}{
		{"plain", "allow: request.method == 1\n", "1", Position{1, 26}},
		{"plain after multibyte key", "é: caller.subject == 1\n", "1", Position{1, 22}},
		{"plain with comment", "allow: a == 1 # why\n", "1", Position{1, 13}},
		{"plain continued", "allow: request.method ==\n  1\n", "1", Position{2, 3}},
		{"double quoted", "allow: \"request.method == 1\"\n", "1", Position{1, 27}},
		{"double quoted escape before", "allow: \"caller.subject == \\\"x\\\" && y\"\n", "y", Position{1, 36}},
		{"double quoted unicode escape", "allow: \"caller.subject == '\\u00e9' && y\"\n", "y", Position{1, 39}},
		{"double quoted folded", "allow: \"a ==\n  b\"\n", "b", Position{2, 3}},
		{"double quoted escaped break", "allow: \"a ==\\\n  b\"\n", "b", Position{2, 3}},
		{"single quoted", "allow: 'caller.subject == ''x'' && y'\n", "y", Position{1, 36}},
		{"literal block", "allow: |\n  request.method == \"GET\" &&\n    y\n", "y", Position{3, 5}},
		{"literal block strip", "rules:\n  - allow: |-\n      a &&\n      b\n", "b", Position{4, 7}},
		{"literal block keep", "allow: |+\n  a\n\n  b\n\n", "b", Position{4, 3}},
		{"literal with indentation indicator", "allow: |2\n    a\n  b\n", "b", Position{3, 3}},
		{"folded block", "allow: >\n  a &&\n  b\n", "b", Position{3, 3}},
		{"folded block with blank line", "allow: >-\n  a\n\n  b\n", "b", Position{4, 3}},
		{"folded block more indented", "allow: >\n  a\n    b\n  c\n", "c", Position{4, 3}},
		{"block in a list", "spec:\n  policy:\n    rules:\n      - name: x\n        deny: >-\n          caller.claims.tier == \"free\" &&\n          request.method != \"GET\"\n", "!=", Position{7, 26}},
		{"crlf", "allow: |\r\n  a\r\n  b\r\n", "b", Position{3, 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			value, start, ok := yamlScalar(t, tc.src)
			if !ok {
				t.Fatalf("goccy did not parse %q", tc.src)
			}
			off := strings.Index(value, tc.needle)
			if off < 0 {
				t.Fatalf("%q not in value %q", tc.needle, value)
			}
			got, ok := MapOffset(tc.src, start, value, off)
			if !ok {
				t.Fatalf("MapOffset could not re-read %q (value %q, start %v)", tc.src, value, start)
			}
			if got != tc.want {
				t.Fatalf("offset %d of %q maps to %v, want %v", off, value, got, tc.want)
			}
		})
	}
}

// checkMapOffset checks MapOffset against goccy on one document: when it
// claims to have re-read the scalar, every character of the value must map
// to a source position holding that same character, or to the escape or
// line break it was decoded from.
func checkMapOffset(t *testing.T, src string) bool {
	value, start, ok := yamlScalar(t, src)
	if !ok {
		return false
	}
	lines := strings.Split(src, "\n")
	mapped := false
	for off := 0; off <= len(value); off++ {
		p, ok := MapOffset(src, start, value, off)
		if !ok {
			if p != start {
				t.Fatalf("%q: failure must return start %v, got %v", src, start, p)
			}
			return false
		}
		mapped = true
		if p.Line < 1 || p.Line > len(lines) {
			t.Fatalf("%q offset %d: line %d outside the file", src, off, p.Line)
		}
		if off == len(value) || !utf8.RuneStart(value[off]) {
			continue
		}
		want, _ := utf8.DecodeRuneInString(value[off:])
		line := []rune(strings.TrimSuffix(lines[p.Line-1], "\r"))
		if p.Column < 1 || p.Column > len(line)+1 {
			t.Fatalf("%q offset %d: column %d outside line %q", src, off, p.Column, string(line))
		}
		var got rune = '\n'
		if p.Column <= len(line) {
			got = line[p.Column-1]
		}
		if got != want && got != '\\' && got != '\'' && want != ' ' && want != '\n' {
			t.Fatalf("%q: value %q offset %d (%q) maps to %v which holds %q", src, value, off, want, p, got)
		}
	}
	return mapped
}

func TestMapOffsetAgainstGoccy(t *testing.T) {
	bodies := []string{
		`a == "b" && c`, "a\n  b", "a\n\n  b", `x  #y`, `"a \"q\" \u00e9 \x41"`, `'it''s'`, "\"a\n  b\n\n  c\"",
		"'a\n   b'", "|\n  a\n  b\n", "|-\n  a\n\n  b\n", "|+\n  a\n\n", ">\n  a\n  b\n\n  c\n", ">-\n  a\n    b\n  c\n",
		"|2\n    a\n  b\n", ">\n\n  a\n", `"tab\there"`, "plain é ü", `"\\"`, `""`, `''`,
	}
	for _, b := range bodies {
		// Continuation lines are indented below the key.
		for _, pi := range [][2]string{{"k: ", "  "}, {"spec:\n  rules:\n    - allow: ", "        "}} {
			src := pi[0] + strings.ReplaceAll(b, "\n", "\n"+pi[1]) + "\n"
			if _, _, ok := yamlScalar(t, src); !ok {
				t.Logf("goccy does not parse %q", src)
				continue
			}
			if !checkMapOffset(t, src) {
				t.Errorf("MapOffset declined %q", src)
			}
		}
	}
}

// FuzzMapOffset: for any document goccy parses, MapOffset either declines
// (returning the scalar's start) or maps every character correctly.
func FuzzMapOffset(f *testing.F) {
	for _, s := range []string{
		"k: a == 1\n", "k: \"a\\\"b\"\n", "k: 'a''b'\n", "k: |\n  a\n  b\n", "k: >-\n  a\n\n  b\n",
		"k:\n  - x: |2\n      y\n", "k: a\n  b\n", "k: \"a\n  b\"\n", "é: \"\\u00e9 x\"\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 512 {
			return
		}
		checkMapOffset(t, src)
	})
}

// A compile diagnostic inside a block scalar lands on the right file line.
func TestDiagnosticLocate(t *testing.T) {
	src := "kind: Tool\nspec:\n  policy:\n    rules:\n      - name: x\n        allow: >-\n          request.method == \"GET\" &&\n          caller.scopes == \"billing:read\"\n"
	value, start, ok := yamlScalar(t, src)
	if !ok {
		t.Fatal("goccy did not parse the document")
	}
	_, diags := Compile(toolOwner, Spec{Rules: []RuleSpec{{Name: "x", Allow: value}}})
	if len(diags) != 1 {
		t.Fatalf("diagnostics: %v", diags)
	}
	if got, want := diags[0].Locate(src, start, value), (Position{Line: 8, Column: 25}); got != want {
		t.Fatalf("located at %v, want %v (%s)", got, want, diags[0])
	}
	whole := Diagnostic{Rule: 0, Field: "allow", Offset: -1}
	if got := whole.Locate(src, start, value); got != start {
		t.Fatalf("whole-value diagnostic at %v, want the value's start %v", got, start)
	}
}
