package daemon

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestFasthttpStaysAtTheEdge: of everything the daemon links, only the
// packages that serve HTTP on fasthttp — the proxy and the MCP server —
// import it; the daemon and the runtimes speak domain types
// (proxy.Failure, mcp.Credentials), never *fasthttp.RequestCtx.
func TestFasthttpStaysAtTheEdge(t *testing.T) {
	const module = "github.com/stoa-gateway/stoa/"
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := []string{module + "pkg/proxy", module + "pkg/mcp"}
	var seen []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], module) {
			continue
		}
		seen = append(seen, f[0])
		for _, imp := range f[1:] {
			if imp == "github.com/valyala/fasthttp" || strings.HasPrefix(imp, "github.com/valyala/fasthttp/") {
				if !slices.Contains(allowed, f[0]) {
					t.Errorf("%s imports %s: only %v serve fasthttp; pass domain types across", f[0], imp, allowed)
				}
			}
		}
	}
	// The check means something only if it saw the runtimes.
	for _, p := range []string{"pkg/daemon", "pkg/localapi", "pkg/mcp/mcprt", "pkg/snapshot", "pkg/proxy"} {
		if !slices.Contains(seen, module+p) {
			t.Errorf("go list -deps did not list %s", p)
		}
	}
}
