package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Federation end to end: a real stoad federates MCP servers (Tools with
// protocol: mcp) — the official Go SDK server in this test process over
// Streamable HTTP, and the MCP project's reference server
// (@modelcontextprotocol/server-everything, npm) over stdio and Streamable
// HTTP — and real MCP clients (the official Go SDK client) use them through
// stoad.

// fedUpstream is the official SDK server on a loopback listener. It
// records every request's headers and the raw result of every tools/call
// it answers.
type fedUpstream struct {
	srv *sdk.Server
	ts  *httptest.Server
	URL string

	// calls counts the tools/call requests that reached the server.
	calls atomic.Int32

	mu      sync.Mutex
	metas   []sdk.Meta // params._meta of each echo call
	headers []http.Header
	results []json.RawMessage
}

func newFedUpstream(t *testing.T) *fedUpstream {
	t.Helper()
	u := &fedUpstream{srv: sdk.NewServer(&sdk.Implementation{Name: "fed-e2e", Version: "1.0"}, nil)}
	obj := json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`)
	u.srv.AddTool(&sdk.Tool{Name: "echo", Description: "Echo the text back.", InputSchema: obj,
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			var in struct{ Text string }
			json.Unmarshal(req.Params.Arguments, &in)
			u.mu.Lock()
			u.metas = append(u.metas, req.Params.Meta)
			u.mu.Unlock()
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "echo: " + in.Text}}}, nil
		})
	u.srv.AddTool(&sdk.Tool{Name: "add", Description: "Add two integers.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}}}`)},
		func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			var in struct{ A, B int64 }
			json.Unmarshal(req.Params.Arguments, &in)
			return &sdk.CallToolResult{
				Meta:              sdk.Meta{"vendor.example/trace": "t-1"},
				Content:           []sdk.Content{&sdk.TextContent{Text: fmt.Sprint(in.A + in.B)}},
				StructuredContent: map[string]any{"sum": in.A + in.B, "note": "exact: 0.1"},
			}, nil
		})
	u.srv.AddTool(&sdk.Tool{Name: "slow", InputSchema: json.RawMessage(`{"type":"object","properties":{"ms":{"type":"integer"}}}`)},
		func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			var in struct{ Ms int }
			json.Unmarshal(req.Params.Arguments, &in)
			select {
			case <-time.After(time.Duration(in.Ms) * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "slept"}}}, nil
		})
	for _, name := range []string{"hidden_admin", "create_issue"} {
		u.srv.AddTool(&sdk.Tool{Name: name, InputSchema: json.RawMessage(`{"type":"object"}`)},
			func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: name + " done"}}}, nil
			})
	}
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return u.srv },
		&sdk.StreamableHTTPOptions{PropagateRequestCancellation: true})
	u.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !bytes.Contains(body, []byte(`"tools/call"`)) {
			h.ServeHTTP(w, r)
			return
		}
		u.calls.Add(1)
		rec := &teeWriter{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		u.mu.Lock()
		u.results = append(u.results, sseResults(rec.buf.Bytes())...)
		u.mu.Unlock()
	}))
	u.URL = u.ts.URL + "/mcp"
	t.Cleanup(u.stop)
	return u
}

// stop takes the server away (connections closed, nothing listening).
func (u *fedUpstream) stop() {
	u.ts.CloseClientConnections()
	u.ts.Close()
}

func (u *fedUpstream) seen() ([]http.Header, []json.RawMessage) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.headers), slices.Clone(u.results)
}

// teeWriter keeps a copy of what a handler writes.
type teeWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	return w.ResponseWriter.Write(p)
}

func (w *teeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// sseResults returns the raw "result" of the JSON-RPC responses in an SSE
// or JSON body, byte for byte.
func sseResults(body []byte) []json.RawMessage {
	var out []json.RawMessage
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := bytes.TrimPrefix(sc.Bytes(), []byte("data: "))
		var m struct{ Result json.RawMessage }
		if json.Unmarshal(line, &m) == nil && m.Result != nil {
			out = append(out, slices.Clone(m.Result))
		}
	}
	return out
}

const fedToken = "stoad-own-secret-7f3a"

// fedSpecs federates up as acme/gh (deny hidden_*, rename create_issue)
// and acme/ghslow (only slow, 1s timeout), with plans: shop is
// unlimited, tight-bot may call 2 per minute.
func fedSpecs(up string) string {
	return doc("Tenant", "", "acme", "displayName: Acme") +
		doc("Tenant", "", "globex", "displayName: Globex") +
		doc("Tool", "acme", "gh", `protocol: mcp
description: Code hosting, through its MCP server
auth: {type: apiKey}
mcp:
  url: `+up+`
  timeout: 1h
  tools:
    deny: ["hidden_*"]
    rename: {create_issue: open_issue}
upstreamAuth:
  secretRef: {env: FED_TOKEN}`) +
		doc("Tool", "acme", "ghslow", `protocol: mcp
mcp:
  url: `+up+`
  timeout: 1s
  tools: {allow: [slow]}
upstreamAuth:
  secretRef: {env: FED_TOKEN}`) +
		doc("Plan", "acme", "open", "rateLimit: 100000/s") +
		doc("Plan", "acme", "tight", "rateLimit: {rate: 2/min, burst: 2}") +
		doc("Consumer", "acme", "shop", "displayName: Shop") +
		doc("Consumer", "acme", "tight-bot", "displayName: Tight") +
		doc("Subscription", "acme", "shop-gh", "consumer: shop\nplan: open\ntool: gh") +
		doc("Subscription", "acme", "shop-slow", "consumer: shop\nplan: open\ntool: ghslow") +
		doc("Subscription", "acme", "tight-gh", "consumer: tight-bot\nplan: tight\ntool: gh") +
		doc("Plan", "acme", "metered", "rateLimit: 100/s\nquota: {daily: 2}") +
		doc("Consumer", "acme", "metered-bot", "displayName: Metered") +
		doc("Subscription", "acme", "metered-gh", "consumer: metered-bot\nplan: metered\ntool: gh") +
		doc("Consumer", "acme", "slow-only", "displayName: Slow only") +
		doc("Subscription", "acme", "slow-only-slow", "consumer: slow-only\nplan: open\ntool: ghslow") +
		doc("Consumer", "globex", "bot", "displayName: Bot")
}

// fedClient connects the official SDK client to stoad with key, sending
// also a cookie (which must never reach an upstream); changed receives
// its tools/list_changed notifications.
func fedClient(t *testing.T, d *Daemon, key, version string, changed chan<- string, label string) *sdk.ClientSession {
	t.Helper()
	opts := &sdk.ClientOptions{}
	if changed != nil {
		opts.ToolListChangedHandler = func(context.Context, *sdk.ToolListChangedRequest) { changed <- label }
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "fed-e2e", Version: "1"}, opts)
	hdr := bearer(key)
	hdr.Set("Cookie", "session=caller-cookie-9d2e")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, httpTransport("http://"+d.Listen+"/mcp", hdr, ""), &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func fedCallText(t *testing.T, cs *sdk.ClientSession, name string, args any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n"), res.IsError
}

// fedComponent returns the "federation" line of stoa status.
func fedComponent(t *testing.T, d *Daemon) (state, detail string, data map[string]any) {
	t.Helper()
	var st struct {
		Components []struct {
			Name, State, Detail string
			Data                map[string]any
		}
	}
	jsonOut(t, d, &st, "status")
	for _, c := range st.Components {
		if c.Name == "federation" {
			return c.State, c.Detail, c.Data
		}
	}
	t.Fatalf("no federation component in stoa status")
	return
}

func TestFedSDKUpstream(t *testing.T) {
	up := newFedUpstream(t)
	d := NewDaemon(t)
	d.Env = []string{"FED_TOKEN=" + fedToken}
	d.Start()
	apply(t, d, fedSpecs(up.URL))
	shopKey := createKey(t, d, "acme", "shop")
	tightKey := createKey(t, d, "acme", "tight-bot")
	globexKey := createKey(t, d, "globex", "bot")

	changed := make(chan string, 32)
	clients := map[string]*sdk.ClientSession{}
	for _, era := range eras {
		clients[era.name] = fedClient(t, d, shopKey, era.version, changed, "acme "+era.name)
	}
	globex := fedClient(t, d, globexKey, "", changed, "globex")

	for _, era := range eras {
		t.Run("list and call "+era.name, func(t *testing.T) {
			cs := clients[era.name]
			names, _ := listAll(t, cs)
			for _, want := range []string{"acme__gh__echo", "acme__gh__add", "acme__gh__slow", "acme__gh__open_issue", "acme__ghslow__slow"} {
				if !slices.Contains(names, want) {
					t.Errorf("%s not listed: %v", want, names)
				}
			}
			for _, hidden := range []string{"acme__gh__hidden_admin", "acme__gh__create_issue", "acme__ghslow__echo"} {
				if slices.Contains(names, hidden) {
					t.Errorf("%s listed: %v", hidden, names)
				}
			}
			if txt, isErr := fedCallText(t, cs, "acme__gh__echo", map[string]any{"text": "hi " + era.name}); isErr || txt != "echo: hi "+era.name {
				t.Errorf("echo = %q (isError %v)", txt, isErr)
			}
			if txt, isErr := fedCallText(t, cs, "acme__gh__open_issue", map[string]any{}); isErr || txt != "create_issue done" {
				t.Errorf("renamed tool = %q (isError %v)", txt, isErr)
			}
			res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "acme__gh__add", Arguments: map[string]any{"a": 2, "b": 3}})
			if sc, _ := res.StructuredContent.(map[string]any); err != nil || res.IsError || sc["sum"] != float64(5) {
				t.Errorf("add = %+v, %v", res, err)
			}
			// A hidden tool is unknown by its stoa name and by its upstream
			// name, exactly like a tool that never existed.
			_, errHidden := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "acme__gh__hidden_admin"})
			_, errNone := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "acme__gh__nothing_here"})
			if errHidden == nil || rpcCode(t, errHidden) != -32602 ||
				strings.Replace(errHidden.Error(), "hidden_admin", "nothing_here", 1) != errNone.Error() {
				t.Errorf("hidden tool: %v; missing tool: %v", errHidden, errNone)
			}
			// Arguments are checked against the upstream's schema by stoad.
			if _, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "acme__gh__echo", Arguments: map[string]any{"text": 7}}); err == nil || rpcCode(t, err) != -32602 {
				t.Errorf("invalid arguments: %v", err)
			}
		})
	}

	t.Run("result verbatim", func(t *testing.T) {
		_, before := up.seen()
		status, _, body := rawPost(t, nil, "http://"+d.Listen+"/mcp",
			`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"acme__gh__add","arguments":{"a":40,"b":2}}}`,
			"Authorization: Bearer "+shopKey, "MCP-Protocol-Version: 2025-11-25")
		var resp struct{ Result json.RawMessage }
		if err := json.Unmarshal(body, &resp); err != nil || status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		// The upstream's handler records its result after stoad may
		// already have read it, and a call of an earlier subtest may be
		// recorded late too: look for this result among those recorded
		// since, rather than counting them.
		found := false
		waitUntil(t, 10*time.Second, "an upstream result equal to stoad's "+string(resp.Result), func() bool {
			_, after := up.seen()
			for _, r := range after[min(len(before), len(after)):] {
				if string(r) == string(resp.Result) {
					found = true
				}
			}
			return found
		})
		if !strings.Contains(string(resp.Result), `"vendor.example/trace":"t-1"`) {
			t.Errorf("_meta lost: %s", resp.Result)
		}
	})

	t.Run("plan limit", func(t *testing.T) {
		cs := fedClient(t, d, tightKey, "2025-11-25", nil, "")
		for i := 1; i <= 3; i++ {
			txt, isErr := fedCallText(t, cs, "acme__gh__echo", map[string]any{"text": "n"})
			if i <= 2 && isErr {
				t.Fatalf("call %d refused: %s", i, txt)
			}
			if i == 3 && (!isErr || !strings.Contains(txt, "rate limit exceeded (plan limit)") || !strings.Contains(txt, "HTTP 429")) {
				t.Fatalf("third call: %q (isError %v), want the plan's 429", txt, isErr)
			}
		}
	})

	t.Run("quota and subscriptions", func(t *testing.T) {
		// The plan's daily quota of 2 counts federated calls; the third is
		// refused before anything reaches the upstream.
		cs := fedClient(t, d, createKey(t, d, "acme", "metered-bot"), "2025-11-25", nil, "")
		before := up.calls.Load()
		for i := 1; i <= 3; i++ {
			txt, isErr := fedCallText(t, cs, "acme__gh__echo", map[string]any{"text": "q"})
			if i <= 2 && isErr {
				t.Fatalf("call %d refused: %s", i, txt)
			}
			if i == 3 && (!isErr || !strings.Contains(txt, "quota_exceeded") || !strings.Contains(txt, "daily quota of 2 calls used up (subscription metered-gh, plan metered)")) {
				t.Fatalf("third call: %q (isError %v), want the quota's 429", txt, isErr)
			}
		}
		if n := up.calls.Load() - before; n != 2 {
			t.Errorf("the upstream got %d calls, want 2 (the refused one must not be sent)", n)
		}
		// A consumer subscribed to ghslow only: gh's tools are neither
		// listed nor callable, and the refusal says why.
		so := fedClient(t, d, createKey(t, d, "acme", "slow-only"), "2025-11-25", nil, "")
		names, _ := listAll(t, so)
		if !slices.Contains(names, "acme__ghslow__slow") || slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "acme__gh__") }) {
			t.Errorf("slow-only lists %v", names)
		}
		before = up.calls.Load()
		txt, isErr := fedCallText(t, so, "acme__gh__echo", map[string]any{"text": "x"})
		if !isErr || !strings.Contains(txt, "no_subscription") || !strings.Contains(txt, "no active subscription to gh for consumer slow-only") {
			t.Errorf("unsubscribed call: %q (isError %v)", txt, isErr)
		}
		if up.calls.Load() != before {
			t.Error("an unsubscribed call reached the upstream")
		}
	})

	t.Run("caller credential never forwarded", func(t *testing.T) {
		hdrs, _ := up.seen()
		if len(hdrs) == 0 {
			t.Fatal("no request reached the upstream")
		}
		for i, h := range hdrs {
			if got := h.Get("Authorization"); got != "Bearer "+fedToken {
				t.Errorf("request %d: Authorization %q, want stoad's own credential", i, got)
			}
			for k, vs := range h {
				for _, v := range vs {
					if strings.Contains(v, shopKey) || strings.Contains(v, tightKey) || strings.Contains(v, "caller-cookie") || strings.HasPrefix(v, "stoa_sk_") {
						t.Errorf("request %d carries the caller's credential in %s: %q", i, k, v)
					}
				}
			}
		}
	})

	t.Run("list_changed", func(t *testing.T) {
		// Let the SDK clients open their notification streams.
		time.Sleep(500 * time.Millisecond)
		for len(changed) > 0 {
			<-changed
		}
		up.srv.AddTool(&sdk.Tool{Name: "late", Description: "Added at run time.", InputSchema: json.RawMessage(`{"type":"object"}`)},
			func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "late one"}}}, nil
			})
		want := map[string]bool{"acme 2025-11-25": true, "acme 2026-07-28": true}
		deadline := time.After(20 * time.Second)
		for len(want) > 0 {
			select {
			case who := <-changed:
				if who == "globex" {
					t.Fatal("globex was told about acme's upstream change")
				}
				delete(want, who)
			case <-deadline:
				t.Fatalf("no notifications/tools/list_changed for %v", want)
			}
		}
		for _, era := range eras {
			names, _ := listAll(t, clients[era.name])
			if !slices.Contains(names, "acme__gh__late") {
				t.Errorf("%s: new tool not listed: %v", era.name, names)
			}
		}
		if txt, isErr := fedCallText(t, clients["2025-11-25"], "acme__gh__late", nil); isErr || txt != "late one" {
			t.Errorf("late = %q", txt)
		}
		// globex: a change of its own reaches it; had acme's change been
		// announced to it too, it would have arrived first.
		apply(t, d, doc("Tool", "globex", "weather", "protocol: rest\nupstream: http://127.0.0.1:1\nauth: {type: apiKey}\noperations:\n  - {name: current, method: GET, path: /current}")+
			doc("Plan", "globex", "open", "rateLimit: 100/s")+doc("Subscription", "globex", "bot-weather", "consumer: bot\nplan: open\ntool: weather"))
		gotGlobex := 0
		deadline = time.After(20 * time.Second)
	wait:
		for {
			select {
			case who := <-changed:
				if who == "globex" {
					gotGlobex++
					break wait
				}
			case <-deadline:
				t.Fatal("globex got no notification for its own change")
			}
		}
		time.Sleep(300 * time.Millisecond)
		for len(changed) > 0 {
			if <-changed == "globex" {
				gotGlobex++
			}
		}
		if gotGlobex != 1 {
			t.Errorf("globex got %d notifications, want 1 (its own change)", gotGlobex)
		}
		if names, _ := listAll(t, globex); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "acme__") }) {
			t.Errorf("globex lists acme's tools: %v", names)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		txt, isErr := fedCallText(t, clients["2025-11-25"], "acme__ghslow__slow", map[string]any{"ms": 30000})
		if !isErr || !strings.Contains(txt, "upstream acme/ghslow did not answer within 1s") {
			t.Errorf("slow call: %q (isError %v)", txt, isErr)
		}
		if strings.Contains(txt, up.ts.Listener.Addr().String()) {
			t.Errorf("error names the upstream's address: %q", txt)
		}
	})

	t.Run("status", func(t *testing.T) {
		state, detail, data := fedComponent(t, d)
		if state != "ok" || !strings.Contains(detail, "2 MCP servers, 2 ready") || !strings.HasPrefix(fmt.Sprint(data["acme/gh"]), "ready, 2025-11-25") {
			t.Errorf("federation: %s %q %v", state, detail, data)
		}
	})

	t.Run("upstream down", func(t *testing.T) {
		up.stop()
		txt, isErr := fedCallText(t, clients["2025-11-25"], "acme__gh__echo", map[string]any{"text": "anyone?"})
		if !isErr || !strings.Contains(txt, "upstream acme/gh") || !strings.Contains(txt, "unavailable") {
			t.Errorf("call to a stopped upstream: %q (isError %v)", txt, isErr)
		}
		waitUntil(t, 20*time.Second, "federation degraded", func() bool {
			state, detail, _ := fedComponent(t, d)
			return state == "degraded" && strings.Contains(detail, "down: acme/gh")
		})
		var info struct{ StructuredContent map[string]any }
		res, err := clients["2025-11-25"].CallTool(context.Background(), &sdk.CallToolParams{Name: "stoa_platform_info"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(res)
		json.Unmarshal(b, &info)
		if info.StructuredContent["health"] != "degraded" {
			t.Errorf("acme's platform info: %v", info.StructuredContent)
		}
		// globex has no federated server: its view is not degraded.
		res, err = globex.CallTool(context.Background(), &sdk.CallToolParams{Name: "stoa_platform_info"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ = json.Marshal(res)
		json.Unmarshal(b, &info)
		if info.StructuredContent["health"] != "ok" || strings.Contains(string(b), "federation") {
			t.Errorf("globex's platform info: %s", b)
		}
		resp, err := http.Get("http://" + d.Ops + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		met, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`stoa_mcp_upstream_up{tenant="acme",tool="gh"} 0`, `stoa_mcp_upstream_up{tenant="acme",tool="ghslow"}`,
			`stoa_mcp_upstream_call_duration_seconds_count{outcome="ok",tenant="acme",tool="gh"}`,
			// refused: the plan limit, the quota and the missing subscription.
			`stoa_mcp_upstream_call_duration_seconds_count{outcome="refused",tenant="acme",tool="gh"} 3`,
			`stoa_mcp_upstream_call_duration_seconds_count{outcome="timeout",tenant="acme",tool="ghslow"} 1`} {
			if !strings.Contains(string(met), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})

	t.Run("snapshots", func(t *testing.T) {
		var list struct {
			Items []struct {
				Tool, Method, Target, Reason, Consumer string
				Status                                 int
			}
		}
		waitUntil(t, 10*time.Second, "two snapshots", func() bool {
			jsonOut(t, d, &list, "snapshots", "list", "-n", "acme")
			return len(list.Items) >= 2
		})
		got := map[string]string{}
		for _, s := range list.Items {
			got[s.Tool] = fmt.Sprintf("%s %d %s %s", s.Reason, s.Status, s.Target, s.Consumer)
		}
		if got["ghslow"] != "timeout 504 tools/call slow shop" || got["gh"] != "unavailable 502 tools/call echo shop" {
			t.Errorf("snapshots: %v", got)
		}
	})
}

// TestFedReloadKeepsSession: the runtime side of reloads — an
// unchanged upstream keeps its session across an apply, a renamed tool
// appears under its new name at once, and an invalid revision changes
// nothing.
func TestFedReloadKeepsSession(t *testing.T) {
	up := newFedUpstream(t)
	d := NewDaemon(t)
	d.Env = []string{"FED_TOKEN=" + fedToken}
	d.Start()
	apply(t, d, fedSpecs(up.URL))
	shopKey := createKey(t, d, "acme", "shop")
	cs := fedClient(t, d, shopKey, "", nil, "")
	if txt, _ := fedCallText(t, cs, "acme__gh__echo", map[string]any{"text": "a"}); txt != "echo: a" {
		t.Fatalf("echo = %q", txt)
	}
	sessions := func() map[string]bool {
		hdrs, _ := up.seen()
		ids := map[string]bool{}
		for _, h := range hdrs {
			if id := h.Get("Mcp-Session-Id"); id != "" {
				ids[id] = true
			}
		}
		return ids
	}
	before := sessions()
	// Only ghslow changes (a filter): gh's session and ghslow's stay.
	apply(t, d, strings.Replace(fedSpecs(up.URL), "tools: {allow: [slow]}", "tools: {allow: [slow, echo]}", 1)+
		doc("Tool", "acme", "gh2", "protocol: mcp\nmcp: {url: '"+up.URL+"'}\nupstreamAuth: {secretRef: {env: FED_TOKEN}}")+
		doc("Subscription", "acme", "shop-gh2", "consumer: shop\nplan: open\ntool: gh2"))
	names, _ := listAll(t, cs)
	if !slices.Contains(names, "acme__ghslow__echo") || !slices.Contains(names, "acme__gh2__echo") {
		t.Errorf("after apply: %v", names)
	}
	if txt, _ := fedCallText(t, cs, "acme__gh__echo", map[string]any{"text": "b"}); txt != "echo: b" {
		t.Fatalf("echo = %q", txt)
	}
	after := sessions()
	kept := 0
	for id := range before {
		if after[id] {
			kept++
		}
	}
	if len(before) != 2 || len(after) != 3 || kept != 2 {
		t.Errorf("sessions before %d, after %d, kept %d: want gh's and ghslow's kept and one new (gh2)", len(before), len(after), kept)
	}
	// A stdio server the Gateway does not grant: refused, nothing changes.
	f := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(f, []byte(doc("Tool", "acme", "shell", "protocol: mcp\nmcp: {command: [/bin/sh, -c, 'echo hi']}")), 0o644)
	r := d.Stoa("apply", "-f", f)
	if r.Code == 0 || !strings.Contains(r.Stderr, "allowStdio") {
		t.Errorf("ungranted stdio Tool: %s", r)
	}
	if names2, _ := listAll(t, cs); !slices.Equal(names, names2) {
		t.Errorf("a refused apply changed the tools: %v → %v", names, names2)
	}
}

// The MCP project's reference server (TypeScript SDK), from npm.
const everythingVersion = "2026.8.31"

var (
	everythingOnce sync.Once
	everythingJS   string
	everythingErr  string
)

// everythingServer installs @modelcontextprotocol/server-everything once
// into $STOA_FED_NPM_DIR (default ~/.cache/stoa-fed-npm, shared with
// pkg/mcp/federation's tests). Without node and npm it skips, except under
// CI=true where it fails.
func everythingServer(t *testing.T) (node, script string) {
	t.Helper()
	everythingOnce.Do(func() {
		_, err := exec.LookPath("node")
		npm, err2 := exec.LookPath("npm")
		if err != nil || err2 != nil {
			everythingErr = "node and npm are needed to run @modelcontextprotocol/server-everything (apt-get install nodejs npm)"
			return
		}
		dir := os.Getenv("STOA_FED_NPM_DIR")
		if dir == "" {
			cache, err := os.UserCacheDir()
			if err != nil {
				cache = os.TempDir()
			}
			dir = filepath.Join(cache, "stoa-fed-npm")
		}
		pkg := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything")
		if b, err := os.ReadFile(filepath.Join(pkg, "package.json")); err != nil || !strings.Contains(string(b), `"version": "`+everythingVersion+`"`) {
			os.MkdirAll(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"stoa-fed-npm","private":true}`), 0o644)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error",
				"@modelcontextprotocol/server-everything@"+everythingVersion).CombinedOutput()
			if err != nil {
				everythingErr = "npm install @modelcontextprotocol/server-everything@" + everythingVersion + ": " + err.Error() + "\n" + string(out)
				return
			}
		}
		everythingJS = filepath.Join(pkg, "dist", "index.js")
	})
	if everythingErr != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(everythingErr)
		}
		t.Skip(everythingErr)
	}
	node, _ = exec.LookPath("node")
	return node, everythingJS
}

// TestFedEverything federates server-everything twice: over stdio (stoad
// starts it; the Gateway grants node to acme) and over Streamable HTTP.
func TestFedEverything(t *testing.T) {
	node, js := everythingServer(t)
	addr := freePort(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	srv := exec.Command(node, js, "streamableHttp")
	srv.Env = append(os.Environ(), "PORT="+port)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	waitUntil(t, 30*time.Second, "server-everything listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	d := NewDaemon(t)
	d.Start()
	apply(t, d, doc("Gateway", "", "default", "mcp:\n  federation:\n    allowStdio: [{tenant: acme, commands: ['"+node+"']}]")+
		doc("Tenant", "", "acme", "displayName: Acme")+
		doc("Tool", "acme", "every", `protocol: mcp
mcp:
  command: ['`+node+`', '`+js+`', stdio]
  connectTimeout: 60s
  timeout: 20s
  tools:
    deny: [get-env, "trigger-*", "toggle-*"]
    rename: {echo: say}`)+
		doc("Tool", "acme", "everyhttp", `protocol: mcp
mcp:
  url: http://`+addr+`/mcp
  timeout: 20s
  tools: {allow: [echo, get-sum]}
  resources:
    expose: true
    allow: ["demo://resource/static/*"]`)+
		doc("Plan", "acme", "open", "rateLimit: 100000/s")+
		doc("Consumer", "acme", "shop", "displayName: Shop")+
		doc("Subscription", "acme", "shop-every", "consumer: shop\nplan: open\ntool: every")+
		doc("Subscription", "acme", "shop-everyhttp", "consumer: shop\nplan: open\ntool: everyhttp"))
	key := createKey(t, d, "acme", "shop")
	cs := fedClient(t, d, key, "2025-11-25", nil, "")

	var names []string
	waitUntil(t, 60*time.Second, "server-everything's tools", func() bool {
		names, _ = listAll(t, cs)
		return slices.Contains(names, "acme__every__say") && slices.Contains(names, "acme__everyhttp__echo")
	})
	for _, want := range []string{"acme__every__get-sum", "acme__everyhttp__get-sum"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s not listed: %v", want, names)
		}
	}
	for _, n := range names {
		if strings.Contains(n, "get-env") || strings.Contains(n, "trigger") || n == "acme__every__echo" ||
			(strings.HasPrefix(n, "acme__everyhttp__") && n != "acme__everyhttp__echo" && n != "acme__everyhttp__get-sum") {
			t.Errorf("hidden or renamed tool listed: %s", n)
		}
	}
	if txt, isErr := fedCallText(t, cs, "acme__every__say", map[string]any{"message": "hi over stdio"}); isErr || txt != "Echo: hi over stdio" {
		t.Errorf("stdio echo = %q (isError %v)", txt, isErr)
	}
	if txt, isErr := fedCallText(t, cs, "acme__everyhttp__echo", map[string]any{"message": "hi over http"}); isErr || txt != "Echo: hi over http" {
		t.Errorf("http echo = %q (isError %v)", txt, isErr)
	}
	if txt, isErr := fedCallText(t, cs, "acme__every__get-sum", map[string]any{"a": 2, "b": 3}); isErr || !strings.Contains(txt, "5") {
		t.Errorf("get-sum = %q (isError %v)", txt, isErr)
	}

	res, err := cs.ListResources(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var uri string
	for _, r := range res.Resources {
		if strings.HasPrefix(r.URI, "stoa://tools/acme/everyhttp/upstream/") {
			if !strings.HasPrefix(r.URI, "stoa://tools/acme/everyhttp/upstream/demo://resource/static/") {
				t.Errorf("resource outside the allowed pattern: %s", r.URI)
			}
			uri = r.URI
		}
	}
	if uri == "" {
		t.Fatalf("no federated resource listed: %+v", res.Resources)
	}
	rr, err := cs.ReadResource(context.Background(), &sdk.ReadResourceParams{URI: uri})
	if err != nil || len(rr.Contents) == 0 || rr.Contents[0].URI != uri {
		t.Errorf("read %s: %+v, %v", uri, rr, err)
	}
	_, err = cs.ReadResource(context.Background(), &sdk.ReadResourceParams{URI: "stoa://tools/acme/everyhttp/upstream/demo://resource/dynamic/1"})
	if err == nil {
		t.Error("read of a resource outside the allow pattern succeeded")
	}

	state, _, data := fedComponent(t, d)
	if state != "ok" || !strings.HasPrefix(fmt.Sprint(data["acme/every"]), "ready") || !strings.Contains(fmt.Sprint(data["acme/every"]), "pid ") {
		t.Errorf("federation: %s %v", state, data)
	}
	// stoad stops the stdio server with itself.
	var pid int
	fmt.Sscanf(fmt.Sprint(data["acme/every"])[strings.Index(fmt.Sprint(data["acme/every"]), "pid ")+4:], "%d", &pid)
	d.Stop()
	if pid > 0 {
		waitUntil(t, 10*time.Second, "the stdio server to exit with stoad", func() bool {
			_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
			return errors.Is(err, os.ErrNotExist) || zombie(pid)
		})
	}
}

// zombie reports whether pid has exited and awaits its parent's wait.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && strings.Contains(string(b), ") Z ")
}

// TestFedPerf compares, in one run, tools/call of the upstream SDK server's
// echo through stoad (federated) with the same call made directly to the
// upstream, both with the official SDK client, alternating; it reports
// the latency distributions and the p50 overhead (figures, not
// assertions). Run with STOA_FED_BENCH=1.
func TestFedPerf(t *testing.T) {
	if os.Getenv("STOA_FED_BENCH") != "1" {
		t.Skip("set STOA_FED_BENCH=1 to measure")
	}
	n := 3000
	fmt.Sscanf(os.Getenv("STOA_FED_BENCH_N"), "%d", &n)
	up := newFedUpstream(t)
	d := NewDaemon(t, "--log-level", "warn", "--pprof")
	d.Env = []string{"FED_TOKEN=" + fedToken}
	d.Start()
	// A REST Tool on an equally trivial upstream: stoad's own cost for an
	// operation, the baseline for a federated call's.
	rest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"echo":"bench"}`)
	}))
	t.Cleanup(rest.Close)
	apply(t, d, fedSpecs(up.URL)+doc("Tool", "acme", "rest", "protocol: rest\nupstream: "+rest.URL+"\nauth: {type: apiKey}\noperations:\n  - {name: echo, method: GET, path: /echo}")+
		doc("Subscription", "acme", "shop-rest", "consumer: shop\nplan: open\ntool: rest"))
	key := createKey(t, d, "acme", "shop")
	if out := os.Getenv("STOA_FED_BENCH_PROFILE"); out != "" {
		// A CPU profile of stoad during the first era's calls.
		go func() {
			resp, err := http.Get("http://" + d.Ops + "/debug/pprof/profile?seconds=8")
			if err != nil {
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			os.WriteFile(out, b, 0o644)
		}()
	}
	for _, era := range eras {
		cpu0 := procCPU(d.cmd.Process.Pid)
		via := fedClient(t, d, key, era.version, nil, "")
		client := sdk.NewClient(&sdk.Implementation{Name: "fed-bench", Version: "1"}, nil)
		direct, err := client.Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: up.URL, MaxRetries: -1,
			HTTPClient: &http.Client{Transport: headerTransport{http.Header{"Authorization": {"Bearer " + fedToken}}, http.DefaultTransport}}},
			&sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			t.Fatal(err)
		}
		var dVia, dDirect, dREST []time.Duration
		var fails atomic.Int32
		args := map[string]any{"text": "bench"}
		for i := range n + n/10 {
			for _, c := range []struct {
				cs   *sdk.ClientSession
				name string
				out  *[]time.Duration
			}{{via, "acme__gh__echo", &dVia}, {direct, "echo", &dDirect}, {via, "acme__rest__echo", &dREST}} {
				start := time.Now()
				a := args
				if c.out == &dREST {
					a = nil
				}
				res, err := c.cs.CallTool(context.Background(), &sdk.CallToolParams{Name: c.name, Arguments: a})
				el := time.Since(start)
				if err != nil || res.IsError {
					fails.Add(1)
					continue
				}
				if i >= n/10 { // warm-up excluded
					*c.out = append(*c.out, el)
				}
			}
		}
		direct.Close()
		p := func(ds []time.Duration, q float64) time.Duration {
			s := slices.Clone(ds)
			slices.Sort(s)
			return s[int(float64(len(s)-1)*q)]
		}
		t.Logf("%s client → stoad → upstream (2025-11-25 session): p50 %v p90 %v p99 %v (%d calls)", era.name, p(dVia, .5), p(dVia, .9), p(dVia, .99), len(dVia))
		t.Logf("%s client → upstream directly:                         p50 %v p90 %v p99 %v (%d calls)", "2025-11-25", p(dDirect, .5), p(dDirect, .9), p(dDirect, .99), len(dDirect))
		t.Logf("%s client → stoad → REST operation (baseline):        p50 %v p90 %v p99 %v (%d calls)", era.name, p(dREST, .5), p(dREST, .9), p(dREST, .99), len(dREST))
		t.Logf("p50 overhead of federation through stoad: %v (failures: %d); stoad CPU per call (federated + REST, averaged): %v",
			p(dVia, .5)-p(dDirect, .5), fails.Load(), (procCPU(d.cmd.Process.Pid)-cpu0)/time.Duration(2*(n+n/10)))
	}
}

// procCPU is the user+system CPU time process pid has used (Linux).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
