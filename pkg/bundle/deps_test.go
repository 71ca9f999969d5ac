package bundle

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package a pure library that both binaries can
// link: no data-plane runtime, no CLI, and none of cosign's own packages,
// which bring Rekor, TUF and OCI registry clients (tens of MB) along.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if !strings.Contains(string(out), "github.com/stoa-gateway/stoa/pkg/plan\n") {
		t.Fatalf("go list -deps lacks pkg/plan; output:\n%s", out)
	}
	forbidden := []string{
		"github.com/valyala/fasthttp", "github.com/cilium/ebpf", "go.etcd.io/bbolt", "github.com/spf13/cobra",
		"github.com/stoa-gateway/stoa/pkg/daemon", "github.com/stoa-gateway/stoa/pkg/proxy",
		"github.com/stoa-gateway/stoa/pkg/cli", "github.com/stoa-gateway/stoa/pkg/store",
		"github.com/sigstore/cosign", "github.com/sigstore/rekor", "github.com/sigstore/sigstore-go",
		"github.com/theupdateframework", "net/http",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range forbidden {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("pkg/bundle links %s", dep)
			}
		}
	}
}
