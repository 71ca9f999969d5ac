package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/stoa-gateway/stoa/pkg/auth/oidctest"
)

// TestMCPPolicy: CEL policies (docs/policy.md) on MCP, with the official
// SDK client over JWTs of a tenant's issuer: tools/list hides the tools a
// caller's identity can never call; tools/call of a denied call is an
// isError result naming the rule (never its expression) and sends
// nothing upstream — for operations (REST) and federated tools alike; a
// rule that fails to evaluate denies; the events and the audit trail
// record each denial with the rule and the expression.
func TestMCPPolicy(t *testing.T) {
	idp := oidctest.NewT(t, oidctest.WithHTTP())
	up := newFedUpstream(t)
	up.srv.AddResource(&sdk.Resource{URI: "notes://team/plan", Name: "plan", MIMEType: "text/plain"},
		func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, Text: "the plan"}}}, nil
		})
	rest := okUpstream(t)
	d := NewDaemon(t)
	d.Start()
	aud := "http://" + d.Listen + "/mcp"
	apply(t, d, doc("Tenant", "", "acme", `identity: {issuer: "`+idp.Issuer()+`"}
policy:
  rules:
    - name: no-wipe
      deny: mcp.arguments.?text.orValue("") == "wipe"`)+
		doc("Tool", "acme", "gh", `protocol: mcp
auth: {type: jwt}
mcp:
  url: `+up.URL+`
  tools: {allow: [echo, add]}
  resources: {expose: true}
policy:
  rules:
    - name: staff-only
      allow: '"staff" in caller.groups'
    # Resource reads have no operation: this rule only concerns them.
    - name: no-reads-for-eng
      deny: operation.name == "" && "eng" in caller.groups
    - name: small-sums
      deny: operation.name == "add" && mcp.arguments.a > 100.0`)+
		doc("Tool", "acme", "rest", `upstream: `+rest+`
auth: {type: jwt}
operations:
  - {name: get, method: GET, path: /items}
  - {name: wipe, method: DELETE, path: /items}
policy:
  rules:
    - name: no-deletes
      deny: request.method == "DELETE"`)+
		// Both are subscribed to both Tools: only the policy tells them
		// apart.
		doc("Plan", "acme", "open", "rateLimit: 1000/s")+
		doc("Consumer", "acme", "alice", "subjects: [alice]")+
		doc("Consumer", "acme", "bob", "subjects: [bob, bob-at-work]")+
		doc("Subscription", "acme", "alice-gh", "consumer: alice\nplan: open\ntool: gh")+
		doc("Subscription", "acme", "alice-rest", "consumer: alice\nplan: open\ntool: rest")+
		doc("Subscription", "acme", "bob-gh", "consumer: bob\nplan: open\ntool: gh")+
		doc("Subscription", "acme", "bob-rest", "consumer: bob\nplan: open\ntool: rest"))

	alice := idp.MustMint(idp.Claims("alice", aud).With("groups", []string{"staff", "eng"}))
	bob := idp.MustMint(idp.Claims("bob", aud).With("groups", []string{"sales"}))
	as := fedClient(t, d, alice, "2025-11-25", nil, "")
	bs := fedClient(t, d, bob, "2026-07-28", nil, "")

	t.Run("tools/list hides what identity rules out", func(t *testing.T) {
		an, _ := listAll(t, as)
		for _, want := range []string{"acme__gh__echo", "acme__gh__add", "acme__rest__get", "acme__rest__wipe"} {
			if !slices.Contains(an, want) {
				t.Errorf("alice: %s not listed: %v", want, an)
			}
		}
		bn, _ := listAll(t, bs)
		if slices.ContainsFunc(bn, func(n string) bool { return strings.HasPrefix(n, "acme__gh__") }) {
			t.Errorf("bob lists gh's tools, which staff-only can never allow him: %v", bn)
		}
		// Request-dependent rules never hide: no-deletes depends on the
		// method, no-wipe on the arguments.
		if !slices.Contains(bn, "acme__rest__get") || !slices.Contains(bn, "acme__rest__wipe") {
			t.Errorf("bob: rest's tools not listed: %v", bn)
		}
		// The same Consumer with another token whose groups differ: its
		// own view (views are cached by identity, claims included).
		work := fedClient(t, d, idp.MustMint(idp.Claims("bob-at-work", aud).With("groups", []string{"staff"})), "2025-11-25", nil, "")
		if wn, _ := listAll(t, work); !slices.Contains(wn, "acme__gh__echo") {
			t.Errorf("bob's staff token: gh not listed: %v", wn)
		}
		if bn2, _ := listAll(t, bs); slices.Contains(bn2, "acme__gh__echo") {
			t.Errorf("bob's sales token sees the staff view: %v", bn2)
		}
	})

	calls := func() int32 { return up.calls.Load() }
	for _, c := range []struct {
		name  string
		who   string
		tool  string
		args  map[string]any
		want  string // "" = allowed
		wants string // the upstream is reached
	}{
		{"allowed federated", "alice", "acme__gh__echo", map[string]any{"text": "hi"}, "", "echo: hi"},
		{"no allow rule matches", "bob", "acme__gh__echo", map[string]any{"text": "hi"}, `denied: no allow rule of Tool acme/gh policy matched`, ""},
		{"tenant guardrail on arguments", "alice", "acme__gh__echo", map[string]any{"text": "wipe"}, `denied by Tenant acme policy rule "no-wipe"`, ""},
		{"rule over arguments", "alice", "acme__gh__add", map[string]any{"a": 500, "b": 1}, `denied by Tool acme/gh policy rule "small-sums"`, ""},
		{"failed evaluation denies", "alice", "acme__gh__add", map[string]any{"b": 1}, `denied: Tool acme/gh policy rule "small-sums" could not be evaluated`, ""},
		{"allowed sum", "alice", "acme__gh__add", map[string]any{"a": 2, "b": 1}, "", "3"},
		{"operation by method", "bob", "acme__rest__wipe", nil, `denied by Tool acme/rest policy rule "no-deletes"`, ""},
		{"allowed operation", "bob", "acme__rest__get", nil, "", `"ok":true`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := as
			if c.who == "bob" {
				cs = bs
			}
			before := calls()
			txt, isErr := fedCallText(t, cs, c.tool, c.args)
			if c.want == "" {
				if isErr || !strings.Contains(txt, c.wants) {
					t.Errorf("%s: %q (isError %v), want allowed", c.tool, txt, isErr)
				}
				return
			}
			if !isErr || !strings.Contains(txt, "not sent: the gateway refused the call (HTTP 403 policy_denied): "+c.want) {
				t.Errorf("%s: %q (isError %v), want %q", c.tool, txt, isErr, c.want)
			}
			// The reason names the rule, never its expression.
			if strings.Contains(txt, "orValue") || strings.Contains(txt, "caller.groups") || strings.Contains(txt, "100.0") {
				t.Errorf("the denial reveals the expression: %q", txt)
			}
			if calls() != before {
				t.Error("a denied call reached the upstream")
			}
		})
	}

	t.Run("resources/read of a federated Tool", func(t *testing.T) {
		const uri = "stoa://tools/acme/gh/upstream/notes://team/plan"
		// bob can never call gh: its resources are neither listed nor readable.
		res, err := bs.ListResources(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Resources {
			if r.URI == uri {
				t.Errorf("bob lists %s", uri)
			}
		}
		if _, err := bs.ReadResource(context.Background(), &sdk.ReadResourceParams{URI: uri}); err == nil || !strings.Contains(err.Error(), "Resource not found") {
			t.Errorf("bob reads gh's resource: %v", err)
		}
		// alice (groups staff, eng) may call gh but no-reads-for-eng denies reads.
		_, err = as.ReadResource(context.Background(), &sdk.ReadResourceParams{URI: uri})
		if err == nil || !strings.Contains(err.Error(), `denied by Tool acme/gh policy rule "no-reads-for-eng"`) {
			t.Errorf("alice's read: %v", err)
		}
		// bob-at-work (staff only) reads it.
		work := fedClient(t, d, idp.MustMint(idp.Claims("bob-at-work", aud).With("groups", []string{"staff"})), "2025-11-25", nil, "")
		rr, err := work.ReadResource(context.Background(), &sdk.ReadResourceParams{URI: uri})
		if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "the plan" {
			t.Errorf("staff read: %+v %v", rr, err)
		}
	})

	t.Run("events and audit", func(t *testing.T) {
		var got []event
		waitUntil(t, 10*time.Second, "5 policy.denied events", func() bool {
			got = events(t, d, "policy.denied")
			return len(got) >= 5
		})
		var sawFail, sawBob bool
		for _, e := range got {
			if e.Tenant != "acme" || e.Data["via"] != "mcp" || e.Data["target"] == nil || e.Data["decision"] == nil {
				t.Errorf("event %+v", e)
			}
			dec, _ := e.Data["decision"].(string)
			if e.Data["outcome"] == "error" && strings.Contains(dec, `mcp.arguments.a > 100.0`) && strings.Contains(dec, "no such key: a") {
				sawFail = true
			}
			if e.Data["subject"] == "bob" && e.Data["rule"] == nil && e.Data["outcome"] == "no_match" && e.Data["mcpTool"] == "acme__gh__echo" {
				sawBob = true
			}
		}
		if !sawFail || !sawBob {
			t.Errorf("events lack the failed evaluation (%v) or bob's no-match (%v): %+v", sawFail, sawBob, got)
		}
		lines := auditLines(t, d, "--action", "policy.denied")
		if len(lines) < 5 {
			t.Fatalf("audit has %d policy.denied entries, want 5", len(lines))
		}
		var sawRest bool
		for _, l := range lines {
			if l.Target == "Tool/acme/rest" && l.Actor == "bob" && l.Details["rule"] == `rule "no-deletes"` &&
				strings.Contains(l.Details["decision"], `request.method == "DELETE"`) {
				sawRest = true
			}
		}
		if !sawRest {
			t.Errorf("audit lacks bob's denied DELETE: %+v", lines)
		}
	})
}
