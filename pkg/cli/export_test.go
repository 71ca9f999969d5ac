package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/specload"
)

// loadExport loads exported specs the way stoa apply does (defaults,
// validation) and fails on any diagnostic.
func loadExport(t *testing.T, paths ...string) []*spec.Object {
	t.Helper()
	res, err := specload.Load(t.Context(), paths, specload.Options{References: specload.ReferencesStrict})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Diagnostics) > 0 {
		t.Fatalf("export does not load cleanly: %v", res.Diagnostics)
	}
	return res.Objects
}

// TestExportAppliesUnchanged: the export holds no defaults, and planning it
// against the live objects (what stoa diff does) finds nothing to change.
func TestExportAppliesUnchanged(t *testing.T) {
	fa := newFakeAPI(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "all.yaml")
	code, out, errOut := fa.run("export", "-o", file)
	if code != 0 || out != "" || !strings.Contains(errOut, "exported 12 objects to "+file) {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	b, _ := os.ReadFile(file)
	for _, dflt := range []string{"connect: 2s", "protocol: rest", "circuitBreaker", "readOnly", "pathPrefix", "maxAttempts"} {
		if strings.Contains(string(b), dflt) {
			t.Errorf("export holds the default %q:\n%s", dflt, b)
		}
	}
	desired := loadExport(t, file)
	changes, sum := plan.Compute(fa.objects, desired, plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }})
	if !sum.Empty() {
		t.Fatalf("applying the export would change %s: %v", sum, changes)
	}

	// One tenant: its Tenant and objects only, also unchanged.
	code, out, _ = fa.run("export", "-n", "globex")
	if code != 0 || strings.Contains(out, "acme") || !strings.Contains(out, "kind: Tenant") {
		t.Fatalf("export -n globex: exit %d\n%s", code, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "globex.yaml"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	desired = loadExport(t, filepath.Join(dir, "globex.yaml"))
	if _, sum := plan.Compute(fa.objects, desired, plan.Options{}); !sum.Empty() {
		t.Fatalf("export -n globex would change %s", sum)
	}
}

func TestExportToDirectory(t *testing.T) {
	fa := newFakeAPI(t)
	dir := filepath.Join(t.TempDir(), "backup")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "stale.yaml"), []byte("# old\n"), 0o644)
	code, _, errOut := fa.run("export", "-A", "-f", dir)
	if code != 0 || !strings.Contains(errOut, "exported 12 objects to 2 files") || !strings.Contains(errOut, "stale.yaml was not written by this export") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, n := range []string{"acme.yaml", "globex.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || !strings.HasPrefix(string(b), "# stoa export of revision 3") {
			t.Fatalf("%s: %v\n%s", n, err, b)
		}
	}
	os.Remove(filepath.Join(dir, "stale.yaml"))
	desired := loadExport(t, dir)
	if _, sum := plan.Compute(fa.objects, desired, plan.Options{}); !sum.Empty() || len(desired) != 12 {
		t.Fatalf("directory export: %d objects, would change %s", len(desired), sum)
	}
}

func TestExportFormatsAndErrors(t *testing.T) {
	fa := newFakeAPI(t)
	file := filepath.Join(t.TempDir(), "x.json")
	if code, _, errOut := fa.run("export", "-n", "acme", "-o", file); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var list struct {
		Kind  string
		Items []*spec.Object
	}
	b, _ := os.ReadFile(file)
	if err := json.Unmarshal(b, &list); err != nil || list.Kind != "List" || len(list.Items) != 7 {
		t.Fatalf("x.json: %v %+v\n%s", err, list, b)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"export", "-n", "nope"}, `tenant "nope" not found`},
		{[]string{"export", "-n", "acme", "-A"}, "not both"},
		{[]string{"export", "-f", "d", "-o", "f.yaml"}, "not both"},
	} {
		if code, _, errOut := fa.run(tc.args...); code != ExitFailure || !strings.Contains(errOut, tc.err) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, errOut)
		}
	}
	// A masked annotation cannot be exported faithfully: say so.
	fa.objects[0].Metadata.Annotations = map[string]string{"api-token": "s3cret"}
	code, out, errOut := fa.run("export")
	if code != 0 || strings.Contains(out, "s3cret") || !strings.Contains(errOut, `annotation "api-token" is exported masked`) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func exportCases() []cmdCase {
	return []cmdCase{
		{name: "one tenant", args: []string{"-n", "acme"}, formats: formats(shapeSpecs), calls: []string{`Objects("", "", "")`},
			out: []string{"# stoa export of revision 3", "kind: Tenant", "name: billing-api"}, notOut: []string{"weather-api", "connect: 2s"}},
		{name: "everything", formats: formats(shapeSpecs), out: []string{"weather-api", "billing-api"}},
		{name: "to a file", args: []string{"-A", "-o", "$TMP/all.json"}, errOut: []string{"exported 12 objects to $TMP/all.json"},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				var list struct {
					Kind  string
					Items []*spec.Object
				}
				b, _ := os.ReadFile(filepath.Join(r.dir, "all.json"))
				if err := json.Unmarshal(b, &list); err != nil || list.Kind != "List" || len(list.Items) != 12 {
					t.Errorf("all.json: %v, %d items\n%s", err, len(list.Items), b)
				}
			}},
		{name: "to a directory", args: []string{"-f", "$TMP/backup"}, errOut: []string{"exported 12 objects to 2 files in $TMP/backup"},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				if got := loadExport(t, filepath.Join(r.dir, "backup")); len(got) != 12 {
					t.Errorf("the directory holds %d objects, want 12", len(got))
				}
			}},
		{name: "masked annotation", setup: func(t *testing.T, fa *clitest.FakeAPI) {
			fa.LiveObjects[0].Metadata.Annotations = map[string]string{"api-token": "s3cret"}
		}, notOut: []string{"s3cret"}, errOut: []string{`annotation "api-token" is exported masked (***); put its value back before applying`}},
		{name: "unknown tenant", args: []string{"-n", "nope"}, code: ExitFailure, errOut: []string{`export: tenant "nope" not found`, "hint: list the tenants with: stoa get tenants"}},
		{name: "unreachable", fail: failAll("Objects", errUnreachable), code: ExitUnreachable},
		{name: "forbidden", args: []string{"-n", "acme"}, fail: failAll("Objects", errDenied), code: ExitForbidden},
		{name: "tenant and all", args: []string{"-n", "acme", "-A"}, code: ExitFailure, flagErr: true, errOut: []string{"export: pass -n TENANT or -A, not both"}},
		{name: "directory and file", args: []string{"-f", "d", "-o", "f.yaml"}, code: ExitFailure, flagErr: true, errOut: []string{"export: pass -f DIR or -o FILE, not both"}},
		{name: "stray argument", args: []string{"acme"}, code: ExitFailure, flagErr: true},
	}
}
