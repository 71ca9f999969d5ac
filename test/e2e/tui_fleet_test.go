package e2e

import (
	"path/filepath"
	"testing"
	"time"
)

// TestDashboardBundleDataPlane: on a stoad serving a signed bundle file
// the dashboard's header says where the configuration comes from, and the
// XDP panel stays (a data plane serves traffic; only a control plane's
// dashboard shows the fleet instead).
func TestDashboardBundleDataPlane(t *testing.T) {
	up := echoUpstream(t)
	d := NewDaemon(t)
	kit := newBundleKit(t, d)
	file := kit.path("bundle.json")
	kit.build(1, publicTools(up, "one"), file)
	d.Args = []string{"--bundle", file, "--bundle-key", kit.pub(), "--bundle-poll", "1h"}
	d.Start()

	s := startTTY(t, 100, 30, []string{"STOA_SOCKET=" + d.Socket, "TERM=xterm-256color"}, filepath.Join(binDir, "stoa"), "dashboard")
	scr := s.WaitText(15*time.Second, "● live", "config bundle "+file, "from file", "one", "XDP")
	t.Logf("100×30 screen:\n%s", scr)
	s.Type("q")
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("q did not quit; screen:\n%s", s.Screen())
	}
}
