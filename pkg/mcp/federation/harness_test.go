package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Tests run against real MCP servers: the official Go SDK server
// (mcp.NewServer + StreamableHTTPHandler, or over stdio in a child process
// that is this test binary) and the npm package
// @modelcontextprotocol/server-everything (everything_test.go).

// TestMain lets this test binary act as a stdio MCP server (the official Go
// SDK's StdioTransport) when FED_STDIO_SERVER is set.
func TestMain(m *testing.M) {
	if os.Getenv("FED_STDIO_SERVER") != "" {
		runStdioServer()
		return
	}
	os.Exit(m.Run())
}

// newSDKServer builds the official SDK server used by the tests: echo,
// add (structured), fail (isError), slow (sleeps "ms" milliseconds, honours
// cancellation), hidden_admin, weird.name/v2, env (lists its environment),
// and a resource test://doc.
func newSDKServer() *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "fed-test", Version: "1.0"}, nil)
	obj := json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`)
	srv.AddTool(&mcp.Tool{Name: "echo", Description: "Echo text", InputSchema: obj,
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct{ Text string }
			json.Unmarshal(req.Params.Arguments, &in)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo: " + in.Text}}}, nil
		})
	srv.AddTool(&mcp.Tool{Name: "add", InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}}}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct{ A, B int64 }
			json.Unmarshal(req.Params.Arguments, &in)
			return &mcp.CallToolResult{
				Content:           []mcp.Content{&mcp.TextContent{Text: fmt.Sprint(in.A + in.B)}},
				StructuredContent: map[string]any{"sum": in.A + in.B},
			}, nil
		})
	srv.AddTool(&mcp.Tool{Name: "fail", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "it failed"}}}, nil
		})
	srv.AddTool(&mcp.Tool{Name: "slow", InputSchema: json.RawMessage(`{"type":"object","properties":{"ms":{"type":"integer"}}}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct{ Ms int }
			json.Unmarshal(req.Params.Arguments, &in)
			select {
			case <-time.After(time.Duration(in.Ms) * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "slept"}}}, nil
		})
	srv.AddTool(&mcp.Tool{Name: "hidden_admin", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "admin"}}}, nil
		})
	srv.AddTool(&mcp.Tool{Name: "weird.name/v2", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "weird"}}}, nil
		})
	srv.AddTool(&mcp.Tool{Name: "regional", InputSchema: json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"n":{"type":"integer"}}}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct{ Region string }
			json.Unmarshal(req.Params.Arguments, &in)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "region " + in.Region}}}, nil
		})
	srv.AddTool(&mcp.Tool{Name: "env", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Join(os.Environ(), "\n")}}}, nil
		})
	srv.AddResource(&mcp.Resource{URI: "test://doc", Name: "doc", MIMEType: "text/plain"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "the doc"}}}, nil
		})
	return srv
}

// upstreamFixture is an SDK server on a loopback listener whose handler
// can be swapped (a fresh handler forgets every session) and that records
// the headers of every request.
type upstreamFixture struct {
	srv       *mcp.Server
	ts        *httptest.Server
	stateless bool
	json      bool // answer with application/json instead of SSE
	handler   atomic.Pointer[http.Handler]

	mu      sync.Mutex
	headers []http.Header
}

func newFixture(t testing.TB, stateless bool, jsonResponse ...bool) *upstreamFixture {
	t.Helper()
	f := &upstreamFixture{srv: newSDKServer(), stateless: stateless, json: len(jsonResponse) > 0 && jsonResponse[0]}
	f.reset()
	f.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.headers = append(f.headers, r.Header.Clone())
		f.mu.Unlock()
		(*f.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(f.ts.Close)
	return f
}

// reset installs a new SDK handler: the sessions of the previous one are
// forgotten, as after an upstream restart.
func (f *upstreamFixture) reset() {
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return f.srv },
		&mcp.StreamableHTTPOptions{Stateless: f.stateless, JSONResponse: f.json, PropagateRequestCancellation: true})
	f.handler.Store(&h)
}

func (f *upstreamFixture) seenHeaders() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]http.Header(nil), f.headers...)
}

func httpConfig(url string) Config {
	return Config{Tenant: "acme", Tool: "up", Transport: TransportHTTP, URL: url, Timeout: 10 * time.Second}
}

// testOptions shortens the backoff so reconnect tests run quickly.
func testOptions(t *testing.T) Options {
	return Options{
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BackoffInitial: 20 * time.Millisecond,
		BackoffMax:     200 * time.Millisecond,
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startUpstream(t *testing.T, cfg Config, opts Options) *Upstream {
	t.Helper()
	u, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := u.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u.Stop(ctx)
	})
	return u
}

// eventually polls cond (every 10 ms, up to 20 s: generous for a busy
// machine; no test asserts a duration).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func toolNames(u *Upstream) []string {
	var out []string
	for _, t := range u.Tools() {
		out = append(out, t.Name)
	}
	return out
}

// text returns the first text content of a raw CallToolResult.
func text(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var r struct {
		Content []struct {
			Type, Text string
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("decode result %s: %v", raw, err)
	}
	if len(r.Content) == 0 {
		t.Fatalf("result without content: %s", raw)
	}
	return r.Content[0].Text
}

func mustCall(t *testing.T, u *Upstream, name, args string) Result {
	t.Helper()
	res, err := u.Call(context.Background(), name, json.RawMessage(args))
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return res
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func isKind(err, kind error) bool { return errors.Is(err, kind) }

// runStdioServer serves newSDKServer over stdin/stdout. FED_STDIO_CHILD
// makes it start a long-lived grandchild first (process-group tests);
// FED_STDIO_STDERR makes it log a line to stderr.
func runStdioServer() {
	if os.Getenv("FED_STDIO_STDERR") != "" {
		fmt.Fprintln(os.Stderr, "fed stdio server starting; token=never-logged-by-stoa")
	}
	if os.Getenv("FED_STDIO_CHILD") != "" {
		spawnGrandchild()
	}
	srv := newSDKServer()
	if err := srv.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		fmt.Fprintln(os.Stderr, "stdio server:", err)
		os.Exit(1)
	}
}

func listenOn(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
