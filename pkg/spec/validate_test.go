package spec

import (
	"strings"
	"testing"
)

// mustParse parses YAML that must load without problems.
func mustParse(t *testing.T, in string) []*Object {
	t.Helper()
	objs, diags := Parse("t.yaml", []byte(in))
	if len(diags) > 0 {
		t.Fatalf("parse: %v", diags)
	}
	for _, o := range objs {
		Default(o)
	}
	return objs
}

// findDiag returns the first diagnostic at path whose message contains msg.
func findDiag(diags Diagnostics, path, msg string) *Diagnostic {
	for _, d := range diags {
		if d.Path == path && strings.Contains(d.Message, msg) {
			return d
		}
	}
	return nil
}

func TestValidSetIsClean(t *testing.T) {
	objs, diags := runPipeline([]string{"testdata/valid"}, ValidateOptions{})
	if len(diags) > 0 {
		t.Fatalf("the valid set has problems:\n%v", diags)
	}
	count := map[Kind]int{}
	for _, o := range objs {
		count[o.Kind]++
	}
	want := map[Kind]int{KindGateway: 1, KindTenant: 2, KindTool: 5, KindToolSet: 1, KindPlan: 2, KindConsumer: 2, KindSubscription: 2, KindWebhook: 1}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d %s objects, want %d", count[k], k, n)
		}
	}
}

// toolDoc is a valid tool whose spec lines can be replaced in tests.
const toolDoc = `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: billing
  namespace: acme
spec:
  upstream: http://127.0.0.1:9001/billing
  operations:
    - name: get_invoice
      method: GET
      path: /invoices/{id}
      input:
        type: object
        properties: {id: {type: string}}
`

func TestValidateProblems(t *testing.T) {
	tool := func(old, new string) string {
		if !strings.Contains(toolDoc, old) {
			panic("toolDoc has no " + old)
		}
		return tenantDoc + "---\n" + strings.Replace(toolDoc, old, new, 1)
	}
	doc := func(kind, ns, spec string) string {
		s := tenantDoc + "---\napiVersion: stoa.io/v1alpha1\nkind: " + kind + "\nmetadata:\n  name: x\n"
		if ns != "" {
			s += "  namespace: " + ns + "\n"
		}
		return s + "spec:\n" + spec
	}
	tests := []struct {
		name, in, path, msg string
	}{
		{"name not a label", tool("name: billing", "name: Billing"), "metadata.name", `invalid name "Billing"`},
		{"name too long", tool("name: billing", "name: "+strings.Repeat("a", 64)), "metadata.name", "at most 63"},
		{"name starts with digit", tool("name: billing", "name: 1billing"), "metadata.name", "start with a lower-case letter"},
		{"missing namespace", tool("  namespace: acme\n", ""), "metadata.namespace", "missing metadata.namespace"},
		{"tenant with namespace", strings.Replace(tenantDoc, "  name: acme\n", "  name: acme\n  namespace: acme\n", 1), "metadata.namespace", "cluster-scoped"},
		{"missing tenant", tool("namespace: acme", "namespace: acne"), "metadata.namespace", `Tenant "acne" not found`},
		{"bad label key", tool("  namespace: acme\n", "  namespace: acme\n  labels: {\"-x\": y}\n"), "metadata.labels.-x", "invalid label key"},
		{"bad label value", tool("  namespace: acme\n", "  namespace: acme\n  labels: {x: \"a b\"}\n"), "metadata.labels.x", "invalid value for label"},
		{"protocol", tool("  upstream:", "  protocol: soap\n  upstream:"), "spec.protocol", `unsupported protocol "soap"`},
		{"no upstream", tool("  upstream: http://127.0.0.1:9001/billing\n", ""), "spec.upstream", "missing upstream"},
		{"both upstreams", tool("  upstream: http://127.0.0.1:9001/billing\n", "  upstream: http://a\n  upstreams: [{url: http://b}]\n"), "spec.upstreams", "not both"},
		{"relative upstream", tool("http://127.0.0.1:9001/billing", "/billing"), "spec.upstream", "scheme must be http or https"},
		{"upstream without host", tool("http://127.0.0.1:9001/billing", "http:///x"), "spec.upstream", "missing host"},
		{"upstream userinfo", tool("http://127.0.0.1:9001/billing", "http://u:p@h/x"), "spec.upstream", "credentials"},
		{"upstream query", tool("http://127.0.0.1:9001/billing", "http://h/x?a=1"), "spec.upstream", "must not have a query"},
		{"upstream fragment", tool("http://127.0.0.1:9001/billing", "http://h/x#f"), "spec.upstream", "fragment"},
		{"upstream port", tool("http://127.0.0.1:9001/billing", "http://h:99999/x"), "spec.upstream", "invalid port"},
		{"negative weight", tool("  upstream: http://127.0.0.1:9001/billing\n", "  upstreams: [{url: http://a, weight: -1}, {url: http://b}]\n"), "spec.upstreams[0].weight", "negative"},
		{"all weights 0", tool("  upstream: http://127.0.0.1:9001/billing\n", "  upstreams: [{url: http://a, weight: 0}, {url: http://b, weight: 0}]\n"), "spec.upstreams", "all upstream weights are 0"},
		{"upstream without url", tool("  upstream: http://127.0.0.1:9001/billing\n", "  upstreams: [{weight: 1}]\n"), "spec.upstreams[0].url", "missing url"},
		{"prefix slash", tool("  operations:", "  route: {pathPrefix: x}\n  operations:"), "spec.route.pathPrefix", "must start with '/'"},
		{"prefix dotdot", tool("  operations:", "  route: {pathPrefix: /a/../b}\n  operations:"), "spec.route.pathPrefix", "'..'"},
		{"prefix double slash", tool("  operations:", "  route: {pathPrefix: /a//b}\n  operations:"), "spec.route.pathPrefix", "'//'"},
		{"route host", tool("  operations:", "  route: {host: \"bad host\"}\n  operations:"), "spec.route.host", "invalid route host"},
		{"auth type", tool("  operations:", "  auth: {type: basic}\n  operations:"), "spec.auth.type", `unknown auth type "basic"`},
		{"auth type missing", tool("  operations:", "  auth: {issuer: https://i}\n  operations:"), "spec.auth.type", "missing auth.type"},
		{"issuer invalid", tool("  operations:", "  auth: {type: jwt, issuer: idp}\n  operations:"), "spec.auth.issuer", "invalid issuer"},
		{"secretRef both", tool("  operations:", "  upstreamAuth: {secretRef: {env: A, file: /b}}\n  operations:"), "spec.upstreamAuth.secretRef", "set exactly one"},
		{"secretRef none", tool("  operations:", "  upstreamAuth: {header: X-Key}\n  operations:"), "spec.upstreamAuth.secretRef", "missing secretRef"},
		{"secretRef env name", tool("  operations:", "  upstreamAuth: {secretRef: {env: 1A}}\n  operations:"), "spec.upstreamAuth.secretRef.env", "invalid environment variable"},
		{"header name", tool("  operations:", "  upstreamAuth: {header: \"X Key\", secretRef: {env: A}}\n  operations:"), "spec.upstreamAuth.header", "invalid header name"},
		{"timeout", tool("  operations:", "  timeouts: {header: 5}\n  operations:"), "spec.timeouts.header", "expected a duration"},
		{"timeout zero", tool("  operations:", "  timeouts: {total: 0s}\n  operations:"), "spec.timeouts.total", "must be positive"},
		{"retries on", tool("  operations:", "  retries: {on: [reset, 4xx]}\n  operations:"), "spec.retries.on[1]", `unknown retry condition "4xx"`},
		{"retries negative", tool("  operations:", "  retries: {attempts: -1}\n  operations:"), "spec.retries.attempts", "negative"},
		{"health path", tool("  operations:", "  healthCheck: {path: healthz}\n  operations:"), "spec.healthCheck.path", "must start with '/'"},
		{"ejection", tool("  operations:", "  circuitBreaker: {ejection: soon}\n  operations:"), "spec.circuitBreaker.ejection", "invalid duration"},
		{"tool rate", tool("  operations:", "  rateLimit: 5/week\n  operations:"), "spec.rateLimit.rate", `invalid rate "5/week"`},
		{"openapi url", tool("  operations:", "  openapi: ftp://x/openapi.yaml\n  operations:"), "spec.openapi", "invalid openapi location"},
		{"duplicate tag", tool("  operations:", "  tags: [a, a]\n  operations:"), "spec.tags[1]", "duplicate tag"},
		{"op name", tool("name: get_invoice", "name: GetInvoice"), "spec.operations[0].name", "invalid operation name"},
		{"op name missing", tool("    - name: get_invoice\n      method:", "    - method:"), "spec.operations[0].name", "missing operation name"},
		{"op method", tool("method: GET", "method: get"), "spec.operations[0].method", `unknown method "get"`},
		{"op method missing", tool("      method: GET\n", ""), "spec.operations[0].method", "missing method"},
		{"op path", tool("path: /invoices/{id}", "path: invoices/{id}"), "spec.operations[0].path", "must start with '/'"},
		{"op path missing", tool("      path: /invoices/{id}\n", ""), "spec.operations[0].path", "missing path"},
		{"op path brace", tool("path: /invoices/{id}", "path: /invoices/id}"), "spec.operations[0].path", "unmatched '}'"},
		{"op path param", tool("path: /invoices/{id}", "path: /invoices/{invoice}"), "spec.operations[0].path", "{invoice} is not a property of input"},
		{"input type", tool("type: object", "type: array"), "spec.operations[0].input.type", "type object"},
		{"input properties", tool("properties: {id: {type: string}}", "properties: [id]"), "spec.operations[0].input.properties", "must be a mapping"},
		{"input required", tool("properties: {id: {type: string}}", "properties: {id: {type: string}}\n        required: [idd]"), "spec.operations[0].input.required[0]", `required property "idd"`},
		{"in place", tool("{id: {type: string}}\n", "{id: {type: string}}\n      in: {id: cookie}\n"), "spec.operations[0].in.id", `unknown argument location "cookie"`},
		{"in unknown prop", tool("{id: {type: string}}\n", "{id: {type: string}}\n      in: {q: query}\n"), "spec.operations[0].in.q", "not a property of input"},
		{"in path param elsewhere", tool("{id: {type: string}}\n", "{id: {type: string}}\n      in: {id: query}\n"), "spec.operations[0].in.id", "must be in: path"},
		{"two payloads", tool("{id: {type: string}}\n", "{id: {type: string}, a: {type: array}, b: {type: array}}\n      in: {a: payload, b: payload}\n"), "spec.operations[0].in.b", "both in: payload"},
		{"payload and body member", tool("      method: GET\n      path: /invoices/{id}\n      input:\n        type: object\n        properties: {id: {type: string}}\n",
			"      method: POST\n      path: /invoices/{id}\n      input:\n        type: object\n        properties: {id: {type: string}, a: {type: array}, c: {type: string}}\n      in: {a: payload}\n"),
			"spec.operations[0].in.c", "would be a body member"},
		{"in without input", tool("      input:\n        type: object\n        properties: {id: {type: string}}\n", "      in: {id: path}\n"), "spec.operations[0].in.id", "has no input"},
		{"duplicate op", tool("    - name: get_invoice", "    - {name: get_invoice, method: GET, path: /a}\n    - name: get_invoice"), "spec.operations[1].name", "duplicate operation name"},
		{"mcpName chars", tool("name: get_invoice", "name: get_invoice\n      mcpName: get.invoice"), "spec.operations[0].mcpName", "invalid mcpName"},
		{"mcpName reserved", tool("name: get_invoice", "name: get_invoice\n      mcpName: stoa_tools"), "spec.operations[0].mcpName", "reserved prefix"},
		{"mcp name too long", tool("name: get_invoice", "name: "+strings.Repeat("x", 60)), "spec.operations[0].name", "characters long; at most 64"},
		{"op timeout", tool("name: get_invoice", "name: get_invoice\n      timeout: 1y"), "spec.operations[0].timeout", "invalid duration"},
		{"op rate", tool("name: get_invoice", "name: get_invoice\n      rateLimit: {rate: 1/s, burst: -2}"), "spec.operations[0].rateLimit.burst", "negative"},
		{"jwt without issuer", tenantDoc[:strings.Index(tenantDoc, "spec:")] + "---\n" + strings.Replace(toolDoc, "  operations:", "  auth: {type: jwt}\n  operations:", 1), "spec.auth.issuer", "needs an issuer"},
		{"toolset empty", doc("ToolSet", "acme", "  tools: []\n"), "spec.tools", "at least one tool"},
		{"toolset duplicate", tool("  operations:", "  operations:") + "---\n" + "apiVersion: stoa.io/v1alpha1\nkind: ToolSet\nmetadata: {name: s, namespace: acme}\nspec:\n  tools: [billing, billing]\n", "spec.tools[1]", "duplicate tool"},
		{"toolset auth", doc("ToolSet", "acme", "  tools: [x]\n  policies: {auth: always}\n"), "spec.policies.auth", `unknown auth policy "always"`},
		{"toolset missing tool", doc("ToolSet", "acme", "  tools: [nope]\n"), "spec.tools[0]", `Tool "nope" not found`},
		{"plan quota", doc("Plan", "acme", "  quota: {monthly: -1}\n"), "spec.quota.monthly", "negative"},
		{"plan rate", doc("Plan", "acme", "  rateLimit: {burst: 3}\n"), "spec.rateLimit.rate", "missing rate"},
		{"consumer subjects", doc("Consumer", "acme", "  subjects: [a, \"\"]\n"), "spec.subjects[1]", "empty subject"},
		{"subscription neither", doc("Subscription", "acme", "  consumer: c\n  plan: p\n"), "spec.tool", "missing tool or toolSet"},
		{"subscription missing plan", doc("Subscription", "acme", "  consumer: c\n  tool: t\n"), "spec.plan", "missing plan"},
		{"subscription state", doc("Subscription", "acme", "  consumer: c\n  plan: p\n  tool: t\n  state: activ\n"), "spec.state", `unknown state "activ"`},
		{"subscription expiry", doc("Subscription", "acme", "  consumer: c\n  plan: p\n  tool: t\n  expiresAt: 2026-01-01\n"), "spec.expiresAt", "invalid expiresAt"},
		{"subscription ref", doc("Subscription", "acme", "  consumer: c\n  plan: p\n  tool: t\n"), "spec.consumer", `Consumer "c" not found in tenant acme`},
		{"webhook url", doc("Webhook", "acme", "  url: hooks.example.com\n  events: [\"*\"]\n  secretRef: {env: S}\n"), "spec.url", "invalid webhook URL"},
		{"webhook missing url", doc("Webhook", "acme", "  events: [\"*\"]\n  secretRef: {env: S}\n"), "spec.url", "missing url"},
		{"webhook private", doc("Webhook", "acme", "  url: http://localhost:9/h\n  events: [\"*\"]\n  secretRef: {env: S}\n"), "spec.url", "non-public address (loopback)"},
		{"webhook events", doc("Webhook", "acme", "  url: https://h.example/h\n  events: []\n  secretRef: {env: S}\n"), "spec.events", "at least one event"},
		{"webhook event", doc("Webhook", "acme", "  url: https://h.example/h\n  events: [key.*, keys.*]\n  secretRef: {env: S}\n"), "spec.events[1]", `unknown event "keys.*"`},
		{"webhook secret", doc("Webhook", "acme", "  url: https://h.example/h\n  events: [\"*\"]\n"), "spec.secretRef", "missing secretRef"},
		{"gateway cidr", doc("Gateway", "", "  xdp: {deny: [300.0.0.0/8]}\n"), "spec.xdp.deny[0]", "invalid CIDR"},
		{"gateway interface", doc("Gateway", "", "  xdp: {interfaces: [averyveryverylongname]}\n"), "spec.xdp.interfaces[0]", "invalid interface name"},
		{"gateway perSource", doc("Gateway", "", "  xdp: {perSource: 10/m}\n"), "spec.xdp.perSource.rate", "invalid rate"},
		{"gateway escalation", doc("Gateway", "", "  xdp: {escalation: {after: 3, within: 1m, block: -1m}}\n"), "spec.xdp.escalation.block", "must be positive"},
		{"gateway escalation v6 prefix", doc("Gateway", "", "  xdp: {escalation: {after: 3, within: 1m, block: 1m, ipv6PrefixLength: 16}}\n"), "spec.xdp.escalation.ipv6PrefixLength", "out of range"},
		{"gateway escalation v6 prefix long", doc("Gateway", "", "  xdp: {escalation: {after: 3, within: 1m, block: 1m, ipv6PrefixLength: 129}}\n"), "spec.xdp.escalation.ipv6PrefixLength", "out of range"},
		{"gateway escalation v4 prefix", doc("Gateway", "", "  xdp: {escalation: {after: 3, within: 1m, block: 1m, ipv4PrefixLength: 8}}\n"), "spec.xdp.escalation.ipv4PrefixLength", "out of range"},
		{"gateway escalation v4 prefix negative", doc("Gateway", "", "  xdp: {escalation: {after: 3, within: 1m, block: 1m, ipv4PrefixLength: -1}}\n"), "spec.xdp.escalation.ipv4PrefixLength", "out of range"},
		{"gateway limits", doc("Gateway", "", "  limits: {maxHeaders: -1}\n"), "spec.limits.maxHeaders", "negative"},
		{"gateway limits duration", doc("Gateway", "", "  limits: {idleTimeout: forever}\n"), "spec.limits.idleTimeout", "invalid duration"},
		{"gateway admin claim", doc("Gateway", "", "  admins: [{issuer: https://i, claim: roles}]\n"), "spec.admins[0].value", "missing value"},
		{"gateway admin issuer", doc("Gateway", "", "  admins: [{claim: roles, value: admin}]\n"), "spec.admins[0].issuer", "missing issuer"},
		{"gateway mcp origin", doc("Gateway", "", "  mcp: {allowedOrigins: [app.example.com]}\n"), "spec.mcp.allowedOrigins[0]", "invalid origin"},
		{"gateway mcp host with scheme", doc("Gateway", "", "  mcp: {allowedHosts: [https://gw.example.com]}\n"), "spec.mcp.allowedHosts[0]", "invalid host"},
		{"gateway mcp host with path", doc("Gateway", "", "  mcp: {allowedHosts: [gw.example.com, gw.example.com/mcp]}\n"), "spec.mcp.allowedHosts[1]", "invalid host"},
		{"gateway mcp host bad port", doc("Gateway", "", "  mcp: {allowedHosts: [\"gw.example.com:99999\"]}\n"), "spec.mcp.allowedHosts[0]", "invalid host"},
		{"gateway mcp host empty label", doc("Gateway", "", "  mcp: {allowedHosts: [gw..example.com]}\n"), "spec.mcp.allowedHosts[0]", "invalid host"},
		{"gateway mcp resource", doc("Gateway", "", "  mcp: {resource: /mcp}\n"), "spec.mcp.resource", "invalid resource"},
		{"gateway snapshots", doc("Gateway", "", "  snapshots: {maxAge: 0d}\n"), "spec.snapshots.maxAge", "must be positive"},
		{"tenant issuer", doc("Tenant", "", "  identity: {audiences: [a]}\n"), "spec.identity.issuer", "missing identity.issuer"},
		{"tenant algorithm", doc("Tenant", "", "  identity: {issuer: https://i, algorithms: [HS256]}\n"), "spec.identity.algorithms[0]", "never allowed"},
		{"tenant algorithm unknown", doc("Tenant", "", "  identity: {issuer: https://i, algorithms: [RS257]}\n"), "spec.identity.algorithms[0]", "unknown algorithm"},
		{"tenant claim", doc("Tenant", "", "  identity: {issuer: https://i, tenantClaim: {value: x}}\n"), "spec.identity.tenantClaim.claim", "missing claim"},
		{"tenant rate", doc("Tenant", "", "  defaults: {perSource: 1/fortnight}\n"), "spec.defaults.perSource.rate", "invalid rate"},
		{"tenant reserved", strings.Replace(tenantDoc, "name: acme", "name: stoa", 1), "metadata.name", "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, diags := Parse("t.yaml", []byte(tt.in))
			for _, o := range objs {
				Default(o)
			}
			diags = append(diags, Validate(objs, ValidateOptions{})...)
			d := findDiag(diags, tt.path, tt.msg)
			if d == nil {
				t.Fatalf("no diagnostic at %s containing %q; got:\n%v", tt.path, tt.msg, diags)
			}
			if d.Object == nil || d.File != "t.yaml" || d.Line == 0 || d.SourceLine == "" {
				t.Errorf("diagnostic not located: %+v", d)
			}
		})
	}
}

func TestValidateIssuerFromTenant(t *testing.T) {
	jwtTool := strings.Replace(toolDoc, "  operations:", "  auth: {type: oauth2}\n  operations:", 1)
	// The tenant has an identity: the tool inherits its issuer.
	if diags := Validate(mustParse(t, tenantDoc+"---\n"+jwtTool), ValidateOptions{}); len(diags) > 0 {
		t.Errorf("issuer from tenant identity: %v", diags)
	}
	// The tenant is not in the set: nothing to check against.
	if diags := Validate(mustParse(t, jwtTool), ValidateOptions{SkipReferences: true}); len(diags) > 0 {
		t.Errorf("unknown tenant with SkipReferences: %v", diags)
	}
}

func TestValidateSkipReferences(t *testing.T) {
	in := `apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata: {name: s, namespace: ghost}
spec: {consumer: c, plan: p, toolSet: ts}
---
apiVersion: stoa.io/v1alpha1
kind: ToolSet
metadata: {name: ts2, namespace: ghost}
spec: {tools: [nothing]}
`
	objs := mustParse(t, in)
	if diags := Validate(objs, ValidateOptions{SkipReferences: true}); len(diags) > 0 {
		t.Errorf("SkipReferences still reported: %v", diags)
	}
	diags := Validate(objs, ValidateOptions{})
	for _, want := range []string{`Tenant "ghost" not found`, `Consumer "c" not found`, `Plan "p" not found`, `ToolSet "ts" not found`, `Tool "nothing" not found`} {
		if !strings.Contains(diags.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, diags)
		}
	}
}

func TestValidateLive(t *testing.T) {
	live := mustParse(t, tenantDoc+"---\n"+toolDoc+`---
apiVersion: stoa.io/v1alpha1
kind: Plan
metadata: {name: gold, namespace: acme}
---
apiVersion: stoa.io/v1alpha1
kind: Consumer
metadata: {name: app, namespace: acme}
---
apiVersion: stoa.io/v1alpha1
kind: Gateway
metadata: {name: default}
`)
	for _, o := range live {
		o.Source = nil // live objects come from the daemon
	}
	// References resolve to live objects.
	sub := mustParse(t, `apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata: {name: s, namespace: acme}
spec: {consumer: app, plan: gold, tool: billing}
`)
	if diags := Validate(sub, ValidateOptions{Live: live}); len(diags) > 0 {
		t.Errorf("references to live objects: %v", diags)
	}
	// A new tool on a live tool's route conflicts; the same tool updated does not.
	other := mustParse(t, strings.Replace(strings.Replace(toolDoc, "name: billing", "name: billing2", 1),
		"  operations:", "  route: {pathPrefix: /acme/billing}\n  operations:", 1))
	diags := Validate(other, ValidateOptions{Live: live})
	if d := findDiag(diags, "spec.route.pathPrefix", "is also used by Tool/acme/billing spec.route.pathPrefix (live)"); d == nil {
		t.Errorf("no route conflict with the live tool: %v", diags)
	}
	if d := findDiag(diags, "spec.operations[0].name", ""); d != nil {
		t.Errorf("generated MCP names differ, but got %v", d)
	}
	same := mustParse(t, toolDoc)
	if diags := Validate(same, ValidateOptions{Live: live}); len(diags) > 0 {
		t.Errorf("updating a live tool: %v", diags)
	}
	// A second Gateway conflicts with the live one.
	gw := mustParse(t, "apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata: {name: other}\n")
	if diags := Validate(gw, ValidateOptions{Live: live}); findDiag(diags, "", "only one Gateway") == nil {
		t.Errorf("second gateway: %v", diags)
	}
}

func TestValidateMCPNameCollision(t *testing.T) {
	in := tenantDoc + "---\n" + toolDoc + "---\n" + strings.Replace(strings.Replace(toolDoc, "name: billing", "name: other", 1),
		"name: get_invoice", "name: x\n      mcpName: acme__billing__get_invoice", 1)
	diags := Validate(mustParse(t, in), ValidateOptions{})
	d := findDiag(diags, "spec.operations[0].mcpName", `MCP tool name "acme__billing__get_invoice" is also used by Tool/acme/billing spec.operations[0].name (t.yaml:17:13)`)
	if d == nil {
		t.Fatalf("no collision reported: %v", diags)
	}
}

func TestValidateDuplicates(t *testing.T) {
	in := tenantDoc + "---\n" + tenantDoc
	diags := Validate(mustParse(t, in), ValidateOptions{})
	if len(diags) != 1 || diags[0].Message != "duplicate Tenant/acme: also defined at t.yaml:1:1" || diags[0].Line != 9 {
		t.Fatalf("diagnostics: %v", diags)
	}
}

func TestValidateCodeBuiltObjectsAndLocate(t *testing.T) {
	o := &Object{APIVersion: APIVersion, Kind: KindTool, Metadata: Metadata{Name: "t", Namespace: "acme"},
		Spec: &ToolSpec{Upstream: "ftp://x"}}
	diags := Validate([]*Object{o}, ValidateOptions{SkipReferences: true})
	if len(diags) != 1 || diags[0].File != "" || diags[0].Path != "spec.upstream" || diags[0].Object.String() != "Tool/acme/t" {
		t.Fatalf("diagnostics: %+v", diags)
	}
	if got := diags.Error(); !strings.HasPrefix(got, "Tool/acme/t spec.upstream: invalid upstream URL") {
		t.Errorf("Error() = %q", got)
	}
	// The daemon returns diagnostics without positions; the CLI locates them.
	objs := mustParse(t, "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata:\n  name: t\n  namespace: acme\nspec:\n  upstream: ftp://x\n")
	Locate(objs, diags)
	if d := diags[0]; d.File != "t.yaml" || d.Line != 7 || d.Column != 13 || d.SourceLine != "  upstream: ftp://x" {
		t.Errorf("located: %+v", d)
	}
	// Missing spec and kind mismatches are reported, not panics.
	bad := []*Object{
		{APIVersion: APIVersion, Kind: KindTenant, Metadata: Metadata{Name: "a"}},
		{APIVersion: "v0", Kind: KindTenant, Metadata: Metadata{Name: "b"}, Spec: &ToolSpec{}},
	}
	diags = Validate(bad, ValidateOptions{})
	for _, want := range []string{"missing spec", "does not match", `unknown apiVersion "v0"`} {
		if !strings.Contains(diags.Error(), want) {
			t.Errorf("missing %q in %v", want, diags)
		}
	}
}

func TestValidateDoesNotRepeatDecodeErrors(t *testing.T) {
	in := tenantDoc + "---\n" + strings.Replace(toolDoc, "upstream: http://127.0.0.1:9001/billing", "upstream: [x]", 1)
	objs, diags := Parse("t.yaml", []byte(in))
	for _, o := range objs {
		Default(o)
	}
	if v := Validate(objs, ValidateOptions{}); len(v) > 0 {
		t.Errorf("validation repeated a decode error: %v (decode: %v)", v, diags)
	}
}
