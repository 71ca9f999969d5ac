package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// mountBackend is an MCP backend for the mount tests: "Bearer good"
// authenticates tenant acme, and a call answers with what it was asked.
type mountBackend struct{}

func (mountBackend) Authenticate(_ context.Context, c mcp.Credentials) (mcp.Caller, error) {
	switch {
	case string(c.Authorization) == "Bearer good":
		return mcp.Caller{Tenant: "acme", Consumer: "shop", Subject: "k1", Via: "apikey"}, nil
	case c.Authorization == nil && c.APIKey == nil:
		return mcp.Caller{}, &mcp.AuthError{Description: "no credential"}
	}
	return mcp.Caller{}, &mcp.AuthError{TokenPresent: true, Description: "unknown key"}
}

func (mountBackend) Call(_ context.Context, _ mcp.Caller, t *mcp.Tool, req *mcp.UpstreamRequest) (mcp.UpstreamResponse, error) {
	if bytes.Contains(req.Path, []byte("fail")) {
		return mcp.UpstreamResponse{}, context.DeadlineExceeded
	}
	body := `{"tool":"` + t.Name + `","path":"` + string(req.Path) + `"}`
	return mcp.UpstreamResponse{Status: 200, ContentType: "application/json", Body: []byte(body), Size: int64(len(body))}, nil
}

func (mountBackend) Info(mcp.Caller) mcp.PlatformInfo { return mcp.PlatformInfo{} }

const mountSpecs = `---
apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: acme}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: stock, namespace: acme}
spec:
  protocol: rest
  upstream: http://127.0.0.1:9/inventory
  auth: {type: none}
  operations:
    - name: get_stock
      method: GET
      path: /items/{sku}
      description: Stock level of one item.
      input:
        type: object
        properties: {sku: {type: string, minLength: 1}}
        required: [sku]
`

// newMountEnv starts a proxy with an MCP endpoint mounted at /mcp (on the
// fast path unless slowOnly), as the daemon's MCP runtime mounts it.
func newMountEnv(t testing.TB, slowOnly bool) *testEnv {
	t.Helper()
	e := &testEnv{t: t, logs: &lockedBuffer{}, events: &eventLog{}, keySet: auth.NewKeySets(auth.KeySetOptions{})}
	o := Options{
		Listen: "127.0.0.1:0", Log: slog.New(slog.NewJSONHandler(e.logs, nil)),
		Auth: &auth.Authenticator{}, Limiter: limits.New(limits.Options{}), Stats: telemetry.NewRegistry(), OnEvent: e.events.add,
	}
	e.auth, e.stats = o.Auth, o.Stats
	e.p = New(o)
	e.apply(mountSpecs)
	srv := mcp.NewServer(mcp.Options{AllowedOrigins: []string{"https://app.example"}, LoopbackListen: true}, mountBackend{})
	cat, err := mcp.BuildCatalog(1, snapshot(t, 1, mountSpecs).Objects)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetCatalog(cat)
	ep := mcp.NewEndpoint(srv)
	for _, p := range []string{"/mcp", "/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		e.p.Mount(p, ep.Handler)
	}
	e.p.slowOnly.Store(slowOnly)
	if err := e.p.Start(context.Background()); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.p.Stop(ctx)
		srv.Close()
	})
	e.addr = e.p.Addr()
	e.base = "http://" + e.addr
	return e
}

const mcpCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"acme__stock__get_stock","arguments":{"sku":"abc"}}}`

// mountRequests are MCP requests for FuzzMountPathsAgree: calls, lists,
// notifications, both protocol eras, refusals of every kind (auth, Host,
// Origin, media type, protocol headers, JSON), and requests the fast path
// leaves to fasthttp (GET streams, listen, chunked bodies, escapes).
var mountRequests = []string{
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: $LEN\r\n\r\n" + mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: localhost:8080\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer bad\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n" + mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n" + mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n" + mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://app.example\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n" + mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://evil.example\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n" + mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: text/plain\r\nContent-Length: $LEN\r\n\r\n" + mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\"",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"acme__stock__get_stock\",\"arguments\":{\"sku\":\"fail\"}}}",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nMcp-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: acme__stock__get_stock\r\nContent-Length: $LEN\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"acme__stock__get_stock\",\"arguments\":{\"sku\":\"abc\"},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nMcp-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\nContent-Length: $LEN\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nMcp-Protocol-Version: 1999-01-01\r\nContent-Length: $LEN\r\n\r\n" + mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n[" + mcpCall + ",{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}]",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/c\\u0061ll\",\"params\":{}}",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: $LEN\r\n\r\n" + mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n" + mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: stoa_sk_x\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n" + mcpCall,
	"POST /mcp?tenant=acme HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"ping\"}",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\n\r\n",
	"POST /.well-known/oauth-protected-resource HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}",
	"DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}",
	"OPTIONS /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://app.example\r\n\r\n",
	"GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: $LEN\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\ndata\r\n--b--\r\n",
}

// withLen replaces $LEN by the length of the body after the head.
func withLen(req []byte) []byte {
	if i := bytes.Index(req, []byte("\r\n\r\n")); i >= 0 {
		return bytes.Replace(req, []byte("$LEN"), []byte(strconv.Itoa(len(req)-i-4)), 1)
	}
	return req
}

// exchangeRawAll sends raw on a new connection and returns every answer
// until the connection ends (normalised, as exchangeRaw does) and their
// number.
func exchangeRawAll(t testing.TB, e *testEnv, raw []byte) (string, int) {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	br := bufio.NewReader(c)
	var out []string
	for {
		if _, err := br.Peek(1); err == io.EOF {
			break // closed after the last answer
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodPost})
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("no answer: %v", err)
			}
			out = append(out, "no answer ("+err.Error()+")")
			break
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, normAnswer(resp, body, err))
	}
	return strings.Join(out, "\n----\n"), len(out)
}

// FuzzMountPathsAgree sends the same request for the MCP endpoint to a
// proxy that answers it on the fast path (serveMount) and one that hands
// every connection to fasthttp's server, and requires the same answer:
// status, fields (up to order, case, Date and the request id) and body.
// Each request is sent twice on one connection, so what follows an answer
// on a kept-alive connection is compared too.
func FuzzMountPathsAgree(f *testing.F) {
	for _, r := range mountRequests {
		f.Add([]byte(r))
	}
	fast, slow := newMountEnv(f, false), newMountEnv(f, true)
	f.Fuzz(func(t *testing.T, req []byte) {
		req = withLen(req)
		twice := append(append([]byte(nil), req...), req...)
		var got [2]string
		for i, e := range []*testEnv{fast, slow} {
			got[i], _ = exchangeRawAll(t, e, twice)
		}
		if got[0] != got[1] {
			t.Errorf("request %q\nfast path:\n%s\nfasthttp path:\n%s", req, got[0], got[1])
		}
	})
}

// TestMountOnFastPath: an MCP tools/call keeps its connection on the fast
// path (a plain request after it is served there too) and one that may
// stream (subscriptions/listen) goes to fasthttp.
func TestMountOnFastPath(t *testing.T) {
	e := newMountEnv(t, false)
	req := withLen([]byte(mountRequests[0]))
	got, n := exchangeRawAll(t, e, append(append([]byte(nil), req...), req...))
	if n != 2 || strings.Count(got, `\"sku\":\"abc\"`)+strings.Count(got, `/items/abc`) < 2 {
		t.Fatalf("%d answers:\n%s", n, got)
	}
	if !strings.Contains(got, "200") {
		t.Fatalf("answers:\n%s", got)
	}
	if !mountableBody(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`) ||
		mountableBody(t, `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen"}`) ||
		mountableBody(t, `{"jsonrpc":"2.0","id":1,"method":"subscriptions\/listen"}`) ||
		mountableBody(t, `{"jsonrpc":"2.0","id":1,"method":"subscriptions/li\u0073ten"}`) {
		t.Fatal("mountable takes a request that may stream, or refuses a plain one")
	}
}

func mountableBody(t *testing.T, body string) bool {
	raw := withLen([]byte("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: $LEN\r\n\r\n" + body))
	fc := &fastConn{buf: raw, end: len(raw)}
	if n := parseFastHead(raw, &fc.h); n <= 0 {
		t.Fatalf("parseFastHead(%q) = %d", raw, n)
	}
	return fc.mountable()
}

// BenchmarkMountToolsCall: one MCP tools/call after another on a kept-alive
// connection, answered by a real MCP server (its backend answers without an
// upstream), on the fast path and through fasthttp's server. The client
// runs in the same process, so ns/op includes its share; the difference
// between the two is the transport's.
func BenchmarkMountToolsCall(b *testing.B) {
	for _, c := range []struct {
		name string
		slow bool
	}{{"fast", false}, {"fasthttp", true}} {
		b.Run(c.name, func(b *testing.B) {
			e := newMountEnv(b, c.slow)
			conn, err := net.Dial("tcp", e.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			req := withLen([]byte(mountRequests[0]))
			br := bufio.NewReader(conn)
			read := func() {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
					b.Fatalf("status %d, %v", resp.StatusCode, err)
				}
				resp.Body.Close()
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for range b.N {
				if _, err := conn.Write(req); err != nil {
					b.Fatal(err)
				}
				read()
			}
			// The process's CPU (client and server), the stable figure on
			// a shared machine.
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
