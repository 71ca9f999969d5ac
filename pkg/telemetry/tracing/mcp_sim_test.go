package tracing

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

// mcpMeta is the trace context an MCP request carries in params._meta
// (MCP conventions; SEP-414 keeps the W3C keys unprefixed).
type mcpMeta struct {
	Traceparent string `json:"traceparent,omitempty"`
	Tracestate  string `json:"tracestate,omitempty"`
}

type mcpRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments,omitempty"`
		Meta      *mcpMeta        `json:"_meta,omitempty"`
	} `json:"params"`
}

// federatedUpstream is an MCP server over Streamable HTTP that answers
// every tools/call with an isError result and records the trace context
// of what it got.
type federatedUpstream struct {
	srv    *httptest.Server
	mu     sync.Mutex
	meta   []mcpMeta
	header []string
}

func newFederatedUpstream(t *testing.T) *federatedUpstream {
	f := &federatedUpstream{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req mcpRequest
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil || req.Method != "tools/call" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		if req.Params.Meta != nil {
			f.meta = append(f.meta, *req.Params.Meta)
		}
		f.header = append(f.header, r.Header.Get(HeaderTraceparent))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":{"content":[{"type":"text","text":"no forecast for Atlantis"}],"isError":true}}`))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// simMCPCall drives the API as pkg/mcp is to: a server span per
// tools/call parented on params._meta (the HTTP traceparent linked), a
// limits child, and a client span for the federated call whose id goes
// upstream in params._meta and in the HTTP traceparent header.
func simMCPCall(t *testing.T, tr *Tracer, body []byte, httpTraceparent string, peer netip.AddrPort, up *federatedUpstream) {
	var req mcpRequest
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	in := Incoming{Peer: peer.Addr(), Traceparent: []byte(httpTraceparent)}
	if m := req.Params.Meta; m != nil && m.Traceparent != "" {
		in.Traceparent, in.Tracestate, in.Link = []byte(m.Traceparent), []byte(m.Tracestate), []byte(httpTraceparent)
	}
	sp := tr.Start(&in, "tools/call", KindServer)
	defer sp.End()
	if sp.Recording() {
		sp.SetMCP(&MCP{Method: req.Method, Tool: req.Params.Name, RequestID: req.ID, SessionID: []byte("sess-9"),
			ProtocolVersion: "2025-11-25", Transport: "tcp", Client: peer})
		sp.SetString(AttrTenant, "acme")
	}
	lim := sp.StartChild("limits", KindInternal)
	lim.End()

	fed := sp.StartChild("tools/call", KindClient)
	host := strings.TrimPrefix(up.srv.URL, "http://")
	fed.SetMCP(&MCP{Method: "tools/call", Tool: "forecast", RequestID: []byte("1"), ProtocolVersion: "2025-11-25", Transport: "tcp", Server: host})
	out := mcpRequest{JSONRPC: "2.0", ID: json.RawMessage("1"), Method: "tools/call"}
	out.Params.Name = "forecast"
	out.Params.Arguments = req.Params.Arguments
	var tb traceBuf
	if fed.IsValid() {
		out.Params.Meta = &mcpMeta{Traceparent: string(fed.AppendTraceparent(tb[:0])), Tracestate: string(fed.Tracestate())}
	}
	b, _ := json.Marshal(out)
	hreq, _ := http.NewRequest(http.MethodPost, up.srv.URL+"/mcp", bytes.NewReader(b))
	hreq.Header.Set("Content-Type", "application/json")
	if fed.IsValid() {
		hreq.Header.Set(HeaderTraceparent, string(fed.AppendTraceparent(tb[:0])))
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		fed.SetError("connect_error", err.Error())
		fed.End()
		sp.SetToolError()
		return
	}
	var res struct {
		Result struct {
			IsError bool `json:"isError"`
		} `json:"result"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if res.Result.IsError {
		fed.SetToolError()
		sp.SetToolError()
	}
	fed.End()
}

func TestMCPFederatedSpanTree(t *testing.T) {
	srv := otlptest.NewServer(t)
	cfg := testConfig(srv)
	cfg.Accept = AcceptAll // an agent's own trace continues from anywhere
	tr := newTracer(t, cfg)
	up := newFederatedUpstream(t)

	const metaTrace, metaSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	const httpTP = "00-11111111111111111111111111111111-2222222222222222-01"
	body := []byte(`{"jsonrpc":"2.0","id":"call-7","method":"tools/call","params":{"name":"acme__weather__forecast","arguments":{"city":"Atlantis"},` +
		`"_meta":{"traceparent":"00-` + metaTrace + `-` + metaSpan + `-01","tracestate":"agent=42"}}}`)
	simMCPCall(t, tr, body, httpTP, netip.MustParseAddrPort("198.51.100.9:6000"), up)
	flush(t, tr)
	spans := srv.WaitSpans(t, 3)

	root := otlptest.One(t, spans, "tools/call acme__weather__forecast")
	if root.TraceID != metaTrace || root.ParentSpanID != metaSpan || root.Kind != "server" {
		t.Fatalf("MCP server span trace=%s parent=%s kind=%s, want params._meta's context", root.TraceID, root.ParentSpanID, root.Kind)
	}
	if len(root.Links) != 1 || root.Links[0].TraceID != strings.Repeat("1", 32) {
		t.Errorf("links %v, want the HTTP request's context", root.Links)
	}
	wantAttrs(t, root, map[string]any{
		"mcp.method.name": "tools/call", "gen_ai.tool.name": "acme__weather__forecast", "gen_ai.operation.name": "execute_tool",
		"jsonrpc.request.id": "call-7", "mcp.session.id": "sess-9", "mcp.protocol.version": "2025-11-25",
		"network.transport": "tcp", "client.address": "198.51.100.9", "client.port": int64(6000),
		"error.type": "tool_error", "stoa.tenant": "acme",
	})
	if root.StatusCode != "error" {
		t.Errorf("isError result: server span status %s", root.StatusCode)
	}
	kids := otlptest.Children(spans, root)
	if len(kids) != 2 || kids[0].Name != "limits" || kids[1].Name != "tools/call forecast" {
		t.Fatalf("children:\n%s", otlptest.Dump(spans))
	}
	fed := kids[1]
	if fed.Kind != "client" || fed.Attrs["server.address"] != "127.0.0.1" || fed.Attrs["gen_ai.tool.name"] != "forecast" || fed.Attrs["error.type"] != "tool_error" {
		t.Errorf("federated span kind=%s attrs=%v", fed.Kind, fed.Attrs)
	}

	up.mu.Lock()
	defer up.mu.Unlock()
	want := "00-" + metaTrace + "-" + fed.SpanID + "-01"
	if len(up.meta) != 1 || up.meta[0].Traceparent != want || up.meta[0].Tracestate != "agent=42" {
		t.Errorf("upstream params._meta %+v, want traceparent %s and the agent's tracestate", up.meta, want)
	}
	if len(up.header) != 1 || up.header[0] != want {
		t.Errorf("upstream traceparent header %v, want %s", up.header, want)
	}
}

// TestControlSpan: apply from the LocalAPI (a local caller) continues the
// CLI's trace even though no peer is trusted.
func TestControlSpan(t *testing.T) {
	srv := otlptest.NewServer(t)
	cfg := testConfig(srv)
	cfg.Trusted = nil
	cfg.SampleRatio = 0
	tr := newTracer(t, cfg)
	sp := tr.Start(&Incoming{Local: true, Traceparent: []byte("00-" + clientTrace + "-" + clientSpan + "-01")}, "apply", KindInternal)
	sp.SetInt(AttrRevision, 12)
	sp.SetInt(AttrChanges, 3)
	sp.SetBool(AttrDryRun, false)
	sp.End()
	rb := tr.Start(nil, "rollback", KindInternal) // no caller: a new trace, ratio 0 → not recorded
	if rb.Recording() || !rb.IsValid() {
		t.Errorf("rollback without a caller at ratio 0: recording=%v valid=%v", rb.Recording(), rb.IsValid())
	}
	rb.End()
	flush(t, tr)
	s := otlptest.One(t, srv.WaitSpans(t, 1), "apply")
	if s.TraceID != clientTrace || s.ParentSpanID != clientSpan || s.Kind != "internal" {
		t.Errorf("apply span %+v", s)
	}
	wantAttrs(t, s, map[string]any{"stoa.revision": int64(12), "stoa.changes": int64(3), "stoa.dry_run": false})
}
