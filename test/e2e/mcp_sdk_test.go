package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The official Go SDK client against a real stoad over the three
// transports (Streamable HTTP on --listen, the MCP unix socket, stdio
// through `stoa mcp`), in both protocol eras.

var eras = []struct{ name, version string }{
	{"2025-11-25", "2025-11-25"},
	{"2026-07-28", ""}, // the SDK's latest: stateless, server/discover
}

func rpcCode(t testing.TB, err error) int {
	t.Helper()
	var we *jsonrpc.Error
	if !errors.As(err, &we) {
		t.Fatalf("error %v (%T) is not a JSON-RPC error", err, err)
	}
	return int(we.Code)
}

// listAll pages through tools/list and returns the names and page count.
func listAll(t testing.TB, cs *sdk.ClientSession) ([]string, int) {
	t.Helper()
	var names []string
	pages, cursor := 0, ""
	for {
		res, err := cs.ListTools(context.Background(), &sdk.ListToolsParams{Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		if res.NextCursor == "" {
			return names, pages
		}
		cursor = res.NextCursor
	}
}

func callOK(t testing.TB, cs *sdk.ClientSession, name string, args any) *sdk.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return res
}

func text(t testing.TB, res *sdk.CallToolResult) string {
	t.Helper()
	tc, ok := res.Content[0].(*sdk.TextContent)
	if !ok {
		t.Fatalf("content[0] is %T", res.Content[0])
	}
	return tc.Text
}

var acmeTools = []string{"stoa_platform_info", "stoa_tools",
	"acme__billing-api__create_invoice", "acme__billing-api__get_invoice", "acme__billing-api__list_invoices",
	"acme__inventory-api__get_stock"}

// exerciseTenant runs the checks every transport must pass for a caller
// whose view is tenant acme.
func exerciseTenant(t *testing.T, cs *sdk.ClientSession, wantConsumer string) {
	ctx := context.Background()
	names, pages := listAll(t, cs)
	if !slices.Equal(names, acmeTools) || pages != 3 {
		t.Fatalf("listed %v in %d pages, want %v in 3", names, pages, acmeTools)
	}

	res := callOK(t, cs, "acme__billing-api__get_invoice", map[string]any{"id": "INV-1001"})
	sc, _ := res.StructuredContent.(map[string]any)
	inv, _ := sc["invoice"].(map[string]any)
	gw, _ := sc["gateway"].(map[string]any)
	if res.IsError || inv["customer"] != "Wile E. Coyote" || gw["tenant"] != "acme" || gw["consumer"] != wantConsumer {
		t.Errorf("get_invoice: isError=%v structured=%v", res.IsError, res.StructuredContent)
	}
	res = callOK(t, cs, "acme__billing-api__create_invoice", map[string]any{"customer": "ACME", "amount": 12.5})
	if sc, _ := res.StructuredContent.(map[string]any); res.IsError || sc["invoice"].(map[string]any)["amount"] != 12.5 {
		t.Errorf("create_invoice: %v", res.StructuredContent)
	}
	res = callOK(t, cs, "acme__billing-api__list_invoices", map[string]any{"status": "paid"})
	if !strings.Contains(text(t, res), "INV-1002") || strings.Contains(text(t, res), "INV-1001") {
		t.Errorf("list_invoices?status=paid: %s", text(t, res))
	}

	// Upstream 404 → isError result with the status and body excerpt.
	res = callOK(t, cs, "acme__billing-api__get_invoice", map[string]any{"id": "INV-404"})
	if msg := text(t, res); !res.IsError || !strings.Contains(msg, "HTTP 404") || !strings.Contains(msg, "no such invoice") {
		t.Errorf("upstream 404: isError=%v %q", res.IsError, msg)
	}

	// Invalid arguments → -32602 before any upstream call.
	_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "acme__billing-api__list_invoices", Arguments: map[string]any{"status": "lost"}})
	if err == nil || rpcCode(t, err) != -32602 || !strings.Contains(err.Error(), "/status") {
		t.Errorf("invalid args: %v", err)
	}

	// Unknown and foreign tools: the same JSON-RPC error.
	_, errUnknown := cs.CallTool(ctx, &sdk.CallToolParams{Name: "globex__weather-api__nowcast"})
	_, errForeign := cs.CallTool(ctx, &sdk.CallToolParams{Name: "globex__weather-api__current", Arguments: map[string]any{"city": "Oslo"}})
	if errUnknown == nil || errForeign == nil || rpcCode(t, errUnknown) != -32602 || rpcCode(t, errForeign) != -32602 ||
		strings.ReplaceAll(errForeign.Error(), "current", "X") != strings.ReplaceAll(errUnknown.Error(), "nowcast", "X") {
		t.Errorf("unknown: %v; foreign: %v", errUnknown, errForeign)
	}

	// Resources: the tenant's Tool documentation only.
	rl, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, r := range rl.Resources {
		uris = append(uris, r.URI)
	}
	if want := []string{"stoa://tools/acme/billing-api", "stoa://tools/acme/inventory-api"}; !slices.Equal(uris, want) {
		t.Errorf("resources = %v, want %v", uris, want)
	}
	rr, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "stoa://tools/acme/billing-api"})
	if err != nil || !strings.Contains(rr.Contents[0].Text, "acme__billing-api__get_invoice") {
		t.Errorf("read resource: %v %+v", err, rr)
	}
	if _, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "stoa://tools/globex/weather-api"}); err == nil {
		t.Error("read another tenant's resource")
	}

	// Platform tools.
	info, _ := callOK(t, cs, "stoa_platform_info", nil).StructuredContent.(map[string]any)
	if info["health"] != "ok" || info["tenant"] != "acme" || info["revision"] != float64(1) {
		t.Errorf("stoa_platform_info = %v", info)
	}
	found, _ := callOK(t, cs, "stoa_tools", map[string]any{"query": "invoice"}).StructuredContent.(map[string]any)
	if found["total"] != float64(3) {
		t.Errorf("stoa_tools = %v", found)
	}
}

func TestMCPStreamableHTTP(t *testing.T) {
	e := newMCPEnv(t, 2, nil)
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			cs := sdkConnect(t, httpTransport(e.MCPURL(), bearer(e.AcmeKey), ""), era.version)
			exerciseTenant(t, cs, "web-shop")

			// globex's key sees globex only.
			gs := sdkConnect(t, httpTransport(e.MCPURL(), bearer(e.GlobexKey), ""), era.version)
			names, _ := listAll(t, gs)
			if want := []string{"stoa_platform_info", "stoa_tools", "globex__weather-api__current", "globex__weather-api__forecast"}; !slices.Equal(names, want) {
				t.Errorf("globex lists %v", names)
			}
			res := callOK(t, gs, "globex__weather-api__forecast", map[string]any{"city": "Oslo", "days": 2})
			if fc, _ := res.StructuredContent.(map[string]any)["forecast"].([]any); res.IsError || len(fc) != 2 {
				t.Errorf("forecast: %v", res.StructuredContent)
			}
			if _, err := gs.CallTool(context.Background(), &sdk.CallToolParams{Name: "acme__inventory-api__get_stock", Arguments: map[string]any{"sku": "x"}}); err == nil || rpcCode(t, err) != -32602 {
				t.Errorf("globex called acme's tool: %v", err)
			}
		})
	}
}

func TestMCPUnixSocket(t *testing.T) {
	e := newMCPEnv(t, 2, nil)
	if fi, err := os.Stat(e.D.MCPSock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("MCP socket: %v, mode %v (want 0600)", err, fi.Mode().Perm())
	}
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			// The socket's owner without a credential: the admin view.
			admin := sdkConnect(t, httpTransport("http://stoad/mcp", nil, e.D.MCPSock), era.version)
			names, _ := listAll(t, admin)
			if len(names) != 2+6 || !slices.Contains(names, "globex__weather-api__current") || !slices.Contains(names, "acme__inventory-api__get_stock") {
				t.Errorf("admin view: %v", names)
			}
			res := callOK(t, admin, "globex__weather-api__current", map[string]any{"city": "Lyon"})
			if res.IsError || res.StructuredContent.(map[string]any)["city"] != "Lyon" {
				t.Errorf("admin call: %v", res.StructuredContent)
			}
			// Narrowed to one tenant with X-Stoa-Tenant: exactly that tenant's view.
			narrowed := sdkConnect(t, httpTransport("http://stoad/mcp", http.Header{"X-Stoa-Tenant": {"acme"}}, e.D.MCPSock), era.version)
			exerciseTenant(t, narrowed, "")
			// A credential on the socket is used like on the network.
			keyed := sdkConnect(t, httpTransport("http://stoad/mcp", bearer(e.GlobexKey), e.D.MCPSock), era.version)
			if names, _ := listAll(t, keyed); len(names) != 4 {
				t.Errorf("globex key on the socket lists %v", names)
			}
		})
	}
}

func TestMCPStdio(t *testing.T) {
	e := newMCPEnv(t, 2, nil)
	stoa := filepath.Join(binDir, "stoa")
	for _, era := range eras {
		t.Run(era.name+"/socket", func(t *testing.T) {
			cmd := exec.Command(stoa, "mcp", "--mcp-socket", e.D.MCPSock, "--tenant", "acme")
			cmd.Stderr = os.Stderr
			cs := sdkConnect(t, &sdk.CommandTransport{Command: cmd}, era.version)
			exerciseTenant(t, cs, "")
		})
		t.Run(era.name+"/url", func(t *testing.T) {
			cmd := exec.Command(stoa, "mcp", "--url", e.MCPURL())
			cmd.Env = append(os.Environ(), "STOA_TOKEN="+e.AcmeKey)
			cmd.Stderr = os.Stderr
			cs := sdkConnect(t, &sdk.CommandTransport{Command: cmd}, era.version)
			exerciseTenant(t, cs, "web-shop")
		})
	}
	// Without a credential the remote answers 401; the bridge turns it into
	// a JSON-RPC error the client can show.
	cmd := exec.Command(stoa, "mcp", "--url", e.MCPURL())
	cmd.Env = append(os.Environ(), "STOA_TOKEN=")
	client := sdk.NewClient(&sdk.Implementation{Name: "stoa-e2e", Version: "1"}, nil)
	if cs, err := client.Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil); err == nil {
		cs.Close()
		t.Fatal("connected without a credential")
	} else if !strings.Contains(err.Error(), "Unauthorized") {
		t.Errorf("error without credential: %v", err)
	}
}

// TestMCPListChangedOnReload checks that an apply reaches connected agents
// as notifications/tools/list_changed (legacy GET stream and 2026-07-28
// subscriptions/listen, both through the proxy's listener).
func TestMCPListChangedOnReload(t *testing.T) {
	e := newMCPEnv(t, 0, nil)
	for i, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			got := make(chan struct{}, 8)
			client := sdk.NewClient(&sdk.Implementation{Name: "stoa-e2e", Version: "1"}, &sdk.ClientOptions{
				ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { got <- struct{}{} },
			})
			cs, err := client.Connect(context.Background(), httpTransport(e.MCPURL(), bearer(e.AcmeKey), ""),
				&sdk.ClientSessionOptions{ProtocolVersion: era.version})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			// Let the SDK open its stream, then change acme's tools.
			time.Sleep(500 * time.Millisecond)
			p := filepath.Join(e.Specs, "acme.yaml")
			b, _ := os.ReadFile(p)
			prev := "name: get_stock\n"
			if i > 0 {
				prev = fmt.Sprintf("name: get_stock_v%d\n", i+1)
			}
			b = []byte(strings.Replace(string(b), prev, fmt.Sprintf("name: get_stock_v%d\n", i+2), 1))
			os.WriteFile(p, b, 0o644)
			expect(t, e.D.Stoa("apply", "-f", e.Specs), 0, "apply a change")
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("no notifications/tools/list_changed after apply")
			}
			names, _ := listAll(t, cs)
			if !slices.Contains(names, fmt.Sprintf("acme__inventory-api__get_stock_v%d", i+2)) {
				t.Errorf("new tool not listed: %v", names)
			}
		})
	}
}
