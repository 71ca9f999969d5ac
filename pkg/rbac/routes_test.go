package rbac

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// apiPaths reads every Path* string constant of pkg/api, so a route added
// there without an entry here fails this package's tests.
func apiPaths(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("../api/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("pkg/api sources: %v", err)
	}
	out := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Path") || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					out[name.Name] = v
				}
			}
			return true
		})
	}
	return out
}

func TestRoutesCoverEveryAPIPath(t *testing.T) {
	paths := apiPaths(t)
	if len(paths) < 15 {
		t.Fatalf("found only %d Path constants in pkg/api: %v", len(paths), paths)
	}
	for name, p := range paths {
		found := false
		for _, r := range Routes() {
			_, rp, _ := strings.Cut(r.Pattern, " ")
			if rp == p {
				found = true
			}
		}
		if !found {
			t.Errorf("api.%s (%s) has no route in the rbac table", name, p)
		}
	}
	seen := map[string]bool{}
	for _, r := range Routes() {
		if seen[r.Pattern] {
			t.Errorf("route %s listed twice", r.Pattern)
		}
		seen[r.Pattern] = true
		if r.Action.String() == "unknown" || r.Scope.String() == "unknown" {
			t.Errorf("route %s: action %s, scope %s", r.Pattern, r.Action, r.Scope)
		}
		if RouteFor(r.Pattern) != r {
			t.Errorf("RouteFor(%s) = %+v", r.Pattern, RouteFor(r.Pattern))
		}
		// A route concerning the daemon as a whole must not name a
		// tenant-level action: it would be checked with tenant "" and
		// only ever allow cluster admins, which the table should say.
		role, cluster := r.Action.Requires()
		if r.Scope == ScopeDaemon && role != RoleNone && !cluster {
			t.Errorf("route %s: daemon scope with tenant action %s", r.Pattern, r.Action)
		}
	}
}

func TestUnlistedRouteNeedsClusterAdmin(t *testing.T) {
	r := RouteFor("GET /v1/dataplanes")
	b := fixture(t)
	if b.Roles(tok(t, "alice", `{}`)).Allows(r.Action, "acme") {
		t.Fatal("a tenant admin may use an unlisted route")
	}
	if !b.Roles(tok(t, "root", `{}`)).Allows(r.Action, "") {
		t.Fatal("a cluster admin may not use an unlisted route")
	}
}

func needs(a Action) string {
	role, cluster := a.Requires()
	switch {
	case cluster:
		return "cluster admin"
	case role == RoleNone:
		return "any role"
	}
	return role.String()
}

// TestRoutesDocumented keeps docs/fleet.md's route table and Routes() in
// step, row for row.
func TestRoutesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/fleet.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### Routes\n")
	if !ok {
		t.Fatal("docs/fleet.md has no Routes section")
	}
	// The section ends at the next heading; later sections have tables too.
	if i := strings.Index(section, "\n#"); i >= 0 {
		section = section[:i]
	}
	var rows []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| `") {
			rows = append(rows, line)
		}
	}
	var want []string
	for _, r := range Routes() {
		want = append(want, "| `"+r.Pattern+"` | "+r.Action.String()+" | "+needs(r.Action)+" | "+
			map[Scope]string{ScopeDaemon: "daemon", ScopeList: "list", ScopeBody: "body", ScopeRecord: "record", ScopeChanges: "plan"}[r.Scope]+" |")
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("docs/fleet.md route table differs from Routes(); want:\n%s\n\ngot:\n%s", strings.Join(want, "\n"), strings.Join(rows, "\n"))
	}
}
