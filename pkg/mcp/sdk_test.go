package mcp

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// eras runs f once per protocol era with the official Go SDK client: the
// legacy initialize handshake (2025-11-25) and the stateless 2026-07-28
// revision (the SDK's default: server/discover, per-request _meta).
func eras(t *testing.T, f func(t *testing.T, version string)) {
	for _, v := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(v, func(t *testing.T) { f(t, v) })
	}
}

func sdkVersion(v string) string {
	if v == "2026-07-28" {
		return "" // the SDK's latest
	}
	return v
}

func rpcCode(t *testing.T, err error) int {
	t.Helper()
	var we *jsonrpc.Error
	if !errors.As(err, &we) {
		t.Fatalf("error %v (%T) is not a JSON-RPC error", err, err)
	}
	return int(we.Code)
}

func TestSDKClientListAndCall(t *testing.T) {
	eras(t, func(t *testing.T, version string) {
		h := newHarness(t, Options{PageSize: 10}, 25)
		cs := h.connect(tokAcme, sdkVersion(version), nil)
		ctx := context.Background()
		if got := cs.InitializeResult().ProtocolVersion; got != version {
			t.Fatalf("negotiated %s, want %s", got, version)
		}

		// Pagination through every page, deterministic order, own tenant only.
		var names []string
		pages := 0
		cursor := ""
		for {
			res, err := cs.ListTools(ctx, &sdk.ListToolsParams{Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, tool := range res.Tools {
				names = append(names, tool.Name)
			}
			if res.NextCursor == "" {
				break
			}
			cursor = res.NextCursor
		}
		if want := 2 + 6 + 25; len(names) != want || pages != 4 {
			t.Fatalf("listed %d tools in %d pages, want %d in 4", len(names), pages, want)
		}
		if names[0] != "stoa_platform_info" || names[1] != "stoa_tools" || !slices.IsSorted(names[2:]) {
			t.Errorf("order: %v", names[:5])
		}
		for _, n := range names {
			if strings.HasPrefix(n, "globex") {
				t.Errorf("acme sees %s", n)
			}
		}

		call := func(name string, args any) *sdk.CallToolResult {
			t.Helper()
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
			if err != nil {
				t.Fatalf("call %s: %v", name, err)
			}
			return res
		}
		text := func(res *sdk.CallToolResult) string {
			t.Helper()
			tc, ok := res.Content[0].(*sdk.TextContent)
			if !ok {
				t.Fatalf("content[0] is %T", res.Content[0])
			}
			return tc.Text
		}

		res := call("acme__billing__get_invoice", map[string]any{"id": "inv-1", "expand": []string{"lines", "tax"}})
		sc, ok := res.StructuredContent.(map[string]any)
		if res.IsError || !ok || sc["id"] != "inv-1" || sc["expand"] != "lines,tax" {
			t.Errorf("get_invoice: isError=%v structured=%#v", res.IsError, res.StructuredContent)
		}
		if !strings.Contains(text(res), `"amount":42`) {
			t.Errorf("get_invoice text = %q", text(res))
		}

		res = call("acme__billing__create_invoice", map[string]any{"amount": 12.5, "trace": "t-9"})
		if sc, _ := res.StructuredContent.(map[string]any); res.IsError || sc["trace"] != "t-9" ||
			sc["created"].(map[string]any)["amount"] != 12.5 {
			t.Errorf("create_invoice: %#v", res.StructuredContent)
		}

		res = call("acme__billing__list", nil)
		if version == "2026-07-28" {
			if arr, ok := res.StructuredContent.([]any); !ok || len(arr) != 3 {
				t.Errorf("list structured = %#v, want the array", res.StructuredContent)
			}
		} else if res.StructuredContent != nil {
			t.Errorf("legacy list structured = %#v, want none (must be an object)", res.StructuredContent)
		}
		if text(res) != "[1,2,3]" {
			t.Errorf("list text = %q", text(res))
		}

		res = call("acme__billing__fail", nil)
		if msg := text(res); !res.IsError || !strings.Contains(msg, "HTTP 400 Bad Request") ||
			!strings.Contains(msg, "must start with inv-") || len(msg) > 600 {
			t.Errorf("fail: isError=%v text(%d)=%q", res.IsError, len(msg), msg)
		}

		if got := text(call("acme__billing__text", nil)); got != "hello\nworld" {
			t.Errorf("text = %q", got)
		}
		if img, ok := call("acme__billing__img", nil).Content[0].(*sdk.ImageContent); !ok || img.MIMEType != "image/png" || len(img.Data) != 7 {
			t.Errorf("img content = %#v", img)
		}

		// Invalid arguments and unknown or foreign tools are JSON-RPC errors.
		_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "acme__billing__get_invoice", Arguments: map[string]any{"id": 5}})
		if err == nil || rpcCode(t, err) != -32602 || !strings.Contains(err.Error(), "invalid arguments") || !strings.Contains(err.Error(), "/id") {
			t.Errorf("invalid args: %v", err)
		}
		_, errUnknown := cs.CallTool(ctx, &sdk.CallToolParams{Name: "acme__nope__nope"})
		_, errForeign := cs.CallTool(ctx, &sdk.CallToolParams{Name: "globex__vault__get_secret"})
		if errUnknown == nil || errForeign == nil || rpcCode(t, errUnknown) != -32602 || rpcCode(t, errForeign) != -32602 ||
			strings.ReplaceAll(errForeign.Error(), "globex__vault__get_secret", "X") != strings.ReplaceAll(errUnknown.Error(), "acme__nope__nope", "X") {
			t.Errorf("unknown: %v; foreign: %v", errUnknown, errForeign)
		}

		// Platform tools.
		info := call("stoa_platform_info", nil).StructuredContent.(map[string]any)
		if info["version"] != "1.2.3" || info["tenant"] != "acme" || info["tools"] != float64(33) {
			t.Errorf("platform info = %v", info)
		}
		found := call("stoa_tools", map[string]any{"query": "INVOICE"}).StructuredContent.(map[string]any)
		if found["total"] != float64(2) {
			t.Errorf("stoa_tools query = %v", found)
		}
		byTag := call("stoa_tools", map[string]any{"tag": "listing"}).StructuredContent.(map[string]any)
		if byTag["total"] != float64(1) {
			t.Errorf("stoa_tools tag = %v", byTag)
		}
		def := call("stoa_tools", map[string]any{"name": "acme__billing__get_invoice"}).StructuredContent.(map[string]any)
		if def["inputSchema"] == nil {
			t.Errorf("stoa_tools name = %v", def)
		}
		if res := call("stoa_tools", map[string]any{"name": "globex__vault__get_secret"}); !res.IsError {
			t.Errorf("stoa_tools revealed a foreign tool: %v", res.StructuredContent)
		}

		// Resources.
		rl, err := cs.ListResources(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var uris []string
		for _, r := range rl.Resources {
			uris = append(uris, r.URI)
		}
		if want := []string{"stoa://tools/acme/billing", "stoa://tools/acme/bulk"}; !slices.Equal(uris, want) {
			t.Errorf("resources = %v, want %v", uris, want)
		}
		rr, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "stoa://tools/acme/billing"})
		if err != nil || !strings.Contains(rr.Contents[0].Text, "acme__billing__get_invoice") || rr.Contents[0].MIMEType != "text/markdown" {
			t.Errorf("read resource: %v %+v", err, rr)
		}
		if _, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "stoa://tools/globex/vault"}); err == nil {
			t.Error("read a foreign resource")
		}
	})
}

func TestSDKClientAdminSeesAll(t *testing.T) {
	eras(t, func(t *testing.T, version string) {
		h := newHarness(t, Options{}, 0)
		cs := h.connect(tokAdmin, sdkVersion(version), nil)
		ctx := context.Background()
		var names []string
		for tool, err := range cs.Tools(ctx, nil) {
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, tool.Name)
		}
		if !slices.Contains(names, "globex__vault__get_secret") || !slices.Contains(names, "acme__billing__list") {
			t.Fatalf("admin tools: %v", names)
		}
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "globex__vault__get_secret"})
		if err != nil || res.IsError {
			t.Fatalf("admin call: %v %v", err, res)
		}
	})
}

func TestSDKClientListChanged(t *testing.T) {
	eras(t, func(t *testing.T, version string) {
		h := newHarness(t, Options{}, 0)
		var changed atomic.Int32
		got := make(chan struct{}, 4)
		h.connect(tokAcme, sdkVersion(version), &sdk.ClientOptions{
			ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
				changed.Add(1)
				got <- struct{}{}
			},
		})
		// The SDK opens its stream (GET, or subscriptions/listen) in the
		// background.
		deadline := time.Now().Add(5 * time.Second)
		for h.srv.streams.len() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no notification stream was opened")
			}
			time.Sleep(10 * time.Millisecond)
		}

		// A change to another tenant's tools is not announced to acme.
		objs := testObjects(h.up.URL, 0)
		vault := objs[3].Spec.(*spec.ToolSpec)
		vault.Operations = append(vault.Operations, spec.Operation{Name: "more", Method: "GET", Path: "/secret"})
		cat, err := BuildCatalog(2, objs)
		if err != nil {
			t.Fatal(err)
		}
		h.srv.SetCatalog(cat)
		select {
		case <-got:
			t.Fatal("acme was told about a globex change")
		case <-time.After(300 * time.Millisecond):
		}

		billing := objs[2].Spec.(*spec.ToolSpec)
		billing.Operations = append(billing.Operations, spec.Operation{Name: "new_op", Method: "GET", Path: "/list"})
		cat, err = BuildCatalog(3, objs)
		if err != nil {
			t.Fatal(err)
		}
		h.srv.SetCatalog(cat)
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("no notifications/tools/list_changed after SetCatalog")
		}
	})
}
