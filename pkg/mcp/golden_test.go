package mcp

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run go test -update and review the diff\ngot:\n%s", name, got)
	}
}

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
	golden(t, "tools_list_legacy.json", indent(stripCursor(t, legacy.body)))
	modern := h.post(modernBody(1, "tools/list", ""), modernHeaders(tokAcme, "tools/list", "")...)
	golden(t, "tools_list_modern.json", indent(stripCursor(t, modern.body)))
	doc := h.srv.Catalog().resources["stoa://tools/acme/billing"]
	golden(t, "billing_doc.md", doc.body())
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
