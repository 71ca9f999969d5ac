package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/mcp/federation"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// The catalog and server side of federated MCP servers, with a fake
// upstream set and backend (the real engine and daemon are tested in
// pkg/mcp/federation and test/e2e).

// fakeFederation is what the federated Tools expose.
type fakeFederation map[string]struct {
	tools     []federation.Tool
	resources []federation.Resource
}

func (f fakeFederation) Tools(tenant, tool string) []federation.Tool {
	return f[tenant+"/"+tool].tools
}
func (f fakeFederation) Resources(tenant, tool string) []federation.Resource {
	return f[tenant+"/"+tool].resources
}

// fedBackend answers federated calls from a table of upstream names.
type fedBackend struct {
	*fakeBackend
	mu    sync.Mutex
	calls []string // upstream name + " " + arguments
}

var errBoom = errors.New("upstream acme/gh is unavailable since 2026-01-01T00:00:00Z (connection refused); stoa is reconnecting")

// verbatimResult is an upstream result with members and formatting stoa
// must not touch.
const verbatimResult = `{"content":[{"type":"text","text":"hi"},{"type":"future_block","x":1}],"structuredContent":{"b":1,"a":2.50},"_meta":{"k":"v"}}`

func (b *fedBackend) CallUpstream(_ context.Context, _ Caller, t *Tool, args []byte) (json.RawMessage, error) {
	b.mu.Lock()
	b.calls = append(b.calls, t.UpstreamName+" "+string(args))
	b.mu.Unlock()
	switch t.UpstreamName {
	case "echo":
		return json.RawMessage(verbatimResult), nil
	case "modern":
		return json.RawMessage(`{"content":[],"resultType":"complete"}`), nil
	case "empty":
		return json.RawMessage(`{ }`), nil
	case "gone":
		return nil, federation.ErrUnknownTool
	case "badargs":
		return nil, &federation.RPCError{Code: -32602, Message: "missing field q"}
	case "rpcfail":
		return nil, &federation.RPCError{Code: -32603, Message: "database is locked"}
	case "notobject":
		return json.RawMessage(`[1]`), nil
	}
	return nil, errBoom
}

func (b *fedBackend) ReadUpstreamResource(_ context.Context, _ Caller, ref spec.Ref, uri string) (json.RawMessage, error) {
	if !strings.HasPrefix(uri, federation.ResourcePrefix(ref.Namespace, ref.Name)) || strings.HasSuffix(uri, "/missing") {
		return nil, federation.ErrUnknownResource
	}
	out, _ := json.Marshal(map[string]any{"contents": []map[string]string{{"uri": uri, "text": "body of " + uri}}})
	return out, nil
}

func fedObjects(upstream string) []*spec.Object {
	objs := testObjects(upstream, 0)
	gh := &spec.ToolSpec{Protocol: spec.ProtocolMCP, Description: "GitHub", Tags: []string{"code"},
		MCP: &spec.MCPUpstream{URL: "http://127.0.0.1:1/mcp", Resources: &spec.MCPResources{Expose: true}}}
	// An operation whose mcpName takes a name the upstream also uses.
	objs[2].Spec.(*spec.ToolSpec).Operations = append(objs[2].Spec.(*spec.ToolSpec).Operations,
		spec.Operation{Name: "taken", MCPName: "acme__gh__taken", Method: "GET", Path: "/list"})
	return append(objs, &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool,
		Metadata: spec.Metadata{Name: "gh", Namespace: "acme"}, Spec: gh})
}

var fedUpstreamTools = fakeFederation{"acme/gh": {
	tools: []federation.Tool{
		{Name: "acme__gh__echo", UpstreamName: "echo", Title: "Echo\u200b", Description: "Says it back.\U000E0041\U000E0042",
			InputSchema:  json.RawMessage(`{"type": "object", "properties": {"q": {"type": "string", "description": "query\u2066"}}, "required": ["q"]}`),
			OutputSchema: json.RawMessage(`{"type":"object"}`),
			Annotations:  federation.Annotations{ReadOnly: boolp(true)}},
		{Name: "acme__gh__modern", UpstreamName: "modern", InputSchema: json.RawMessage(`{"type":"object"}`)},
		{Name: "acme__gh__empty", UpstreamName: "empty", InputSchema: json.RawMessage(`{"type":"object"}`)},
		{Name: "acme__gh__gone", UpstreamName: "gone", InputSchema: json.RawMessage(`{"type":"object"}`)},
		{Name: "acme__gh__badargs", UpstreamName: "badargs", InputSchema: json.RawMessage(`{"type":"object"}`)},
		{Name: "acme__gh__rpcfail", UpstreamName: "rpcfail", InputSchema: json.RawMessage(`{"type":"object"}`)},
		{Name: "acme__gh__down", UpstreamName: "down", InputSchema: json.RawMessage(`{"type":"object"}`)},
		{Name: "acme__gh__notobject", UpstreamName: "notobject", InputSchema: json.RawMessage(`{"type":"object"}`)},
		// Uncompilable schema: exposed, arguments unchecked.
		{Name: "acme__gh__loose", UpstreamName: "loose", InputSchema: json.RawMessage(`{"type":"object","$ref":"https://example.com/s.json"}`)},
		// Taken by billing's operation: hidden, reported.
		{Name: "acme__gh__taken", UpstreamName: "taken", InputSchema: json.RawMessage(`{"type":"object"}`)},
	},
	resources: []federation.Resource{
		{URI: "stoa://tools/acme/gh/upstream/file:///a.txt", UpstreamURI: "file:///a.txt", Name: "a.txt", MimeType: "text/plain"},
	},
}}

func newFedHarness(t *testing.T) (*harness, *fedBackend, *Catalog) {
	t.Helper()
	up := newUpstream(t)
	be := &fedBackend{fakeBackend: &fakeBackend{client: up.Client()}}
	srv := NewServer(Options{}, be)
	cat, err := BuildCatalog(1, fedObjects(up.URL), WithFederation(fedUpstreamTools))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetCatalog(cat)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fasthttp.Server{Handler: srv.Handler, ReadTimeout: 10 * time.Second}
	go fs.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		_ = fs.Shutdown()
	})
	return &harness{t: t, srv: srv, backend: be.fakeBackend, url: "http://" + ln.Addr().String() + "/mcp", ln: ln, up: up}, be, cat
}

func TestFederatedCatalog(t *testing.T) {
	h, _, cat := newFedHarness(t)
	acme := Caller{Tenant: "acme"}
	echo, ok := cat.Lookup(acme, "acme__gh__echo")
	if !ok {
		t.Fatal("echo not in the catalog")
	}
	if echo.Title != "Echo" || echo.Description != "Says it back." || strings.Contains(string(echo.InputSchema), "\u2066") {
		t.Errorf("invisible characters kept: %q %q %s", echo.Title, echo.Description, echo.InputSchema)
	}
	if echo.UpstreamName != "echo" || echo.Operation != nil || string(echo.OutputSchema) != `{"type":"object"}` {
		t.Errorf("echo = %+v", echo)
	}
	// The upstream's hint, and the MCP defaults for the unset ones.
	if a := echo.Annotations; !a.ReadOnly || !a.Destructive || a.Idempotent || !a.OpenWorld {
		t.Errorf("annotations = %+v", a)
	}
	if a := mustLookup(t, cat, acme, "acme__gh__modern").Annotations; a.ReadOnly || !a.Destructive || a.Idempotent || !a.OpenWorld {
		t.Errorf("default annotations = %+v", a)
	}
	// The operation keeps its name; the upstream's tool is reported.
	if taken := mustLookup(t, cat, acme, "acme__gh__taken"); taken.Operation == nil || taken.Operation.Name != "taken" {
		t.Errorf("acme__gh__taken is %+v, want billing's operation", taken)
	}
	probs := cat.Problems(spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: "gh"})
	if len(probs) != 2 || !strings.Contains(strings.Join(probs, "\n"), `upstream tool "taken" is not exposed: its name "acme__gh__taken" is already the operation "taken" of Tool/acme/billing`) ||
		!strings.Contains(strings.Join(probs, "\n"), `upstream tool "loose" does not compile`) {
		t.Errorf("problems = %q", probs)
	}
	if _, ok := cat.Lookup(Caller{Tenant: "globex"}, "acme__gh__echo"); ok {
		t.Error("globex sees acme's federated tool")
	}

	// tools/list over the wire: the entry as agents get it.
	r := h.post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "Authorization: Bearer "+tokAcme)
	var list struct {
		Result struct{ Tools []map[string]any }
	}
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	for _, tl := range list.Result.Tools {
		if tl["name"] == "acme__gh__echo" {
			got = tl
		}
	}
	if got == nil || got["outputSchema"] == nil || got["description"] != "Says it back." || got["title"] != "Echo" {
		t.Errorf("tools/list entry = %v", got)
	}
	// The Tool's documentation lists its federated tools.
	r = h.post(`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"stoa://tools/acme/gh"}}`, "Authorization: Bearer "+tokAcme)
	if !strings.Contains(string(r.body), "acme__gh__echo") || strings.Contains(string(r.body), "127.0.0.1:1") {
		t.Errorf("documentation = %s", r.body)
	}
}

func mustLookup(t *testing.T, cat *Catalog, c Caller, name string) *Tool {
	t.Helper()
	tl, ok := cat.Lookup(c, name)
	if !ok {
		t.Fatalf("%s not in the catalog", name)
	}
	return tl
}

func TestFederatedCall(t *testing.T) {
	h, be, _ := newFedHarness(t)
	call := func(name, args string, modern bool) map[string]json.RawMessage {
		t.Helper()
		params := `"name":"` + name + `","arguments":` + args
		var r rawResponse
		if modern {
			r = h.post(modernBody(1, "tools/call", params), modernHeaders(tokAcme, "tools/call", name)...)
		} else {
			r = h.post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{`+params+`}}`, "Authorization: Bearer "+tokAcme)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatalf("%s: %s", name, r.body)
		}
		return m
	}
	// Verbatim: byte for byte, unknown content types included.
	if res := call("acme__gh__echo", `{"q":"x"}`, false); string(res["result"]) != verbatimResult {
		t.Errorf("legacy result = %s\nwant %s", res["result"], verbatimResult)
	}
	// 2026-07-28 callers: resultType added, nothing else changed.
	if res := call("acme__gh__echo", `{"q":"x"}`, true); string(res["result"]) != `{"resultType":"complete",`+verbatimResult[1:] {
		t.Errorf("modern result = %s", res["result"])
	}
	if res := call("acme__gh__modern", `{}`, true); string(res["result"]) != `{"content":[],"resultType":"complete"}` {
		t.Errorf("modern upstream result = %s", res["result"])
	}
	if res := call("acme__gh__empty", `{}`, true); string(res["result"]) != `{"resultType":"complete" }` {
		t.Errorf("empty result = %s", res["result"])
	}
	// Arguments are checked against the upstream's schema first.
	be.calls = nil
	if res := call("acme__gh__echo", `{"q":1}`, false); !strings.Contains(string(res["error"]), "-32602") || len(be.calls) != 0 {
		t.Errorf("invalid args: %s (calls %v)", res["error"], be.calls)
	}
	// An uncompilable schema: the upstream checks.
	if res := call("acme__gh__loose", `{"any":1}`, false); !strings.Contains(string(res["result"]), `"isError":true`) || len(be.calls) != 1 {
		t.Errorf("loose: %s", res["result"])
	}
	// A tool gone upstream answers like one that never existed.
	gone, missing := call("acme__gh__gone", `{}`, false), call("acme__gh__nope", `{}`, false)
	if strings.Replace(string(gone["error"]), "gone", "nope", 1) != string(missing["error"]) {
		t.Errorf("gone %s, missing %s", gone["error"], missing["error"])
	}
	if res := call("acme__gh__badargs", `{}`, false); !strings.Contains(string(res["error"]), `"code":-32602`) || !strings.Contains(string(res["error"]), "missing field q") {
		t.Errorf("upstream -32602: %s", res["error"])
	}
	for name, want := range map[string]string{
		"acme__gh__rpcfail":   "upstream error -32603: database is locked",
		"acme__gh__down":      errBoom.Error(),
		"acme__gh__notobject": "sent a result that is not a JSON object",
	} {
		res := call(name, `{}`, false)
		var r struct {
			Content []struct{ Text string }
			IsError bool
		}
		json.Unmarshal(res["result"], &r)
		if !r.IsError || len(r.Content) != 1 || !strings.Contains(r.Content[0].Text, want) {
			t.Errorf("%s: %s, want isError with %q", name, res["result"], want)
		}
	}
	// Another tenant cannot call it, by any name.
	r := h.post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"acme__gh__echo","arguments":{"q":"x"}}}`, "Authorization: Bearer "+tokGlobex)
	if !strings.Contains(string(r.body), "Unknown tool: acme__gh__echo") {
		t.Errorf("globex calling acme's tool: %s", r.body)
	}
}

func TestFederatedResources(t *testing.T) {
	h, _, _ := newFedHarness(t)
	read := func(token, uri string) string {
		t.Helper()
		return string(h.post(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"`+uri+`"}}`, "Authorization: Bearer "+token).body)
	}
	r := h.post(`{"jsonrpc":"2.0","id":1,"method":"resources/list"}`, "Authorization: Bearer "+tokAcme)
	if !strings.Contains(string(r.body), `{"uri":"stoa://tools/acme/gh/upstream/file:///a.txt","name":"a.txt","mimeType":"text/plain"}`) {
		t.Errorf("resources/list = %s", r.body)
	}
	if r := h.post(`{"jsonrpc":"2.0","id":1,"method":"resources/list"}`, "Authorization: Bearer "+tokGlobex); strings.Contains(string(r.body), "acme/gh") {
		t.Errorf("globex lists acme's resources: %s", r.body)
	}
	if got := read(tokAcme, "stoa://tools/acme/gh/upstream/file:///a.txt"); !strings.Contains(got, `"text":"body of stoa://tools/acme/gh/upstream/file:///a.txt"`) {
		t.Errorf("read listed = %s", got)
	}
	// Under the prefix but not listed (a template): routed to the upstream.
	if got := read(tokAcme, "stoa://tools/acme/gh/upstream/file:///b.txt"); !strings.Contains(got, "body of") {
		t.Errorf("read unlisted = %s", got)
	}
	notFound := func(uri string) string {
		return `{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"Resource not found","data":{"uri":"` + uri + `"}}}`
	}
	for _, c := range []struct{ token, uri string }{
		{tokGlobex, "stoa://tools/acme/gh/upstream/file:///a.txt"},
		{tokAcme, "stoa://tools/acme/gh/upstream/missing"},
		{tokAcme, "stoa://tools/acme/billing/upstream/file:///a.txt"},
		{tokAcme, "stoa://tools/acme/gh/upstreamx/file:///a.txt"},
	} {
		if got := read(c.token, c.uri); got != notFound(c.uri) {
			t.Errorf("%s reading %s = %s", c.token, c.uri, got)
		}
	}
}
