package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestGrafanaDashboardMetrics checks that every metric the example Grafana
// dashboard queries is one stoad declares.
func TestGrafanaDashboardMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "grafana", "stoa-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	declared := map[string]bool{}
	lit := regexp.MustCompile(`"((?:stoa|process|go)_[a-z_]+)"`)
	filepath.Walk(filepath.Join(repoRoot(), "pkg"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			declared[m[1]] = true
		}
		return nil
	})
	// The Go and process collectors' metrics are not declared in stoa's code.
	for _, n := range []string{"process_resident_memory_bytes", "process_cpu_seconds_total", "go_goroutines"} {
		declared[n] = true
	}
	used := regexp.MustCompile(`\b((?:stoa|process|go)_[a-z_]+)`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range used.FindAllStringSubmatch(tg.Expr, -1) {
				name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m[1], "_bucket"), "_sum"), "_count")
				n++
				if !declared[name] {
					t.Errorf("panel %q queries %s, which stoad does not export", p.Title, m[1])
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d metric references; is the dashboard complete?", n)
	}
}

// TestSystemdUnit checks the example unit with systemd-analyze, when the
// machine has it, against the real stoad binary.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "systemd", "stoad.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, want := range []string{"ProtectSystem=strict", "StateDirectory=stoa", "RuntimeDirectory=stoa", "NoNewPrivileges=yes",
		"AmbientCapabilities=CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_NET_BIND_SERVICE", "--state-dir /var/lib/stoa", "--socket /run/stoa/stoad.sock"} {
		if !strings.Contains(unit, want) {
			t.Errorf("stoad.service lacks %q", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; checked the unit's text only")
	}
	path := filepath.Join(t.TempDir(), "stoad.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/stoad", filepath.Join(binDir, "stoad"))), 0o644)
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
