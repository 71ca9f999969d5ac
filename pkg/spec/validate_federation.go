package spec

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Accepted values of the fields of Tools with protocol: mcp.
var (
	toolProtocols       = []string{"rest", "mcp"}
	mcpTransports       = []string{"streamable-http", "stdio"}
	mcpProtocolVersions = []string{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"}
)

// mcpModernVersion is the stateless protocol revision, which stdio
// upstreams do not speak (they are always initialized).
const mcpModernVersion = "2026-07-28"

// restOnly are the Tool fields a Tool with protocol: mcp does not have,
// with the hint that says what to do instead.
var restOnly = []struct {
	path string
	set  func(s *ToolSpec) bool
	hint string
}{
	{"spec.upstream", func(s *ToolSpec) bool { return s.Upstream != "" }, "name the MCP server with mcp.url, or mcp.command for stdio"},
	{"spec.upstreams", func(s *ToolSpec) bool { return len(s.Upstreams) > 0 }, "name the MCP server with mcp.url, or mcp.command for stdio"},
	{"spec.openapi", func(s *ToolSpec) bool { return s.OpenAPI != "" }, "its tools are the MCP server's: select them with mcp.tools.allow and deny"},
	{"spec.operations", func(s *ToolSpec) bool { return len(s.Operations) > 0 && s.OpenAPI == "" }, "its tools are the MCP server's: select them with mcp.tools.allow and deny, rename them with mcp.tools.rename"},
	{"spec.route", func(s *ToolSpec) bool { return s.Route != nil }, "federated tools are served on the MCP endpoint only; remove route"},
	{"spec.upstreamTLS", func(s *ToolSpec) bool { return s.UpstreamTLS != nil }, "remove it; an https MCP server is verified against the system's roots"},
	{"spec.timeouts", func(s *ToolSpec) bool { return s.Timeouts != nil }, "bound calls with mcp.timeout and mcp.connectTimeout"},
	{"spec.retries", func(s *ToolSpec) bool { return s.Retries != nil }, "remove it; stoad re-sends a call once itself when the server lost its session"},
	{"spec.healthCheck", func(s *ToolSpec) bool { return s.HealthCheck != nil }, "remove it; stoad watches the MCP session itself"},
	{"spec.circuitBreaker", func(s *ToolSpec) bool { return s.CircuitBreaker != nil }, "remove it; stoad fails calls fast while the MCP server is down"},
}

// mcpTool checks a Tool with protocol: mcp. It mirrors the checks of
// pkg/mcp/federation's Config.Validate (which imports this package, so it
// cannot be called from here), and a test keeps the two in step: a spec
// this accepts is a Config the engine accepts.
func (v *validator) mcpTool(o *Object, s *ToolSpec) {
	for _, f := range restOnly {
		if f.set(s) {
			v.keyErrorf(o, f.path, f.hint, "a Tool with protocol: mcp has no %s: its tools come from the MCP server", strings.TrimPrefix(f.path, "spec."))
		}
	}
	m := s.MCP
	if m == nil {
		v.errorf(o, "spec.mcp", "name the MCP server, e.g. mcp: {url: https://mcp.example.com/mcp} or mcp: {command: [npx, -y, some-mcp-server]}",
			"missing mcp: a Tool with protocol: mcp needs its server")
		return
	}
	const p = "spec.mcp"
	ns, name := o.Metadata.Namespace, o.Metadata.Name
	if prefix := ns + "__" + name + "__"; checkDNSLabel(ns) == "" && checkDNSLabel(name) == "" && len(prefix) >= MaxMCPNameLen-1 {
		v.errorf(o, "metadata.name", fmt.Sprintf("use a Tool name of at most %d characters", max(MaxMCPNameLen-2-len(ns)-4, 1)),
			"tenant and tool names leave no room for tool names: %q is %d of the %d characters an MCP tool name may have", prefix, len(prefix), MaxMCPNameLen)
	}

	transport := m.Transport
	switch {
	case m.URL != "" && len(m.Command) > 0:
		v.errorf(o, p+".command", "keep url for a server over HTTP, or command for one stoad starts (stdio)", "set either url or command, not both")
		transport = ""
	case m.URL == "" && len(m.Command) == 0 && transport == "":
		v.errorf(o, p, "set url: https://… for a server over HTTP, or command: [program, args…] for one stoad starts (stdio)", "missing url or command")
	}
	if transport != "" && !v.oneOf(o, p+".transport", "transport", transport, mcpTransports...) {
		transport = ""
	}
	switch transport {
	case TransportStreamableHTTP:
		v.mcpHTTP(o, s, m)
	case TransportStdio:
		v.mcpStdio(o, s, m)
	}
	if pv := m.ProtocolVersion; pv != "" && !slices.Contains(mcpProtocolVersions, pv) {
		hint := "use " + strings.Join(mcpProtocolVersions, ", ") + ", or leave it unset to negotiate"
		if sg := suggest(pv, mcpProtocolVersions); sg != "" {
			hint = fmt.Sprintf("did you mean %q?", sg)
		}
		v.errorf(o, p+".protocolVersion", hint, "unsupported protocol version %q", pv)
	}
	v.duration(o, p+".timeout", m.Timeout)
	v.duration(o, p+".connectTimeout", m.ConnectTimeout)
	v.mcpTools(o, m)
	if r := m.Resources; r != nil {
		v.globs(o, p+".resources.allow", "URI", r.Allow)
		v.globs(o, p+".resources.deny", "URI", r.Deny)
		if !r.Expose && (len(r.Allow) > 0 || len(r.Deny) > 0) {
			v.add(o, SeverityWarning, true, p+".resources", "add expose: true to publish the resources these patterns select",
				"resources.allow and deny have no effect: resources are not exposed")
		}
	}
}

// mcpHTTP checks a server reached over Streamable HTTP.
func (v *validator) mcpHTTP(o *Object, s *ToolSpec, m *MCPUpstream) {
	const p = "spec.mcp"
	const urlHint = "the server's MCP endpoint, e.g. url: https://mcp.example.com/mcp"
	switch u, msg := parseHTTPURL(m.URL); {
	case m.URL == "" && len(m.Command) > 0:
		v.errorf(o, p+".transport", "remove transport (a command means stdio), or name the server with url", "transport streamable-http needs url, not command")
	case m.URL == "":
		v.errorf(o, p+".url", urlHint, "missing url")
	case msg != "":
		v.errorf(o, p+".url", urlHint, "invalid MCP server URL %q: %s", m.URL, msg)
	case u.Fragment != "" || strings.Contains(m.URL, "#"):
		v.errorf(o, p+".url", "remove the #fragment", "MCP server URL %q must not have a fragment", m.URL)
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"dir", m.Dir != ""}, {"env", len(m.Env) > 0}, {"inheritEnv", len(m.InheritEnv) > 0}, {"limits", m.Limits != nil},
	} {
		if f.set {
			v.keyErrorf(o, p+"."+f.name, "remove it, or run the server with command (transport: stdio)",
				"%s applies to transport: stdio only", f.name)
		}
	}
	if a := s.UpstreamAuth; a != nil {
		if reservedMCPHeader(a.Header) {
			v.errorf(o, "spec.upstreamAuth.header", "for example header: X-Api-Key",
				"header %s is set by the MCP transport and cannot carry a credential", a.Header)
		}
		if strings.ContainsAny(a.Prefix, "\r\n\x00") {
			v.errorf(o, "spec.upstreamAuth.prefix", "remove the line break or NUL", "prefix contains a control character")
		}
	}
}

// mcpStdio checks a server stoad starts: the command, its environment and
// limits. Whether the Gateway lets the tenant run it is checked with the
// other objects (stdioGrants).
func (v *validator) mcpStdio(o *Object, s *ToolSpec, m *MCPUpstream) {
	const p = "spec.mcp"
	switch {
	case len(m.Command) == 0 && m.URL != "":
		v.errorf(o, p+".transport", "remove transport (a url means streamable-http), or give the command to run", "transport stdio needs command, not url")
	case len(m.Command) == 0:
		v.errorf(o, p+".command", `the program and its arguments, e.g. command: [npx, -y, "@modelcontextprotocol/server-filesystem", /srv/shared]`, "missing command")
	case strings.TrimSpace(m.Command[0]) == "":
		v.errorf(o, itemPath(p+".command", 0), "the program to run: an absolute path or a name looked up in PATH", "empty program name")
	}
	for i, a := range m.Command {
		if strings.ContainsRune(a, 0) {
			v.errorf(o, itemPath(p+".command", i), "remove it", "argument contains a NUL byte")
		}
	}
	if s.UpstreamAuth != nil {
		v.keyErrorf(o, "spec.upstreamAuth", "pass a stdio server its credential in mcp.env with a secretRef",
			"upstreamAuth applies to transport: streamable-http only")
	}
	if m.ProtocolVersion == mcpModernVersion {
		v.errorf(o, p+".protocolVersion", "remove protocolVersion: stdio servers are spoken to with initialize (2025-11-25)",
			"stdio upstreams do not speak %s", mcpModernVersion)
	}
	if m.Dir != "" && !filepath.IsAbs(m.Dir) {
		v.errorf(o, p+".dir", "it would be relative to stoad's own working directory; write e.g. /srv/shared",
			"dir %q must be an absolute path", m.Dir)
	}
	v.namedValues(o, p+".env", "variable", m.Env, func(n string) (string, string) {
		if n == "" || strings.ContainsAny(n, "=\x00") {
			return fmt.Sprintf("invalid variable name %q", n), "use a name without '=' such as API_TOKEN"
		}
		return "", ""
	})
	for i, n := range m.InheritEnv {
		ip := itemPath(p+".inheritEnv", i)
		switch {
		case !isEnvName(n):
			v.errorf(o, ip, "environment variable names are letters, digits and '_', not starting with a digit", "invalid environment variable name %q", n)
		case slices.Contains(m.InheritEnv[:i], n):
			v.errorf(o, ip, "remove one of them", "duplicate variable %q", n)
		}
	}
	if l := m.Limits; l != nil {
		lp := p + ".limits"
		if !l.Memory.IsZero() && l.Memory.Bytes() <= 0 {
			v.errorf(o, lp+".memory", "remove it for no limit, or write an amount such as 512Mi", "memory limit must be positive")
		}
		if !l.CPU.IsZero() {
			if l.CPU.D() < 1e9 {
				v.errorf(o, lp+".cpu", "RLIMIT_CPU counts whole seconds: use 1s or more, e.g. 1h", "cpu limit %q is less than a second", l.CPU)
			}
		}
		if l.OpenFiles < 0 {
			v.errorf(o, lp+".openFiles", "remove it for no limit", "openFiles must be positive")
		}
		if l.Processes < 0 {
			v.errorf(o, lp+".processes", "remove it for no limit", "processes must be positive")
		}
	}
}

// mcpTools checks the tool filter and the renames: each target a valid
// last segment whose whole name fits, distinct, and of a tool the filter
// exposes. Upstream names themselves are known only once the server
// answers, and checked then.
func (v *validator) mcpTools(o *Object, m *MCPUpstream) {
	t := m.Tools
	if t == nil {
		return
	}
	const p = "spec.mcp.tools"
	v.globs(o, p+".allow", "tool name", t.Allow)
	v.globs(o, p+".deny", "tool name", t.Deny)
	prefix := o.Metadata.Namespace + "__" + o.Metadata.Name + "__"
	targets := map[string]string{}
	for _, old := range sortedKeys(t.Rename) {
		nw := t.Rename[old]
		rp := p + ".rename" + pathKey(old)
		full := prefix + nw
		switch {
		case old == "":
			v.add(o, SeverityError, true, rp, "the upstream's name of the tool to rename", "empty upstream tool name")
		case nw == "":
			v.errorf(o, rp, "give the tool a name of letters, digits, '_' and '-'", "empty rename of %q", old)
		case !validMCPName(full):
			room := MaxMCPNameLen - len(prefix)
			hint := fmt.Sprintf("use at most %d letters, digits, '_' and '-'", max(room, 0))
			if s := sanitizeSegment(nw); len(s) > 0 && len(s) <= room && s != nw {
				hint = fmt.Sprintf("for example %s", s)
			}
			v.errorf(o, rp, hint, "%q would be exposed as %q, which is not a valid MCP tool name (at most %d characters of A-Z, a-z, 0-9, '_' and '-')",
				nw, full, MaxMCPNameLen)
		case targets[nw] != "":
			v.errorf(o, rp, "give each a distinct name", "%q and %q are both renamed to %q", targets[nw], old, nw)
		case !mcpFilterAdmits(t.Allow, t.Deny, old):
			v.errorf(o, rp, "remove the rename, or expose the tool in tools.allow/deny", "tool %q is renamed but hidden by tools.allow/deny", old)
		}
		if targets[nw] == "" {
			targets[nw] = old
		}
	}
}

// globs checks a list of glob patterns: none empty, no duplicates.
func (v *validator) globs(o *Object, path, what string, list []string) {
	for i, g := range list {
		switch {
		case g == "":
			v.errorf(o, itemPath(path, i), `remove it; "*" matches every `+what, "empty pattern")
		case slices.Contains(list[:i], g):
			v.errorf(o, itemPath(path, i), "remove one of them", "duplicate pattern %q", g)
		}
	}
}

// namedValues checks env variables or headers: names valid (nameProblem
// returns the message and hint of an invalid one, or ""), unique, a value
// or a secretRef; a credential written literally is warned.
func (v *validator) namedValues(o *Object, path, what string, list []NamedValue, nameProblem func(string) (string, string)) {
	for i, e := range list {
		ep := itemPath(path, i)
		if msg, hint := nameProblem(e.Name); msg != "" {
			if e.Name == "" {
				msg = "missing " + what + " name"
			}
			v.errorf(o, ep+".name", hint, "%s", msg)
		}
		for j := range i {
			if e.Name != "" && strings.EqualFold(list[j].Name, e.Name) {
				v.errorf(o, ep+".name", "keep one", "%s %s is set twice (also %s)", what, e.Name, itemPath(path, j))
				break
			}
		}
		switch {
		case e.SecretRef != nil && e.Value != "":
			v.errorf(o, ep+".secretRef", "keep either value or secretRef", "set value or secretRef, not both")
		case e.SecretRef != nil:
			v.secretRef(o, ep+".secretRef", *e.SecretRef)
		case strings.ContainsAny(e.Value, "\r\n\x00"):
			v.errorf(o, ep+".value", "remove the line break or NUL", "value of %s %s contains a line break or NUL", what, e.Name)
		case e.Value != "" && credentialName(e.Name):
			v.warnf(o, ep+".value", fmt.Sprintf("move it out of the spec: secretRef: {env: %s} or {file: /run/secrets/…}", envNameFor(e.Name)),
				"%s %s looks like a credential written in the spec, where plans, diffs and stoa get show it", what, e.Name)
		}
	}
}

// credentialName reports whether a variable or header name suggests its
// value is a credential.
func credentialName(n string) bool {
	l := strings.ToLower(n)
	return sensitiveKey(l) || strings.Contains(l, "auth") || strings.Contains(l, "cookie") || strings.Contains(l, "credential")
}

// envNameFor suggests an environment variable name for a header name.
func envNameFor(n string) string {
	var b strings.Builder
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteByte(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && b.Len() > 0:
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "MY_SECRET"
	}
	return b.String()
}

// reservedMCPHeader reports whether h frames the HTTP request or carries
// MCP transport state, so a credential there would break or spoof the
// exchange (as pkg/mcp/federation refuses it).
func reservedMCPHeader(h string) bool {
	switch l := strings.ToLower(h); {
	case strings.HasPrefix(l, "mcp-"), l == "host", l == "content-length", l == "content-type", l == "transfer-encoding",
		l == "connection", l == "accept", l == "last-event-id", l == "te", l == "upgrade", l == "trailer", l == "expect":
		return true
	}
	return false
}

// sanitizeSegment replaces characters outside [A-Za-z0-9_-] by '_', for
// rename suggestions.
func sanitizeSegment(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isMCPNameChar(c) {
			c = '_'
		}
		b.WriteByte(c)
	}
	return strings.Trim(b.String(), "_")
}

// mcpFilterAdmits reports whether a tool filter exposes name: deny wins,
// an empty allow admits everything else (pkg/mcp/federation's Filter).
func mcpFilterAdmits(allow, deny []string, name string) bool {
	for _, p := range deny {
		if globMatch(p, name) {
			return false
		}
	}
	if len(allow) == 0 {
		return true
	}
	for _, p := range allow {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}

// globMatch reports whether s matches pattern: '*' matches any run of
// bytes (including '/' and '.'), '?' exactly one, anything else itself —
// the matching of pkg/mcp/federation's filters.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// federationGrants checks the syntax of the Gateway's stdio grants (which
// Tools they cover is checked by stdioGrants).
func (v *validator) federationGrants(o *Object, f *MCPFederation) {
	if f == nil {
		return
	}
	tenants := map[string]int{}
	for i, g := range f.AllowStdio {
		gp := itemPath("spec.mcp.federation.allowStdio", i)
		switch why := checkDNSLabel(g.Tenant); {
		case g.Tenant == "":
			v.errorf(o, gp+".tenant", "the name of the Tenant whose Tools may run the commands", "missing tenant")
		case why != "":
			v.errorf(o, gp+".tenant", dnsLabelHint(g.Tenant), "invalid tenant name %q: %s", g.Tenant, why)
		default:
			v.ref(o, gp+".tenant", KindTenant, g.Tenant)
			if j, dup := tenants[g.Tenant]; dup {
				v.warnf(o, gp+".tenant", "merge the two grants", "tenant %s is granted twice (also %s); the grants add up", g.Tenant, itemPath("spec.mcp.federation.allowStdio", j))
			} else {
				tenants[g.Tenant] = i
			}
		}
		if len(g.Commands) == 0 {
			v.errorf(o, gp+".commands", "list the programs the tenant's Tools may run, e.g. [/usr/local/bin/mcp-files, npx]", "a grant needs at least one command")
		}
		v.stringList(o, gp+".commands", "command", g.Commands)
		for j, c := range g.Commands {
			if c != "" && strings.TrimSpace(c) != "" && strings.Contains(c, "/") && !filepath.IsAbs(c) {
				v.errorf(o, itemPath(gp+".commands", j), "grant an absolute path, or a name looked up in PATH such as npx",
					"command %q is a relative path: what it runs depends on the working directory", c)
			}
		}
	}
}

// stdioGrants checks that every stdio Tool's command is granted to its
// tenant by the Gateway: a stdio server runs on the gateway host as
// stoad's user, which only cluster admins (who own the Gateway) may allow.
// Like route grants, without a Gateway in the files this is a note offline
// and left to stoad with SkipReferences.
func (v *validator) stdioGrants(objs []*Object) {
	gw, gs := v.gatewaySpec()
	var grants []StdioGrant
	if gs != nil && gs.MCP != nil && gs.MCP.Federation != nil {
		grants = gs.MCP.Federation.AllowStdio
	}
	for _, o := range objs {
		if o == nil || v.shadowed[o] {
			continue
		}
		s, ok := o.Spec.(*ToolSpec)
		if !ok || s.Protocol != ProtocolMCP || s.MCP == nil || s.MCP.Transport != TransportStdio || len(s.MCP.Command) == 0 || s.MCP.Command[0] == "" {
			continue
		}
		t, cmd := o.Metadata.Namespace, s.MCP.Command[0]
		grantIndex := -1
		granted := false
		for i, g := range grants {
			if g.Tenant != t {
				continue
			}
			if grantIndex < 0 {
				grantIndex = i
			}
			if slices.Contains(g.Commands, cmd) {
				granted = true
				break
			}
		}
		if granted {
			continue
		}
		path := itemPath("spec.mcp.command", 0)
		hint := fmt.Sprintf("have a cluster admin grant it in the Gateway: spec.mcp.federation.allowStdio: [{tenant: %s, commands: [%s]}]", t, cmd)
		msg := fmt.Sprintf("command %q runs on the gateway host, and the Gateway does not grant it to tenant %s", cmd, t)
		if gw == nil {
			if v.opts.SkipReferences {
				continue // stoad checks it against its Gateway
			}
			if v.opts.Offline && !v.opts.StrictRefs {
				v.add(o, SeverityNote, false, path, hint,
					fmt.Sprintf("command %q runs on the gateway host; no Gateway in these files grants it to tenant %s, so diff and apply check the live Gateway", cmd, t))
				continue
			}
			v.errorf(o, path, hint, "%s (no Gateway in these files)", msg)
			continue
		}
		pe := v.add(o, SeverityError, false, path, hint, msg)
		if grantIndex >= 0 {
			g := grants[grantIndex]
			pe.related = []relSite{{gw, itemPath("spec.mcp.federation.allowStdio", grantIndex) + ".commands",
				fmt.Sprintf("tenant %s is granted %s here", t, strings.Join(g.Commands, ", "))}}
		} else {
			pe.related = []relSite{{gw, "spec.mcp", "the Gateway grants tenant " + t + " no command (spec.mcp.federation.allowStdio)"}}
		}
	}
}
