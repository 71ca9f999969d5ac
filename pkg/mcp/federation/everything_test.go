package federation

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The reference server of the MCP project, from npm, over stdio and over
// Streamable HTTP (a TypeScript SDK server: the other implementation family
// next to the Go SDK). Installed with npm into $STOA_FED_NPM_DIR (default
// ~/.cache/stoa-fed-npm) once and reused; without node/npm the tests skip,
// except under CI=true where they fail.
const everythingVersion = "2026.8.31"

var (
	everythingOnce sync.Once
	everythingJS   string
	everythingErr  string
)

func everythingServer(t *testing.T) (node, script string) {
	t.Helper()
	everythingOnce.Do(func() {
		node, err := exec.LookPath("node")
		npm, err2 := exec.LookPath("npm")
		if err != nil || err2 != nil {
			everythingErr = "node and npm are needed to run @modelcontextprotocol/server-everything (apt-get install nodejs npm)"
			return
		}
		_ = node
		dir := os.Getenv("STOA_FED_NPM_DIR")
		if dir == "" {
			cache, err := os.UserCacheDir()
			if err != nil {
				cache = os.TempDir()
			}
			dir = filepath.Join(cache, "stoa-fed-npm")
		}
		pkg := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything")
		if b, err := os.ReadFile(filepath.Join(pkg, "package.json")); err != nil || !strings.Contains(string(b), `"version": "`+everythingVersion+`"`) {
			os.MkdirAll(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"stoa-fed-npm","private":true}`), 0o644)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error",
				"@modelcontextprotocol/server-everything@"+everythingVersion).CombinedOutput()
			if err != nil {
				everythingErr = "npm install @modelcontextprotocol/server-everything@" + everythingVersion + ": " + err.Error() + "\n" + string(out)
				return
			}
		}
		everythingJS = filepath.Join(pkg, "dist", "index.js")
	})
	if everythingErr != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(everythingErr)
		}
		t.Skip(everythingErr)
	}
	node, _ = exec.LookPath("node")
	return node, everythingJS
}

func TestEverythingStdio(t *testing.T) {
	node, js := everythingServer(t)
	cfg := Config{
		Tenant: "acme", Tool: "every", Transport: TransportStdio,
		Command: []string{node, js, "stdio"},
		Tools: ToolFilter{
			Filter: Filter{Deny: []string{"get-env", "trigger-*", "toggle-*"}},
			Rename: map[string]string{"echo": "say"},
		},
		Timeout:        20 * time.Second,
		ConnectTimeout: 30 * time.Second, // node starts slowly on a busy machine
	}
	u := startUpstream(t, cfg, testOptions(t))
	st := u.Status()
	if st.State != StateReady || st.Server != "mcp-servers/everything" {
		t.Fatalf("status = %+v", st)
	}
	names := toolNames(u)
	if !slices.Contains(names, "acme__every__say") || !slices.Contains(names, "acme__every__get-sum") {
		t.Fatalf("tools = %v", names)
	}
	for _, n := range names {
		if strings.Contains(n, "get-env") || strings.Contains(n, "trigger") || strings.Contains(n, "__echo") {
			t.Errorf("hidden or renamed tool listed: %s", n)
		}
	}
	if res := mustCall(t, u, "echo", `{"message":"hi from stoa"}`); text(t, res.Raw) != "Echo: hi from stoa" {
		t.Errorf("echo = %s", res.Raw)
	}
	if _, err := u.Call(context.Background(), "get-env", nil); !isKind(err, ErrUnknownTool) {
		t.Errorf("denied get-env: %v", err)
	}
	// Kill the child: the supervisor restarts it and the next call works.
	pid := st.PID
	syscall.Kill(pid, syscall.SIGKILL)
	eventually(t, "restart", func() bool {
		st := u.Status()
		return st.State == StateReady && st.Restarts >= 1 && st.PID != pid
	})
	res := mustCall(t, u, "get-sum", `{"a":2,"b":3}`)
	if !strings.Contains(text(t, res.Raw), "5") {
		t.Errorf("get-sum after restart = %s", res.Raw)
	}
}

func TestEverythingStreamableHTTP(t *testing.T) {
	node, js := everythingServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	l.Close()
	start := func() *exec.Cmd {
		cmd := exec.Command(node, js, "streamableHttp")
		cmd.Env = append(os.Environ(), "PORT="+port)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "server-everything listening", func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		return cmd
	}
	cmd := start()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	cfg := httpConfig("http://" + addr + "/mcp")
	cfg.Tool = "every"
	cfg.Resources.Expose = true
	cfg.Resources.Allow = []string{"demo://resource/static/*"}
	cfg.Timeout = 20 * time.Second
	u := startUpstream(t, cfg, testOptions(t))
	st := u.Status()
	// No 2026-07-28 support there: discover fails, initialize with a session.
	if st.State != StateReady || st.Protocol != "2025-11-25" || !st.Session {
		t.Fatalf("status = %+v", st)
	}
	if res := mustCall(t, u, "echo", `{"message":"over http"}`); text(t, res.Raw) != "Echo: over http" {
		t.Errorf("echo = %s", res.Raw)
	}
	rs := u.Resources()
	if len(rs) == 0 {
		t.Fatal("no resources")
	}
	for _, r := range rs {
		if !strings.HasPrefix(r.URI, "stoa://tools/acme/every/upstream/demo://resource/static/") {
			t.Fatalf("resource %q outside the allowed pattern", r.URI)
		}
	}
	raw, err := u.ReadResource(context.Background(), rs[0].URI)
	if err != nil {
		t.Fatal(err)
	}
	var rr struct{ Contents []struct{ URI string } }
	json.Unmarshal(raw, &rr)
	if len(rr.Contents) == 0 || rr.Contents[0].URI != rs[0].URI {
		t.Errorf("read = %s", raw)
	}

	// Restart the server: it forgets the session and answers 400 "No valid
	// session ID provided"; the next call re-initializes transparently.
	cmd.Process.Kill()
	cmd.Wait()
	cmd = start()
	if res := mustCall(t, u, "echo", `{"message":"new session"}`); text(t, res.Raw) != "Echo: new session" {
		t.Errorf("echo after restart = %s", res.Raw)
	}
	if u.Status().Reinitializations < 1 {
		t.Errorf("status = %+v", u.Status())
	}
}
