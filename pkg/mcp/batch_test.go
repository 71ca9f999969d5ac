package mcp

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestBatch20250326(t *testing.T) {
	h := newHarness(t, Options{}, 0)
	batch := `[
		{"jsonrpc":"2.0","id":1,"method":"ping"},
		{"jsonrpc":"2.0","method":"notifications/initialized"},
		{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"acme__billing__get_invoice","arguments":{"id":"inv-9"}}},
		{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"globex__vault__get_secret"}},
		7,
		[{"jsonrpc":"2.0","id":4,"method":"ping"}],
		{"jsonrpc":"2.0","id":5,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"x","version":"1"}}},
		{"jsonrpc":"2.0","id":6,"result":{}},
		{"jsonrpc":"2.0","id":7,"method":"nope"}
	]`
	for _, version := range []string{"", "2025-03-26"} {
		hs := []string{auth}
		if version != "" {
			hs = append(hs, "MCP-Protocol-Version: "+version)
		}
		r := h.post(batch, hs...)
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("version %q: %d %s", version, r.status, r.body)
		}
		var got []map[string]any
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("version %q: not an array: %s", version, r.body)
		}
		// One answer per request, in order; none for the notification and
		// the client's response.
		want := []struct {
			id   any
			code float64 // 0: a result
		}{{float64(1), 0}, {"b", 0}, {float64(3), -32602}, {nil, -32600}, {nil, -32600}, {float64(5), -32600}, {float64(7), -32601}}
		if len(got) != len(want) {
			t.Fatalf("version %q: %d answers, want %d: %s", version, len(got), len(want), r.body)
		}
		for i, w := range want {
			e, _ := got[i]["error"].(map[string]any)
			switch {
			case got[i]["id"] != w.id:
				t.Errorf("answer %d: id %v, want %v", i, got[i]["id"], w.id)
			case w.code == 0 && got[i]["result"] == nil:
				t.Errorf("answer %d: %v, want a result", i, got[i])
			case w.code != 0 && (e == nil || e["code"] != w.code):
				t.Errorf("answer %d: %v, want error %v", i, got[i], w.code)
			}
		}
		if sc := got[1]["result"].(map[string]any)["structuredContent"].(map[string]any); sc["id"] != "inv-9" {
			t.Errorf("tools/call in a batch: %v", got[1])
		}
		// Another tenant's tool answers exactly like a missing one, in a
		// batch too.
		if msg := got[2]["error"].(map[string]any)["message"]; msg != "Unknown tool: globex__vault__get_secret" {
			t.Errorf("foreign tool in a batch: %v", msg)
		}
	}

	// Notifications and responses only: 202, no body.
	r := h.post(`[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":1,"result":{}}]`, auth)
	if r.status != 202 || len(r.body) != 0 {
		t.Errorf("notifications only: %d %q", r.status, r.body)
	}
	// JSON-RPC: an empty array is one Invalid Request.
	r = h.post(`[ ]`, auth)
	if e, _ := r.json(t)["error"].(map[string]any); r.status != 400 || e == nil || e["code"] != float64(-32600) {
		t.Errorf("empty batch: %d %s", r.status, r.body)
	}
	// Bounded.
	big := "[" + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"ping"},`, maxBatch) + `{"jsonrpc":"2.0","id":1,"method":"ping"}]`
	r = h.post(big, auth)
	if e, _ := r.json(t)["error"].(map[string]any); r.status != 400 || e == nil || !strings.Contains(e["message"].(string), "at most 100") {
		t.Errorf("oversized batch: %d %s", r.status, r.body)
	}
	// Every later revision refuses batches, and so does 2026-07-28.
	for _, v := range []string{"2025-06-18", "2025-11-25", "2026-07-28", "2099-01-01"} {
		r = h.post(`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, auth, "MCP-Protocol-Version: "+v)
		if e, _ := r.json(t)["error"].(map[string]any); r.status != 400 || e == nil || e["code"] != float64(-32600) {
			t.Errorf("batch with %s: %d %s", v, r.status, r.body)
		}
	}
	// Unauthenticated batches are refused before any parsing.
	if r = h.post(`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`); r.status != 401 {
		t.Errorf("anonymous batch: %d", r.status)
	}
}

// TestTooLargeParity: a body over the limit gets the same status and
// JSON-RPC error whether the handler sees it (TCP listener with a larger
// fasthttp cap) or fasthttp refuses it first (the unix socket server, with
// ErrorHandler).
func TestTooLargeParity(t *testing.T) {
	srv := NewServer(Options{}, &fakeBackend{})
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "m.sock")
	unix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	big := &fasthttp.Server{Handler: srv.Handler, MaxRequestBodySize: 10 << 20}
	small := &fasthttp.Server{Handler: srv.Handler, MaxRequestBodySize: 5 << 20, ErrorHandler: srv.ErrorHandler}
	go big.Serve(tcp)
	go small.Serve(unix)
	t.Cleanup(func() { big.Shutdown(); small.Shutdown() })

	body := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 9<<20) + `"}}`
	send := func(client *http.Client, url string) (int, string) {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tokAcme)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", url, ct)
		}
		return resp.StatusCode, string(b)
	}
	var d net.Dialer
	uc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", sock)
	}}}
	s1, b1 := send(http.DefaultClient, "http://"+tcp.Addr().String()+"/mcp")
	s2, b2 := send(uc, "http://stoad/mcp")
	want := `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Request body too large"}}`
	if s1 != 413 || s2 != 413 || b1 != want || b2 != want {
		t.Errorf("tcp: %d %s\nunix: %d %s", s1, b1, s2, b2)
	}
}
