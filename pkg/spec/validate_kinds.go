package spec

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Accepted values of the other kinds' fields.
var (
	toolSetAuth        = []string{"required", "optional"}
	subscriptionStates = []string{"active", "suspended", "revoked", "expired"}
	crossTenantModes   = []string{"forbidden", "notFound"}
	toolMetadataModes  = []string{"warn", "error"}
	xdpModes           = []string{"auto", "native", "generic"}
	xdpCounts          = []string{"packets", "connections"}
	jwtAlgorithms      = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// EventTypes are the webhook event types stoa emits.
var EventTypes = []string{
	"subscription.created", "subscription.renewed", "subscription.revoked", "subscription.expired",
	"key.created", "key.rotated", "key.revoked",
	"config.applied",
	"quota.exhausted",
}

// knownEvent reports whether e is an event type or a wildcard ("*",
// "subscription.*") matching at least one.
func knownEvent(e string) bool {
	if e == "*" || contains(EventTypes, e) {
		return true
	}
	if prefix, ok := strings.CutSuffix(e, ".*"); ok {
		for _, t := range EventTypes {
			if strings.HasPrefix(t, prefix+".") {
				return true
			}
		}
	}
	return false
}

func (v *validator) gateway(o *Object, s *GatewaySpec) {
	for i, c := range s.TrustedProxies {
		v.cidr(o, itemPath("spec.trustedProxies", i), c)
	}
	if l := s.Limits; l != nil {
		for _, f := range []struct {
			name string
			n    int64
		}{
			{"maxRequestLineBytes", int64(l.MaxRequestLineBytes)}, {"maxHeaderBytes", int64(l.MaxHeaderBytes)},
			{"maxHeaders", int64(l.MaxHeaders)}, {"maxBodyBytes", l.MaxBodyBytes}, {"maxResponseBytes", l.MaxResponseBytes}, {"maxConnsPerSource", int64(l.MaxConnsPerSource)},
		} {
			if f.n < 0 {
				v.errorf(o, "spec.limits."+f.name, "", "%s must not be negative", f.name)
			}
		}
		v.duration(o, "spec.limits.readHeaderTimeout", l.ReadHeaderTimeout)
		v.duration(o, "spec.limits.readTimeout", l.ReadTimeout)
		v.duration(o, "spec.limits.writeTimeout", l.WriteTimeout)
		v.duration(o, "spec.limits.idleTimeout", l.IdleTimeout)
	}
	v.limitsBackend(o, s)
	v.gatewayAccess(o, s.Access)
	v.tracing(o, s.Tracing)
	if x := s.XDP; x != nil {
		v.oneOf(o, "spec.xdp.mode", "xdp mode", x.Mode, xdpModes...)
		v.oneOf(o, "spec.xdp.count", "xdp count", x.Count, xdpCounts...)
		for i, name := range x.Interfaces {
			if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t:") {
				v.errorf(o, itemPath("spec.xdp.interfaces", i), "a network interface name such as eth0 (at most 15 characters)",
					"invalid interface name %q", name)
			}
		}
		seen := map[int]bool{}
		for i, p := range x.Ports {
			switch {
			case p < 1 || p > 65535:
				v.errorf(o, itemPath("spec.xdp.ports", i), "ports are 1 to 65535", "invalid port %d", p)
			case seen[p]:
				v.errorf(o, itemPath("spec.xdp.ports", i), "remove one of them", "duplicate port %d", p)
			}
			seen[p] = true
		}
		for i, c := range x.Deny {
			v.cidr(o, itemPath("spec.xdp.deny", i), c)
		}
		v.rate(o, "spec.xdp.perSource", x.PerSource)
		if e := x.Escalation; e != nil {
			if e.After <= 0 {
				v.errorf(o, "spec.xdp.escalation.after", "the number of 429 rejections that triggers a block, e.g. 50",
					"escalation.after must be positive")
			}
			for _, f := range []struct {
				name string
				d    Duration
			}{{"within", e.Within}, {"block", e.Block}} {
				if f.d.IsZero() {
					v.errorf(o, "spec.xdp.escalation."+f.name, "for example 1m", "missing escalation.%s", f.name)
				} else {
					v.duration(o, "spec.xdp.escalation."+f.name, f.d)
				}
			}
			// Wider blocks would shut out whole providers for one
			// client's misbehaviour.
			if b := e.IPv4PrefixLength; b != 0 && (b < 16 || b > 32) {
				v.errorf(o, "spec.xdp.escalation.ipv4PrefixLength", "16 to 32; 32 (the default) blocks the address alone",
					"ipv4PrefixLength %d out of range", b)
			}
			if b := e.IPv6PrefixLength; b != 0 && (b < 32 || b > 128) {
				v.errorf(o, "spec.xdp.escalation.ipv6PrefixLength", "32 to 128; 64 (the default) blocks the source's /64, 128 the address alone",
					"ipv6PrefixLength %d out of range", b)
			}
		}
	}
	v.oneOf(o, "spec.crossTenant", "crossTenant mode", s.CrossTenant, crossTenantModes...)
	for i, a := range s.Admins {
		path := itemPath("spec.admins", i)
		const issuerHint = "the OIDC issuer URL of admin tokens, e.g. https://idp.example.com/realms/ops"
		if a.Issuer == "" {
			v.errorf(o, path+".issuer", issuerHint, "missing issuer: an admin rule must name the issuer it trusts")
		} else if msg := urlProblem(a.Issuer); msg != "" {
			v.errorf(o, path+".issuer", issuerHint, "invalid admin issuer %q: %s", a.Issuer, msg)
		}
		if a.JWKSURL != "" {
			if msg := urlProblem(a.JWKSURL); msg != "" {
				v.errorf(o, path+".jwksURL", "", "invalid jwksURL %q: %s", a.JWKSURL, msg)
			}
		}
		v.stringList(o, path+".audiences", "audience", a.Audiences)
		v.claim(o, path, &ClaimMatch{Claim: a.Claim, Value: a.Value})
	}
	v.routingGrants(o, s.Routing)
	if m := s.MCP; m != nil {
		v.oneOf(o, "spec.mcp.toolMetadata", "toolMetadata mode", m.ToolMetadata, toolMetadataModes...)
		if m.PageSize < 0 {
			v.errorf(o, "spec.mcp.pageSize", "", "pageSize must not be negative")
		}
		if m.Resource != "" {
			if msg := urlProblem(m.Resource); msg != "" {
				v.errorf(o, "spec.mcp.resource", "the canonical URL of the MCP endpoint, e.g. https://gw.example.com/mcp",
					"invalid resource %q: %s", m.Resource, msg)
			}
		}
		for i, origin := range m.AllowedOrigins {
			u, err := url.Parse(origin)
			if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
				v.errorf(o, itemPath("spec.mcp.allowedOrigins", i), "an origin is scheme://host[:port], e.g. https://app.example.com",
					"invalid origin %q", origin)
			}
		}
		for i, h := range m.AllowedHosts {
			if !validHostName(h) {
				v.errorf(o, itemPath("spec.mcp.allowedHosts", i), "a host name or IP address as clients put it in Host, e.g. gw.example.com or [2001:db8::1]; no scheme or path",
					"invalid host %q", h)
			}
		}
		v.federationGrants(o, m.Federation)
	}
	if sp := s.Snapshots; sp != nil {
		if sp.MaxCount < 0 || sp.MaxBodyBytes < 0 {
			v.errorf(o, "spec.snapshots", "", "snapshot limits must not be negative")
		}
		v.duration(o, "spec.snapshots.maxAge", sp.MaxAge)
	}
}

// cidr checks a CIDR, warning when host bits are set.
func (v *validator) cidr(o *Object, path, s string) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		hint := "write a CIDR such as 10.0.0.0/8 or 2001:db8::/32"
		if a, err := netip.ParseAddr(s); err == nil {
			hint = fmt.Sprintf("for a single address write %s/%d", s, a.BitLen())
		}
		v.errorf(o, path, hint, "invalid CIDR %q", s)
		return
	}
	if p.Masked() != p {
		v.warnf(o, path, fmt.Sprintf("write %s", p.Masked()), "CIDR %q has host bits set; it means %s", s, p.Masked())
	}
}

// claim checks a claim match.
func (v *validator) claim(o *Object, path string, c *ClaimMatch) {
	if c.Claim == "" {
		v.errorf(o, path+".claim", "the JWT claim name, e.g. roles or realm_access.roles", "missing claim")
	}
	if c.Value == "" {
		v.errorf(o, path+".value", "the value the claim must equal or contain", "missing value")
	}
}

func (v *validator) tenant(o *Object, s *TenantSpec) {
	switch o.Metadata.Name {
	case "stoa":
		v.errorf(o, "metadata.name", "choose another tenant name",
			"tenant name %q is reserved: its MCP tool names would look like platform tools (stoa_*)", o.Metadata.Name)
	case "mcp":
		v.errorf(o, "metadata.name", "choose another tenant name",
			"tenant name %q is reserved: its route space /mcp/ is where stoad serves the MCP endpoint", o.Metadata.Name)
	}
	if id := s.Identity; id != nil {
		if id.Issuer == "" {
			v.errorf(o, "spec.identity.issuer", "the OIDC issuer URL, e.g. https://idp.example.com/realms/acme", "missing identity.issuer")
		} else if msg := urlProblem(id.Issuer); msg != "" {
			v.errorf(o, "spec.identity.issuer", "the OIDC issuer URL, e.g. https://idp.example.com/realms/acme", "invalid issuer %q: %s", id.Issuer, msg)
		}
		if id.JWKSURL != "" {
			if msg := urlProblem(id.JWKSURL); msg != "" {
				v.errorf(o, "spec.identity.jwksURL", "", "invalid jwksURL %q: %s", id.JWKSURL, msg)
			}
		}
		v.stringList(o, "spec.identity.audiences", "audience", id.Audiences)
		if id.TenantClaim != nil {
			v.claim(o, "spec.identity.tenantClaim", id.TenantClaim)
		}
		for i, a := range id.Algorithms {
			p := itemPath("spec.identity.algorithms", i)
			switch {
			case strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS"):
				v.errorf(o, p, "use an asymmetric algorithm: "+strings.Join(jwtAlgorithms, ", "), "algorithm %q is never allowed", a)
			default:
				v.oneOf(o, p, "algorithm", a, jwtAlgorithms...)
			}
		}
	}
	if d := s.Defaults; d != nil {
		v.rate(o, "spec.defaults.rateLimit", d.RateLimit)
		v.rate(o, "spec.defaults.perSource", d.PerSource)
	}
	v.tenantAccess(o, s.Access)
	v.policyField(o, "spec.policy", s.Policy)
	v.description(o, "spec.description", s.Description)
}

func (v *validator) toolSet(o *Object, s *ToolSetSpec) {
	if len(s.Tools) == 0 {
		v.errorf(o, "spec.tools", "list the names of Tools in the same tenant", "a ToolSet needs at least one tool")
	}
	v.stringList(o, "spec.tools", "tool", s.Tools)
	seen := map[string]bool{}
	for i, t := range s.Tools {
		if t != "" && !seen[t] {
			v.ref(o, itemPath("spec.tools", i), KindTool, t)
		}
		seen[t] = true
	}
	if p := s.Policies; p != nil {
		v.oneOf(o, "spec.policies.auth", "auth policy", p.Auth, toolSetAuth...)
		v.rate(o, "spec.policies.rateLimit", p.RateLimit)
	}
	v.policyField(o, "spec.policy", s.Policy)
	v.description(o, "spec.description", s.Description)
}

func (v *validator) plan(o *Object, s *PlanSpec) {
	v.rate(o, "spec.rateLimit", s.RateLimit)
	v.description(o, "spec.description", s.Description)
	if q := s.Quota; q != nil {
		if q.Daily < 0 {
			v.errorf(o, "spec.quota.daily", "0 means no daily cap", "quota.daily must not be negative")
		}
		if q.Monthly < 0 {
			v.errorf(o, "spec.quota.monthly", "0 means no monthly cap", "quota.monthly must not be negative")
		}
	}
}

func (v *validator) consumer(o *Object, s *ConsumerSpec) {
	v.stringList(o, "spec.subjects", "subject", s.Subjects)
	v.description(o, "spec.description", s.Description)
}

func (v *validator) subscription(o *Object, s *SubscriptionSpec) {
	if s.Consumer == "" {
		v.errorf(o, "spec.consumer", "the name of a Consumer in the same tenant", "missing consumer")
	}
	v.ref(o, "spec.consumer", KindConsumer, s.Consumer)
	if s.Plan == "" {
		v.errorf(o, "spec.plan", "the name of a Plan in the same tenant", "missing plan")
	}
	v.ref(o, "spec.plan", KindPlan, s.Plan)
	switch {
	case s.Tool == "" && s.ToolSet == "":
		v.errorf(o, "spec.tool", "subscribe to a tool or a toolSet", "missing tool or toolSet")
	case s.Tool != "" && s.ToolSet != "":
		v.errorf(o, "spec.toolSet", "keep either tool or toolSet", "set either tool or toolSet, not both")
	case s.Tool != "":
		v.ref(o, "spec.tool", KindTool, s.Tool)
	default:
		v.ref(o, "spec.toolSet", KindToolSet, s.ToolSet)
	}
	v.oneOf(o, "spec.state", "state", s.State, subscriptionStates...)
	if s.ExpiresAt != "" {
		if _, err := time.Parse(time.RFC3339, s.ExpiresAt); err != nil {
			v.errorf(o, "spec.expiresAt", "an RFC 3339 time such as 2026-12-31T23:59:59Z", "invalid expiresAt %q", s.ExpiresAt)
		}
	}
}

func (v *validator) webhook(o *Object, s *WebhookSpec) {
	if s.URL == "" {
		v.errorf(o, "spec.url", "the URL events are POSTed to, e.g. https://hooks.example.com/stoa", "missing url")
	} else if msg := urlProblem(s.URL); msg != "" {
		v.errorf(o, "spec.url", "an absolute http(s) URL, e.g. https://hooks.example.com/stoa", "invalid webhook URL %q: %s", s.URL, msg)
	} else if u, _ := url.Parse(s.URL); !s.AllowPrivate {
		if reason := NonPublicHost(u.Hostname()); reason != "" {
			v.errorf(o, "spec.url", "set allowPrivate: true to deliver to local or private addresses",
				"webhook URL %q points at a non-public address (%s)", s.URL, reason)
		}
	}
	if len(s.Events) == 0 {
		v.errorf(o, "spec.events", `for example events: ["subscription.*"] or ["*"]`, "a Webhook needs at least one event")
	}
	v.stringList(o, "spec.events", "event", s.Events)
	for i, e := range s.Events {
		if e != "" && !knownEvent(e) {
			hint := "known events: " + strings.Join(EventTypes, ", ") + `, or a wildcard such as "subscription.*" or "*"`
			if sg := suggest(e, EventTypes); sg != "" {
				hint = fmt.Sprintf("did you mean %q?", sg)
			}
			v.errorf(o, itemPath("spec.events", i), hint, "unknown event %q", e)
		}
	}
	v.secretRef(o, "spec.secretRef", s.SecretRef)
	v.duration(o, "spec.timeout", s.Timeout)
	if s.MaxAttempts < 0 {
		v.errorf(o, "spec.maxAttempts", "", "maxAttempts must not be negative")
	}
}

// validHostName accepts a DNS name or IP address, with an optional port
// (ignored by the MCP Host check): what clients send in Host.
func validHostName(h string) bool {
	if h == "" || len(h) > 253+6 {
		return false
	}
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		if _, err := netip.ParseAddr(h[1:end]); err != nil {
			return false
		}
		rest := h[end+1:]
		return rest == "" || (rest[0] == ':' && validPortText(rest[1:]))
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Is6() {
		return true // a bare IPv6 address
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !validPortText(h[i+1:]) {
			return false
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for j := 0; j < len(label); j++ {
			c := label[j]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func validPortText(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for j := 0; j < len(p); j++ {
		if p[j] < '0' || p[j] > '9' {
			return false
		}
		n = n*10 + int(p[j]-'0')
	}
	return n <= 65535
}
