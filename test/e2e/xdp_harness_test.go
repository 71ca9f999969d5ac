//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/netnstest"
)

// Helpers for the XDP end-to-end tests: stoad and the example upstreams run
// inside a server namespace, clients and attackers in namespaces of their
// own, all joined by veth pairs (pkg/netnstest). Everything is removed by
// t.Cleanup, also when a test fails: stoad first (its XDP links die with
// it), then the namespaces with their veths.

// requireXDP skips unless the test can create namespaces and load XDP.
func requireXDP(t *testing.T) {
	t.Helper()
	netnstest.Require(t)
	if err := features.HaveProgramType(ebpf.XDP); err != nil {
		t.Skipf("xdp e2e: needs root and BPF (XDP programs): %v", err)
	}
}

var (
	xdpUpstreamsOnce sync.Once
	xdpUpstreamsBin  string
	xdpUpstreamsErr  error
)

// xdpBuildUpstreams builds examples/upstreams next to stoa and stoad.
func xdpBuildUpstreams(t *testing.T) string {
	t.Helper()
	xdpUpstreamsOnce.Do(func() {
		xdpUpstreamsBin = filepath.Join(binDir, "xdp-upstreams")
		cmd := exec.Command("go", "build", "-o", xdpUpstreamsBin, "./examples/upstreams")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			xdpUpstreamsErr = fmt.Errorf("build upstreams: %v\n%s", err, out)
		}
	})
	if xdpUpstreamsErr != nil {
		t.Fatal(xdpUpstreamsErr)
	}
	return xdpUpstreamsBin
}

// xdpStartUpstreams runs the example upstreams on 127.0.0.1:9001 inside ns
// until the test ends, with prefix (e.g. taskset -c 1) before the binary.
func xdpStartUpstreams(t *testing.T, ns *netnstest.NS, prefix ...string) {
	t.Helper()
	bin := xdpBuildUpstreams(t)
	ctx, cancel := context.WithCancel(context.Background())
	argv := append(append(prefix[:len(prefix):len(prefix)], bin), "--listen", "127.0.0.1:9001")
	cmd := ns.Command(ctx, argv[0], argv[1:]...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start upstreams: %v", err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	if err := xdpWaitDial(ns, "127.0.0.1:9001", 10*time.Second); err != nil {
		t.Fatalf("upstreams did not start: %v\n%s", err, log.String())
	}
}

// xdpWaitDial waits until addr accepts connections from inside ns.
func xdpWaitDial(ns *netnstest.NS, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c, err := ns.DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// xdpStartIn launches d's stoad inside ns, with prefix (e.g. setpriv …)
// between `ip netns exec NS` and stoad, and waits until the LocalAPI
// answers.
func xdpStartIn(d *Daemon, ns *netnstest.NS, bin string, prefix ...string) {
	d.t.Helper()
	d.launch(bin, append([]string{"ip", "netns", "exec", ns.Name}, prefix...), "info", 20*time.Second)
}

// xdpApply writes yaml to a file and applies it.
func xdpApply(t *testing.T, d *Daemon, yaml string) Result {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "specs.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return d.Stoa("apply", "-f", dir)
}

// xdpStatusOf reads `stoa xdp status -o json`.
func xdpStatusOf(t *testing.T, d *Daemon) api.XDPStatus {
	t.Helper()
	r := d.Stoa("xdp", "status", "-o", "json")
	expect(t, r, 0, "stoa xdp status")
	var s api.XDPStatus
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		t.Fatalf("xdp status json: %v\n%s", err, r.Stdout)
	}
	return s
}

// xdpBlocksOf reads `stoa xdp blocks -o json`.
func xdpBlocksOf(t *testing.T, d *Daemon) []api.XDPBlock {
	t.Helper()
	r := d.Stoa("xdp", "blocks", "-o", "json")
	expect(t, r, 0, "stoa xdp blocks")
	var l api.XDPBlockList
	if err := json.Unmarshal([]byte(r.Stdout), &l); err != nil {
		t.Fatalf("xdp blocks json: %v\n%s", err, r.Stdout)
	}
	return l.Items
}

// xdpEventsOf reads the xdp.* events with `stoa events -o ndjson`.
func xdpEventsOf(t *testing.T, d *Daemon) []api.Event {
	t.Helper()
	r := d.Stoa("events", "-o", "ndjson", "--last", "500", "--type", "xdp.")
	expect(t, r, 0, "stoa events")
	var out []api.Event
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if line == "" {
			continue
		}
		var e api.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("event json: %v\n%s", err, line)
		}
		out = append(out, e)
	}
	return out
}

// xdpEventually polls cond every 100ms for up to within.
func xdpEventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// xdpGet makes one request with c and returns the status (0 with an error
// when none came back).
func xdpGet(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// xdpIsTimeout reports whether err is a client or dial timeout.
func xdpIsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// xdpScrape fetches url from inside ns (the ops listener lives there).
func xdpScrape(t *testing.T, ns *netnstest.NS, url string) string {
	t.Helper()
	c := ns.HTTPClient(5 * time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noXDPLeft fails t if any of the interfaces still has an XDP program.
func noXDPLeft(t *testing.T, ns *netnstest.NS, ifaces ...string) {
	t.Helper()
	for _, ifc := range ifaces {
		if ns.XDPAttached(ifc) {
			t.Errorf("%s: an XDP program is still attached:\n%s", ifc, ns.IP("link", "show", "dev", ifc))
		}
	}
}

// xdpDropPrivileges runs the rest of a command line as nobody, without
// groups or capabilities.
var xdpDropPrivileges = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"}

// xdpNobodyDaemon prepares a stoad that nobody can run: a copy of the
// binary, a state directory and a socket directory nobody can reach. It
// returns the daemon and the binary to start with xdpStartIn.
func xdpNobodyDaemon(t *testing.T) (*Daemon, string) {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("xdp e2e: needs setpriv (util-linux) to drop privileges")
	}
	dir, err := os.MkdirTemp("", "stoa-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "stoad")
	xdpCopyFile(t, filepath.Join(binDir, "stoad"), bin, 0o755)
	for _, sub := range []string{"state", "run"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(dir, sub), 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := NewDaemon(t)
	d.StateDir = filepath.Join(dir, "state")
	d.Socket, d.MCPSock = filepath.Join(dir, "run", "s.sock"), filepath.Join(dir, "run", "m.sock")
	return d, bin
}

func xdpCopyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}
