package stdio_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/mcp/stdio"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

type backend struct{ up string }

func (b backend) Authenticate(_ context.Context, c mcp.Credentials) (mcp.Caller, error) {
	if string(c.Authorization) != "Bearer tok" {
		return mcp.Caller{}, &mcp.AuthError{Description: "missing bearer token"}
	}
	return mcp.Caller{Tenant: "acme"}, nil
}

func (b backend) Call(_ context.Context, _ mcp.Caller, _ *mcp.Tool, r *mcp.UpstreamRequest) (mcp.UpstreamResponse, error) {
	resp, err := http.Get(b.up + string(r.Path))
	if err != nil {
		return mcp.UpstreamResponse{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return mcp.UpstreamResponse{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: body}, nil
}

func (backend) Info(mcp.Caller) mcp.PlatformInfo { return mcp.PlatformInfo{Version: "t"} }

func catalog(t *testing.T, rev int64, extra int) *mcp.Catalog {
	ops := []spec.Operation{{Name: "get", Method: "GET", Path: "/hello"}}
	for i := range extra {
		ops = append(ops, spec.Operation{Name: fmt.Sprintf("x%d", i), Method: "GET", Path: "/hello"})
	}
	cat, err := mcp.BuildCatalog(rev, []*spec.Object{{Kind: spec.KindTool, Metadata: spec.Metadata{Name: "hello", Namespace: "acme"},
		Spec: &spec.ToolSpec{Protocol: "rest", Operations: ops}}})
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// session runs a bridge over pipes and reads its output lines.
type session struct {
	t     *testing.T
	in    *io.PipeWriter
	lines chan []byte
	done  chan error
}

func startBridge(t *testing.T, opts stdio.Options) *session {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{t: t, in: inW, lines: make(chan []byte, 16), done: make(chan error, 1)}
	go func() {
		s.done <- stdio.Run(context.Background(), inR, outW, opts)
		outW.Close()
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if !json.Valid(sc.Bytes()) {
				t.Errorf("bridge wrote a non-JSON line %q", sc.Text())
				continue
			}
			s.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(s.lines)
	}()
	t.Cleanup(func() { inW.Close() })
	return s
}

func (s *session) send(msg string) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, msg+"\n"); err != nil {
		s.t.Fatal(err)
	}
}

func (s *session) next() map[string]any {
	s.t.Helper()
	var m map[string]any
	if line := s.nextRaw(); json.Unmarshal(line, &m) != nil {
		s.t.Fatalf("line %s is not an object", line)
	}
	return m
}

func (s *session) nextRaw() []byte {
	s.t.Helper()
	select {
	case line, ok := <-s.lines:
		if !ok {
			s.t.Fatal("bridge output ended")
		}
		return line
	case <-time.After(10 * time.Second):
		s.t.Fatal("no output from the bridge")
	}
	return nil
}

func TestBridge(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"msg":"hi"}`)
	}))
	defer up.Close()
	srv := mcp.NewServer(mcp.Options{}, backend{up.URL})
	srv.SetCatalog(catalog(t, 1, 0))
	fs := &fasthttp.Server{Handler: srv.Handler}
	defer srv.Close()

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "stoad.sock")
	unix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go fs.Serve(tcp)
	go fs.Serve(unix)
	defer fs.Shutdown()

	for name, opts := range map[string]stdio.Options{
		"tcp":  {Endpoint: "http://" + tcp.Addr().String() + "/mcp", Token: "tok"},
		"unix": {Endpoint: "http://stoad/mcp", Client: stdio.UnixClient(sock), Token: "tok"},
	} {
		t.Run(name, func(t *testing.T) {
			s := startBridge(t, opts)
			s.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
			if m := s.next(); m["id"] != float64(1) || m["result"].(map[string]any)["protocolVersion"] != "2025-11-25" {
				t.Fatalf("initialize: %v", m)
			}
			s.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
			s.send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
			if m := s.next(); len(m["result"].(map[string]any)["tools"].([]any)) < 3 {
				t.Fatalf("tools/list: %v", m)
			}
			s.send(`{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"acme__hello__get"}}`)
			if m := s.next(); m["id"] != "c" || m["result"].(map[string]any)["structuredContent"].(map[string]any)["msg"] != "hi" {
				t.Fatalf("tools/call: %v", m)
			}
			// A 2026-07-28 request: the bridge mirrors _meta and the method
			// into the headers the server checks.
			s.send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"acme__hello__get","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`)
			if m := s.next(); m["result"].(map[string]any)["resultType"] != "complete" {
				t.Fatalf("modern tools/call: %v", m)
			}
			s.send(`{"jsonrpc":"2.0","id":4,`)
			if m := s.next(); m["error"].(map[string]any)["code"] != float64(-32700) {
				t.Fatalf("parse error: %v", m)
			}
			// Notifications from the GET stream are relayed. The stream opens
			// in the background, so reload until one arrives.
			for i := range 50 {
				srv.SetCatalog(catalog(t, int64(10+i), i%2+1))
				select {
				case line := <-s.lines:
					var m map[string]any
					if json.Unmarshal(line, &m); m["method"] != "notifications/tools/list_changed" {
						t.Fatalf("unexpected line %v", m)
					}
					s.in.Close()
					if err := <-s.done; err != nil {
						t.Fatalf("Run: %v", err)
					}
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			t.Fatal("no list_changed relayed")
		})
	}

	t.Run("subscriptions/listen", func(t *testing.T) {
		s := startBridge(t, stdio.Options{Endpoint: "http://" + tcp.Addr().String() + "/mcp", Token: "tok"})
		s.send(`{"jsonrpc":"2.0","id":"sub","method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`)
		ack := s.next()
		if ack["method"] != "notifications/subscriptions/acknowledged" {
			t.Fatalf("ack: %v", ack)
		}
		srv.SetCatalog(catalog(t, 100, 5))
		m := s.next()
		meta := m["params"].(map[string]any)["_meta"].(map[string]any)
		if m["method"] != "notifications/tools/list_changed" || meta["io.modelcontextprotocol/subscriptionId"] != "sub" {
			t.Fatalf("notification: %v", m)
		}
	})

	// Batches: answered after negotiating 2025-03-26 (the one revision with
	// batches), refused with -32600 otherwise — the server decides, as over
	// HTTP. An oversized line is answered and skipped.
	t.Run("batch", func(t *testing.T) {
		for _, version := range []string{"2025-03-26", "2025-11-25"} {
			s := startBridge(t, stdio.Options{Endpoint: "http://stoad/mcp", Client: stdio.UnixClient(sock), Token: "tok",
				DisableListen: true, MaxLineBytes: 64 << 10})
			s.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + version + `","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
			if m := s.next(); m["result"].(map[string]any)["protocolVersion"] != version {
				t.Fatalf("initialize: %v", m)
			}
			s.send(`[{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"acme__hello__get"}}]`)
			line := s.nextRaw()
			if version == "2025-03-26" {
				var got []map[string]any
				if err := json.Unmarshal(line, &got); err != nil || len(got) != 2 || got[0]["id"] != float64(2) ||
					got[1]["result"].(map[string]any)["structuredContent"].(map[string]any)["msg"] != "hi" {
					t.Fatalf("%s batch: %s", version, line)
				}
			} else {
				var m map[string]any
				if json.Unmarshal(line, &m); m["error"] == nil || m["error"].(map[string]any)["code"] != float64(-32600) {
					t.Fatalf("%s batch: %s, want -32600", version, line)
				}
			}
			s.send(`{"jsonrpc":"2.0","id":4,"method":"ping","params":{"pad":"` + strings.Repeat("x", 70<<10) + `"}}`)
			if m := s.next(); m["error"].(map[string]any)["code"] != float64(-32600) ||
				!strings.Contains(m["error"].(map[string]any)["message"].(string), "too large") {
				t.Fatalf("oversized line: %v", m)
			}
			// ... and the session goes on.
			s.send(`{"jsonrpc":"2.0","id":5,"method":"ping"}`)
			if m := s.next(); m["id"] != float64(5) || m["result"] == nil {
				t.Fatalf("after an oversized line: %v", m)
			}
		}
	})

	t.Run("unauthorized", func(t *testing.T) {
		s := startBridge(t, stdio.Options{Endpoint: "http://" + tcp.Addr().String() + "/mcp", DisableListen: true})
		s.send(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`)
		m := s.next()
		if m["id"] != float64(9) || !strings.Contains(m["error"].(map[string]any)["message"].(string), "Unauthorized") {
			t.Fatalf("unauthorized: %v", m)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		s := startBridge(t, stdio.Options{Endpoint: "http://stoad/mcp", Client: stdio.UnixClient(filepath.Join(t.TempDir(), "none.sock"))})
		s.send(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		if m := s.next(); m["id"] != float64(1) || !strings.Contains(m["error"].(map[string]any)["message"].(string), "cannot reach") {
			t.Fatalf("unreachable: %v", m)
		}
	})
}

// TestStdlibOnly keeps fasthttp (and every non-standard package) out of the
// bridge, which the CLI binary links.
func TestStdlibOnly(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/stoa-gateway/stoa/pkg/mcp/stdio").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(pkg, "/")
		if strings.Contains(first, ".") && pkg != "github.com/stoa-gateway/stoa/pkg/mcp/stdio" {
			t.Errorf("the stdio bridge depends on %s", pkg)
		}
	}
}
