package spec

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPublicToolNotes: stoa validate (offline) notes each Tool callers may
// use without a credential, at its auth line; a Tool without auth requires
// an API key, and a ToolSet requiring auth covers its Tools.
func TestPublicToolNotes(t *testing.T) {
	in := `apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: acme}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: open, namespace: acme}
spec:
  upstream: http://127.0.0.1:1
  auth:
    type: none
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: keyed, namespace: acme}
spec:
  upstream: http://127.0.0.1:2
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: grouped, namespace: acme}
spec:
  upstream: http://127.0.0.1:3
  auth: {type: none}
---
apiVersion: stoa.io/v1alpha1
kind: ToolSet
metadata: {name: guarded, namespace: acme}
spec:
  tools: [grouped]
  policies: {auth: required}
`
	objs := mustParse(t, in)
	if a := objs[2].Spec.(*ToolSpec).Auth; a == nil || a.Type != "apiKey" {
		t.Fatalf("a Tool without auth defaults to %+v, want apiKey", a)
	}
	diags := Validate(objs, ValidateOptions{Offline: true})
	var notes []*Diagnostic
	for _, d := range diags {
		if strings.Contains(d.Message, "public") {
			notes = append(notes, d)
		}
	}
	if len(notes) != 1 || diags.HasErrors() {
		t.Fatalf("want one note, for acme/open:\n%v", diags)
	}
	if n := notes[0]; n.Severity != SeverityNote || n.Path != "spec.auth.type" || n.Line != 12 || n.Column != 11 ||
		n.SourceLine != "    type: none" || !strings.Contains(n.Message, "Tool acme/open is public") {
		t.Errorf("note %+v", n)
	}
	// apply and the daemon do not repeat it on every change.
	for _, d := range Validate(objs, ValidateOptions{SkipReferences: true}) {
		if strings.Contains(d.Message, "public") {
			t.Errorf("note outside validate: %v", d)
		}
	}
	// Without the auth line in the source, the note is at the name.
	src := `{"apiVersion":"stoa.io/v1alpha1","kind":"List","items":[` +
		`{"apiVersion":"stoa.io/v1alpha1","kind":"Tool","metadata":{"name":"stored","namespace":"acme"},"spec":{"upstream":"http://127.0.0.1:1"}}]}`
	objs, pd := Parse("stored.json", []byte(src))
	if len(pd) > 0 {
		t.Fatal(pd)
	}
	objs[0].Spec.(*ToolSpec).Auth = &ToolAuth{Type: "none"} // as stoad stored it before apiKey was the default
	Default(objs[0])
	diags = Validate(objs, ValidateOptions{Offline: true})
	if d := findDiag(diags, "metadata.name", "Tool acme/stored is public"); d == nil || d.Line != 1 ||
		!strings.HasPrefix(src[d.Column-1:], `"stored"`) {
		t.Errorf("note without an auth line: %+v", diags)
	}
	// A stored object (no source at all) is noted too, without a position.
	b, _ := json.Marshal(objs[0])
	var o Object
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	if d := findDiag(Validate([]*Object{&o}, ValidateOptions{Offline: true}), "metadata.name", "is public"); d == nil || d.Line != 0 {
		t.Errorf("note for an object without source: %+v", d)
	}
}
