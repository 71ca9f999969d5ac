package store

import (
	"os/exec"
	"strings"
	"testing"
)

// drivers are database drivers: only the implementations under pkg/store
// may import them.
var drivers = []string{"go.etcd.io/bbolt", "github.com/jackc/pgx", "github.com/lib/pq", "database/sql", "modernc.org/sqlite", "github.com/mattn/go-sqlite3"}

func isDriver(pkg string) bool {
	if pkg == "database/sql/driver" {
		// The interfaces a driver implements, not a driver: libraries
		// such as google/uuid (linked through OpenTelemetry) implement
		// driver.Valuer on their types without touching a database.
		return false
	}
	for _, d := range drivers {
		if pkg == d || strings.HasPrefix(pkg, d+"/") {
			return true
		}
	}
	return false
}

const module = "github.com/stoa-gateway/stoa"

func goList(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// TestOnlyStoreImportsDrivers: no package outside pkg/store, tests
// included, imports a database driver; everything else reaches state
// through the interfaces of pkg/store.
func TestOnlyStoreImportsDrivers(t *testing.T) {
	out := goList(t, "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}", "./...")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == module+"/pkg/store" || strings.HasPrefix(f[0], module+"/pkg/store/") {
			continue
		}
		for _, imp := range f[1:] {
			if isDriver(imp) {
				t.Errorf("%s imports %s: use the interfaces of pkg/store (and open a store with pkg/store/boltstore or pkg/store/pgstore)", f[0], imp)
			}
		}
	}
}

// TestDomainsLinkNoDriver: the domain packages (and the contract itself)
// do not even link a driver: they work on any store.
func TestDomainsLinkNoDriver(t *testing.T) {
	for _, p := range []string{"pkg/store", "pkg/store/storetest", "pkg/audit", "pkg/webhook", "pkg/snapshot", "pkg/quota"} {
		for _, dep := range strings.Fields(goList(t, "-deps", "./"+p)) {
			if isDriver(dep) || dep == module+"/pkg/store/boltstore" || dep == module+"/pkg/store/pgstore" {
				t.Errorf("%s links %s", p, dep)
			}
		}
	}
}
