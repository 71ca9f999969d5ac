package federation

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// stdioConfig runs this test binary as an official-SDK stdio server.
func stdioConfig(t *testing.T, extra ...EnvVar) Config {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Tenant: "acme", Tool: "local", Transport: TransportStdio,
		Command: []string{exe, "-test.run=^$"},
		Env:     append([]EnvVar{{Name: "FED_STDIO_SERVER", Value: "1"}}, extra...),
		Timeout: 10 * time.Second,
	}
}

func TestStdioCallAndEnvAllowList(t *testing.T) {
	t.Setenv("FED_TEST_STOAD_SECRET", "must-not-leak")
	t.Setenv("FED_TEST_SECRET_SOURCE", "from-secretref")
	t.Setenv("FED_TEST_INHERITED", "inherited-ok")
	cfg := stdioConfig(t,
		EnvVar{Name: "LITERAL", Value: "lit"},
		EnvVar{Name: "API_TOKEN", SecretRef: &spec.SecretRef{Env: "FED_TEST_SECRET_SOURCE"}})
	cfg.InheritEnv = []string{"FED_TEST_INHERITED"}
	cfg.Dir = t.TempDir()
	u := startUpstream(t, cfg, testOptions(t))
	st := u.Status()
	if st.State != StateReady || st.Protocol != "2025-11-25" || st.PID == 0 || st.Server != "fed-test" {
		t.Fatalf("status = %+v", st)
	}
	if res := mustCall(t, u, "echo", `{"text":"over stdio"}`); text(t, res.Raw) != "echo: over stdio" {
		t.Errorf("echo = %s", res.Raw)
	}
	env := text(t, mustCall(t, u, "env", ``).Raw)
	for _, want := range []string{"LITERAL=lit", "API_TOKEN=from-secretref", "FED_TEST_INHERITED=inherited-ok", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("child env lacks %s:\n%s", want, env)
		}
	}
	for _, bad := range []string{"FED_TEST_STOAD_SECRET", "must-not-leak", "FED_TEST_SECRET_SOURCE="} {
		if strings.Contains(env, bad) {
			t.Errorf("child env has %s", bad)
		}
	}
	cwd, _ := os.Readlink("/proc/" + strconv.Itoa(st.PID) + "/cwd")
	if cwd != cfg.Dir {
		t.Errorf("child cwd = %q; want %q", cwd, cfg.Dir)
	}
}

func TestStdioCrashRestartsWithBackoff(t *testing.T) {
	u := startUpstream(t, stdioConfig(t), testOptions(t))
	pid := u.Status().PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "restart after the crash", func() bool {
		st := u.Status()
		return st.State == StateReady && st.Restarts == 1 && st.PID != pid
	})
	if !strings.Contains(u.Status().LastError, "upstream process exited (signal: killed)") {
		t.Errorf("last error = %q", u.Status().LastError)
	}
	if res := mustCall(t, u, "echo", `{"text":"after restart"}`); text(t, res.Raw) != "echo: after restart" {
		t.Errorf("echo after restart = %s", res.Raw)
	}
}

func TestStdioCrashDuringCallFailsFast(t *testing.T) {
	opts := testOptions(t)
	opts.BackoffInitial = time.Hour // stay down for the assertions
	u := startUpstream(t, stdioConfig(t), opts)
	pid := u.Status().PID
	done := make(chan error, 1)
	go func() {
		_, err := u.Call(context.Background(), "slow", []byte(`{"ms":20000}`))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the call reach the child (either order passes)
	syscall.Kill(pid, syscall.SIGKILL)
	if err := <-done; !isKind(err, ErrUnavailable) || !strings.Contains(err.Error(), "upstream process exited") {
		t.Fatalf("in-flight call: %v", err)
	}
	eventually(t, "down", func() bool { return u.Status().State == StateDown })
	if _, err := u.Call(context.Background(), "echo", nil); !isKind(err, ErrUnavailable) {
		t.Fatalf("call while down: %v", err)
	}
}

func TestStdioTimeoutKeepsProcess(t *testing.T) {
	cfg := stdioConfig(t)
	cfg.Timeout = 2 * time.Second // covers the child's start on a busy machine; the slow tool takes 20 s
	u := startUpstream(t, cfg, testOptions(t))
	pid := u.Status().PID
	if _, err := u.Call(context.Background(), "slow", []byte(`{"ms":20000}`)); !isKind(err, ErrTimeout) {
		t.Fatalf("slow: %v", err)
	}
	if res := mustCall(t, u, "echo", `{"text":"x"}`); text(t, res.Raw) != "echo: x" {
		t.Errorf("echo = %s", res.Raw)
	}
	if st := u.Status(); st.PID != pid || st.Restarts != 0 {
		t.Errorf("a timeout restarted the process: %+v", st)
	}
}

func TestStdioLimitsStderrAndProcessGroup(t *testing.T) {
	if _, err := os.Stat("/proc/self/limits"); err != nil {
		t.Skip("needs /proc (Linux)")
	}
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	cfg := stdioConfig(t, EnvVar{Name: "FED_STDIO_CHILD", Value: pidFile}, EnvVar{Name: "FED_STDIO_STDERR", Value: "1"})
	cfg.Limits = Limits{MemoryBytes: 8 << 30, CPUSeconds: 3600, OpenFiles: 256}
	logs := &syncBuffer{}
	opts := testOptions(t)
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	u, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	pid := u.Status().PID
	limits, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Max address space         8589934592           8589934592",
		"Max cpu time              3600                 3600",
		"Max open files            256                  256",
	} {
		if !strings.Contains(string(limits), want) {
			t.Errorf("limits lack %q:\n%s", want, limits)
		}
	}
	eventually(t, "stderr line logged", func() bool {
		return strings.Contains(logs.String(), `msg="mcp upstream stderr"`) && strings.Contains(logs.String(), "fed stdio server starting")
	})
	if !strings.Contains(logs.String(), "tenant=acme tool=local transport=stdio") {
		t.Errorf("stderr log lacks attributes:\n%s", logs.String())
	}
	var gc int
	eventually(t, "grandchild pid", func() bool {
		b, err := os.ReadFile(pidFile)
		gc, _ = strconv.Atoi(string(b))
		return err == nil && gc > 0
	})
	if err := syscall.Kill(gc, 0); err != nil {
		t.Fatalf("grandchild not running: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := u.Status(); st.State != StateStopped {
		t.Errorf("state = %s", st.State)
	}
	// The grandchild was in the group: it is gone (or a zombie of its dead
	// parent awaiting init's reaping).
	eventually(t, "grandchild killed with the group", func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(gc) + "/stat")
		return err != nil || strings.Contains(string(b), ") Z ")
	})
	if _, err := u.Call(context.Background(), "echo", nil); !isKind(err, ErrUnavailable) || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("call after stop: %v", err)
	}
}

func TestStdioCommandNotFound(t *testing.T) {
	cfg := Config{Tenant: "acme", Tool: "missing", Transport: TransportStdio, Command: []string{"stoa-no-such-mcp-server"}}
	u := startUpstream(t, cfg, testOptions(t))
	st := u.Status()
	if st.State != StateDown || !strings.Contains(st.LastError, `command "stoa-no-such-mcp-server" not found`) {
		t.Fatalf("status = %+v", st)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStopDuringFirstAttemptReleasesStart(t *testing.T) {
	// A "server" that never answers initialize.
	cfg := Config{Tenant: "acme", Tool: "mute", Transport: TransportStdio, Command: []string{"sleep", "300"}, ConnectTimeout: time.Hour}
	u, err := New(cfg, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- u.Start(context.Background()) }()
	eventually(t, "child started", func() bool { return u.Status().PID != 0 })
	pid := u.Status().PID
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := u.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-started; err != nil {
		t.Fatalf("Start: %v", err)
	}
	eventually(t, "child gone", func() bool { return syscall.Kill(pid, 0) != nil })
}
