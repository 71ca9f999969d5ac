package mcp

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

func toolObj(ns, name string, ops ...spec.Operation) *spec.Object {
	return &spec.Object{Kind: spec.KindTool, Metadata: spec.Metadata{Name: name, Namespace: ns},
		Spec: &spec.ToolSpec{Protocol: "rest", Upstream: "http://u", Operations: ops}}
}

func TestBuildCatalogErrors(t *testing.T) {
	get := func(name string) spec.Operation { return spec.Operation{Name: name, Method: "GET", Path: "/x"} }
	named := func(mcpName string) spec.Operation {
		op := get("op")
		op.MCPName = mcpName
		return op
	}
	tests := []struct {
		name string
		objs []*spec.Object
		want string
	}{
		{"duplicate across tenants", []*spec.Object{toolObj("a", "t", named("search")), toolObj("b", "t", named("search"))}, "already used"},
		{"platform prefix", []*spec.Object{toolObj("a", "t", named("stoa_mine"))}, "reserved"},
		{"too long", []*spec.Object{toolObj("a", "t", get(strings.Repeat("x", 70)))}, "1 to 64"},
		{"bad chars", []*spec.Object{toolObj("a", "t", named("a.b"))}, "may only contain"},
		{"bad path", []*spec.Object{toolObj("a", "t", spec.Operation{Name: "x", Method: "GET", Path: "/{id"})}, "unclosed"},
		{"schema not object", []*spec.Object{toolObj("a", "t", spec.Operation{Name: "x", Method: "GET", Path: "/", Input: map[string]any{"type": "string"}})}, `"type": "object"`},
		{"bad schema", []*spec.Object{toolObj("a", "t", spec.Operation{Name: "x", Method: "GET", Path: "/", Input: map[string]any{"type": "object", "minProperties": "x"}})}, "compile input schema"},
		{"remote ref", []*spec.Object{toolObj("a", "t", spec.Operation{Name: "x", Method: "GET", Path: "/", Input: map[string]any{"type": "object", "$ref": "file:///etc/passwd"}})}, "not allowed"},
	}
	for _, tt := range tests {
		if _, err := BuildCatalog(1, tt.objs); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestToolEncoding(t *testing.T) {
	cat, err := BuildCatalog(1, []*spec.Object{toolObj("acme", "files",
		spec.Operation{Name: "get", Method: "GET", Path: "/files/{id}", Title: "Get file"},
		spec.Operation{Name: "del", Method: "DELETE", Path: "/files/{id}", Tags: []string{"danger"}},
	)})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(encodeTool(nil, cat.tools["acme__files__get"]), &got); err != nil {
		t.Fatal(err)
	}
	schema := got["inputSchema"].(map[string]any)
	if got["title"] != "Get file" || schema["required"].([]any)[0] != "id" || got["annotations"].(map[string]any)["readOnlyHint"] != true {
		t.Errorf("get = %v", got)
	}
	json.Unmarshal(encodeTool(nil, cat.tools["acme__files__del"]), &got)
	ann := got["annotations"].(map[string]any)
	if ann["destructiveHint"] != true || ann["idempotentHint"] != true || ann["readOnlyHint"] != false {
		t.Errorf("del annotations = %v", ann)
	}
	if tags := got["_meta"].(map[string]any)["io.stoa/tags"].([]any); tags[0] != "danger" {
		t.Errorf("tags = %v", tags)
	}
}

func TestParamHeaders(t *testing.T) {
	h := newHarness(t, Options{}, 0)
	objs := testObjects(h.up.URL, 0)
	billing := objs[2].Spec.(*spec.ToolSpec)
	billing.Operations[0].Input = map[string]any{"type": "object", "required": []any{"id"},
		"properties": map[string]any{"id": map[string]any{"type": "string", "x-mcp-header": "Invoice"}}}
	cat, err := BuildCatalog(2, objs)
	if err != nil {
		t.Fatal(err)
	}
	h.srv.SetCatalog(cat)
	body := modernBody(1, "tools/call", `"name":"acme__billing__get_invoice","arguments":{"id":"inv-3"}`)
	hdr := modernHeaders(tokAcme, "tools/call", "acme__billing__get_invoice")
	if r := h.post(body, hdr...); r.status != 400 || !strings.Contains(string(r.body), "-32020") {
		t.Errorf("missing Mcp-Param: %d %s", r.status, r.body)
	}
	if r := h.post(body, append(hdr, "Mcp-Param-Invoice: inv-4")...); r.status != 400 {
		t.Errorf("mismatched Mcp-Param: %d %s", r.status, r.body)
	}
	if r := h.post(body, append(hdr, "Mcp-Param-Invoice: inv-3")...); r.status != 200 || !strings.Contains(string(r.body), `inv-3`) {
		t.Errorf("matching Mcp-Param: %d %s", r.status, r.body)
	}
}
