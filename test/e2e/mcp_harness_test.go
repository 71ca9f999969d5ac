package e2e

import (
	"bytes"
	"context"
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

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Helpers for the MCP end-to-end tests: the example upstreams (built once),
// a stoad with examples/quickstart applied against them, API keys, and
// clients for the three transports.

var (
	upstreamsOnce sync.Once
	upstreamsErr  error
)

// upstreamsBin builds examples/upstreams into the e2e bin directory once.
func upstreamsBin(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(binDir, "upstreams")
	upstreamsOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", bin, "./examples/upstreams")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			upstreamsErr = fmt.Errorf("build examples/upstreams: %v\n%s", err, out)
		}
	})
	if upstreamsErr != nil {
		t.Fatal(upstreamsErr)
	}
	return bin
}

// startUpstreams runs the example upstreams on a free port and returns
// its address.
func startUpstreams(t testing.TB) string {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(upstreamsBin(t), "-listen", addr)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return addr
		}
	}
	t.Fatalf("upstreams did not start:\n%s", log.String())
	return ""
}

// mcpEnv is a running stoad serving examples/quickstart.
type mcpEnv struct {
	t        testing.TB
	D        *Daemon
	Upstream string
	Specs    string
	// AcmeKey belongs to acme's web-shop, GlobexKey to globex's
	// forecast-bot.
	AcmeKey, GlobexKey string
}

// MCPURL is the Streamable HTTP endpoint on --listen.
func (e *mcpEnv) MCPURL() string { return "http://" + e.D.Listen + "/mcp" }

// newMCPEnv starts upstreams and stoad, applies the quickstart (pointed at
// the upstreams) plus a Gateway setting the tools/list page size when
// pageSize > 0, and creates one API key per tenant.
func newMCPEnv(t testing.TB, pageSize int, extraSpecs map[string]string) *mcpEnv {
	t.Helper()
	e := &mcpEnv{t: t, Upstream: startUpstreams(t)}
	e.Specs = t.TempDir()
	src := filepath.Join(repoRoot(), "examples", "quickstart")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		b, err := os.ReadFile(filepath.Join(src, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("127.0.0.1:9001"), []byte(e.Upstream))
		if err := os.WriteFile(filepath.Join(e.Specs, ent.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if pageSize > 0 {
		gw := fmt.Sprintf("apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  mcp:\n    pageSize: %d\n", pageSize)
		if err := os.WriteFile(filepath.Join(e.Specs, "gateway.yaml"), []byte(gw), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range extraSpecs {
		body = strings.ReplaceAll(body, "UPSTREAM", e.Upstream)
		if err := os.WriteFile(filepath.Join(e.Specs, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.D = NewDaemon(t)
	e.D.Start()
	expect(t, e.D.Stoa("apply", "-f", e.Specs), 0, "apply quickstart")
	e.AcmeKey = e.createKey("acme", "web-shop")
	e.GlobexKey = e.createKey("globex", "forecast-bot")
	return e
}

func (e *mcpEnv) createKey(tenant, consumer string) string {
	e.t.Helper()
	r := e.D.Stoa("keys", "create", "--consumer", consumer, "-n", tenant)
	expect(e.t, r, 0, "keys create")
	for _, line := range strings.Split(r.Stdout, "\n") {
		if strings.HasPrefix(line, "stoa_sk_") {
			return strings.TrimSpace(line)
		}
	}
	e.t.Fatalf("no key in output:\n%s", r)
	return ""
}

// headerTransport adds fixed headers to every request.
type headerTransport struct {
	h    http.Header
	base http.RoundTripper
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.h {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// unixTransport dials the unix socket at path whatever the URL says.
func unixTransport(path string) *http.Transport {
	var d net.Dialer
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", path)
	}}
}

// sdkConnect connects the official Go SDK client. version "" is the SDK's
// latest (2026-07-28, stateless); "2025-11-25" uses initialize.
func sdkConnect(t testing.TB, tr sdk.Transport, version string) *sdk.ClientSession {
	t.Helper()
	client := sdk.NewClient(&sdk.Implementation{Name: "stoa-e2e", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// httpTransport is the SDK's Streamable HTTP transport with extra headers,
// optionally over a unix socket.
func httpTransport(endpoint string, hdr http.Header, socket string) *sdk.StreamableClientTransport {
	var base http.RoundTripper = http.DefaultTransport
	if socket != "" {
		base = unixTransport(socket)
	}
	return &sdk.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1,
		HTTPClient: &http.Client{Transport: headerTransport{hdr, base}, Timeout: 30 * time.Second}}
}

// rawPost sends one JSON-RPC body and returns status, headers and body.
func rawPost(t testing.TB, client *http.Client, url, body string, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// modernBody builds a 2026-07-28 request with the required _meta.
func modernBody(id int, method, params string) string {
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}`
	if params == "" {
		params = "{" + meta + "}"
	} else {
		params = "{" + meta + "," + params + "}"
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, params)
}

// modernHeaders are the headers a 2026-07-28 request must carry.
func modernHeaders(token, method, name string) []string {
	hs := []string{"MCP-Protocol-Version: 2026-07-28", "Mcp-Method: " + method}
	if token != "" {
		hs = append(hs, "Authorization: Bearer "+token)
	}
	if name != "" {
		hs = append(hs, "Mcp-Name: "+name)
	}
	return hs
}
