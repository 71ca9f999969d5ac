package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// toolNames lists the names in a tools/list answer (one page).
func toolNames(t testing.TB, body []byte) []string {
	t.Helper()
	var m struct {
		Result struct{ Tools []struct{ Name string } }
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("tools/list: %s", body)
	}
	var out []string
	for _, tool := range m.Result.Tools {
		out = append(out, tool.Name)
	}
	return out
}

// TestMCPListsOnlyCallable: a consumer sees the tools its subscriptions
// cover, no more; a subscription that expires takes its tools off the list
// without a reload; tools/call keeps refusing the rest.
func TestMCPListsOnlyCallable(t *testing.T) {
	// Long enough for stoad's start, the apply and the first lists on a
	// busy machine (3 s was not, at load average 17); the test then waits
	// for the expiry.
	expires := time.Now().Add(20 * time.Second).UTC().Format(time.RFC3339)
	specs := `apiVersion: stoa.io/v1alpha1
kind: Consumer
metadata: {name: intern, namespace: acme}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata: {name: intern-stock, namespace: acme}
spec: {consumer: intern, plan: standard, tool: inventory-api}
---
apiVersion: stoa.io/v1alpha1
kind: Consumer
metadata: {name: temp, namespace: acme}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata: {name: temp-billing, namespace: acme}
spec: {consumer: temp, plan: standard, tool: billing-api, expiresAt: "` + expires + `"}
`
	e := newMCPEnv(t, 0, map[string]string{"extra.yaml": specs})
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	intern := e.createKey("acme", "intern")
	_, _, body := rawPost(t, nil, e.MCPURL(), list, "Authorization: Bearer "+intern)
	if got := strings.Join(toolNames(t, body), ","); got != "stoa_platform_info,stoa_tools,acme__inventory-api__get_stock" {
		t.Errorf("intern lists %s", got)
	}
	_, _, body = rawPost(t, nil, e.MCPURL(), `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"acme__billing-api__get_invoice","arguments":{"id":"INV-1001"}}}`,
		"Authorization: Bearer "+intern)
	if !strings.Contains(string(body), `"isError":true`) || !strings.Contains(string(body), "no_subscription") {
		t.Errorf("intern calls billing: %s", body)
	}
	// The subscribed consumer still sees everything.
	_, _, body = rawPost(t, nil, e.MCPURL(), list, "Authorization: Bearer "+e.AcmeKey)
	if n := len(toolNames(t, body)); n != 6 {
		t.Errorf("web-shop lists %d tools", n)
	}

	temp := e.createKey("acme", "temp")
	_, _, body = rawPost(t, nil, e.MCPURL(), list, "Authorization: Bearer "+temp)
	if got := strings.Join(toolNames(t, body), ","); !strings.Contains(got, "acme__billing-api__get_invoice") || strings.Contains(got, "inventory") {
		t.Fatalf("temp lists %s", got)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, _, body = rawPost(t, nil, e.MCPURL(), list, "Authorization: Bearer "+temp)
		if len(toolNames(t, body)) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("billing still listed after the subscription expired: %v", toolNames(t, body))
		}
	}
}

// rawHostRequest sends a POST with exactly the Host (and Origin) given.
func rawHostRequest(t testing.TB, network, addr, host, origin, key string) (int, []byte) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	body := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	req := "POST /mcp HTTP/1.1\r\nHost: " + host + "\r\n"
	if origin != "" {
		req += "Origin: " + origin + "\r\n"
	}
	if key != "" {
		req += "Authorization: Bearer " + key + "\r\n"
	}
	req += fmt.Sprintf("Content-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestMCPHostCheck: stoad on a loopback --listen answers only to loopback
// names and the configured ones (DNS rebinding); same-origin browser
// requests pass without listing their origin; the unix socket, which no
// browser reaches, takes any Host.
func TestMCPHostCheck(t *testing.T) {
	gw := "apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  mcp:\n    allowedHosts: [mcp.example.com]\n"
	e := newMCPEnv(t, 0, map[string]string{"gateway.yaml": gw})
	_, port, _ := net.SplitHostPort(e.D.Listen)
	for _, c := range []struct {
		host, origin string
		status       int
	}{
		{e.D.Listen, "", 200},
		{"localhost:" + port, "", 200},
		{"[::1]:" + port, "", 200},
		{"MCP.example.com.", "", 200},
		{"evil.example.com", "", 403},
		{"evil.example.com:" + port, "http://evil.example.com:" + port, 403},
		{"localhost:" + port, "http://localhost:" + port, 200}, // same origin
		{e.D.Listen, "http://" + e.D.Listen, 200},
		{"localhost:" + port, "http://localhost:1", 403},
	} {
		if status, body := rawHostRequest(t, "tcp", e.D.Listen, c.host, c.origin, e.AcmeKey); status != c.status {
			t.Errorf("Host %q Origin %q: %d %s, want %d", c.host, c.origin, status, body, c.status)
		}
	}
	if status, body := rawHostRequest(t, "unix", e.D.MCPSock, "evil.example.com", "", ""); status != 200 {
		t.Errorf("socket with any Host: %d %s", status, body)
	}
	if status, _ := rawHostRequest(t, "unix", e.D.MCPSock, "evil.example.com", "http://evil.example.com", ""); status != 403 {
		t.Errorf("socket with a foreign origin: %d", status)
	}
}

// TestMCPTransportParity: the same request gets the same answer over TCP,
// the unix socket and stdio — an oversized body, and a JSON-RPC batch
// (answered for 2025-03-26, refused after).
func TestMCPTransportParity(t *testing.T) {
	e := newMCPEnv(t, 0, nil)
	unixClient := &http.Client{Transport: unixTransport(e.D.MCPSock)}
	auth := "Authorization: Bearer " + e.AcmeKey

	huge := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 9<<20) + `"}}`
	s1, h1, b1 := rawPost(t, nil, e.MCPURL(), huge, auth)
	s2, h2, b2 := rawPost(t, unixClient, "http://stoad/mcp", huge)
	if s1 != 413 || s2 != 413 || string(b1) != string(b2) || errCode(t, b1) != -32600 ||
		h1.Get("Content-Type") != "application/json" || h2.Get("Content-Type") != "application/json" {
		t.Errorf("9 MiB: tcp %d %s, socket %d %s", s1, b1, s2, b2)
	}

	batch := `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},` +
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"acme__inventory-api__get_stock","arguments":{"sku":"abc"}}}]`
	check := func(where string, body []byte) {
		t.Helper()
		var got []map[string]any
		if err := json.Unmarshal(body, &got); err != nil || len(got) != 2 || got[0]["id"] != float64(1) ||
			got[1]["result"].(map[string]any)["structuredContent"].(map[string]any)["inStock"] != float64(21) {
			t.Errorf("%s batch: %s", where, body)
		}
	}
	status, _, body := rawPost(t, nil, e.MCPURL(), batch, auth)
	check("tcp", body)
	if status != 200 {
		t.Errorf("tcp batch: %d", status)
	}
	_, _, body = rawPost(t, unixClient, "http://stoad/mcp", batch, "X-Stoa-Tenant: acme", "MCP-Protocol-Version: 2025-03-26")
	check("socket", body)
	for _, c := range []*http.Client{nil, unixClient} {
		url := e.MCPURL()
		if c != nil {
			url = "http://stoad/mcp"
		}
		if status, _, body := rawPost(t, c, url, batch, auth, "MCP-Protocol-Version: 2025-11-25"); status != 400 || errCode(t, body) != -32600 {
			t.Errorf("%s batch at 2025-11-25: %d %s", url, status, body)
		}
	}

	// stdio through `stoa mcp`: a batch line after negotiating 2025-03-26.
	cmd := exec.Command(filepath.Join(binDir, "stoa"), "mcp", "--mcp-socket", e.D.MCPSock, "--tenant", "acme")
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	lines.Buffer(nil, 1<<20)
	next := func() []byte {
		t.Helper()
		done := make(chan bool, 1)
		go func() { done <- lines.Scan() }()
		select {
		case ok := <-done:
			if !ok {
				t.Fatal("stoa mcp ended")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no answer from stoa mcp")
		}
		return lines.Bytes()
	}
	io.WriteString(in, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`+"\n")
	if l := next(); !strings.Contains(string(l), `"protocolVersion":"2025-03-26"`) {
		t.Fatalf("initialize: %s", l)
	}
	io.WriteString(in, batch+"\n")
	check("stdio", next())
}
