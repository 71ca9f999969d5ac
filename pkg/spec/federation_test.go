package spec

import (
	"strings"
	"testing"
)

// mcpToolDoc is a Tenant, a Gateway granting it npx, and a Tool with
// protocol: mcp whose spec is body.
func mcpToolDoc(body string) string {
	return `apiVersion: stoa.io/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  mcp:
    federation:
      allowStdio:
        - {tenant: acme, commands: [npx, /usr/bin/mcp-files]}
---
apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: acme}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: up, namespace: acme}
spec:
  protocol: mcp
` + body
}

func TestMCPToolProblems(t *testing.T) {
	const http = "  mcp:\n    url: https://mcp.example.com/mcp\n"
	const stdio = "  mcp:\n    command: [npx, -y, server]\n"
	for _, tc := range []struct {
		name, body, path, msg string
	}{
		{"missing mcp", "  description: x\n", "spec.mcp", "missing mcp"},
		{"upstream", http + "  upstream: http://x\n", "spec.upstream", "protocol: mcp has no upstream"},
		{"upstreams", http + "  upstreams: [{url: http://x}]\n", "spec.upstreams", "has no upstreams"},
		{"operations", http + "  operations: [{name: a, method: GET, path: /a}]\n", "spec.operations", "has no operations"},
		{"openapi", http + "  openapi: api.yaml\n", "spec.openapi", "has no openapi"},
		{"route", http + "  route: {pathPrefix: /acme/up}\n", "spec.route", "has no route"},
		{"timeouts", http + "  timeouts: {total: 5s}\n", "spec.timeouts", "has no timeouts"},
		{"retries", http + "  retries: {attempts: 1}\n", "spec.retries", "has no retries"},
		{"healthCheck", http + "  healthCheck: {path: /h}\n", "spec.healthCheck", "has no healthCheck"},
		{"circuitBreaker", http + "  circuitBreaker: {consecutiveFailures: 2}\n", "spec.circuitBreaker", "has no circuitBreaker"},
		{"upstreamTLS", http + "  upstreamTLS: {caFile: /ca.pem}\n", "spec.upstreamTLS", "has no upstreamTLS"},
		{"neither", "  mcp: {timeout: 5s}\n", "spec.mcp", "missing url or command"},
		{"both", "  mcp: {url: https://x/mcp, command: [npx]}\n", "spec.mcp.command", "either url or command"},
		{"transport", "  mcp: {transport: sse, url: https://x/mcp}\n", "spec.mcp.transport", `unknown transport "sse"`},
		{"transport typo", "  mcp: {transport: streamable_http, url: https://x/mcp}\n", "spec.mcp.transport", `unknown transport "streamable_http"`},
		{"http without url", "  mcp: {transport: streamable-http}\n", "spec.mcp.url", "missing url"},
		{"http with command", "  mcp: {transport: streamable-http, command: [npx]}\n", "spec.mcp.transport", "needs url, not command"},
		{"stdio with url", "  mcp: {transport: stdio, url: https://x/mcp}\n", "spec.mcp.transport", "needs command, not url"},
		{"url scheme", "  mcp: {url: ftp://x/mcp}\n", "spec.mcp.url", "scheme must be http or https"},
		{"url credentials", "  mcp: {url: \"https://u:p@x/mcp\"}\n", "spec.mcp.url", "credentials"},
		{"url fragment", "  mcp: {url: \"https://x/mcp#a\"}\n", "spec.mcp.url", "fragment"},
		{"http dir", http + "    dir: /srv\n", "spec.mcp.dir", "stdio only"},
		{"http env", http + "    env: [{name: A, value: b}]\n", "spec.mcp.env", "stdio only"},
		{"http inheritEnv", http + "    inheritEnv: [A]\n", "spec.mcp.inheritEnv", "stdio only"},
		{"http limits", http + "    limits: {openFiles: 10}\n", "spec.mcp.limits", "stdio only"},
		{"reserved header", http + "  upstreamAuth: {header: Mcp-Session-Id, secretRef: {env: T}}\n", "spec.upstreamAuth.header", "set by the MCP transport"},
		{"prefix control", http + "  upstreamAuth: {prefix: \"Bearer\\n\", secretRef: {env: T}}\n", "spec.upstreamAuth.prefix", "control character"},
		{"version", http + "    protocolVersion: 2024-11-05\n", "spec.mcp.protocolVersion", "unsupported protocol version"},
		{"stdio modern", stdio + "    protocolVersion: 2026-07-28\n", "spec.mcp.protocolVersion", "do not speak 2026-07-28"},
		{"stdio upstreamAuth", stdio + "  upstreamAuth: {secretRef: {env: T}}\n", "spec.upstreamAuth", "streamable-http only"},
		{"empty program", "  mcp: {command: [\"\", x]}\n", "spec.mcp.command[0]", "empty program name"},
		{"relative dir", stdio + "    dir: srv\n", "spec.mcp.dir", "absolute path"},
		{"env name", stdio + "    env: [{name: \"A=B\", value: x}]\n", "spec.mcp.env[0].name", `invalid variable name "A=B"`},
		{"env missing name", stdio + "    env: [{value: x}]\n", "spec.mcp.env[0].name", "missing variable name"},
		{"env twice", stdio + "    env: [{name: A, value: x}, {name: A, value: y}]\n", "spec.mcp.env[1].name", "set twice"},
		{"env both", stdio + "    env: [{name: A, value: x, secretRef: {env: B}}]\n", "spec.mcp.env[0].secretRef", "not both"},
		{"env secretRef", stdio + "    env: [{name: A, secretRef: {}}]\n", "spec.mcp.env[0].secretRef", "missing secretRef"},
		{"env NUL", stdio + "    env: [{name: A, value: \"a\\0b\"}]\n", "spec.mcp.env[0].value", "NUL"},
		{"inheritEnv name", stdio + "    inheritEnv: [\"1X\"]\n", "spec.mcp.inheritEnv[0]", "invalid environment variable name"},
		{"inheritEnv twice", stdio + "    inheritEnv: [A, A]\n", "spec.mcp.inheritEnv[1]", "duplicate"},
		{"memory", stdio + "    limits: {memory: 2GB}\n", "spec.mcp.limits.memory", `invalid byte quantity "2GB"`},
		{"memory zero", stdio + "    limits: {memory: \"0\"}\n", "spec.mcp.limits.memory", "must be positive"},
		{"memory negative", stdio + "    limits: {memory: -1Mi}\n", "spec.mcp.limits.memory", "must not be negative"},
		{"cpu", stdio + "    limits: {cpu: 500ms}\n", "spec.mcp.limits.cpu", "less than a second"},
		{"openFiles", stdio + "    limits: {openFiles: -1}\n", "spec.mcp.limits.openFiles", "must be positive"},
		{"timeout", http + "    timeout: 0s\n", "spec.mcp.timeout", "must be positive"},
		{"connectTimeout", http + "    connectTimeout: -1s\n", "spec.mcp.connectTimeout", "must be positive"},
		{"empty allow", http + "    tools: {allow: [\"\"]}\n", "spec.mcp.tools.allow[0]", "empty pattern"},
		{"duplicate deny", http + "    tools: {deny: [a, a]}\n", "spec.mcp.tools.deny[1]", "duplicate pattern"},
		{"rename empty", http + "    tools: {rename: {a: \"\"}}\n", "spec.mcp.tools.rename.a", "empty rename"},
		{"rename chars", http + "    tools: {rename: {a: \"b.c\"}}\n", "spec.mcp.tools.rename.a", "not a valid MCP tool name"},
		{"rename long", http + "    tools: {rename: {a: " + strings.Repeat("x", 60) + "}}\n", "spec.mcp.tools.rename.a", "not a valid MCP tool name"},
		{"rename twice", http + "    tools: {rename: {a: c, b: c}}\n", "spec.mcp.tools.rename.b", `"a" and "b" are both renamed to "c"`},
		{"rename hidden", http + "    tools: {deny: [\"write_*\"], rename: {write_file: put}}\n", "spec.mcp.tools.rename.write_file", "hidden by tools.allow/deny"},
		{"rename not allowed", http + "    tools: {allow: [\"get_*\"], rename: {list: ls}}\n", "spec.mcp.tools.rename.list", "hidden"},
		{"rename odd key", http + "    tools: {rename: {\"a.b\": \"\"}}\n", `spec.mcp.tools.rename["a.b"]`, "empty rename"},
		{"resources pattern", http + "    resources: {expose: true, deny: [\"\"]}\n", "spec.mcp.resources.deny[0]", "empty pattern"},
		{"mcp on rest", "  mcp: {url: https://x/mcp}\n", "spec.mcp", ""},
		{"not granted", "  mcp: {command: [node, server.js]}\n", "spec.mcp.command[0]", `command "node" runs on the gateway host, and the Gateway does not grant it to tenant acme`},
		{"granted by path only", "  mcp: {command: [mcp-files]}\n", "spec.mcp.command[0]", "does not grant it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := mcpToolDoc(tc.body)
			if tc.name == "mcp on rest" {
				in = strings.Replace(in, "  protocol: mcp\n", "  upstream: http://127.0.0.1:1\n", 1)
				tc.msg = "mcp applies to Tools with protocol: mcp only"
			}
			_, diags := runPipelineText(in, ValidateOptions{})
			d := findDiag(diags, tc.path, tc.msg)
			if d == nil || !d.IsError() || d.Line == 0 || d.Hint == "" {
				t.Fatalf("want an error at %s containing %q with a hint, got:\n%v", tc.path, tc.msg, diags)
			}
		})
	}
}

func TestMCPToolWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, body, path, msg string
	}{
		{"literal credential", "  mcp:\n    command: [npx]\n    env: [{name: GITHUB_TOKEN, value: ghp_x}]\n", "spec.mcp.env[0].value", "looks like a credential"},
		{"resources not exposed", "  mcp:\n    url: https://x/mcp\n    resources: {allow: [\"file:///*\"]}\n", "spec.mcp.resources", "not exposed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := runPipelineText(mcpToolDoc(tc.body), ValidateOptions{})
			d := findDiag(diags, tc.path, tc.msg)
			if d == nil || d.Severity != SeverityWarning || diags.HasErrors() {
				t.Fatalf("want only a warning at %s containing %q, got:\n%v", tc.path, tc.msg, diags)
			}
		})
	}
}

// TestMCPToolDefaults: the transport is inferred and the timeouts filled,
// and a federated Tool gets none of the proxy's route, timeouts, retries
// or circuit breaker.
func TestMCPToolDefaults(t *testing.T) {
	objs, diags := runPipelineText(mcpToolDoc("  mcp: {command: [npx, server]}\n  upstreamAuth: {secretRef: {env: T}}\n"), ValidateOptions{})
	for _, d := range diags {
		if d.Path != "spec.upstreamAuth" {
			t.Errorf("unexpected: %v", d)
		}
	}
	s := objs[2].Spec.(*ToolSpec)
	if s.MCP.Transport != TransportStdio || s.MCP.Timeout.String() != "30s" || s.MCP.ConnectTimeout.String() != "30s" {
		t.Errorf("stdio defaults: %+v", s.MCP)
	}
	if s.Route != nil || s.Timeouts != nil || s.Retries != nil || s.CircuitBreaker != nil {
		t.Errorf("REST defaults on a federated Tool: %+v", s)
	}
	if s.Auth == nil || s.Auth.Type != "apiKey" || s.UpstreamAuth.Header != "Authorization" || s.UpstreamAuth.Prefix != "Bearer " {
		t.Errorf("auth defaults: %+v %+v", s.Auth, s.UpstreamAuth)
	}
	objs, _ = runPipelineText(mcpToolDoc("  mcp: {url: https://x/mcp}\n"), ValidateOptions{})
	if m := objs[2].Spec.(*ToolSpec).MCP; m.Transport != TransportStreamableHTTP || m.ConnectTimeout.String() != "5s" {
		t.Errorf("http defaults: %+v", m)
	}
	objs, _ = runPipelineText(mcpToolDoc("  mcp: {url: https://x/mcp, command: [npx]}\n"), ValidateOptions{})
	if m := objs[2].Spec.(*ToolSpec).MCP; m.Transport != "" || !m.ConnectTimeout.IsZero() {
		t.Errorf("an ambiguous server got a transport: %+v", m)
	}
}

// TestStdioGrants: a stdio Tool runs only a command the Gateway grants its
// tenant; the error names both places; without a Gateway in the files it
// is a note offline, an error with --strict-refs, stoad's to check with
// SkipReferences.
func TestStdioGrants(t *testing.T) {
	tool := "  mcp: {command: [node, server.js]}\n"
	_, diags := runPipelineText(mcpToolDoc(tool), ValidateOptions{})
	d := findDiag(diags, "spec.mcp.command[0]", "does not grant it")
	if d == nil || len(d.Related) != 1 || d.Related[0].Line != 8 || !strings.Contains(d.Related[0].Message, "tenant acme is granted npx, /usr/bin/mcp-files here") {
		t.Fatalf("want the grant as related place:\n%+v", d)
	}
	for _, ok := range []string{"  mcp: {command: [npx, x]}\n", "  mcp: {command: [/usr/bin/mcp-files]}\n", "  mcp: {url: https://x/mcp}\n"} {
		if _, diags := runPipelineText(mcpToolDoc(ok), ValidateOptions{}); len(diags) > 0 {
			t.Errorf("%s: %v", ok, diags)
		}
	}
	// Another tenant's grant does not count.
	other := strings.Replace(mcpToolDoc("  mcp: {command: [npx]}\n"), "{tenant: acme,", "{tenant: globex,", 1)
	other = strings.Replace(other, "kind: Tenant\nmetadata: {name: acme}\nspec: {}\n", "kind: Tenant\nmetadata: {name: acme}\nspec: {}\n---\napiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: globex}\nspec: {}\n", 1)
	_, diags = runPipelineText(other, ValidateOptions{})
	if d := findDiag(diags, "spec.mcp.command[0]", "does not grant it to tenant acme"); d == nil || !strings.Contains(d.Related[0].Message, "grants tenant acme no command") {
		t.Fatalf("a grant to globex covered acme:\n%v", diags)
	}

	noGateway := mcpToolDoc(tool)
	noGateway = noGateway[strings.Index(noGateway, "---\n")+4:]
	for _, tc := range []struct {
		opts ValidateOptions
		sev  Severity
	}{
		{ValidateOptions{Offline: true}, SeverityNote},
		{ValidateOptions{Offline: true, StrictRefs: true}, SeverityError},
		{ValidateOptions{}, SeverityError},
		{ValidateOptions{SkipReferences: true}, ""},
	} {
		_, diags := runPipelineText(noGateway, tc.opts)
		d := findDiag(diags, "spec.mcp.command[0]", "")
		switch {
		case tc.sev == "" && d != nil:
			t.Errorf("%+v: stoad checks it, got %v", tc.opts, d)
		case tc.sev != "" && (d == nil || d.Severity != tc.sev):
			t.Errorf("%+v: want a %s, got %v", tc.opts, tc.sev, diags)
		}
	}
}

func TestStdioGrantProblems(t *testing.T) {
	gw := func(grants string) string {
		return "apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata: {name: default}\nspec:\n  mcp:\n    federation:\n      allowStdio:\n" + grants +
			"---\napiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: acme}\nspec: {}\n"
	}
	for _, tc := range []struct {
		name, grants, path, msg string
		sev                     Severity
	}{
		{"missing tenant", "        - {commands: [npx]}\n", "spec.mcp.federation.allowStdio[0].tenant", "missing tenant", SeverityError},
		{"bad tenant", "        - {tenant: Acme, commands: [npx]}\n", "spec.mcp.federation.allowStdio[0].tenant", "invalid tenant name", SeverityError},
		{"unknown tenant", "        - {tenant: acne, commands: [npx]}\n", "spec.mcp.federation.allowStdio[0].tenant", `did you mean "acme"`, SeverityError},
		{"no commands", "        - {tenant: acme}\n", "spec.mcp.federation.allowStdio[0].commands", "at least one command", SeverityError},
		{"relative", "        - {tenant: acme, commands: [bin/x]}\n", "spec.mcp.federation.allowStdio[0].commands[0]", "relative path", SeverityError},
		{"duplicate", "        - {tenant: acme, commands: [npx, npx]}\n", "spec.mcp.federation.allowStdio[0].commands[1]", "duplicate command", SeverityError},
		{"twice", "        - {tenant: acme, commands: [npx]}\n        - {tenant: acme, commands: [uvx]}\n", "spec.mcp.federation.allowStdio[1].tenant", "granted twice", SeverityWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := runPipelineText(gw(tc.grants), ValidateOptions{})
			d := findDiag(diags, tc.path, tc.msg)
			if tc.msg == `did you mean "acme"` {
				d = findDiag(diags, tc.path, "not found")
				if d != nil && !strings.Contains(d.Hint, tc.msg) {
					d = nil
				}
			}
			if d == nil || d.Severity != tc.sev || d.Line == 0 {
				t.Fatalf("want a %s at %s containing %q, got:\n%v", tc.sev, tc.path, tc.msg, diags)
			}
		})
	}
}

// TestRenamedNamesAreUnique: a rename claims its MCP tool name in the
// tenant, so an operation's mcpName cannot take it too.
func TestRenamedNamesAreUnique(t *testing.T) {
	in := mcpToolDoc("  mcp:\n    url: https://x/mcp\n    tools: {rename: {create_issue: open_issue}}\n") + `---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: rest, namespace: acme}
spec:
  upstream: http://127.0.0.1:1
  operations:
    - {name: x, method: POST, path: /x, mcpName: acme__up__open_issue}
`
	_, diags := runPipelineText(in, ValidateOptions{})
	d := findDiag(diags, "spec.operations[0].mcpName", `"acme__up__open_issue" is also used by Tool/acme/up spec.mcp.tools.rename.create_issue`)
	if d == nil {
		t.Fatalf("want a collision:\n%v", diags)
	}
}
