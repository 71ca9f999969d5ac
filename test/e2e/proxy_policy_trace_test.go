package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

// TestProxyPolicyTracingE2E: a real stoad with a Tool policy and the
// Gateway's tracing pointed at an in-process OTLP receiver. A denied
// request is a 403 naming the rule, never reaches the upstream, and is in
// the audit trail; an allowed one continues the client's trace: its
// server span is the client span's child, with auth, limits and the
// upstream attempt under it. A `stoa apply` run with TRACEPARENT in its
// environment is a stoa.apply span in that trace.
func TestProxyPolicyTracingE2E(t *testing.T) {
	col := otlptest.NewServer(t)
	up := newCountingUpstream(t, "traced")
	e := newProxyEnv(t, map[string]string{
		"gateway.yaml": `apiVersion: stoa.io/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  tracing:
    enabled: true
    endpoint: ` + col.Endpoint() + `
    sampleRatio: 1
    accept: all
    batchTimeout: 200ms
`,
		"traced.yaml": `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: traced, namespace: acme}
spec:
  protocol: rest
  upstream: ` + up.srv.URL + `
  auth: {type: apiKey}
  policy:
    rules:
      - name: no-deletes
        deny: request.method == "DELETE"
---
apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata: {name: web-shop-traced, namespace: acme}
spec:
  consumer: web-shop
  plan: standard
  tool: traced
`,
	})
	key, _ := e.key("acme", "web-shop")

	r := e.do("DELETE", "/acme/traced/x?token=query-secret", "", "X-Api-Key", key)
	m := wantGatewayError(t, r, 403, "policy_denied")
	if m["rule"] != "no-deletes" || !strings.Contains(m["message"].(string), `rule "no-deletes"`) {
		t.Errorf("403 body %v: want the rule named", m)
	}
	if n := up.hits.Load(); n != 0 {
		t.Fatalf("a denied request reached the upstream (%d hits)", n)
	}
	audit := e.D.Stoa("audit", "--action", "policy.denied", "-o", "json")
	expect(t, audit, 0, "audit")
	if !strings.Contains(audit.Stdout, "Tool/acme/traced") || !strings.Contains(audit.Stdout, "no-deletes") ||
		strings.Contains(audit.Stdout, key) || strings.Contains(audit.Stdout, "query-secret") {
		t.Errorf("audit trail of the denial:\n%s", audit.Stdout)
	}

	const trace, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	r = e.get("/acme/traced/items", "X-Api-Key", key, "traceparent", "00-"+trace+"-"+parent+"-01")
	if r.Status != 200 || up.hits.Load() != 1 {
		t.Fatalf("allowed request: status %d, %d upstream hits: %s", r.Status, up.hits.Load(), r.Body)
	}
	var spans []otlptest.Span
	for n := 2; ; n++ {
		all := col.WaitSpans(t, n)
		spans = spans[:0]
		for _, s := range all {
			if s.TraceID == trace {
				spans = append(spans, s)
			}
		}
		// The server span ends last: its children were exported with it
		// or before.
		if len(otlptest.Find(spans, "GET /acme/traced")) > 0 {
			break
		}
	}
	server := otlptest.One(t, spans, "GET /acme/traced")
	if server.ParentSpanID != parent || server.Kind != "server" || server.Attrs["http.response.status_code"] != int64(200) {
		t.Errorf("server span: %+v", server)
	}
	// Under it: the credential check, the limits (stoad always checks
	// subscriptions and quotas of a consumer) and one upstream attempt.
	kids := otlptest.Children(spans, server)
	if len(kids) != 3 {
		t.Fatalf("want auth, limits and one upstream attempt under the server span:\n%s", otlptest.Dump(spans))
	}
	if a := otlptest.One(t, kids, "auth"); a.Kind != "internal" || a.Attrs["stoa.auth.method"] != "api_key" || a.Attrs["stoa.auth.outcome"] != "allowed" {
		t.Errorf("auth span: %+v", a)
	}
	if l := otlptest.One(t, kids, "limits"); l.Kind != "internal" || l.Attrs["stoa.limits.outcome"] != "allowed" {
		t.Errorf("limits span: %+v", l)
	}
	if c := otlptest.One(t, kids, "GET"); c.Kind != "client" || c.Attrs["http.response.status_code"] != int64(200) {
		t.Errorf("upstream attempt span: %+v", c)
	}
	if svc := server.Resource["service.name"]; svc != "stoad" {
		t.Errorf("resource service.name %v", svc)
	}

	// A traced CI job's `stoa apply`: the CLI sends its TRACEPARENT, and
	// the change is a span in that trace with a child per phase.
	const ciTrace, ciSpan = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	t.Setenv("TRACEPARENT", "00-"+ciTrace+"-"+ciSpan+"-01")
	specs, err := os.ReadFile(filepath.Join(e.Specs, "traced.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e.write("traced.yaml", strings.Replace(string(specs), "name: no-deletes", "name: no-deletes-at-all", 1))
	e.apply()
	var change otlptest.Span
	for n := 1; change.SpanID == ""; n++ {
		spans = spans[:0]
		for _, s := range col.WaitSpans(t, n) {
			if s.TraceID == ciTrace {
				spans = append(spans, s)
			}
		}
		// The change's span ends last: its phases came with it or before.
		if got := otlptest.Find(spans, "stoa.apply"); len(got) == 1 {
			change = got[0]
		}
	}
	if change.ParentSpanID != ciSpan || change.Attrs["stoa.changes.update"] != int64(1) || change.Attrs["stoa.actor.kind"] != "socket" {
		t.Errorf("apply span: %+v", change)
	}
	var phases []string
	for _, c := range otlptest.Children(spans, change) {
		phases = append(phases, c.Name)
	}
	if strings.Join(phases, " ") != "plan validate prepare commit swap" {
		t.Errorf("apply phases %q:\n%s", phases, otlptest.Dump(spans))
	}
}
