package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Raw HTTP against a real stoad: authentication (401, WWW-Authenticate,
// RFC 9728 metadata), tenant isolation down to the bytes, malformed
// JSON-RPC, 2026-07-28 requests and the gateway's own refusals.

func jsonOf(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %q", b)
	}
	return m
}

func errCode(t testing.TB, b []byte) float64 {
	t.Helper()
	e, _ := jsonOf(t, b)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no JSON-RPC error in %s", b)
	}
	return e["code"].(float64)
}

func TestMCPAuth(t *testing.T) {
	e := newMCPEnv(t, 0, nil)
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	meta := "http://" + e.D.Listen + "/.well-known/oauth-protected-resource/mcp"

	// The quickstart takes API keys only: no authorization server, so the
	// challenge points to no protected-resource metadata (which MCP
	// requires to list one) and the metadata is not served.
	status, h, body := rawPost(t, nil, e.MCPURL(), list)
	if status != 401 || h.Get("WWW-Authenticate") != `Bearer` || errCode(t, body) != -32600 {
		t.Fatalf("no credential: %d %q %s", status, h.Get("WWW-Authenticate"), body)
	}
	for _, cred := range []string{"Authorization: Bearer stoa_sk_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		"Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "X-Api-Key: nonsense"} {
		status, h, body = rawPost(t, nil, e.MCPURL(), list, cred)
		if status != 401 || strings.Contains(h.Get("WWW-Authenticate"), `resource_metadata`) ||
			!strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %q %s", cred, status, h.Get("WWW-Authenticate"), body)
		}
	}
	for _, u := range []string{meta, "http://" + e.D.Listen + "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || errCode(t, b) != -32600 {
			t.Errorf("%s without an authorization server: %d %s", u, resp.StatusCode, b)
		}
	}

	// Other well-known paths are not the MCP server's.
	resp, err := http.Get("http://" + e.D.Listen + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("other well-known path: %d", resp.StatusCode)
	}

	// Origin validation.
	status, _, body = rawPost(t, nil, e.MCPURL(), list, "Authorization: Bearer "+e.AcmeKey, "Origin: https://evil.example")
	if status != 403 || errCode(t, body) != -32600 {
		t.Errorf("foreign origin: %d %s", status, body)
	}
}

func TestMCPTenantIsolationBytes(t *testing.T) {
	e := newMCPEnv(t, 0, nil)
	type req struct {
		name, body string
		headers    []string
	}
	for _, era := range []string{"legacy", "modern"} {
		t.Run(era, func(t *testing.T) {
			mk := func(tool string) req {
				params := `"name":"` + tool + `","arguments":{"sku":"x"}`
				if era == "legacy" {
					return req{tool, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{` + params + `}}`, []string{"Authorization: Bearer " + e.GlobexKey}}
				}
				return req{tool, modernBody(7, "tools/call", params), modernHeaders(e.GlobexKey, "tools/call", tool)}
			}
			// Same length names so the answers can be compared byte for byte.
			foreign, missing := mk("acme__inventory-api__get_stock"), mk("acme__inventory-api__get_stoc2")
			s1, _, b1 := rawPost(t, nil, e.MCPURL(), foreign.body, foreign.headers...)
			s2, _, b2 := rawPost(t, nil, e.MCPURL(), missing.body, missing.headers...)
			if s1 != s2 || !bytes.Equal(bytes.ReplaceAll(b1, []byte("get_stock"), []byte("get_stoc2")), b2) {
				t.Fatalf("foreign and missing tools answer differently:\n%d %s\n%d %s", s1, b1, s2, b2)
			}
			if errCode(t, b1) != -32602 {
				t.Errorf("foreign tool: %s", b1)
			}
		})
	}
	// The foreign resource too.
	read := func(uri string) []byte {
		_, _, b := rawPost(t, nil, e.MCPURL(), `{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"`+uri+`"}}`,
			"Authorization: Bearer "+e.GlobexKey)
		return b
	}
	if a, b := read("stoa://tools/acme/billing-api"), read("stoa://tools/acme/billing-apj"); !bytes.Equal(bytes.ReplaceAll(a, []byte("api\""), []byte("apj\"")), b) {
		t.Errorf("foreign and missing resources differ:\n%s\n%s", a, b)
	}
	// And through the proxy: globex's key never reaches acme's upstream.
	rq, _ := http.NewRequest("GET", "http://"+e.D.Listen+"/acme/billing-api/invoices/INV-1001", nil)
	rq.Header.Set("Authorization", "Bearer "+e.GlobexKey)
	resp, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 && resp.StatusCode != 404 {
		t.Errorf("proxy cross-tenant: %d", resp.StatusCode)
	}
}

func TestMCPMalformedAndModern(t *testing.T) {
	e := newMCPEnv(t, 0, nil)
	auth := "Authorization: Bearer " + e.AcmeKey
	cases := []struct {
		name    string
		body    string
		headers []string
		status  int
		code    float64
	}{
		{"invalid JSON", `{"jsonrpc":"2.0","id":1,"method":`, []string{auth}, 400, -32700},
		{"batch after 2025-03-26", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`, []string{auth, "MCP-Protocol-Version: 2025-11-25"}, 400, -32600},
		{"not an object", `42`, []string{auth}, 400, -32600},
		{"wrong jsonrpc", `{"jsonrpc":"1.0","id":1,"method":"tools/list"}`, []string{auth}, 400, -32600},
		{"params not object", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}`, []string{auth}, 400, -32602},
		{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"completion/complete"}`, []string{auth}, 200, -32601},
		{"modern initialize removed", modernBody(2, "initialize", ""), modernHeaders(e.AcmeKey, "initialize", ""), 404, -32601},
		{"modern method mismatch", modernBody(2, "tools/list", ""), modernHeaders(e.AcmeKey, "tools/call", ""), 400, -32020},
		{"modern unsupported version", strings.ReplaceAll(modernBody(2, "tools/list", ""), "2026-07-28", "2099-01-01"),
			[]string{auth, "MCP-Protocol-Version: 2099-01-01", "Mcp-Method: tools/list"}, 400, -32022},
		{"modern ping removed", modernBody(2, "ping", ""), modernHeaders(e.AcmeKey, "ping", ""), 404, -32601},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := rawPost(t, nil, e.MCPURL(), c.body, c.headers...)
			if !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				t.Errorf("content type %q", h.Get("Content-Type"))
			}
			if got := errCode(t, body); (c.status != 200 && status != c.status) || got != c.code {
				t.Errorf("%d %s, want %d with %v", status, body, c.status, c.code)
			}
		})
	}
	status, _, body := rawPost(t, nil, e.MCPURL(), `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, auth, "Content-Type: text/plain")
	if status != 415 {
		t.Errorf("text/plain: %d %s", status, body)
	}

	// 2026-07-28 requests: discover, list (private, with ttlMs), call.
	status, _, body = rawPost(t, nil, e.MCPURL(), modernBody(1, "server/discover", ""), modernHeaders(e.AcmeKey, "server/discover", "")...)
	res, _ := jsonOf(t, body)["result"].(map[string]any)
	if status != 200 || res["resultType"] != "complete" || res["supportedVersions"] == nil {
		t.Fatalf("server/discover: %d %s", status, body)
	}
	_, _, body = rawPost(t, nil, e.MCPURL(), modernBody(2, "tools/list", ""), modernHeaders(e.AcmeKey, "tools/list", "")...)
	res, _ = jsonOf(t, body)["result"].(map[string]any)
	if res["cacheScope"] != "private" || res["ttlMs"] == nil || len(res["tools"].([]any)) != 6 {
		t.Fatalf("modern tools/list: %s", body)
	}
	_, _, body = rawPost(t, nil, e.MCPURL(), modernBody(3, "tools/call", `"name":"acme__inventory-api__get_stock","arguments":{"sku":"abc"}`),
		modernHeaders(e.AcmeKey, "tools/call", "acme__inventory-api__get_stock")...)
	res, _ = jsonOf(t, body)["result"].(map[string]any)
	if res == nil || res["resultType"] != "complete" || res["structuredContent"].(map[string]any)["inStock"] != float64(21) {
		t.Fatalf("modern tools/call: %s", body)
	}
	// Legacy handshake over raw HTTP.
	status, _, body = rawPost(t, nil, e.MCPURL(), `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, auth)
	if res, _ := jsonOf(t, body)["result"].(map[string]any); status != 200 || res["protocolVersion"] != "2025-06-18" {
		t.Errorf("initialize: %d %s", status, body)
	}
	if status, _, _ := rawPost(t, nil, e.MCPURL(), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, auth); status != 202 {
		t.Errorf("notifications/initialized: %d", status)
	}
}

// TestMCPRateLimitIsError checks that the gateway's own refusals (here
// globex's free plan, 2/s) reach the model as isError results it can act on.
func TestMCPRateLimitIsError(t *testing.T) {
	e := newMCPEnv(t, 0, nil)
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"globex__weather-api__current","arguments":{"city":"Rome"}}}`
	var refused string
	for i := 0; i < 20 && refused == ""; i++ {
		_, _, body := rawPost(t, nil, e.MCPURL(), call, "Authorization: Bearer "+e.GlobexKey)
		res, _ := jsonOf(t, body)["result"].(map[string]any)
		if res == nil {
			t.Fatalf("not a result: %s", body)
		}
		if res["isError"] == true {
			refused = res["content"].([]any)[0].(map[string]any)["text"].(string)
		}
	}
	if !strings.Contains(refused, "rate limit exceeded") || !strings.Contains(refused, "retry after") {
		t.Fatalf("20 calls at once were not refused with a usable message: %q", refused)
	}
	// The refusals are counted in the MCP statistics.
	resp, err := http.Get("http://" + e.D.Ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if !strings.Contains(buf.String(), `globex__weather-api__current`) {
		t.Errorf("no MCP series for the tool in /metrics")
	}
}

// TestMCPErrorSnapshot: a tools/call whose upstream cannot be reached is an
// isError result and leaves an error snapshot (source mcp), like a failed
// proxied request (pkg/daemon snapshotRuntime.CaptureCall).
func TestMCPErrorSnapshot(t *testing.T) {
	down := `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: down, namespace: acme}
spec:
  upstream: http://127.0.0.1:1/nothing
  operations:
    - {name: ping, method: GET, path: /ping}
`
	e := newMCPEnv(t, 0, map[string]string{"down.yaml": down})
	sock := &http.Client{Transport: unixTransport(e.D.MCPSock)}
	_, _, body := rawPost(t, sock, "http://stoad/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"acme__down__ping"}}`)
	if !strings.Contains(string(body), `"isError":true`) || !strings.Contains(string(body), "Upstream request failed") {
		t.Fatalf("unreachable upstream: %s", body)
	}
	var found bool
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !found; time.Sleep(100 * time.Millisecond) {
		r := e.D.Stoa("snapshots", "list", "-n", "acme", "-o", "json")
		found = r.Code == 0 && strings.Contains(r.Stdout, `"tool": "down"`) && strings.Contains(r.Stdout, `"reason": "connect"`)
	}
	if !found {
		t.Errorf("no MCP error snapshot:\n%s", e.D.Stoa("snapshots", "list", "-n", "acme", "-o", "json"))
	}
}
