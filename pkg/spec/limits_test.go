package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/internal/benchspecs"
)

func TestInvalidUTF8(t *testing.T) {
	in := "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: acme\nspec:\n  displayName: Ac\xffme \xe2\x82 ok é\n"
	_, diags := Parse("u.yaml", []byte(in))
	var got []string
	for _, d := range diags {
		if strings.HasPrefix(d.Message, "invalid UTF-8") {
			got = append(got, fmt.Sprintf("%d:%d %s", d.Line, d.Column, d.Message))
			if !d.IsError() || d.SourceLine != "  displayName: Ac\xffme \xe2\x82 ok é" {
				t.Errorf("diagnostic %+v", d)
			}
		}
	}
	want := []string{
		"6:18 invalid UTF-8: byte 0xFF is not part of a UTF-8 character",
		"6:22 invalid UTF-8: byte 0xE2 is not part of a UTF-8 character",
		"6:23 invalid UTF-8: byte 0x82 is not part of a UTF-8 character",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The rendering shows the bytes, not replacement characters, and the
	// caret stays under the byte.
	var buf bytes.Buffer
	Diagnostics{diags[0]}.Format(&buf, false)
	if !strings.Contains(buf.String(), "displayName: Ac<0xFF>me <0xE2><0x82> ok é\n      |                  ^") {
		t.Errorf("rendering:\n%s", buf.String())
	}

	// Many bad bytes: a few diagnostics and a count.
	_, diags = Parse("u.yaml", []byte(strings.Replace(tenantDoc, "acme", "acme"+strings.Repeat("\xff", 100), 1)))
	if len(diags) < maxEncodingErrors+1 || !strings.Contains(diags[maxEncodingErrors].Message, "95 more bytes from here on") ||
		diags[maxEncodingErrors].Line != 4 || diags[maxEncodingErrors].Column != 18 {
		t.Errorf("many bad bytes: %v", diags)
	}
	// UTF-16 is named as such and not parsed.
	_, diags = Parse("u16.yaml", []byte("\xff\xfea\x00:\x00"))
	if len(diags) != 1 || !strings.Contains(diags[0].Message, "UTF-16") {
		t.Errorf("utf-16: %v", diags)
	}
}

func TestSizeCaps(t *testing.T) {
	tool := func(spec string) string {
		return tenantDoc + "---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: t, namespace: acme}\nspec:\n  upstream: http://127.0.0.1:1\n" + spec
	}
	big := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct{ name, in, path, msg string }{
		{"12 MiB description", tool("  description: " + big(12<<20) + "\n"), "spec.description", "string too long: 12 MiB; at most 64 KiB"},
		{"description over cap", tool("  description: " + big(MaxDescriptionBytes+1) + "\n"), "spec.description", "description is 8 KiB; at most 8 KiB"},
		{"operation description", tool("  operations:\n  - {name: a, method: GET, path: /a, description: " + big(9000) + "}\n"), "spec.operations[0].description", "description is 8.8 KiB"},
		{"title", tool("  operations:\n  - {name: a, method: GET, path: /a, title: " + big(300) + "}\n"), "spec.operations[0].title", "title is 300 bytes; at most 256 bytes"},
		{"tag", tool("  tags: [" + big(200) + "]\n"), "spec.tags[0]", "tag is 200 bytes"},
		{"schema description", tool("  operations:\n  - name: a\n    method: GET\n    path: /a\n    input: {type: object, properties: {x: {description: " + big(9000) + "}}}\n"),
			"spec.operations[0].input.properties.x.description", "input schema description is 8.8 KiB"},
		{"schema key", tool("  operations:\n  - name: a\n    method: GET\n    path: /a\n    input: {type: object, properties: {" + big(70000) + ": {type: string}}}\n"),
			"spec.operations[0].input.properties.", "string too long: 68.4 KiB"},
		{"tenant description", tenantDoc + "  displayName: x\n" + "  description: " + big(9000) + "\n", "spec.description", "description is 8.8 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := runPipelineText(tc.in, ValidateOptions{})
			d := findDiag(diags, tc.path, tc.msg)
			if strings.HasSuffix(tc.path, ".") {
				for _, x := range diags {
					if strings.HasPrefix(x.Path, tc.path) && strings.Contains(x.Message, tc.msg) {
						d = x
					}
				}
			}
			if d == nil || !d.IsError() || d.Line == 0 {
				t.Fatalf("want %q at %s, got:\n%v", tc.msg, tc.path, diags)
			}
			if len(d.Message) > 200 {
				t.Errorf("message quotes the value: %d bytes", len(d.Message))
			}
		})
	}
	// A schema over MaxSchemaBytes.
	var props strings.Builder
	for i := range 40 {
		fmt.Fprintf(&props, "        p%d: {type: string, description: %s}\n", i, big(4000))
	}
	_, diags := runPipelineText(tool("  operations:\n  - name: a\n    method: GET\n    path: /a\n    input:\n      type: object\n      properties:\n"+props.String()), ValidateOptions{})
	if d := findDiag(diags, "spec.operations[0].input", "input schema is about 130.3 KiB as JSON; at most 128 KiB"); d == nil || !d.IsError() {
		t.Errorf("schema size: %v", diags)
	}
}

func TestFileCaps(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, paths := range [][]string{{big}, {dir}} {
		_, diags := Load(paths, nil)
		if len(diags) != 1 || diags[0].File != big || !strings.Contains(diags[0].Message, "file too large: 64 MiB; at most 64 MiB per file") ||
			!strings.Contains(diags[0].Hint, "split") {
			t.Errorf("Load(%v): %v", paths, diags)
		}
	}
	_, diags := Load([]string{"-"}, bytes.NewReader(make([]byte, MaxFileBytes+1)))
	if len(diags) != 1 || !strings.Contains(diags[0].Message, "more than 64 MiB") {
		t.Errorf("stdin: %v", diags)
	}
	if _, diags := Parse("p.yaml", make([]byte, MaxFileBytes+1)); len(diags) != 1 || !strings.Contains(diags[0].Message, "file too large") {
		t.Errorf("Parse: %v", diags)
	}
}

// TestTenThousandToolsFit: the spec set of scripts/bench-apply.sh
// (internal/benchspecs), 10,000 Tools of one tenant in one file, stays
// under the caps.
func TestTenThousandToolsFit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 6 MB file")
	}
	y := string(benchspecs.YAML(10000, 1, ""))
	t.Logf("%s", sizeText(int64(len(y))))
	objs, diags := runPipelineText(y, ValidateOptions{})
	if len(diags) > 0 || len(objs) != 10001 {
		t.Fatalf("%d objects, %d diagnostics: %v", len(objs), len(diags), diags[:min(3, len(diags))])
	}
}

// runPipelineText is runPipeline for one in-memory file.
func runPipelineText(in string, opts ValidateOptions) ([]*Object, Diagnostics) {
	objs, diags := Parse("t.yaml", []byte(in))
	for _, o := range objs {
		Default(o)
	}
	diags = append(diags, Validate(objs, opts)...)
	diags.Sort()
	return objs, diags
}

// TestSchemaSizeAgrees: the fast walk counts what jsonSize counts.
func TestSchemaSizeAgrees(t *testing.T) {
	objs := mustParse(t, opTool(`      input:
        type: object
        x-doc: [1, 2.5, true, null, {a: b}]
        properties:
          a: {type: number, minimum: 0.000001, enum: [1, "two", false], description: d}
          b: {type: array, items: {type: string}, prefixItems: [{const: x}]}
        $defs: {m: {type: number}}
        required: [a]
`))
	in := objs[1].Spec.(*ToolSpec).Operations[0].Input
	size := 0
	if !schemaOK(in, 0, &size) || size != jsonSize(in, 1<<20) {
		t.Errorf("schemaOK counted %d, jsonSize %d", size, jsonSize(in, 1<<20))
	}
}

// TestSchemaSizeGoNumbers: schemas built in memory (the OpenAPI importer)
// hold Go integers; they count as the numbers they are once printed and
// read back, so an importer measuring with SchemaSize produces what a
// spec file of its output still validates.
func TestSchemaSizeGoNumbers(t *testing.T) {
	for _, v := range []any{uint64(1234), int(-56), int64(7), uint32(0), float32(2.5)} {
		read := map[string]any{}
		b, _ := json.Marshal(map[string]any{"maxLength": v})
		if err := json.Unmarshal(b, &read); err != nil {
			t.Fatal(err)
		}
		if got, want := SchemaSize(map[string]any{"maxLength": v}, 1<<20), SchemaSize(read, 1<<20); got != want {
			t.Errorf("%T %v counts %d, read back %d", v, v, got, want)
		}
	}
}
