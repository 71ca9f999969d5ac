package spec

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	ref := &Ref{Kind: KindTool, Namespace: "acme", Name: "t"}
	diags := Diagnostics{
		{File: "examples/bad/tool.yaml", Line: 7, Column: 3, Object: ref, Path: "spec.upstrem", Severity: SeverityError,
			Message: `unknown field "upstrem" in Tool spec`, Hint: `did you mean "upstream"?`, SourceLine: "  upstrem: http://127.0.0.1:9001"},
		{File: "a.yaml", Line: 123456, Column: 2, Severity: SeverityWarning, Message: "careful", SourceLine: "\tx: 1"},
		{Object: ref, Path: "spec.upstream", Severity: SeverityError, Message: "missing upstream"},
		{File: "gone.yaml", Severity: SeverityError, Message: "read gone.yaml: no such file or directory"},
	}
	var plain bytes.Buffer
	diags.Format(&plain, false)
	want := `examples/bad/tool.yaml:7:3: unknown field "upstrem" in Tool spec
    7 |   upstrem: http://127.0.0.1:9001
      |   ^
  hint: did you mean "upstream"?

a.yaml:123456:2: warning: careful
 123456 | 	x: 1
        | 	^

Tool/acme/t spec.upstream: missing upstream

gone.yaml: read gone.yaml: no such file or directory
`
	if plain.String() != want {
		t.Errorf("plain format:\n%s\nwant:\n%s", plain.String(), want)
	}
	var color bytes.Buffer
	diags.Format(&color, true)
	stripped := strings.NewReplacer(ansiBold, "", ansiRed, "", ansiYellow, "", ansiCyan, "", ansiReset, "").Replace(color.String())
	if stripped != want {
		t.Errorf("colour changes the text:\n%s", stripped)
	}
	for _, code := range []string{ansiBold + "examples/bad/tool.yaml:7:3:", ansiRed + "^", ansiYellow + "warning:", ansiCyan + "hint:"} {
		if !strings.Contains(color.String(), code) {
			t.Errorf("colour output lacks %q", code)
		}
	}
	if strings.Contains(plain.String(), "\x1b") {
		t.Error("plain output has escapes")
	}

	if got := diags.Error(); !strings.HasPrefix(got, `examples/bad/tool.yaml:7:3: unknown field "upstrem" in Tool spec (hint: did you mean "upstream"?)`+"\na.yaml:123456:2: warning: careful\n") {
		t.Errorf("Error() = %q", got)
	}
	if !diags.HasErrors() || diags.Errors() != 3 || diags.Files() != 3 {
		t.Errorf("HasErrors %v Errors %d Files %d", diags.HasErrors(), diags.Errors(), diags.Files())
	}
	if (Diagnostics{{Severity: SeverityWarning}}).HasErrors() {
		t.Error("warnings are not errors")
	}
}

func TestSort(t *testing.T) {
	diags := Diagnostics{
		{Message: "no file 1"},
		{File: "b.yaml", Line: 1, Column: 1, Message: "b1"},
		{File: "a.yaml", Line: 10, Column: 1, Message: "a10"},
		{Message: "no file 2"},
		{File: "a.yaml", Line: 2, Column: 5, Message: "a2:5"},
		{File: "a.yaml", Line: 2, Column: 1, Message: "a2:1"},
	}
	diags.Sort()
	var got []string
	for _, d := range diags {
		got = append(got, d.Message)
	}
	if strings.Join(got, ",") != "a2:1,a2:5,a10,b1,no file 1,no file 2" {
		t.Errorf("sorted: %v", got)
	}
}

func TestDiagnosticJSON(t *testing.T) {
	d := &Diagnostic{File: "a.yaml", Line: 1, Column: 2, Object: &Ref{Kind: KindTenant, Name: "a"}, Path: "metadata.name",
		Message: "m", Hint: "h", Severity: SeverityError, SourceLine: "x"}
	b, _ := json.Marshal(d)
	want := `{"file":"a.yaml","line":1,"column":2,"object":{"kind":"Tenant","name":"a"},"path":"metadata.name","message":"m","hint":"h","severity":"error","sourceLine":"x"}`
	if string(b) != want {
		t.Errorf("json = %s", b)
	}
}

// TestFormatNoteAndRelated: notes do not count as errors; related places
// are rendered under the excerpt and in Error(); lines with hidden
// characters are shown escaped with the caret under the same character.
func TestFormatNoteAndRelated(t *testing.T) {
	ref := &Ref{Kind: KindTool, Namespace: "globex", Name: "grab"}
	diags := Diagnostics{
		{File: "g.yaml", Line: 8, Column: 23, Object: ref, Severity: SeverityError, SourceLine: "  route: {pathPrefix: /acme/x}",
			Message: "route /acme/x of tenant globex lies in tenant acme's space /acme/", Hint: "route under /globex/",
			Related: []Related{{File: "t.yaml", Line: 3, Column: 9, Message: "tenant acme is defined here"},
				{Object: &Ref{Kind: KindGateway, Name: "default"}, Path: "spec.routing.grants[0]", Message: "granted here"}}},
		{File: "g.yaml", Line: 2, Column: 14, Severity: SeverityNote, SourceLine: "  namespace: globex",
			Message: `Tenant "globex" is not defined in these files; checked against the live state by diff and apply`},
		{File: "g.yaml", Line: 9, Column: 12, Severity: SeverityWarning, SourceLine: "  title: \"a\u202eb\u200bc\"",
			Message: "title contains an invisible character"},
	}
	var buf bytes.Buffer
	diags.Format(&buf, false)
	want := `g.yaml:8:23: route /acme/x of tenant globex lies in tenant acme's space /acme/
    8 |   route: {pathPrefix: /acme/x}
      |                       ^
  t.yaml:3:9: tenant acme is defined here
  Gateway/default spec.routing.grants[0] (live): granted here
  hint: route under /globex/

g.yaml:2:14: note: Tenant "globex" is not defined in these files; checked against the live state by diff and apply
    2 |   namespace: globex
      |              ^

g.yaml:9:12: warning: title contains an invisible character
    9 |   title: "a<U+202E>b<U+200B>c"
      |            ^
`
	if buf.String() != want {
		t.Errorf("format:\n%s\nwant:\n%s", buf.String(), want)
	}
	if diags.Errors() != 1 || !diags[:1].HasErrors() || diags[1:].HasErrors() || len(diags.OnlyErrors()) != 1 {
		t.Errorf("a note or warning counted as an error")
	}
	if got := diags[0].String(); !strings.HasSuffix(got, "(t.yaml:3:9: tenant acme is defined here) (Gateway/default spec.routing.grants[0] (live): granted here)") {
		t.Errorf("String() = %q", got)
	}
	b, _ := json.Marshal(diags[0].Related[0])
	if string(b) != `{"file":"t.yaml","line":3,"column":9,"message":"tenant acme is defined here"}` {
		t.Errorf("related json: %s", b)
	}
}
