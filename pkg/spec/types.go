// Package spec defines stoa's declarative object model (apiVersion
// stoa.io/v1alpha1): the kinds, their fields and defaults, a strict YAML
// loader that keeps source positions, and validation that reports every
// problem with file:line:col.
//
// Field documentation lives in the doc comments below; `stoa explain` and the
// generated JSON Schemas in specs/ are derived from it.
package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// APIVersion is the only apiVersion this release understands.
const APIVersion = "stoa.io/v1alpha1"

// SupportedAPIVersions lists every apiVersion the loader accepts.
var SupportedAPIVersions = []string{APIVersion}

// Kind names one of the object kinds.
type Kind string

// The kinds, in dependency order: an object may only refer to kinds before it.
const (
	KindGateway      Kind = "Gateway"
	KindTenant       Kind = "Tenant"
	KindTool         Kind = "Tool"
	KindToolSet      Kind = "ToolSet"
	KindPlan         Kind = "Plan"
	KindConsumer     Kind = "Consumer"
	KindSubscription Kind = "Subscription"
	KindWebhook      Kind = "Webhook"
)

// Kinds lists every kind in dependency order (creates run in this order,
// deletes in reverse).
var Kinds = []Kind{KindGateway, KindTenant, KindTool, KindToolSet, KindPlan, KindConsumer, KindSubscription, KindWebhook}

// Namespaced reports whether objects of kind k live in a tenant
// (metadata.namespace) rather than at cluster scope.
func (k Kind) Namespaced() bool { return k != KindTenant && k != KindGateway }

// Order is k's position in Kinds (dependency order); unknown kinds sort last.
func (k Kind) Order() int {
	for i, kk := range Kinds {
		if kk == k {
			return i
		}
	}
	return len(Kinds)
}

// ParseKind resolves a user-typed kind name: the kind itself, lower case,
// plural, or a short alias ("tools", "toolset", "sub").
func ParseKind(s string) (Kind, bool) {
	l := strings.ToLower(strings.TrimSpace(s))
	for _, k := range Kinds {
		lk := strings.ToLower(string(k))
		if l == lk || l == lk+"s" {
			return k, true
		}
	}
	switch l {
	case "gw", "gateways":
		return KindGateway, true
	case "ts":
		return KindToolSet, true
	case "sub", "subs":
		return KindSubscription, true
	case "wh", "hooks":
		return KindWebhook, true
	}
	return "", false
}

// NewSpec returns an empty spec value for kind k, or nil for unknown kinds.
func NewSpec(k Kind) Spec {
	switch k {
	case KindGateway:
		return &GatewaySpec{}
	case KindTenant:
		return &TenantSpec{}
	case KindTool:
		return &ToolSpec{}
	case KindToolSet:
		return &ToolSetSpec{}
	case KindPlan:
		return &PlanSpec{}
	case KindConsumer:
		return &ConsumerSpec{}
	case KindSubscription:
		return &SubscriptionSpec{}
	case KindWebhook:
		return &WebhookSpec{}
	}
	return nil
}

// Spec is implemented by the typed spec of every kind.
type Spec interface {
	// Kind is the kind this spec belongs to.
	Kind() Kind
}

// Object is one declarative object: the Kubernetes-shaped envelope around a
// kind's typed Spec.
type Object struct {
	APIVersion string   `json:"apiVersion"`
	Kind       Kind     `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`

	// Source says where the object was read from; nil for objects that came
	// from the daemon or were built in code.
	Source *Source `json:"-"`
}

// Metadata identifies an object and carries free-form labels.
type Metadata struct {
	// Name is a DNS label: lower-case letters, digits and '-', at most 63
	// characters, starting with a letter.
	Name string `json:"name"`
	// Namespace is the tenant that owns the object. Required for tenant-scoped
	// kinds, forbidden for Tenant and Gateway.
	Namespace string `json:"namespace,omitempty"`
	// Labels select objects (for example for `stoa apply --prune -l`).
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are free-form notes that stoa stores but does not interpret.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Ref names one object.
type Ref struct {
	Kind      Kind   `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String renders r as Kind/name or Kind/namespace/name.
func (r Ref) String() string {
	if r.Namespace == "" {
		return string(r.Kind) + "/" + r.Name
	}
	return string(r.Kind) + "/" + r.Namespace + "/" + r.Name
}

// Less orders refs by kind dependency order, then namespace, then name.
func (r Ref) Less(o Ref) bool {
	if a, b := r.Kind.Order(), o.Kind.Order(); a != b {
		return a < b
	}
	if r.Namespace != o.Namespace {
		return r.Namespace < o.Namespace
	}
	return r.Name < o.Name
}

// Ref returns the object's identity.
func (o *Object) Ref() Ref {
	return Ref{Kind: o.Kind, Namespace: o.Metadata.Namespace, Name: o.Metadata.Name}
}

// UnmarshalJSON decodes an object, choosing the spec type from its kind.
// The kind is read first by a quick scan of the top-level members, so the
// envelope and its spec decode in one pass: stoad decodes every object of
// a request this way, and decoding the spec apart (as json.RawMessage,
// then again) scanned its bytes twice more.
func (o *Object) UnmarshalJSON(b []byte) error {
	kind, ok := peekKind(b)
	if !ok {
		return o.unmarshalTwoPass(b)
	}
	s := NewSpec(kind)
	if s == nil {
		return o.unmarshalTwoPass(b) // which words the error
	}
	type plain Object // Object without its methods: no recursion
	p := plain{Spec: s}
	if err := json.Unmarshal(b, &p); err != nil || p.Kind != kind {
		// Errors are rare: the two-pass decoder words them (naming the
		// object whose spec is wrong). A kind the scan read differently
		// from the decoder (spelled with escapes) is read again there too.
		return o.unmarshalTwoPass(b)
	}
	// "spec": null leaves the interface nil; the object keeps its empty,
	// typed spec, as an absent spec does.
	p.Spec = s
	*o = Object(p)
	return nil
}

// peekKind returns the string value of b's top-level "kind" member (the
// last one, as the decoder keeps the last), scanning b as valid JSON
// without decoding it. ok is false whenever the one-pass decode could
// read b differently from the two-pass one: b is not an object; the kind
// is missing, not a string, or written with escapes; a top-level name is
// written with escapes or non-ASCII letters (the decoder matches names
// with Unicode case folding, so "\u017fpec" is a spec); or the spec
// appears twice (the two-pass decoder keeps the last, the one-pass one
// merges them).
func peekKind(b []byte) (kind Kind, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	i++
	specs := 0
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return kind, ok
		}
		name := b[i+1:]
		kEnd, esc := scanString(b, i)
		if kEnd < 0 || esc {
			return "", false
		}
		name = name[:kEnd-i-1]
		for _, c := range name {
			if c >= utf8.RuneSelf {
				return "", false
			}
		}
		i = skipSpace(b, kEnd+1)
		if i >= len(b) || b[i] != ':' {
			return "", false
		}
		i = skipSpace(b, i+1)
		if bytes.EqualFold(name, []byte("spec")) {
			if specs++; specs > 1 {
				return "", false
			}
		}
		if bytes.EqualFold(name, []byte("kind")) {
			if i >= len(b) || b[i] != '"' {
				return "", false
			}
			vEnd, vEsc := scanString(b, i)
			if vEnd < 0 || vEsc {
				return "", false
			}
			kind, ok = Kind(b[i+1:vEnd]), true
			i = vEnd + 1
		} else if i = skipValue(b, i); i < 0 {
			return "", false
		}
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		return kind, ok
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index of the quote closing the string that opens
// at b[i], and whether it holds escapes; -1 when it does not close.
func scanString(b []byte, i int) (end int, esc bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j, esc
		}
	}
	return -1, false
}

// skipValue returns the index just past the JSON value starting at b[i],
// or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := scanString(b, i)
		if end < 0 {
			return -1
		}
		return end + 1
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, _ := scanString(b, i)
				if end < 0 {
					return -1
				}
				i = end
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	// A number, true, false or null.
	for i < len(b) && !strings.ContainsRune(",}] \t\n\r", rune(b[i])) {
		i++
	}
	return i
}

// unmarshalTwoPass decodes the envelope with the spec kept raw, then the
// spec by the kind found.
func (o *Object) unmarshalTwoPass(b []byte) error {
	var raw struct {
		APIVersion string          `json:"apiVersion"`
		Kind       Kind            `json:"kind"`
		Metadata   Metadata        `json:"metadata"`
		Spec       json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	s := NewSpec(raw.Kind)
	if s == nil {
		return fmt.Errorf("unknown kind %q", raw.Kind)
	}
	if len(raw.Spec) > 0 && string(raw.Spec) != "null" {
		if err := json.Unmarshal(raw.Spec, s); err != nil {
			return fmt.Errorf("%s %s: spec: %w", raw.Kind, raw.Metadata.Name, err)
		}
	}
	*o = Object{APIVersion: raw.APIVersion, Kind: raw.Kind, Metadata: raw.Metadata, Spec: s}
	return nil
}

// SecretRef points at a secret held outside the spec: an environment variable
// of stoad or a file readable by stoad. Exactly one of env and file is set.
// Secret values never appear in specs, plans or logs.
type SecretRef struct {
	// Env is the name of an environment variable of the stoad process.
	Env string `json:"env,omitempty"`
	// File is a path, read by stoad, whose contents (trimmed) are the secret.
	File string `json:"file,omitempty"`
}

// RateLimit is a rate written "N/s", "N/min", "N/h" or "N/d", optionally with
// a burst. In YAML it is either the bare rate string (`rateLimit: 100/s`) or a
// mapping (`rateLimit: {rate: 100/s, burst: 20}`).
type RateLimit struct {
	// Rate is the sustained rate, "N/s|min|h|d".
	Rate Rate `json:"rate"`
	// Burst is how many requests may arrive at once above the sustained rate.
	// Defaults to the rate per second (at least 1).
	Burst int `json:"burst,omitempty"`
}

// IsZero reports whether no limit is set.
func (r *RateLimit) IsZero() bool { return r == nil || r.Rate.IsZero() }

// ---------------------------------------------------------------- Gateway

// GatewaySpec is daemon-wide runtime policy. At most one Gateway object may
// exist (conventionally named "default").
type GatewaySpec struct {
	// TrustedProxies are CIDRs whose X-Forwarded-* headers are believed; for
	// every other peer the gateway overwrites them.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// Limits bound request sizes and client timing.
	Limits *GatewayLimits `json:"limits,omitempty"`
	// XDP configures the in-kernel per-source limiter.
	XDP *XDPConfig `json:"xdp,omitempty"`
	// AccessLog turns on the structured JSON access log (off by default).
	AccessLog *AccessLog `json:"accessLog,omitempty"`
	// CrossTenant is the status a credential of one tenant gets on another
	// tenant's route: "forbidden" (403, default) or "notFound" (404).
	CrossTenant string `json:"crossTenant,omitempty"`
	// Admins are the rules that make a token's bearer a platform admin (sees
	// every tenant). Each names its issuer: an admin claim is never honoured
	// from just any trusted issuer, or a tenant running its own IdP could
	// mint itself admin.
	Admins []AdminRule `json:"admins,omitempty"`
	// MCP configures the MCP endpoint.
	MCP *GatewayMCP `json:"mcp,omitempty"`
	// Snapshots bounds the error snapshots kept per tenant.
	Snapshots *SnapshotPolicy `json:"snapshots,omitempty"`
	// Routing grants tenants paths and hosts outside their own space.
	Routing *GatewayRouting `json:"routing,omitempty"`
	// Access says who administers the whole cluster through the control
	// plane (the cluster admin role), and which token claim holds groups
	// for every access rule, the Tenants' included.
	Access *GatewayAccess `json:"access,omitempty"`
	// Tracing exports OpenTelemetry traces of requests, MCP calls and
	// applies over OTLP/HTTP. Off by default.
	Tracing *Tracing `json:"tracing,omitempty"`
	// Redis is the store of limits and quotas shared by a fleet of data
	// planes; used when limits.backend is redis.
	Redis *RedisConfig `json:"redis,omitempty"`
}

// Kind implements Spec.
func (*GatewaySpec) Kind() Kind { return KindGateway }

// GatewayRouting says who may route what. A tenant's Tools route under
// /{tenant}/ unless a grant here gives it more; grants live in the Gateway
// because cluster admins own it (a grant on the Tenant would be granted by
// the tenant's own admins).
type GatewayRouting struct {
	// Grants give tenants path prefixes and hosts outside their own space.
	Grants []RouteGrant `json:"grants,omitempty"`
}

// RouteGrant gives one tenant path prefixes and hosts. A granted prefix or
// host belongs to that tenant alone: it may not overlap another tenant's
// space or grants, nor the paths stoad serves itself (/mcp, /.well-known).
type RouteGrant struct {
	// Tenant is the name of the Tenant granted.
	Tenant string `json:"tenant"`
	// PathPrefixes the tenant's Tools may route at or under, e.g. /api.
	// "/" grants every path no other tenant owns (only while no other
	// tenant exists).
	PathPrefixes []string `json:"pathPrefixes,omitempty"`
	// Hosts the tenant's Tools may route on with any path prefix; another
	// tenant's routes are refused on them.
	Hosts []string `json:"hosts,omitempty"`
}

// GatewayLimits bounds what a client may send and how slowly.
type GatewayLimits struct {
	// MaxRequestLineBytes caps method + URI + version (414 beyond).
	MaxRequestLineBytes int `json:"maxRequestLineBytes,omitempty"`
	// MaxHeaderBytes caps the whole request header block (431 beyond).
	MaxHeaderBytes int `json:"maxHeaderBytes,omitempty"`
	// MaxHeaders caps the number of request header fields (431 beyond).
	MaxHeaders int `json:"maxHeaders,omitempty"`
	// MaxBodyBytes caps request bodies (413, answered before reading the body).
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// MaxResponseBytes caps upstream response bodies; 0 (the default) means
	// no cap. Bodies are streamed, so this bounds what a client receives,
	// not the gateway's memory: over it by Content-Length, the answer is a
	// 502 response_too_large; a body of unknown length that grows past it
	// is cut off and the client connection closed.
	MaxResponseBytes int64 `json:"maxResponseBytes,omitempty"`
	// ReadHeaderTimeout is how long a client may take to send headers.
	ReadHeaderTimeout Duration `json:"readHeaderTimeout,omitzero"`
	// ReadTimeout is how long a client may take to send a whole request.
	ReadTimeout Duration `json:"readTimeout,omitzero"`
	// WriteTimeout is how long writing a response may take.
	WriteTimeout Duration `json:"writeTimeout,omitzero"`
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout Duration `json:"idleTimeout,omitzero"`
	// MaxConnsPerSource caps concurrent connections from one client address.
	MaxConnsPerSource int `json:"maxConnsPerSource,omitempty"`
	// Backend is where rate limits and quotas are counted: "local" (this
	// stoad alone, the default) or "redis" (shared by every data plane
	// through spec.redis, so a limit holds for the fleet).
	Backend string `json:"backend,omitempty"`
}

// XDPConfig configures the XDP program.
type XDPConfig struct {
	// Enabled turns the kernel limiter on. Without kernel support stoad falls
	// back to the same limit in userspace and says why in `stoa status`.
	Enabled bool `json:"enabled"`
	// Interfaces to attach to; default ["lo"].
	Interfaces []string `json:"interfaces,omitempty"`
	// Mode is "auto" (native where the driver allows, else generic), "native"
	// or "generic".
	Mode string `json:"mode,omitempty"`
	// PerSource is the per-source-address token bucket.
	PerSource *RateLimit `json:"perSource,omitempty"`
	// Count is what the bucket counts: "packets" or "connections" (TCP SYN).
	Count string `json:"count,omitempty"`
	// Ports are the destination ports acted on; default: the gateway's
	// listener port. Everything else passes untouched.
	Ports []int `json:"ports,omitempty"`
	// Deny lists CIDRs (IPv4 or IPv6) dropped outright.
	Deny []string `json:"deny,omitempty"`
	// Escalation promotes sources that keep hitting L7 limits into the kernel
	// block list.
	Escalation *Escalation `json:"escalation,omitempty"`
}

// Escalation blocks a source in XDP after repeated L7 rejections.
type Escalation struct {
	// After is the number of 429 rejections that triggers a block.
	After int `json:"after"`
	// Within is the window in which those rejections must occur.
	Within Duration `json:"within"`
	// Block is the cool-down: how long the source stays blocked.
	Block Duration `json:"block"`
	// IPv4PrefixLength is how much of an IPv4 source is counted and
	// blocked as one: 32 (the default) is the address itself.
	IPv4PrefixLength int `json:"ipv4PrefixLength,omitempty"`
	// IPv6PrefixLength is the same for IPv6; default 64, the smallest
	// network a site is usually given, so that a source cannot dodge the
	// block by moving to another address of its own /64.
	IPv6PrefixLength int `json:"ipv6PrefixLength,omitempty"`
}

// AccessLog configures the access log.
type AccessLog struct {
	// Enabled writes one JSON line per request (never with credentials).
	Enabled bool `json:"enabled"`
	// Path is a file to append to; default stderr.
	Path string `json:"path,omitempty"`
}

// ClaimMatch matches one JWT claim against a value (string claims compare
// equal, array claims must contain it).
type ClaimMatch struct {
	// Claim is the claim name; dotted paths reach nested objects
	// ("realm_access.roles").
	Claim string `json:"claim"`
	// Value is the value the claim must equal or contain.
	Value string `json:"value"`
}

// AdminRule makes the bearers of matching tokens platform admins.
type AdminRule struct {
	// Issuer of admin tokens (OIDC issuer URL).
	Issuer string `json:"issuer"`
	// JWKSURL overrides the JWKS location found by discovery.
	JWKSURL string `json:"jwksURL,omitempty"`
	// Audiences accepted; default: the gateway's resource.
	Audiences []string `json:"audiences,omitempty"`
	// Claim is the claim name (dotted paths reach nested objects).
	Claim string `json:"claim"`
	// Value the claim must equal or contain.
	Value string `json:"value"`
}

// GatewayMCP configures the MCP endpoint.
type GatewayMCP struct {
	// AllowedOrigins lists browser Origins accepted on /mcp (others get 403);
	// requests without an Origin header are always accepted.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	// AllowedHosts lists the Host names /mcp answers to (DNS-rebinding
	// defence), e.g. gw.example.com; ports are not compared. When set, other
	// names get 403 on every TCP listener. When empty, a loopback --listen
	// accepts localhost, 127.0.0.1 and [::1] only, and other listens accept
	// any Host.
	AllowedHosts []string `json:"allowedHosts,omitempty"`
	// Resource is the canonical URL of this MCP resource server (the token
	// audience); default http://<listen>/mcp.
	Resource string `json:"resource,omitempty"`
	// PageSize is the number of tools per tools/list page.
	PageSize int `json:"pageSize,omitempty"`
	// ToolMetadata is what validation does with hidden characters and
	// prompt-injection markup in the text agents read (tool and operation
	// descriptions, titles, tags, input schemas): "warn" (default) or
	// "error".
	ToolMetadata string `json:"toolMetadata,omitempty"`
	// Federation says what Tools with protocol: mcp may do that only
	// cluster admins may allow.
	Federation *MCPFederation `json:"federation,omitempty"`
}

// SnapshotPolicy bounds error snapshots per tenant.
type SnapshotPolicy struct {
	// MaxCount is the number of snapshots kept per tenant.
	MaxCount int `json:"maxCount,omitempty"`
	// MaxAge drops snapshots older than this.
	MaxAge Duration `json:"maxAge,omitzero"`
	// MaxBodyBytes is how much of each body is kept.
	MaxBodyBytes int `json:"maxBodyBytes,omitempty"`
	// RedactHeaders are extra header names to redact.
	RedactHeaders []string `json:"redactHeaders,omitempty"`
	// RedactFields are extra JSON field names to redact in bodies.
	RedactFields []string `json:"redactFields,omitempty"`
}

// ---------------------------------------------------------------- Tenant

// TenantSpec describes a tenant: who it is and which identity provider's
// tokens belong to it.
type TenantSpec struct {
	// DisplayName is a human-readable name.
	DisplayName string `json:"displayName,omitempty"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// Identity maps JWTs to this tenant.
	Identity *TenantIdentity `json:"identity,omitempty"`
	// Defaults apply to every tool of the tenant.
	Defaults *TenantDefaults `json:"defaults,omitempty"`
	// Suspended rejects every request for the tenant's tools (403).
	Suspended bool `json:"suspended,omitempty"`
	// Access grants control-plane roles on the tenant to the tokens each
	// entry matches: viewer, editor or admin.
	Access []AccessEntry `json:"access,omitempty"`
	// Policy holds CEL rules that apply to every tool of the tenant; their
	// deny rules are guardrails no ToolSet or Tool can lift.
	Policy *Policy `json:"policy,omitempty"`
}

// Kind implements Spec.
func (*TenantSpec) Kind() Kind { return KindTenant }

// TenantIdentity says which tokens belong to the tenant.
type TenantIdentity struct {
	// Issuer is the OIDC issuer URL (its discovery document gives the JWKS).
	Issuer string `json:"issuer"`
	// JWKSURL overrides the JWKS location found by discovery.
	JWKSURL string `json:"jwksURL,omitempty"`
	// Audiences accepted in the "aud" claim; default: the gateway's resource.
	Audiences []string `json:"audiences,omitempty"`
	// TenantClaim, when several tenants share one issuer, names the claim (and
	// value) that selects this tenant.
	TenantClaim *ClaimMatch `json:"tenantClaim,omitempty"`
	// Algorithms allowed for token signatures; default RS256, ES256 and
	// EdDSA family as advertised by the key. "none" and HMAC are never allowed.
	Algorithms []string `json:"algorithms,omitempty"`
}

// TenantDefaults are limits applied to every call into the tenant.
type TenantDefaults struct {
	// RateLimit for the tenant as a whole.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// PerSource limits each client address across the tenant's tools.
	PerSource *RateLimit `json:"perSource,omitempty"`
}

// ---------------------------------------------------------------- Tool

// ToolSpec is one upstream API, served as an HTTP route and, per operation,
// as MCP tools.
type ToolSpec struct {
	// Protocol of the upstream: "rest" (an HTTP API, the default) or "mcp"
	// (an MCP server whose tools join the tenant's catalog; see mcp).
	Protocol string `json:"protocol"`
	// Description of the API as a whole.
	Description string `json:"description,omitempty"`
	// Tags classify the tool (searchable by stoa_tools).
	Tags []string `json:"tags,omitempty"`
	// Upstream is the base URL of the API. Exactly one of upstream and
	// upstreams is set.
	Upstream string `json:"upstream,omitempty"`
	// Upstreams are weighted base URLs (canary releases, traffic shifting).
	Upstreams []WeightedUpstream `json:"upstreams,omitempty"`
	// Route says where the gateway serves the tool; default path prefix
	// /{tenant}/{tool}.
	Route *Route `json:"route,omitempty"`
	// Auth is what callers must present; default {type: apiKey}. A public
	// Tool says so: auth: {type: none}.
	Auth *ToolAuth `json:"auth,omitempty"`
	// UpstreamAuth is the credential the gateway sends upstream.
	UpstreamAuth *UpstreamAuth `json:"upstreamAuth,omitempty"`
	// UpstreamTLS says how https upstreams are verified: a private CA to
	// trust and the name their certificates carry. Default: the system's
	// roots and the upstream URL's host.
	UpstreamTLS *UpstreamTLS `json:"upstreamTLS,omitempty"`
	// Timeouts for upstream calls.
	Timeouts *Timeouts `json:"timeouts,omitempty"`
	// Retries for failed idempotent requests (never POST or PATCH).
	Retries *Retries `json:"retries,omitempty"`
	// HealthCheck probes upstreams actively.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	// CircuitBreaker ejects upstreams that keep failing (passive health).
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
	// RateLimit applies to the tool as a whole.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// OpenAPI is a path (relative to the spec file) or URL of an OpenAPI 3
	// document whose operations are imported; explicit operations win.
	OpenAPI string `json:"openapi,omitempty"`
	// Operations each become one MCP tool.
	Operations []Operation `json:"operations,omitempty"`
	// MCP names the upstream MCP server of a Tool with protocol: mcp, and
	// which of its tools are exposed. Such a Tool has no upstream(s),
	// operations, openapi, route, upstreamTLS, timeouts, retries,
	// healthCheck or circuitBreaker.
	MCP *MCPUpstream `json:"mcp,omitempty"`
	// Policy holds CEL rules for calls of this tool. Its allow rules,
	// when it has any, replace those of its ToolSets and Tenant.
	Policy *Policy `json:"policy,omitempty"`
}

// Kind implements Spec.
func (*ToolSpec) Kind() Kind { return KindTool }

// WeightedUpstream is one upstream with a traffic share.
type WeightedUpstream struct {
	// URL is the upstream base URL.
	URL string `json:"url"`
	// Weight is the relative share of traffic (0 drains it); default 1.
	Weight int `json:"weight"`
}

// Route says where the gateway serves a tool.
type Route struct {
	// PathPrefix to match; default /{tenant}/{tool}. Stripped before
	// forwarding and replaced by the upstream's base path. It must lie
	// under /{tenant}/ unless the Gateway grants the tenant the prefix
	// (spec.routing.grants) or the route's host.
	PathPrefix string `json:"pathPrefix,omitempty"`
	// Host restricts the route to one Host header value. A host another
	// tenant is granted is refused.
	Host string `json:"host,omitempty"`
}

// ToolAuth is what callers of a tool must present.
type ToolAuth struct {
	// Type is "none", "apiKey", "jwt" or "oauth2" (jwt and oauth2 both mean a
	// bearer JWT validated against the issuer).
	Type string `json:"type"`
	// Issuer of accepted tokens; default: the tenant's identity issuer.
	Issuer string `json:"issuer,omitempty"`
	// Audiences accepted; default: the tenant's.
	Audiences []string `json:"audiences,omitempty"`
	// Scopes every token must carry.
	Scopes []string `json:"scopes,omitempty"`
	// ForwardCredentials passes the client's API key or token to the
	// upstream. Off by default.
	ForwardCredentials bool `json:"forwardCredentials,omitempty"`
}

// UpstreamAuth is a credential the gateway adds to upstream requests.
type UpstreamAuth struct {
	// Header to set; default "Authorization".
	Header string `json:"header,omitempty"`
	// Prefix put before the secret, e.g. "Bearer " (default for
	// Authorization).
	Prefix string `json:"prefix,omitempty"`
	// SecretRef holds the credential.
	SecretRef SecretRef `json:"secretRef"`
}

// UpstreamTLS configures TLS to a Tool's https upstreams.
type UpstreamTLS struct {
	// CAFile is an absolute path, read by stoad, of PEM CA certificates
	// trusted instead of the system's roots (a private CA). At most one of
	// caFile and ca.
	CAFile string `json:"caFile,omitempty"`
	// CA holds the PEM CA certificates in an environment variable of
	// stoad or a file, as a secretRef does.
	CA *SecretRef `json:"ca,omitempty"`
	// ServerName is the name the upstream's certificate must carry (and
	// the TLS SNI); default: the host of the upstream URL. The Host header
	// sent upstream is unchanged.
	ServerName string `json:"serverName,omitempty"`
	// InsecureSkipVerify accepts any certificate: anyone on the path could
	// impersonate the upstream. For tests only; validation warns.
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// Timeouts for upstream calls.
type Timeouts struct {
	// Connect is the TCP connect timeout.
	Connect Duration `json:"connect,omitzero"`
	// Header is how long to wait for the upstream's response headers.
	Header Duration `json:"header,omitzero"`
	// Total bounds the whole upstream exchange.
	Total Duration `json:"total,omitzero"`
}

// Retries for idempotent requests.
type Retries struct {
	// Attempts is the number of extra tries after the first (0 disables).
	Attempts int `json:"attempts"`
	// On lists the failures retried: "connect-failure", "reset", "5xx",
	// "timeout". Default connect-failure and reset.
	On []string `json:"on,omitempty"`
}

// HealthCheck probes each upstream.
type HealthCheck struct {
	// Path requested with GET; a 2xx or 3xx answer is healthy.
	Path string `json:"path"`
	// Interval between probes.
	Interval Duration `json:"interval,omitzero"`
	// Timeout of one probe.
	Timeout Duration `json:"timeout,omitzero"`
	// HealthyThreshold successes mark an upstream healthy again.
	HealthyThreshold int `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold failures mark it unhealthy.
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
}

// CircuitBreaker ejects an upstream after consecutive failures.
type CircuitBreaker struct {
	// ConsecutiveFailures (connect errors, timeouts, 5xx) that eject.
	ConsecutiveFailures int `json:"consecutiveFailures,omitempty"`
	// Ejection is how long an ejected upstream sits out.
	Ejection Duration `json:"ejection,omitzero"`
}

// Operation is one API operation, exposed as one MCP tool.
type Operation struct {
	// Name of the operation: [a-z0-9_-], used in the MCP tool name
	// {tenant}__{tool}__{name}.
	Name string `json:"name"`
	// MCPName overrides the generated MCP tool name (at most 64 characters
	// of [A-Za-z0-9_-]).
	MCPName string `json:"mcpName,omitempty"`
	// Title is a short human-readable title.
	Title string `json:"title,omitempty"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path below the upstream base, with {param} placeholders filled from
	// arguments.
	Path string `json:"path"`
	// Description tells a model what the operation does.
	Description string `json:"description,omitempty"`
	// Tags classify the operation.
	Tags []string `json:"tags,omitempty"`
	// Input is the JSON Schema (type: object) of the arguments.
	Input map[string]any `json:"input,omitempty"`
	// In overrides where an argument goes: property name -> "path", "query",
	// "header", "body" (a member of the JSON body) or "payload" (the whole
	// JSON body: for bodies that are arrays, oneOf or scalars; one argument
	// at most, and then no body members). Default: path placeholders, then
	// query for GET/DELETE/HEAD and JSON body otherwise.
	In map[string]string `json:"in,omitempty"`
	// Annotations are hints for clients; defaults follow the method.
	Annotations *Annotations `json:"annotations,omitempty"`
	// RateLimit applies to this operation's MCP tool.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// Timeout overrides the tool's total timeout for this operation.
	Timeout Duration `json:"timeout,omitzero"`
}

// Annotations are MCP tool hints.
type Annotations struct {
	// ReadOnly: the operation does not modify anything (default for GET/HEAD).
	ReadOnly *bool `json:"readOnly,omitempty"`
	// Destructive: the operation may delete or overwrite (default for DELETE).
	Destructive *bool `json:"destructive,omitempty"`
	// Idempotent: repeating the call has no further effect (GET, PUT, DELETE).
	Idempotent *bool `json:"idempotent,omitempty"`
	// OpenWorld: the operation reaches outside systems (default true).
	OpenWorld *bool `json:"openWorld,omitempty"`
}

// ---------------------------------------------------------------- ToolSet

// ToolSetSpec groups tools of one tenant under shared policies.
type ToolSetSpec struct {
	// Description of the group.
	Description string `json:"description,omitempty"`
	// Tools are names of Tools in the same tenant.
	Tools []string `json:"tools"`
	// Policies apply to every tool in the set.
	Policies *ToolSetPolicies `json:"policies,omitempty"`
	// Policy holds CEL rules for calls of the set's tools. The allow rules
	// of all the sets a tool is in apply together, unless the tool has
	// allow rules of its own.
	Policy *Policy `json:"policy,omitempty"`
}

// Kind implements Spec.
func (*ToolSetSpec) Kind() Kind { return KindToolSet }

// ToolSetPolicies are policies shared by a set's tools.
type ToolSetPolicies struct {
	// RateLimit shared by all the set's tools together.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// Auth is "required" (tools with auth none are refused without a
	// credential) or "optional".
	Auth string `json:"auth,omitempty"`
}

// ---------------------------------------------------------------- Plan

// PlanSpec sets the limits and quotas of subscriptions.
type PlanSpec struct {
	// DisplayName is a human-readable name.
	DisplayName string `json:"displayName,omitempty"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// RateLimit per consumer under this plan.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// Quota caps calls per day and month.
	Quota *Quota `json:"quota,omitempty"`
}

// Kind implements Spec.
func (*PlanSpec) Kind() Kind { return KindPlan }

// Quota caps calls per period. Days reset at UTC midnight, months on the 1st.
type Quota struct {
	// Daily call cap (0: none).
	Daily int64 `json:"daily,omitempty"`
	// Monthly call cap (0: none).
	Monthly int64 `json:"monthly,omitempty"`
}

// ---------------------------------------------------------------- Consumer

// ConsumerSpec is an application calling a tenant's tools with API keys.
type ConsumerSpec struct {
	// DisplayName is a human-readable name.
	DisplayName string `json:"displayName,omitempty"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// Contact is an email or URL of the owner.
	Contact string `json:"contact,omitempty"`
	// Subjects are JWT "sub" (or client id) values that also identify this
	// consumer.
	Subjects []string `json:"subjects,omitempty"`
	// Suspended rejects the consumer's credentials (403).
	Suspended bool `json:"suspended,omitempty"`
}

// Kind implements Spec.
func (*ConsumerSpec) Kind() Kind { return KindConsumer }

// ---------------------------------------------------------------- Subscription

// SubscriptionSpec lets a consumer call a Tool or ToolSet under a Plan.
type SubscriptionSpec struct {
	// Consumer is the name of a Consumer in the same tenant.
	Consumer string `json:"consumer"`
	// Plan is the name of a Plan in the same tenant.
	Plan string `json:"plan"`
	// Tool is the Tool subscribed to (exactly one of tool and toolSet).
	Tool string `json:"tool,omitempty"`
	// ToolSet is the ToolSet subscribed to.
	ToolSet string `json:"toolSet,omitempty"`
	// State is "active", "suspended", "revoked" or "expired".
	State string `json:"state,omitempty"`
	// ExpiresAt (RFC 3339) ends the subscription.
	ExpiresAt string `json:"expiresAt,omitempty"`
}

// Kind implements Spec.
func (*SubscriptionSpec) Kind() Kind { return KindSubscription }

// ---------------------------------------------------------------- Webhook

// WebhookSpec delivers lifecycle events to a URL, HMAC-signed.
type WebhookSpec struct {
	// URL receiving POSTed events.
	URL string `json:"url"`
	// Events subscribed, e.g. "subscription.*", "key.created", "*".
	Events []string `json:"events"`
	// SecretRef holds the HMAC-SHA256 signing secret.
	SecretRef SecretRef `json:"secretRef"`
	// AllowPrivate permits loopback, private and link-local destinations
	// (refused by default against SSRF).
	AllowPrivate bool `json:"allowPrivate,omitempty"`
	// Timeout of one delivery attempt.
	Timeout Duration `json:"timeout,omitzero"`
	// MaxAttempts before a delivery is marked failed.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// Disabled pauses delivery (events still queue).
	Disabled bool `json:"disabled,omitempty"`
}

// Kind implements Spec.
func (*WebhookSpec) Kind() Kind { return KindWebhook }
