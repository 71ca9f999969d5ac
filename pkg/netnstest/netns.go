//go:build linux

package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// namePrefix starts every namespace this package creates; the creating
// process id follows, so stale ones can be told from live ones.
const namePrefix = "stoat-"

// Require skips t unless the process is root and `ip` is installed.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("netns: needs root to create network namespaces (running as uid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netns: needs iproute2 (`ip`): apt-get install iproute2")
	}
}

// NS is a network namespace created for one test.
type NS struct {
	Name string
	t    testing.TB
}

// New creates a network namespace with a unique name and loopback up, and
// removes it (with every interface in it) when the test ends.
func New(t testing.TB) *NS {
	t.Helper()
	Require(t)
	sweepStale()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("%s%d-%s", namePrefix, os.Getpid(), hex.EncodeToString(b[:]))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("netns: create %s: %v: %s", name, err, out)
	}
	n := &NS{Name: name, t: t}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("netns: remove %s: %v: %s", name, err, out)
		}
	})
	n.IP("link", "set", "lo", "up")
	return n
}

// sweepStale removes namespaces left by test processes that no longer run.
func sweepStale() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), namePrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// IP runs `ip -n <ns> args...` and fails the test on error; it returns the
// output.
func (n *NS) IP(args ...string) string {
	n.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("netns: ip -n %s %s: %v: %s", n.Name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Command returns a command that runs inside the namespace.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Do runs fn on an OS thread switched into the namespace. Sockets created in
// fn stay in the namespace after Do returns and may be used from any
// goroutine; goroutines started in fn do not run in the namespace.
func (n *NS) Do(fn func() error) error {
	target, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", n.Name, err)
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: open current namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: enter %s: %w", n.Name, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime then ends it with this
			// goroutine instead of reusing it in the wrong namespace.
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// Listen opens a listener inside the namespace.
func (n *NS) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() (err error) { ln, err = net.Listen(network, addr); return err })
	return ln, err
}

// ListenPacket opens a packet socket inside the namespace.
func (n *NS) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.Do(func() (err error) { pc, err = net.ListenPacket(network, addr); return err })
	return pc, err
}

// DialContext dials from inside the namespace.
func (n *NS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient returns a client whose connections are made inside the
// namespace.
func (n *NS) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: n.DialContext, MaxIdleConnsPerHost: 4},
	}
}

// Veth joins two namespaces with a veth pair, gives each end its addresses
// (CIDR notation, IPv4 or IPv6; IPv6 skips duplicate address detection) and
// brings both ends up. The pair goes away with either namespace.
func Veth(t testing.TB, a *NS, aName string, aAddrs []string, b *NS, bName string, bAddrs []string) {
	t.Helper()
	a.IP("link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name)
	for _, side := range []struct {
		ns    *NS
		name  string
		addrs []string
	}{{a, aName, aAddrs}, {b, bName, bAddrs}} {
		for _, addr := range side.addrs {
			args := []string{"addr", "add", addr, "dev", side.name}
			if strings.Contains(addr, ":") {
				args = append(args, "nodad")
			}
			side.ns.IP(args...)
		}
		side.ns.IP("link", "set", side.name, "up")
	}
}

// IdleLink adds an interface that no traffic arrives on, and brings it up:
// somewhere to attach programs that tests drive with BPF_PROG_TEST_RUN. It
// is one end of a veth pair whose other end, name+"p", stays in the same
// namespace (kernels without the dummy driver have veth).
func (n *NS) IdleLink(name string) {
	n.t.Helper()
	n.IP("link", "add", name, "type", "veth", "peer", "name", name+"p")
	n.IP("link", "set", name, "up")
}

// XDPAttached reports whether `ip link show` lists an XDP program on the
// interface.
func (n *NS) XDPAttached(iface string) bool {
	n.t.Helper()
	return strings.Contains(n.IP("link", "show", "dev", iface), " xdp")
}
