package mcp

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// countingGrants allows a fixed set of tool names and counts Allows calls.
type countingGrants struct {
	key   string
	allow map[string]bool
	calls atomic.Int64
}

func (g *countingGrants) Key() string { return g.key }
func (g *countingGrants) Allows(t *Tool) bool {
	g.calls.Add(1)
	return g.allow[t.Name]
}

func TestGrantsFilterLists(t *testing.T) {
	h := newHarness(t, Options{PageSize: 2}, 30)
	ctx := context.Background()
	for _, version := range []string{"2025-11-25", ""} {
		cs := h.connect(tokAcmeLimited, version, nil)
		var names []string
		for tool, err := range cs.Tools(ctx, nil) {
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, tool.Name)
		}
		want := []string{"stoa_platform_info", "stoa_tools", "acme__billing__get_invoice", "acme__billing__list"}
		if !slices.Equal(names, want) {
			t.Errorf("%q: tools/list = %v, want %v", version, names, want)
		}
		// stoa_tools searches only what may be called, and does not
		// describe the rest.
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "stoa_tools", Arguments: map[string]any{"query": "acme"}})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(res.StructuredContent)
		var found struct {
			Tools []struct{ Name string }
			Total int
		}
		json.Unmarshal(raw, &found)
		if found.Total != 2 {
			t.Errorf("stoa_tools found %s", raw)
		}
		res, _ = cs.CallTool(ctx, &sdk.CallToolParams{Name: "stoa_tools", Arguments: map[string]any{"name": "acme__billing__fail"}})
		if !res.IsError {
			t.Errorf("stoa_tools describes a tool the caller cannot call")
		}
		res, _ = cs.CallTool(ctx, &sdk.CallToolParams{Name: "stoa_platform_info"})
		if n := res.StructuredContent.(map[string]any)["tools"]; n != float64(4) {
			t.Errorf("platform info counts %v tools", n)
		}
		// The bulk Tool object has no allowed operation: its resources are
		// hidden, billing's stay.
		var uris []string
		for r, err := range cs.Resources(ctx, nil) {
			if err != nil {
				t.Fatal(err)
			}
			uris = append(uris, r.URI)
		}
		if !slices.Equal(uris, []string{"stoa://tools/acme/billing"}) {
			t.Errorf("%q: resources = %v", version, uris)
		}
		if _, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "stoa://tools/acme/bulk"}); err == nil {
			t.Errorf("hidden resource readable")
		}
	}
	// The filtered view is built once per catalog and key, not per request.
	before := limitedGrants.calls.Load()
	for range 5 {
		h.post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "Authorization: Bearer "+tokAcmeLimited)
	}
	if n := limitedGrants.calls.Load() - before; n != 0 {
		t.Errorf("tools/list re-evaluated grants %d times", n)
	}
	// Unfiltered callers of the same tenant still see everything.
	full := h.connect(tokAcme, "2025-11-25", nil)
	n := 0
	for _, err := range full.Tools(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2+6+30 {
		t.Errorf("unfiltered caller sees %d tools", n)
	}
}

func TestGrantsAllowingAllShareTheView(t *testing.T) {
	cat, err := BuildCatalog(1, testObjects("http://up", 3))
	if err != nil {
		t.Fatal(err)
	}
	all := &countingGrants{key: "all", allow: map[string]bool{}}
	for _, tool := range cat.tools {
		all.allow[tool.Name] = true
	}
	base := cat.viewFor(Caller{Tenant: "acme"})
	if v := cat.viewFor(Caller{Tenant: "acme", Grants: all}); v != base {
		t.Error("a grant of everything copied the view")
	}
	none := &countingGrants{key: "none"}
	v := cat.viewFor(Caller{Tenant: "acme", Grants: none})
	if len(v.tools) != len(platformTools) || len(v.resources) != 0 || v.lists().toolList.digest == base.lists().toolList.digest {
		t.Errorf("nothing allowed: %d tools, %d resources", len(v.tools), len(v.resources))
	}
	// Admins are never filtered.
	if v := cat.viewFor(Caller{Admin: true, Grants: none}); v != cat.admin {
		t.Error("admin filtered")
	}
}
