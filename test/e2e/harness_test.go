// Package e2e drives the real stoa and stoad binaries: each test starts a
// stoad on a temporary socket and state directory and runs stoa commands
// against it, checking exit codes, stdout and stderr.
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "stoa-e2e-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	root := repoRoot()
	for _, name := range []string{"stoa", "stoad"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", name, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// freePort returns a loopback address with a port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Daemon is one stoad process under test.
type Daemon struct {
	t        testing.TB
	Dir      string
	StateDir string
	Socket   string
	Listen   string
	Ops      string
	MCPSock  string
	Args     []string
	Env      []string
	cmd      *exec.Cmd
	log      *lockedBuffer
	done     chan struct{}
}

// NewDaemon prepares (but does not start) a stoad with its own directories.
func NewDaemon(t testing.TB, extra ...string) *Daemon {
	t.Helper()
	dir := t.TempDir()
	// Unix socket paths are limited to ~108 bytes; TempDir can be long.
	sockDir, err := os.MkdirTemp("", "stoa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	d := &Daemon{
		t: t, Dir: dir, StateDir: filepath.Join(dir, "state"),
		Socket: filepath.Join(sockDir, "s.sock"), MCPSock: filepath.Join(sockDir, "m.sock"),
		Listen: freePort(t), Ops: freePort(t), Args: extra,
	}
	t.Cleanup(func() { d.Stop() })
	return d
}

// Start launches stoad and waits until the LocalAPI answers.
func (d *Daemon) Start() {
	d.t.Helper()
	// Generous: a loaded CI machine can stall fsync for seconds.
	d.launch(filepath.Join(binDir, "stoad"), nil, "debug", 60*time.Second)
}

// launch starts bin with the daemon's flags — behind prefix when given
// (e.g. ip netns exec NS, setpriv …; both exec, so d.cmd ends up being stoad
// and Stop's SIGTERM reaches it) — and waits up to wait for the LocalAPI.
func (d *Daemon) launch(bin string, prefix []string, logLevel string, wait time.Duration) {
	d.t.Helper()
	args := append([]string{
		"--state-dir", d.StateDir, "--socket", d.Socket, "--mcp-socket", d.MCPSock,
		"--listen", d.Listen, "--ops-listen", d.Ops, "--log-level", logLevel,
	}, d.Args...)
	if len(prefix) > 0 {
		args = append(append(slices.Clone(prefix[1:]), bin), args...)
		bin = prefix[0]
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Env = append(os.Environ(), d.Env...)
	d.log = &lockedBuffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start stoad: %v", err)
	}
	d.done = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.done) }()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			d.t.Fatalf("stoad exited during start-up:\n%s", d.log.String())
		default:
		}
		if c, err := net.Dial("unix", d.Socket); err == nil {
			c.Close()
			if r := d.Stoa("status"); r.Code == 0 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("stoad did not become ready:\n%s", d.log.String())
}

// lockedBuffer collects stoad's output; tests may read it while stoad writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Stop sends SIGTERM and waits for a graceful exit.
func (d *Daemon) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("stoad ignored SIGTERM for 15s:\n%s", d.log.String())
	}
}

// Kill sends SIGKILL (a crash) and waits for the process to disappear.
func (d *Daemon) Kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// Log is stoad's combined output so far.
func (d *Daemon) Log() string { return d.log.String() }

// Result is one stoa invocation's outcome.
type Result struct {
	Code           int
	Stdout, Stderr string
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.Code, r.Stdout, r.Stderr)
}

// Stoa runs the CLI against this daemon.
func (d *Daemon) Stoa(args ...string) Result {
	return RunStoa(d.t, d.Socket, "", args...)
}

// StoaIn runs the CLI with stdin.
func (d *Daemon) StoaIn(stdin string, args ...string) Result {
	return RunStoa(d.t, d.Socket, stdin, args...)
}

// RunStoa runs the stoa binary with STOA_SOCKET=socket.
func RunStoa(t testing.TB, socket, stdin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "stoa"), args...)
	cmd.Env = append(os.Environ(), "STOA_SOCKET="+socket, "NO_COLOR=1")
	cmd.Dir = repoRoot()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run stoa %v: %v", args, err)
	}
	return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

// expect fails the test unless r exited with code.
func expect(t testing.TB, r Result, code int, what string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("%s: want exit %d, got:\n%s", what, code, r)
	}
}
