package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// liveDaemon is an in-process stoad with the default runtimes, serving its
// real LocalAPI on a temporary unix socket and its proxy on a free port.
type liveDaemon struct {
	t      *testing.T
	cfg    Config
	d      *Daemon
	c      *client.Client
	log    *syncBuffer
	cancel context.CancelFunc
	done   chan error
	// keys holds an API key per tenant, for tests that call routes with
	// one.
	apiKeys map[string]string
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// sockDir returns a short directory for sockets (paths are limited to
// about 108 bytes; t.TempDir can be longer).
func sockDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "stoa-sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startDaemon starts a stoad on fresh directories; mut adjusts the config.
func startDaemon(t *testing.T, mut func(*Config)) *liveDaemon {
	t.Helper()
	dir := sockDir(t)
	cfg := Config{StateDir: filepath.Join(t.TempDir(), "state"), Socket: filepath.Join(dir, "s.sock"),
		Listen: "127.0.0.1:0", SpecsPoll: 50 * time.Millisecond, LogLevel: "debug"}
	if mut != nil {
		mut(&cfg)
	}
	ld := &liveDaemon{t: t, cfg: cfg, log: &syncBuffer{}}
	ld.start()
	t.Cleanup(ld.stop)
	return ld
}

func (ld *liveDaemon) start() {
	t := ld.t
	t.Helper()
	cfg := ld.cfg
	d, err := New(&cfg, slog.New(slog.NewTextHandler(ld.log, &slog.HandlerOptions{Level: slog.LevelDebug})), Options{Runtimes: DefaultRuntimes})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ld.d, ld.cancel, ld.done = d, cancel, make(chan error, 1)
	go func() { ld.done <- d.Run(ctx) }()
	ld.c = client.New(cfg.Socket)
	deadline := time.Now().Add(30 * time.Second)
	for !d.Ready() {
		select {
		case err := <-ld.done:
			t.Fatalf("stoad stopped during start-up: %v\n%s", err, ld.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stoad did not become ready:\n%s", ld.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop shuts the daemon down (idempotent).
func (ld *liveDaemon) stop() {
	if ld.cancel == nil {
		return
	}
	ld.cancel()
	if err := <-ld.done; err != nil {
		ld.t.Errorf("stoad: %v", err)
	}
	ld.cancel = nil
}

// restart stops the daemon and starts it again on the same state.
func (ld *liveDaemon) restart() {
	ld.t.Helper()
	ld.stop()
	ld.start()
}

// proxyURL is the base URL of the proxy listener.
func (ld *liveDaemon) proxyURL() string { return "http://" + ld.d.dp.proxy.Addr() }

// apply applies YAML through the LocalAPI as the CLI does (load, send).
func (ld *liveDaemon) apply(yaml string, prune ...string) *api.ApplyResponse {
	ld.t.Helper()
	resp, err := ld.applyErr(yaml, false, prune...)
	if err != nil {
		ld.t.Fatalf("apply: %v", err)
	}
	return resp
}

func (ld *liveDaemon) applyErr(yaml string, force bool, prune ...string) (*api.ApplyResponse, error) {
	ld.t.Helper()
	objs := loadYAML(ld.t, yaml)
	req := &api.ApplyRequest{Objects: objs, Force: force}
	if len(prune) > 0 {
		req.Prune, req.Scope = true, api.PruneScope{Namespaces: prune}
	}
	return ld.c.Apply(context.Background(), req)
}

// loadYAML decodes specs with the spec package's loader.
func loadYAML(t *testing.T, yaml string) []*spec.Object {
	t.Helper()
	f := filepath.Join(t.TempDir(), "specs.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, diags := spec.Load([]string{f}, nil)
	if diags.HasErrors() {
		t.Fatalf("specs: %v", diags.Error())
	}
	return objs
}

// get calls the proxy and returns the status and body.
func (ld *liveDaemon) get(path string, headers ...string) (int, string) {
	ld.t.Helper()
	req, _ := http.NewRequest("GET", ld.proxyURL()+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ld.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// apiCode returns the LocalAPI error code of err ("" if none).
func apiCode(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// doc renders one spec document.
func doc(kind, ns, name, body string) string {
	meta := "name: " + name
	if ns != "" {
		meta += ", namespace: " + ns
	}
	s := "---\napiVersion: stoa.io/v1alpha1\nkind: " + kind + "\nmetadata: {" + meta + "}\n"
	if body != "" {
		s += "spec:\n"
		for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
			s += "  " + l + "\n"
		}
	}
	return s
}
