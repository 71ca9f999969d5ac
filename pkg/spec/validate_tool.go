package spec

import (
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Accepted values of Tool fields.
var (
	authTypes   = []string{"none", "apiKey", "jwt", "oauth2"}
	httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	retryOn     = []string{"connect-failure", "reset", "5xx", "timeout"}
	argPlaces   = []string{"path", "query", "header", "body", "payload"}
)

// tool checks a Tool.
func (v *validator) tool(o *Object, s *ToolSpec) {
	switch s.Protocol {
	case "", ProtocolREST:
		if s.MCP != nil {
			v.keyErrorf(o, "spec.mcp", "set protocol: mcp to federate an MCP server, or remove mcp",
				"mcp applies to Tools with protocol: mcp only")
		}
	case ProtocolMCP:
		v.mcpTool(o, s)
		v.toolCommon(o, s)
		return
	default:
		hint := `"rest" for an HTTP API, "mcp" for an MCP server`
		if sg := suggest(s.Protocol, toolProtocols); sg != "" {
			hint = fmt.Sprintf("did you mean %q?", sg)
		}
		v.errorf(o, "spec.protocol", hint, "unsupported protocol %q", s.Protocol)
	}
	switch {
	case s.Upstream == "" && len(s.Upstreams) == 0:
		v.errorf(o, "spec.upstream", "set upstream: http://host:port/base, or a list of weighted upstreams",
			"missing upstream")
	case s.Upstream != "" && len(s.Upstreams) > 0:
		v.errorf(o, "spec.upstreams", "keep either upstream or upstreams", "set either upstream or upstreams, not both")
	case s.Upstream != "":
		v.upstreamURL(o, "spec.upstream", s.Upstream)
	default:
		total := 0
		for i, u := range s.Upstreams {
			p := itemPath("spec.upstreams", i)
			if u.URL == "" {
				v.errorf(o, p+".url", "", "missing url")
			} else {
				v.upstreamURL(o, p+".url", u.URL)
			}
			if u.Weight < 0 {
				v.errorf(o, p+".weight", "weights are 0 (drained) or more", "weight must not be negative")
			} else {
				total += u.Weight
			}
		}
		if total == 0 {
			v.errorf(o, "spec.upstreams", "give at least one upstream a positive weight", "all upstream weights are 0: no traffic could be served")
		}
	}
	if r := s.Route; r != nil {
		if p := r.PathPrefix; p != "" {
			if prob, hint := pathPrefixProblem(p); prob != "" {
				v.errorf(o, "spec.route.pathPrefix", hint, "%s", prob)
			}
		}
		if r.Host != "" && !validHost(r.Host) {
			v.errorf(o, "spec.route.host", "a host name such as api.example.com, optionally with :port",
				"invalid route host %q", r.Host)
		}
	}
	v.upstreamTLS(o, s)
	if t := s.Timeouts; t != nil {
		v.duration(o, "spec.timeouts.connect", t.Connect)
		v.duration(o, "spec.timeouts.header", t.Header)
		v.duration(o, "spec.timeouts.total", t.Total)
	}
	if r := s.Retries; r != nil {
		if r.Attempts < 0 {
			v.errorf(o, "spec.retries.attempts", "0 disables retries", "attempts must not be negative")
		}
		for i, on := range r.On {
			v.oneOf(o, itemPath("spec.retries.on", i), "retry condition", on, retryOn...)
		}
	}
	if h := s.HealthCheck; h != nil {
		if h.Path == "" || h.Path[0] != '/' {
			v.errorf(o, "spec.healthCheck.path", "for example /healthz", "healthCheck.path must start with '/'")
		}
		v.duration(o, "spec.healthCheck.interval", h.Interval)
		v.duration(o, "spec.healthCheck.timeout", h.Timeout)
		if h.HealthyThreshold < 0 || h.UnhealthyThreshold < 0 {
			v.errorf(o, "spec.healthCheck", "", "healthCheck thresholds must not be negative")
		}
	}
	if c := s.CircuitBreaker; c != nil {
		if c.ConsecutiveFailures < 0 {
			v.errorf(o, "spec.circuitBreaker.consecutiveFailures", "", "consecutiveFailures must not be negative")
		}
		v.duration(o, "spec.circuitBreaker.ejection", c.Ejection)
	}
	if s.OpenAPI != "" && strings.Contains(s.OpenAPI, "://") {
		if u, err := url.Parse(s.OpenAPI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf(o, "spec.openapi", "a path relative to the spec file, or an http(s) URL", "invalid openapi location %q", s.OpenAPI)
		}
	}
	v.operations(o, s)
	v.toolCommon(o, s)
}

// toolCommon checks what Tools of every protocol have: caller auth, the
// upstream credential, the rate limit, tags, texts and the policy.
func (v *validator) toolCommon(o *Object, s *ToolSpec) {
	v.toolAuth(o, s)
	if u := s.UpstreamAuth; u != nil {
		if u.Header != "" && !isToken(u.Header) {
			v.errorf(o, "spec.upstreamAuth.header", "a header name such as Authorization or X-Api-Key", "invalid header name %q", u.Header)
		}
		v.secretRef(o, "spec.upstreamAuth.secretRef", u.SecretRef)
	}
	v.rate(o, "spec.rateLimit", s.RateLimit)
	v.stringList(o, "spec.tags", "tag", s.Tags)
	v.toolText(o, s)
	v.policyField(o, "spec.policy", s.Policy)
}

// toolAuth checks what callers must present.
func (v *validator) toolAuth(o *Object, s *ToolSpec) {
	a := s.Auth
	if a == nil {
		return
	}
	if a.Type == "" {
		v.errorf(o, "spec.auth.type", "one of "+strings.Join(authTypes, ", "), "missing auth.type")
		return
	}
	if !v.oneOf(o, "spec.auth.type", "auth type", a.Type, authTypes...) {
		return
	}
	if a.Issuer != "" {
		if msg := urlProblem(a.Issuer); msg != "" {
			v.errorf(o, "spec.auth.issuer", "the issuer URL as it appears in tokens' iss claim", "invalid issuer %q: %s", a.Issuer, msg)
		}
	}
	switch a.Type {
	case "jwt", "oauth2":
		if a.Issuer != "" {
			break
		}
		t := v.tenantOf(o)
		if t == nil {
			break // the tenant is unknown here; the daemon checks again
		}
		if t.Identity == nil || t.Identity.Issuer == "" {
			v.errorf(o, "spec.auth.issuer",
				fmt.Sprintf("set auth.issuer, or spec.identity.issuer on Tenant %s", o.Metadata.Namespace),
				"auth type %s needs an issuer", a.Type)
		}
	case "none":
		if a.Issuer != "" || len(a.Scopes) > 0 || len(a.Audiences) > 0 {
			v.warnf(o, "spec.auth", "remove them, or choose auth type jwt or oauth2",
				"issuer, audiences and scopes are ignored with auth type none")
		}
	}
	v.stringList(o, "spec.auth.scopes", "scope", a.Scopes)
	v.stringList(o, "spec.auth.audiences", "audience", a.Audiences)
}

// upstreamTLS checks how https upstreams are verified.
func (v *validator) upstreamTLS(o *Object, s *ToolSpec) {
	t := s.UpstreamTLS
	if t == nil {
		return
	}
	const p = "spec.upstreamTLS"
	switch {
	case t.CAFile != "" && t.CA != nil:
		v.errorf(o, p+".ca", "keep either caFile or ca", "upstreamTLS sets both caFile and ca; set at most one")
	case t.CAFile != "" && !filepath.IsAbs(t.CAFile):
		v.errorf(o, p+".caFile", "stoad reads it from its own working directory otherwise; write e.g. /etc/stoa/orders-ca.pem",
			"caFile %q must be an absolute path", t.CAFile)
	case t.CA != nil:
		v.secretRef(o, p+".ca", *t.CA)
	}
	if n := t.ServerName; n != "" && !validServerName(n) {
		v.errorf(o, p+".serverName", "the DNS name (or IP address) in the upstream's certificate, without port, e.g. orders.internal",
			"invalid serverName %q", n)
	}
	if t.InsecureSkipVerify {
		hint := "trust the upstream's CA with caFile or ca instead"
		if t.CAFile != "" || t.CA != nil {
			hint = "remove insecureSkipVerify: with it, the CA given is not used either"
		}
		v.warnf(o, p+".insecureSkipVerify", hint,
			"insecureSkipVerify accepts any certificate: anyone on the path can impersonate the upstream")
	}
	https := strings.HasPrefix(strings.ToLower(s.Upstream), "https://")
	for _, u := range s.Upstreams {
		https = https || strings.HasPrefix(strings.ToLower(u.URL), "https://")
	}
	if !https && (s.Upstream != "" || len(s.Upstreams) > 0) {
		v.warnf(o, p, "use https:// upstream URLs, or remove upstreamTLS", "upstreamTLS has no effect: no upstream is https")
	}
}

// validServerName reports whether n is a DNS name or an IP address (what
// a certificate names), without port.
func validServerName(n string) bool {
	if _, err := netip.ParseAddr(n); err == nil {
		return true
	}
	n = strings.TrimSuffix(strings.ToLower(n), ".")
	if n == "" || len(n) > 253 {
		return false
	}
	for _, part := range strings.Split(n, ".") {
		if checkDNSName(part) != "" {
			return false
		}
	}
	return true
}

// publicTools notes, for stoa validate, every Tool anyone who reaches the
// gateway may call without a credential: auth type none, in no ToolSet
// whose policies require auth. A Tool without auth requires an API key, so
// a public Tool is always an explicit choice; the note keeps every such
// choice in view. It sits at the Tool's auth line, or at its name when
// the auth is not written (an object read back from stoad).
func (v *validator) publicTools(objs []*Object) {
	if !v.opts.Offline {
		return
	}
	guarded := map[Ref]bool{}
	guard := func(o *Object) {
		if ts, ok := o.Spec.(*ToolSetSpec); ok && ts.Policies != nil && ts.Policies.Auth == "required" {
			for _, t := range ts.Tools {
				guarded[Ref{Kind: KindTool, Namespace: o.Metadata.Namespace, Name: t}] = true
			}
		}
	}
	for _, o := range objs {
		if o != nil && !v.shadowed[o] {
			guard(o)
		}
	}
	for _, o := range v.live {
		guard(o)
	}
	for _, o := range objs {
		ts, ok := o.Spec.(*ToolSpec)
		// A federated Tool has no HTTP route, and the MCP endpoint always
		// wants a credential.
		if !ok || v.shadowed[o] || ts.Protocol == ProtocolMCP || ts.Auth == nil || ts.Auth.Type != "none" || guarded[o.Ref()] {
			continue
		}
		path := "spec.auth.type"
		if !o.Source.has(path) {
			path = "metadata.name"
		}
		v.add(o, SeverityNote, false, path,
			"if it should not be, remove auth (an API key is the default) or choose jwt or oauth2",
			fmt.Sprintf("Tool %s/%s is public: its route needs no credential", o.Metadata.Namespace, o.Metadata.Name))
	}
}

// operations checks every operation of a tool.
func (v *validator) operations(o *Object, s *ToolSpec) {
	names := make(map[string]int, len(s.Operations))
	ns, tool := o.Metadata.Namespace, o.Metadata.Name
	for i := range s.Operations {
		op := &s.Operations[i]
		p := itemPath("spec.operations", i)
		switch {
		case op.Name == "":
			v.errorf(o, p+".name", "name it in snake_case, e.g. get_invoice", "missing operation name")
		case !isOperationName(op.Name):
			v.errorf(o, p+".name", "use lower-case letters, digits, '_' and '-'", "invalid operation name %q", op.Name)
		default:
			if j, dup := names[op.Name]; dup {
				v.errorf(o, p+".name", "operation names must be unique within a tool",
					"duplicate operation name %q (also %s)", op.Name, itemPath("spec.operations", j))
			} else {
				names[op.Name] = i
			}
		}
		switch {
		case op.Method == "":
			v.errorf(o, p+".method", "one of "+strings.Join(httpMethods, ", "), "missing method")
		case !contains(httpMethods, op.Method):
			hint := "one of " + strings.Join(httpMethods, ", ")
			if up := strings.ToUpper(op.Method); contains(httpMethods, up) {
				hint = fmt.Sprintf("write %q", up)
			}
			v.errorf(o, p+".method", hint, "unknown method %q", op.Method)
		}
		params := v.opPath(o, p, op.Path)
		v.opInput(o, p, op, params)
		switch {
		case op.MCPName != "" && !validMCPName(op.MCPName):
			v.errorf(o, p+".mcpName", "at most 64 characters of A-Z, a-z, 0-9, '_' and '-'", "invalid mcpName %q", op.MCPName)
		case strings.HasPrefix(op.MCPName, PlatformToolPrefix):
			v.errorf(o, p+".mcpName", `names starting with "stoa_" are reserved for platform tools; choose another`,
				"mcpName %q uses the reserved prefix %q", op.MCPName, PlatformToolPrefix)
		case op.MCPName == "" && isOperationName(op.Name) && checkDNSLabel(ns) == "" && checkDNSLabel(tool) == "":
			if name := MCPToolName(ns, tool, op); len(name) > MaxMCPNameLen {
				v.errorf(o, p+".name",
					fmt.Sprintf("set an explicit mcpName (≤64 chars), e.g. mcpName: %s", suggestMCPName(ns, tool, op.Name)),
					"MCP tool name %q is %d characters long; at most %d are allowed", name, len(name), MaxMCPNameLen)
			}
		}
		v.rate(o, p+".rateLimit", op.RateLimit)
		v.duration(o, p+".timeout", op.Timeout)
		v.stringList(o, p+".tags", "tag", op.Tags)
	}
}

// opPath checks an operation path and returns its {param} names.
func (v *validator) opPath(o *Object, p, path string) []string {
	if path == "" {
		v.errorf(o, p+".path", "the path below the upstream base, e.g. /invoices/{id}", "missing path")
		return nil
	}
	if path[0] != '/' {
		v.errorf(o, p+".path", fmt.Sprintf("write %q", "/"+path), "path %q must start with '/'", path)
	}
	params, problem := pathParams(path)
	if problem != "" {
		v.errorf(o, p+".path", "placeholders are written {name}", "path %q: %s", path, problem)
	}
	return params
}

// pathParams lists the {param} placeholders of path.
func pathParams(path string) ([]string, string) {
	var params []string
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '}':
			return params, "unmatched '}'"
		case '{':
			end := strings.IndexByte(path[i+1:], '}')
			if end < 0 {
				return params, "unclosed '{'"
			}
			name := path[i+1 : i+1+end]
			if name == "" || strings.ContainsAny(name, "{/") {
				return params, fmt.Sprintf("invalid placeholder {%s}", name)
			}
			params = append(params, name)
			i += end + 1
		}
	}
	return params, ""
}

// opInput checks an operation's input schema against its path and `in`.
func (v *validator) opInput(o *Object, p string, op *Operation, params []string) {
	var props map[string]any
	if op.Input != nil {
		if t, ok := op.Input["type"]; ok && t != "object" {
			v.errorf(o, p+".input.type", "the arguments of a tool are an object: type: object", "input must have type object, not %v", t)
		}
		if raw, ok := op.Input["properties"]; ok {
			m, isMap := raw.(map[string]any)
			if !isMap && raw != nil {
				v.errorf(o, p+".input.properties", "a mapping from argument name to its schema", "input.properties must be a mapping")
			}
			props = m
		}
		if raw, ok := op.Input["required"]; ok {
			list, isList := raw.([]any)
			if !isList && raw != nil {
				v.errorf(o, p+".input.required", "a list of property names", "input.required must be a list")
			}
			for i, r := range list {
				name, isStr := r.(string)
				switch {
				case !isStr:
					v.errorf(o, itemPath(p+".input.required", i), "", "input.required entries must be property names")
				case props != nil && props[name] == nil && !hasKey(props, name):
					v.errorf(o, itemPath(p+".input.required", i), "add it under input.properties",
						"required property %q is not defined in input.properties", name)
				}
			}
		}
		for _, name := range params {
			if !hasKey(props, name) {
				v.errorf(o, p+".path", fmt.Sprintf("add %s under input.properties, e.g. %s: {type: string}, and list it in input.required", name, name),
					"path parameter {%s} is not a property of input", name)
			}
		}
	}
	payload := ""
	for _, k := range sortedKeys(op.In) {
		if op.In[k] == "payload" {
			if payload != "" {
				v.errorf(o, p+".in"+pathKey(k), "one argument at most is the whole request body",
					"%q and %q are both in: payload", payload, k)
			}
			payload = k
		}
	}
	if payload != "" {
		// The payload is the whole body: no other argument can be a member
		// of it, whether by in: body or by the method's default.
		body := strings.EqualFold(op.Method, "POST") || strings.EqualFold(op.Method, "PUT") || strings.EqualFold(op.Method, "PATCH")
		for _, k := range sortedKeys(props) {
			place, set := op.In[k]
			if k == payload || contains(params, k) && !set {
				continue
			}
			if place == "body" || (!set && body) {
				v.errorf(o, p+".in"+pathKey(k), fmt.Sprintf("set in: {%s: query} or header, or fold it into %s", k, payload),
					"%q would be a body member, but %q is the whole body (in: payload)", k, payload)
			}
		}
	}
	for _, k := range sortedKeys(op.In) {
		place := op.In[k]
		kp := p + ".in" + pathKey(k)
		v.oneOf(o, kp, "argument location", place, argPlaces...)
		switch {
		case op.Input == nil:
			v.errorf(o, kp, "define the argument under input.properties", "in refers to %q, but the operation has no input", k)
		case !hasKey(props, k):
			v.errorf(o, kp, "define it under input.properties", "in refers to %q, which is not a property of input", k)
		}
		isParam := contains(params, k)
		if isParam && place != "path" && contains(argPlaces, place) {
			v.errorf(o, kp, "remove the entry, or rename the placeholder in path", "{%s} is a path placeholder, so it must be in: path", k)
		}
		if !isParam && place == "path" {
			v.errorf(o, kp, fmt.Sprintf("add {%s} to the operation path", k), "%q is in: path, but the path has no {%s} placeholder", k, k)
		}
	}
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// upstreamURL checks an upstream base URL.
func (v *validator) upstreamURL(o *Object, path, raw string) {
	u, msg := parseHTTPURL(raw)
	if msg != "" {
		v.errorf(o, path, "an absolute URL such as http://127.0.0.1:9001/base", "invalid upstream URL %q: %s", raw, msg)
		return
	}
	switch {
	case u.RawQuery != "" || u.ForceQuery:
		v.errorf(o, path, "put query parameters in operations, not in the base URL", "upstream URL %q must not have a query", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		v.errorf(o, path, "remove the #fragment", "upstream URL %q must not have a fragment", raw)
	}
}

// urlProblem explains why raw is not an absolute http(s) URL with a host and
// without credentials, or returns "".
func urlProblem(raw string) string {
	_, msg := parseHTTPURL(raw)
	return msg
}

// parseHTTPURL parses raw and explains what keeps it from being an absolute
// http(s) URL with a host and without credentials.
func parseHTTPURL(raw string) (*url.URL, string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return u, "scheme must be http or https"
	case u.Host == "" || u.Hostname() == "":
		return u, "missing host"
	case u.User != nil:
		return u, "credentials must not be part of the URL; use a secretRef"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return u, "invalid port"
		}
	}
	return u, ""
}

// validHost accepts a host name (optionally *.-prefixed) with an optional
// :port.
func validHost(h string) bool {
	host, port, hasPort := strings.Cut(h, ":")
	if hasPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	host = strings.TrimPrefix(strings.ToLower(host), "*.")
	if host == "" || len(host) > 253 {
		return false
	}
	for _, part := range strings.Split(host, ".") {
		if checkDNSName(part) != "" {
			return false
		}
	}
	return true
}

// isToken reports whether s is an HTTP header name (RFC 9110 token).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}
