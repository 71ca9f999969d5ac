package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
)

// fastSeeds exercise the corners of the fast parser's subset.
var fastSeeds = []string{
	tenantDoc,
	toolDoc,
	"a: 1\nb: -1\nc: -x\nd: 0x1F\ne: 1.5\nf: .inf\ng: ~\nh: null\ni: True\nj: yes\nk: 1_000\nl: 007\nm: 1e3\nn: nan\n",
	"a: 'x'\nb: \"y\"\nc: 'it''s'\nd: \"a\\tb\"\ne: \"\"\nf: ''\n\"g\": 1\n'h': 2\n",
	"a: {b: 1, c: [x, y], d: {}}\ne: []\nf: [{g: 1}, [2]]\nh: {\"i\": 'j'}\n",
	"a: x # comment\nb: x#y\nc: \"q\" # c\nd: [1] # c\ne: # c\n  f: 1\n# full line\ng:\n",
	"path: /items/{id}\nurl: http://x:8/y?z=1\nk: a,b\nl: [a b]\nm: a [b]\nn: {a: b c}\n",
	"list:\n- a\n- b: 1\n  c: 2\n-   d: 3\n    e: [4]\nafter: 5\n",
	"nested:\n  deep:\n    deeper:\n      - x\n      - y\n  back: 1\n",
	"---\na: 1\n",
	"--- # header comment\na: 1\n",
	"a: 1\n b: 2\n",
	"a:\n  - x\n  y: 1\n",
	"a: b: c\n",
	"a: [1, 2\n",
	"a: {b: 1,}\n",
	"a: {b}\n",
	"a: [b: 1]\n",
	"- a\n- - b\n",
	"a: 'x' y\n",
	"a: \"x\"y\n",
	"a: x\n  continued\n",
	"a: |\n  text\n",
	"a: &x 1\nb: *x\n",
	"key with spaces: v\nkey/with/slash: w\nkey.with.dots: x\n",
	"ünïcode: välue # çomment\nb: 'é'\nc: [ä, {ö: ü}]\n",
	"a:    spaced\nb:\n    - indented\n    - seq\n",
	"1: one\ntrue: t\nnull: n\n",
	"a: -\nb: - x\n",
	"a: ?x\nb: :x\nc: x:\nd: x: y\n",
	"apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: t, namespace: acme}\nspec:\n  upstrem: x\n  operations: {name: x}\n  tags: x\n  timeouts: {connect: 5}\n",
	// Lists, as `stoa get -o yaml|json` prints them.
	"apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n- apiVersion: stoa.io/v1alpha1\n  kind: Tenant\n  metadata: {name: acme}\n- kind: List\n  items: []\n",
	"apiVersion: v1\nkind: List\nitems:\n  - apiVersion: stoa.io/v1alpha1\n    kind: Tool\n    metadata:\n      name: t\n      namespace: acme\n    spec: {upstream: x, rateLimit: 5/week}\n",
	// Hidden characters in values and keys.
	"description: \"a\u200bb \u202eevil\u202c\"\ntitle: x\U000E0041\n\"k\u2066\": v\n",
}

// FuzzFastParse checks that every document the fast parser accepts decodes
// exactly as goccy's AST of it does: same objects, same diagnostics, same
// positions for every path. Documents it rejects go to goccy anyway.
func FuzzFastParse(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	for _, p := range []string{"testdata/valid/platform.yaml", "testdata/golden/multiple-problems.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range splitDocuments(newFileSource("f.yaml", data)) {
			compareFastParse(t, c)
		}
	})
}

// compareFastParse fails t when the fast path and goccy disagree on c.
// It reports whether the fast path took the chunk.
func compareFastParse(t *testing.T, c chunk) bool {
	t.Helper()
	text := c.file.data[c.start:c.end]
	fast, ok := fastParse(text, nil)
	if !ok {
		return false
	}
	af, err := parser.Parse(lexer.Tokenize(text), 0, parser.AllowDuplicateMapKey())
	if err != nil {
		t.Fatalf("fast path accepted what goccy rejects (%v):\n%s", err, text)
	}
	var ref ast.Node
	for i, d := range af.Docs {
		if d != nil && d.Body != nil {
			if ref != nil || i != 0 {
				t.Fatalf("fast path took a chunk goccy sees as several documents:\n%s", text)
			}
			ref = d.Body
		}
	}
	if ref == nil {
		t.Fatalf("fast path found a document goccy does not:\n%s", text)
	}
	objsF, diagF := decodeDocument(c, 0, fast)
	objsG, diagG := decodeDocument(c, 0, ref)
	if !reflect.DeepEqual(diagF, diagG) {
		t.Fatalf("diagnostics differ for:\n%s\nfast:  %v\ngoccy: %v", text, diagF, diagG)
	}
	if len(objsF) != len(objsG) {
		t.Fatalf("objects differ for:\n%s", text)
	}
	for i, objF := range objsF {
		objG := objsG[i]
		a, _ := json.Marshal(objF)
		b, _ := json.Marshal(objG)
		if string(a) != string(b) || objF.Source.Line != objG.Source.Line || objF.Source.Column != objG.Source.Column ||
			objF.Source.prefix != objG.Source.prefix || !reflect.DeepEqual(objF.Source.bad, objG.Source.bad) {
			t.Fatalf("objects differ for:\n%s\nfast:  %s\ngoccy: %s", text, a, b)
		}
	}
	// Every path resolves to the same place in both trees.
	doc := &docState{file: c.file, base: c.base}
	fa, ga := &docAST{root: fast}, &docAST{root: ref}
	for _, p := range treePaths(ref, "", 0) {
		for _, key := range []bool{false, true} {
			fl, fc, _ := doc.position(fa, p, key)
			gl, gc, _ := doc.position(ga, p, key)
			if fl != gl || fc != gc {
				t.Fatalf("path %s (key %v): fast %d:%d, goccy %d:%d in:\n%s", p, key, fl, fc, gl, gc, text)
			}
		}
	}
	return true
}

// treePaths lists the field paths of a tree, plus a missing child of each
// container.
func treePaths(n ast.Node, prefix string, depth int) []string {
	if depth > 20 {
		return nil
	}
	out := []string{prefix, prefix + ".missing"}
	switch v := n.(type) {
	case *ast.MappingNode:
		for _, mv := range v.Values {
			if k, ok := keyText(mv.Key); ok {
				out = append(out, treePaths(mv.Value, prefix+pathKey(k), depth+1)...)
			}
		}
	case *ast.SequenceNode:
		for i, e := range v.Values {
			out = append(out, treePaths(e, prefix+"["+strconv.Itoa(i)+"]", depth+1)...)
		}
	}
	return out
}

// TestFastParseAgreesWithGoccy runs the differential check on the seeds and
// the test inputs, and makes sure the fast path takes the common documents.
func TestFastParseAgreesWithGoccy(t *testing.T) {
	taken := 0
	for _, s := range fastSeeds {
		for _, c := range splitDocuments(newFileSource("seed.yaml", []byte(s))) {
			if compareFastParse(t, c) {
				taken++
			}
		}
	}
	if taken < 15 {
		t.Errorf("the fast path took only %d seed documents", taken)
	}
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range splitDocuments(newFileSource(p, b)) {
			compareFastParse(t, c)
		}
	}
	// Every document of the realistic set and of the benchmark is plain
	// enough for the fast path.
	dir := genTools(t, 40)
	gen, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, p := range append(gen, "testdata/valid/platform.yaml") {
		b, _ := os.ReadFile(p)
		for _, c := range splitDocuments(newFileSource(p, b)) {
			if !compareFastParse(t, c) {
				t.Errorf("the fast path refused a common document:\n%s", c.file.data[c.start:c.end])
			}
		}
	}
}

// TestArenaReuseMatchesGoccy loads many documents through the fast path,
// whose workers reuse one arena for document after document, and through
// goccy alone: the results must be the same.
func TestArenaReuseMatchesGoccy(t *testing.T) {
	dir := genTools(t, 300)
	paths := []string{dir, "testdata/valid", "testdata/golden"}
	fastObjs, fastDiags := Load(paths, nil)
	goccyOnly = true
	defer func() { goccyOnly = false }()
	refObjs, refDiags := Load(paths, nil)
	if !reflect.DeepEqual(fastDiags, refDiags) {
		t.Fatalf("diagnostics differ:\nfast:  %v\ngoccy: %v", fastDiags, refDiags)
	}
	if len(fastObjs) != len(refObjs) || len(fastObjs) < 300 {
		t.Fatalf("%d objects, goccy %d", len(fastObjs), len(refObjs))
	}
	for i := range fastObjs {
		a, _ := json.Marshal(fastObjs[i])
		b, _ := json.Marshal(refObjs[i])
		if string(a) != string(b) {
			t.Fatalf("object %d differs:\nfast:  %s\ngoccy: %s", i, a, b)
		}
	}
}
