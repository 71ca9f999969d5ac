package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

// TestMCPTracing: a real stoad with spec.tracing exporting to an OTLP/HTTP
// receiver in the test process (official OTLP protobuf types), the
// official SDK client as the agent. A federated tools/call carrying the
// agent's trace context in params._meta gives a server span continuing
// it, a limits child and a client span for the federated call, whose
// context reaches the upstream MCP server in params._meta and the
// traceparent header; a REST tool's call without context starts a trace
// with a limits child and a client span per upstream attempt, whose
// traceparent its upstream request carries. No span
// attribute holds a credential.
func TestMCPTracing(t *testing.T) {
	collector := otlptest.NewServer(t)
	up := newFedUpstream(t)
	var restMu sync.Mutex
	var restTP []string
	rest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		restMu.Lock()
		restTP = append(restTP, r.Header.Get("traceparent"))
		restMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(rest.Close)

	d := NewDaemon(t)
	d.Env = []string{"FED_TOKEN=" + fedToken}
	d.Start()
	apply(t, d, doc("Gateway", "", "default", `tracing:
  enabled: true
  endpoint: `+collector.Endpoint()+`
  sampleRatio: 1
  accept: all
  batchTimeout: 100ms`)+fedSpecs(up.URL)+
		doc("Tool", "acme", "rest", "upstream: "+rest.URL+"\nauth: {type: apiKey}\noperations:\n  - {name: items, method: GET, path: /items}")+
		doc("Subscription", "acme", "shop-rest", "consumer: shop\nplan: open\ntool: rest")+
		doc("ToolSet", "acme", "hosted", "tools: [gh]\npolicy:\n  rules:\n    - {name: own-tenant, allow: 'caller.tenant == tool.tenant'}"))
	key := createKey(t, d, "acme", "shop")
	cs := fedClient(t, d, key, "2025-11-25", nil, "")

	const agentTrace, agentSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "acme__gh__echo", Arguments: map[string]any{"text": "traced"},
		Meta: sdk.Meta{"traceparent": "00-" + agentTrace + "-" + agentSpan + "-01", "tracestate": "agent=7"}})
	if err != nil || res.IsError {
		t.Fatalf("federated call: %+v %v", res, err)
	}
	if txt, isErr := fedCallText(t, cs, "acme__rest__items", nil); isErr {
		t.Fatalf("rest call: %s", txt)
	}

	var spans []otlptest.Span
	waitUntil(t, 20*time.Second, "the MCP spans", func() bool {
		spans = collector.Spans()
		return len(otlptest.Find(spans, "tools/call acme__gh__echo")) == 1 && len(otlptest.Find(spans, "tools/call acme__rest__items")) == 1 &&
			len(otlptest.Find(spans, "tools/call echo")) == 1 && len(otlptest.Find(spans, "GET")) == 1
	})

	t.Run("federated", func(t *testing.T) {
		root := otlptest.One(t, spans, "tools/call acme__gh__echo")
		if root.TraceID != agentTrace || root.ParentSpanID != agentSpan || root.Kind != "server" {
			t.Fatalf("server span trace %s parent %s kind %s: want the agent's _meta context\n%s", root.TraceID, root.ParentSpanID, root.Kind, otlptest.Dump(spans))
		}
		for k, want := range map[string]any{"mcp.method.name": "tools/call", "gen_ai.tool.name": "acme__gh__echo", "gen_ai.operation.name": "execute_tool",
			"mcp.protocol.version": "2025-11-25", "network.transport": "tcp", "stoa.tenant": "acme", "stoa.consumer": "shop", "client.address": "127.0.0.1"} {
			if root.Attrs[k] != want {
				t.Errorf("server span %s = %v, want %v", k, root.Attrs[k], want)
			}
		}
		kids := otlptest.Children(spans, root)
		if len(kids) != 3 || kids[0].Name != "policy" || kids[1].Name != "limits" || kids[2].Name != "tools/call echo" {
			t.Fatalf("children of the server span:\n%s", otlptest.Dump(spans))
		}
		if p := kids[0]; p.Attrs["stoa.policy.outcome"] != "allowed" || p.Attrs["stoa.policy.rule"] != `ToolSet acme/hosted policy rule "own-tenant"` {
			t.Errorf("policy span %+v", p)
		}
		fed := kids[2]
		if fed.Kind != "client" || fed.Attrs["gen_ai.tool.name"] != "echo" || fed.Attrs["server.address"] != "127.0.0.1" ||
			fed.Attrs["network.transport"] != "tcp" || fed.Attrs["stoa.tool"] != "gh" || fed.StatusCode == "error" {
			t.Errorf("federated span %+v", fed)
		}
		want := "00-" + agentTrace + "-" + fed.SpanID + "-01"
		hdrs, _ := up.seen()
		var sawHeader bool
		for _, h := range hdrs {
			sawHeader = sawHeader || h.Get("traceparent") == want
		}
		if !sawHeader {
			t.Errorf("no upstream request carried traceparent %s", want)
		}
		up.mu.Lock()
		metas := append([]sdk.Meta(nil), up.metas...)
		up.mu.Unlock()
		if len(metas) != 1 || metas[0]["traceparent"] != want || metas[0]["tracestate"] != "agent=7" {
			t.Errorf("upstream params._meta %v, want traceparent %s and the agent's tracestate", metas, want)
		}
	})

	t.Run("rest", func(t *testing.T) {
		root := otlptest.One(t, spans, "tools/call acme__rest__items")
		if root.ParentSpanID != "" || root.TraceID == agentTrace {
			t.Errorf("a call without trace context continued one: %+v", root)
		}
		// The proxy's spans under the tools/call span: the subscription
		// check, then one client span per upstream attempt.
		kids := otlptest.Children(spans, root)
		if len(kids) != 2 || len(otlptest.Find(kids, "limits")) != 1 || len(otlptest.Find(kids, "GET")) != 1 {
			t.Fatalf("children of the REST call, want limits and one attempt:\n%s", otlptest.Dump(spans))
		}
		att := otlptest.Find(kids, "GET")[0]
		if att.Kind != "client" || att.Attrs["http.response.status_code"] != int64(200) || att.Attrs["server.address"] != "127.0.0.1" ||
			att.Attrs["url.full"] != rest.URL {
			t.Errorf("attempt span %+v", att)
		}
		restMu.Lock()
		defer restMu.Unlock()
		if want := "00-" + root.TraceID + "-" + att.SpanID + "-01"; len(restTP) != 1 || restTP[0] != want {
			t.Errorf("REST upstream traceparent %v, want %s", restTP, want)
		}
	})

	t.Run("no secrets in attributes", func(t *testing.T) {
		for _, s := range spans {
			for k, v := range s.Attrs {
				if str := fmt.Sprint(v); strings.Contains(str, key) || strings.Contains(str, fedToken) || strings.Contains(str, "caller-cookie") || strings.Contains(str, "stoa_sk_") {
					t.Errorf("span %s attribute %s holds a credential: %q", s.Name, k, str)
				}
			}
		}
	})
}
