package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryDependencies keeps the two binaries apart (like tailscale's
// depaware): the CLI links no data-plane code (fasthttp, cilium/ebpf,
// bbolt, the daemon), and the daemon no CLI, TUI or keyring code.
func TestBinaryDependencies(t *testing.T) {
	tests := []struct {
		main      string
		forbidden []string
	}{
		{"./cmd/stoa", []string{
			"github.com/valyala/fasthttp", "github.com/cilium/ebpf", "go.etcd.io/bbolt",
			"github.com/stoa-gateway/stoa/pkg/daemon", "github.com/stoa-gateway/stoa/pkg/proxy",
			"github.com/stoa-gateway/stoa/pkg/xdp", "github.com/stoa-gateway/stoa/pkg/store",
		}},
		{"./cmd/stoad", []string{
			"github.com/spf13/cobra", "charm.land/bubbletea", "charm.land/lipgloss", "github.com/charmbracelet/bubbletea",
			"github.com/zalando/go-keyring", "github.com/stoa-gateway/stoa/pkg/cli", "github.com/stoa-gateway/stoa/pkg/tui",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.main, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", tt.main)
			cmd.Dir = repoRoot()
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", tt.main, err)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, bad := range tt.forbidden {
					if dep == bad || strings.HasPrefix(dep, bad+"/") {
						t.Errorf("%s links %s (imports must not cross into %s)", tt.main, dep, bad)
					}
				}
			}
		})
	}
}
