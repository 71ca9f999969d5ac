package mcp

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stoa-gateway/stoa/internal/golden"
)

// TestGoldenWire pins the exact wire form of a tools/list page in both eras
// and of a generated documentation resource.
func TestGoldenWire(t *testing.T) {
	h := newHarness(t, Options{PageSize: 4, ListTTL: -1, ServerVersion: "test"}, 0)
	indent := func(b []byte) []byte {
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		out.WriteByte('\n')
		return out.Bytes()
	}
	legacy := h.post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, auth, "MCP-Protocol-Version: 2025-11-25")
	golden.Check(t, filepath.Join("testdata", "tools_list_legacy.json"), indent(stripCursor(t, legacy.body)))
	modern := h.post(modernBody(1, "tools/list", ""), modernHeaders(tokAcme, "tools/list", "")...)
	golden.Check(t, filepath.Join("testdata", "tools_list_modern.json"), indent(stripCursor(t, modern.body)))
	doc := h.srv.Catalog().resources["stoa://tools/acme/billing"]
	golden.Check(t, filepath.Join("testdata", "billing_doc.md"), doc.body())
}

// stripCursor replaces nextCursor, whose MAC key is random per server.
func stripCursor(t *testing.T, body []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	res := m["result"].(map[string]any)
	if _, ok := res["nextCursor"]; ok {
		res["nextCursor"] = "<cursor>"
	}
	out, _ := json.Marshal(m)
	return out
}
