package spec

import (
	"strings"
	"testing"
)

// TestOfflineReferences: a file holding only a live tenant's objects
// validates offline with notes (one per missing object), never "does not
// exist"; --strict-refs makes each reference an error; the daemon's
// complete check (no Offline) still refuses them.
func TestOfflineReferences(t *testing.T) {
	in := strings.Replace(toolDoc, "name: billing", "name: billing", 1) + `---
apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata: {name: s, namespace: acme}
spec: {consumer: web, plan: gold, tool: billing}
---
apiVersion: stoa.io/v1alpha1
kind: ToolSet
metadata: {name: ts, namespace: acme}
spec: {tools: [billing, inventory]}
`
	_, diags := runPipelineText(in, ValidateOptions{Offline: true})
	if diags.HasErrors() {
		t.Fatalf("offline errors: %v", diags)
	}
	var notes []string
	for _, d := range diags {
		if d.Severity != SeverityNote || d.Line == 0 {
			t.Errorf("not a positioned note: %v", d)
		}
		if strings.Contains(d.Message, "does not exist") || strings.Contains(d.Message, "not found") {
			t.Errorf("offline wording: %q", d.Message)
		}
		notes = append(notes, d.Message)
	}
	want := []string{
		`Tenant "acme" is not defined in these files (3 references); checked against the live state by diff and apply`,
		`Consumer "web" of tenant acme is not defined in these files; checked against the live state by diff and apply`,
		`Plan "gold" of tenant acme is not defined in these files; checked against the live state by diff and apply`,
		`Tool "inventory" of tenant acme is not defined in these files; checked against the live state by diff and apply`,
	}
	if strings.Join(notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(notes, "\n"), strings.Join(want, "\n"))
	}

	_, diags = runPipelineText(in, ValidateOptions{Offline: true, StrictRefs: true})
	if diags.Errors() != 6 {
		t.Errorf("strict: %d errors, want one per reference (6):\n%v", diags.Errors(), diags)
	}
	for _, d := range diags {
		if !strings.Contains(d.Message, "is not defined in these files") || !strings.Contains(d.Hint, "--strict-refs") {
			t.Errorf("strict wording: %v", d)
		}
	}

	_, diags = runPipelineText(in, ValidateOptions{})
	if d := findDiag(diags, "metadata.namespace", `Tenant "acme" not found`); d == nil || !d.IsError() {
		t.Errorf("complete check: %v", diags)
	}
	if d := findDiag(diags, "spec.tools[1]", `Tool "inventory" not found in tenant acme`); d == nil || !d.IsError() {
		t.Errorf("complete check: %v", diags)
	}

	// With the referenced objects live, the complete check passes.
	live := mustParse(t, tenantDoc+`---
apiVersion: stoa.io/v1alpha1
kind: Consumer
metadata: {name: web, namespace: acme}
---
apiVersion: stoa.io/v1alpha1
kind: Plan
metadata: {name: gold, namespace: acme}
---
`+strings.Replace(toolDoc, "name: billing", "name: inventory", 1))
	if _, diags = runPipelineText(in, ValidateOptions{Live: live}); len(diags) > 0 {
		t.Errorf("against live: %v", diags)
	}
}

// TestOfflineNoteSuggests: a note still suggests the close name it may be
// a typo of.
func TestOfflineNoteSuggests(t *testing.T) {
	in := tenantDoc + "---\n" + strings.Replace(toolDoc, "namespace: acme", "namespace: acmee", 1)
	_, diags := runPipelineText(in, ValidateOptions{Offline: true})
	if len(diags) != 1 || diags[0].Severity != SeverityNote || diags[0].Hint != `did you mean "acme"?` {
		t.Fatalf("%v", diags)
	}
}
