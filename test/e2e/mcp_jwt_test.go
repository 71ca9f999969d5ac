package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/auth/oidctest"
)

// TestMCPJWT: a bearer JWT of a tenant's issuer (audience = stoad's MCP
// resource) authenticates MCP callers; its sub maps to a Consumer through
// spec.subjects, so subscriptions and the gateway headers see the consumer.
func TestMCPJWT(t *testing.T) {
	idp := oidctest.NewT(t, oidctest.WithHTTP())
	specs := `apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: initech}
spec:
  identity: {issuer: "` + idp.Issuer() + `"}
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: stock, namespace: initech}
spec:
  upstream: http://UPSTREAM/inventory
  auth: {type: jwt}
  operations:
    - {name: get_stock, method: GET, path: "/items/{sku}", input: {type: object, properties: {sku: {type: string}}, required: [sku]}}
---
apiVersion: stoa.io/v1alpha1
kind: Consumer
metadata: {name: agent, namespace: initech}
spec: {subjects: [agent-7]}
---
apiVersion: stoa.io/v1alpha1
kind: Plan
metadata: {name: basic, namespace: initech}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata: {name: agent-stock, namespace: initech}
spec: {consumer: agent, plan: basic, tool: stock}
`
	e := newMCPEnv(t, 0, map[string]string{"initech.yaml": specs})
	tok := idp.MustMint(idp.Claims("agent-7", e.MCPURL()))
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"initech__stock__get_stock","arguments":{"sku":"a1"}}}`
	status, _, body := rawPost(t, nil, e.MCPURL(), call, "Authorization: Bearer "+tok)
	if status != 200 || !strings.Contains(string(body), `\"consumer\":\"agent\"`) || !strings.Contains(string(body), `\"tenant\":\"initech\"`) {
		t.Fatalf("JWT call: %d %s", status, body)
	}
	// A subject that is no Consumer: authenticated, but not subscribed.
	other := idp.MustMint(idp.Claims("someone-else", e.MCPURL()))
	_, _, body = rawPost(t, nil, e.MCPURL(), call, "Authorization: Bearer "+other)
	if !strings.Contains(string(body), `"isError":true`) {
		t.Errorf("unmapped subject: %s", body)
	}
	// Wrong audience: 401 invalid_token.
	bad := idp.MustMint(idp.Claims("agent-7", "https://elsewhere.example/mcp"))
	status, h, _ := rawPost(t, nil, e.MCPURL(), call, "Authorization: Bearer "+bad)
	if status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) ||
		!strings.Contains(h.Get("WWW-Authenticate"), `resource_metadata="http://`+e.D.Listen+`/.well-known/oauth-protected-resource/mcp"`) {
		t.Errorf("wrong audience: %d %q", status, h.Get("WWW-Authenticate"))
	}
	// The unsubscribed subject is not shown the tool it cannot call.
	_, _, body = rawPost(t, nil, e.MCPURL(), `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, "Authorization: Bearer "+other)
	if !strings.Contains(string(body), "stoa_tools") || strings.Contains(string(body), "initech__stock__get_stock") {
		t.Errorf("unmapped subject's tools/list: %.300s", body)
	}
	// The issuer is advertised as an authorization server.
	resp, err := http.Get("http://" + e.D.Listen + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(meta), idp.Issuer()) {
		t.Errorf("metadata does not list the issuer: %s", meta)
	}
	_, _, body = rawPost(t, nil, e.MCPURL(), `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, "Authorization: Bearer "+tok)
	if !strings.Contains(string(body), "initech__stock__get_stock") || strings.Contains(string(body), "acme__") {
		t.Errorf("JWT tools/list: %.300s", body)
	}
	// An API key cannot call a jwt-only Tool even when the tenant matches:
	// here acme's key simply does not see it.
	_, _, body = rawPost(t, nil, e.MCPURL(), call, "Authorization: Bearer "+e.AcmeKey)
	if !strings.Contains(string(body), "Unknown tool") {
		t.Errorf("acme key called initech's tool: %s", body)
	}
}
