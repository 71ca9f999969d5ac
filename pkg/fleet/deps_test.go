package fleet_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/stoa-gateway/stoa"

// deps lists the packages pkg links that are not in the standard
// library.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./"+pkg)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestDependencies: the wire types link only the standard library (the
// CLI and pkg/api may import them); no fleet package links a database
// driver, the data plane's proxy (fasthttp, cilium/ebpf) or CLI code
// (cobra, bubbletea, keyring).
func TestDependencies(t *testing.T) {
	for _, d := range deps(t, "pkg/fleet") {
		if d != module+"/pkg/fleet" {
			t.Errorf("pkg/fleet links %s", d)
		}
	}
	banned := []string{"go.etcd.io/bbolt", "github.com/jackc/pgx", "github.com/valyala/fasthttp", "github.com/cilium/ebpf",
		"github.com/spf13/cobra", "charm.land/bubbletea", "github.com/zalando/go-keyring",
		module + "/pkg/store/boltstore", module + "/pkg/store/pgstore", module + "/pkg/daemon", module + "/pkg/proxy", module + "/pkg/cli"}
	for _, p := range []string{"pkg/fleet", "pkg/fleet/ca", "pkg/fleet/controlplane", "pkg/fleet/dataplane"} {
		for _, d := range deps(t, p) {
			for _, b := range banned {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("%s links %s", p, d)
				}
			}
		}
	}
}
