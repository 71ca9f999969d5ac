package mcp

import (
	"bufio"
	"encoding/json"
	"fmt"
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
// JSON-RPC error whether the handler sees it (a listener with a larger
// fasthttp cap) or fasthttp refuses it first (a server dedicated to MCP,
// with ErrorHandler).
func TestTooLargeParity(t *testing.T) {
	srv := NewServer(Options{}, &fakeBackend{})
	big, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "m.sock")
	unix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	bigSrv := &fasthttp.Server{Handler: srv.Handler, MaxRequestBodySize: 10 << 20}
	smallSrv := &fasthttp.Server{Handler: srv.Handler, MaxRequestBodySize: 5 << 20, ErrorHandler: srv.ErrorHandler}
	go bigSrv.Serve(big)
	go smallSrv.Serve(unix)
	t.Cleanup(func() { bigSrv.Shutdown(); smallSrv.Shutdown() })

	body := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 9<<20) + `"}}`
	req, _ := http.NewRequest("POST", "http://"+big.Addr().String()+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tokAcme)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s1, ct1 := resp.StatusCode, resp.Header.Get("Content-Type")

	// fasthttp refuses on the Content-Length alone: send the head only
	// (a client still writing the body could see the connection close
	// before it reads the answer).
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: stoad\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	resp2, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()

	want := `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Request body too large"}}`
	if s1 != 413 || resp2.StatusCode != 413 || string(b1) != want || string(b2) != want ||
		ct1 != "application/json" || resp2.Header.Get("Content-Type") != "application/json" {
		t.Errorf("handler: %d %s\nErrorHandler: %d %s", s1, b1, resp2.StatusCode, b2)
	}
}
