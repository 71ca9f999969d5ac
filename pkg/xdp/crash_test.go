//go:build linux

package xdp

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/netnstest"
)

// TestHelperLimiterProcess is not a test: TestCrashLeavesNothingAttached and
// TestUnprivileged run the test binary as a child that executes it.
func TestHelperLimiterProcess(t *testing.T) {
	spec := os.Getenv("STOA_XDP_HELPER")
	if spec == "" {
		return
	}
	nsName, rest, _ := strings.Cut(spec, ":")
	iface, mode, _ := strings.Cut(rest, ":")
	l := New(nil)
	cfg := Config{Interfaces: []string{iface}, Mode: Mode(cmp.Or(mode, string(ModeGeneric))), Ports: []uint16{8080}}
	var err error
	if nsName == "" {
		err = l.Apply(cfg)
	} else {
		err = (&netnstest.NS{Name: nsName}).Do(func() error { return l.Apply(cfg) })
	}
	if err != nil {
		fmt.Printf("apply: unsupported=%v fallback=%v: %v\n", errors.Is(err, ErrUnsupported), l.Status().Fallback, err)
		os.Exit(3)
	}
	fmt.Println("attached")
	time.Sleep(time.Hour) // until killed
}

func startHelper(t *testing.T, spec string, attr *syscall.SysProcAttr, exe string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestHelperLimiterProcess$")
	cmd.Env = append(os.Environ(), "STOA_XDP_HELPER="+spec)
	cmd.SysProcAttr = attr
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

// TestCrashLeavesNothingAttached kills a process holding an attached
// Limiter, without Close: the kernel detaches with the last link holder, so
// the interface is clean and a new Limiter attaches.
func TestCrashLeavesNothingAttached(t *testing.T) {
	requireRootBPF(t)
	for _, c := range []struct {
		mode Mode
		sig  syscall.Signal
	}{{ModeNative, syscall.SIGKILL}, {ModeGeneric, syscall.SIGKILL}, {ModeNative, syscall.SIGTERM}, {ModeGeneric, syscall.SIGTERM}} {
		sig := c.sig
		t.Run(string(c.mode)+" "+sig.String(), func(t *testing.T) {
			ns := netnstest.New(t)
			ns.IdleLink("d0")
			cmd, out := startHelper(t, ns.Name+":d0:"+string(c.mode), nil, os.Args[0])
			line, err := out.ReadString('\n')
			if err != nil || line != "attached\n" {
				t.Fatalf("helper said %q (%v)", line, err)
			}
			if !ns.XDPAttached("d0") {
				t.Fatal("helper did not attach")
			}
			_ = cmd.Process.Signal(sig)
			_ = cmd.Wait()
			deadline := time.Now().Add(5 * time.Second)
			for ns.XDPAttached("d0") {
				if time.Now().After(deadline) {
					t.Fatalf("xdp still attached after %s", sig)
				}
				time.Sleep(20 * time.Millisecond)
			}
			l, apply := newLimiterIn(t, ns)
			if err := apply(Config{Interfaces: []string{"d0"}, Mode: c.mode}); err != nil {
				t.Fatalf("restart: %v", err)
			}
			if err := l.Close(); err != nil || ns.XDPAttached("d0") {
				t.Fatalf("close after restart: %v, attached %v", err, ns.XDPAttached("d0"))
			}
		})
	}
}

// TestUnprivileged runs a Limiter as nobody: Apply reports ErrUnsupported
// with a reason naming the missing capabilities, and the fallback takes
// over.
func TestUnprivileged(t *testing.T) {
	requireRootBPF(t)
	// The test binary's own directory is private to root; nobody runs a copy.
	dir, err := os.MkdirTemp("", "stoa-xdp-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "xdp.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(dst, src)
	src.Close()
	if cerr := dst.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}

	attr := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd, out := startHelper(t, ":lo", attr, exe)
	timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	got, _ := io.ReadAll(out)
	_ = cmd.Wait()
	want := "apply: unsupported=true fallback=true: XDP off: need CAP_BPF and CAP_NET_ADMIN (running as uid 65534)"
	if !strings.HasPrefix(string(got), want) {
		t.Fatalf("unprivileged helper said %q, want %q", got, want)
	}
}
