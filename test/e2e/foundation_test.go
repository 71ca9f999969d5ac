package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const quickstart = "examples/quickstart"

func revisionOf(t *testing.T, d *Daemon) int64 {
	t.Helper()
	r := d.Stoa("status", "-o", "json")
	expect(t, r, 0, "status")
	var s struct{ Revision int64 }
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		t.Fatalf("status json: %v\n%s", err, r.Stdout)
	}
	return s.Revision
}

// TestDeclarativeWorkflow walks the whole foundation path with the real
// binaries: validate → diff → apply → diff → re-apply → get → delete →
// rollback → restart.
func TestDeclarativeWorkflow(t *testing.T) {
	d := NewDaemon(t)
	d.Start()

	r := d.Stoa("validate", "-f", quickstart)
	expect(t, r, 0, "validate")
	if !strings.Contains(r.Stdout, "valid:") {
		t.Fatalf("validate output: %s", r)
	}

	r = d.Stoa("diff", "-f", quickstart)
	expect(t, r, 2, "diff before apply")
	if !strings.Contains(r.Stdout, "+ create Tool/acme/billing-api") {
		t.Fatalf("diff should list the create:\n%s", r)
	}

	r = d.Stoa("apply", "-f", quickstart)
	expect(t, r, 0, "apply")
	if !strings.Contains(r.Stdout, "Tool/acme/billing-api created") || !strings.Contains(r.Stderr, "revision 1 applied") {
		t.Fatalf("apply output:\n%s", r)
	}

	r = d.Stoa("diff", "-f", quickstart)
	expect(t, r, 0, "diff after apply")
	if strings.TrimSpace(r.Stdout) != "" {
		t.Fatalf("diff after apply should print nothing on stdout:\n%s", r)
	}

	r = d.Stoa("apply", "-f", quickstart)
	expect(t, r, 0, "re-apply")
	if got := revisionOf(t, d); got != 1 {
		t.Fatalf("identical re-apply created a revision: now %d", got)
	}

	r = d.Stoa("get", "tools")
	expect(t, r, 0, "get tools")
	for _, want := range []string{"TENANT", "billing-api", "inventory-api", "weather-api", "globex"} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("get tools lacks %q:\n%s", want, r)
		}
	}
	r = d.Stoa("get", "tool", "billing-api", "-n", "acme", "-o", "yaml")
	expect(t, r, 0, "get -o yaml")
	// Defaults are filled in explicitly.
	for _, want := range []string{"timeouts:", "connect: 2s", "pathPrefix: /acme/billing-api", "readOnly: true"} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("get -o yaml lacks default %q:\n%s", want, r)
		}
	}
	r = d.Stoa("get", "tool", "nope", "-n", "acme")
	expect(t, r, 1, "get missing")

	// Deleting a tool a ToolSet still refers to is refused, with the reason.
	r = d.Stoa("delete", "tool", "inventory-api", "-n", "acme")
	expect(t, r, 1, "delete referenced tool")
	if !strings.Contains(r.Stderr, "ToolSet/acme/acme-tools  spec.tools[1]") {
		t.Fatalf("refusal should name the reference:\n%s", r)
	}
	r = d.Stoa("delete", "subscription", "forecast-bot-weather", "-n", "globex")
	expect(t, r, 0, "delete subscription")
	if got := revisionOf(t, d); got != 2 {
		t.Fatalf("delete should make revision 2, got %d", got)
	}
	r = d.Stoa("diff", "-f", quickstart)
	expect(t, r, 2, "diff after delete")

	r = d.Stoa("rollback", "1", "--yes")
	expect(t, r, 0, "rollback")
	if got := revisionOf(t, d); got != 3 {
		t.Fatalf("rollback should be revision 3, got %d", got)
	}
	r = d.Stoa("diff", "-f", quickstart)
	expect(t, r, 0, "diff after rollback")

	r = d.Stoa("history")
	expect(t, r, 0, "history")
	for _, want := range []string{"rollback", "delete", "apply", "3*"} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("history lacks %q:\n%s", want, r)
		}
	}

	// Restart: the state survives.
	d.Stop()
	d.Start()
	if got := revisionOf(t, d); got != 3 {
		t.Fatalf("after restart revision is %d, want 3", got)
	}
	r = d.Stoa("diff", "-f", quickstart)
	expect(t, r, 0, "diff after restart")
}

func TestPruneOnlyWithinCoveredTenants(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	expect(t, d.Stoa("apply", "-f", quickstart), 0, "apply")

	// A file covering only acme, without the inventory tool and the toolset.
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(repoRoot(), quickstart, "acme.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(src), "\n---\n")
	var keep []string
	for _, doc := range docs {
		if strings.Contains(doc, "name: inventory-api") || strings.Contains(doc, "kind: ToolSet") || strings.Contains(doc, "kind: Subscription") {
			continue
		}
		keep = append(keep, doc)
	}
	if err := os.WriteFile(filepath.Join(dir, "acme.yaml"), []byte(strings.Join(keep, "\n---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	r := d.Stoa("apply", "-f", dir, "--prune")
	expect(t, r, 0, "apply --prune")
	for _, gone := range []string{"Tool/acme/inventory-api deleted", "ToolSet/acme/acme-tools deleted", "Subscription/acme/web-shop-tools deleted"} {
		if !strings.Contains(r.Stdout, gone) {
			t.Fatalf("prune should report %q:\n%s", gone, r)
		}
	}
	// globex (not covered by the file) is untouched.
	r = d.Stoa("get", "tools", "-n", "globex")
	expect(t, r, 0, "get globex")
	if !strings.Contains(r.Stdout, "weather-api") {
		t.Fatalf("prune touched another tenant:\n%s", r)
	}
}

func TestUnreachableDaemon(t *testing.T) {
	r := RunStoa(t, filepath.Join(t.TempDir(), "none.sock"), "", "status")
	expect(t, r, 5, "status without daemon")
	if !strings.Contains(r.Stderr, "none.sock") || !strings.Contains(r.Stderr, "stoad") {
		t.Fatalf("should say where it looked and how to start stoad:\n%s", r)
	}
}

func TestInvalidSpecsExit3(t *testing.T) {
	dir := t.TempDir()
	bad := `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: broken
  namespace: acme
spec:
  upstrem: http://127.0.0.1:1
  rateLimit: 10/week
`
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	r := RunStoa(t, filepath.Join(dir, "none.sock"), "", "validate", "-f", dir)
	expect(t, r, 3, "validate bad")
	for _, want := range []string{"bad.yaml:7:3", "upstream", "^"} {
		if !strings.Contains(r.Stderr, want) {
			t.Fatalf("diagnostics lack %q:\n%s", want, r)
		}
	}
	// stdin works too, and -o json carries the diagnostics on stdout.
	r = RunStoa(t, filepath.Join(dir, "none.sock"), bad, "validate", "-f", "-", "-o", "json")
	expect(t, r, 3, "validate stdin json")
	var out struct {
		Valid       bool
		Diagnostics []struct{ Line, Column int }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || out.Valid || len(out.Diagnostics) < 2 {
		t.Fatalf("json diagnostics: %v\n%s", err, r)
	}
}
