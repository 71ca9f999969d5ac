package spec

// The fields of the control plane's roles (access), CEL policies, MCP
// federation, tracing and shared limits. Every one is optional, and an
// object that does not use them encodes exactly as before they existed.

// ---------------------------------------------------------------- Access

// AccessEntry grants a control-plane role on the tenant to the tokens it
// matches. A token matches when any matcher does: one of groups is in the
// token's groups claim (named by the Gateway's spec.access.groupsClaim),
// its sub is one of subjects, or it carries every claim of claims. At least
// one matcher is required.
type AccessEntry struct {
	// Role is "viewer" (get, diff, history, events, top), "editor" (viewer,
	// plus apply and delete of the tenant's objects, and its API keys) or
	// "admin" (editor, plus the Tenant object itself and rollback).
	Role string `json:"role"`
	// Groups match tokens whose groups claim contains one of them.
	Groups []string `json:"groups,omitempty"`
	// Subjects match tokens whose sub is one of them. ISSUER#SUB (e.g.
	// https://idp.example.com#alice) matches only tokens of that issuer.
	Subjects []string `json:"subjects,omitempty"`
	// Claims match tokens that carry every one of them: a string claim
	// equal to the value, or an array claim containing it (numbers and
	// booleans compare by their JSON text). Dotted names reach nested
	// objects (realm_access.roles); claims: {iss: ISSUER, ...} pins the
	// issuer.
	Claims map[string]string `json:"claims,omitempty"`
}

// GatewayAccess configures the control plane's roles cluster-wide.
type GatewayAccess struct {
	// Admins are the cluster admins: every tenant, the Gateway, and every
	// role.
	Admins *AccessMatch `json:"admins,omitempty"`
	// GroupsClaim is the token claim that holds the bearer's groups, for
	// every groups matcher (the Tenants' too); default "groups". Dotted
	// names reach nested objects (realm_access.roles).
	GroupsClaim string `json:"groupsClaim,omitempty"`
}

// AccessMatch selects tokens: any of groups, subjects or claims matches,
// as in a Tenant's access entries.
type AccessMatch struct {
	// Groups match tokens whose groups claim contains one of them.
	Groups []string `json:"groups,omitempty"`
	// Subjects match tokens whose sub is one of them; ISSUER#SUB only
	// tokens of that issuer.
	Subjects []string `json:"subjects,omitempty"`
	// Claims match tokens that carry every one of them (string equal, or
	// array containing the value).
	Claims map[string]string `json:"claims,omitempty"`
}

// ---------------------------------------------------------------- Policy

// Policy is a list of CEL rules that decide whether a call of a tool is
// allowed (docs/policy.md). Deny rules of the Tenant, the tool's ToolSets
// and the Tool all apply; allow rules come from the most specific level
// that has any, and then one must be true.
type Policy struct {
	// Rules, at most 64.
	Rules []PolicyRule `json:"rules"`
}

// PolicyRule is one rule: exactly one of allow and deny, a CEL expression
// of type bool over request, caller, tool, operation, mcp and source.
type PolicyRule struct {
	// Name identifies the rule in denials and the audit trail: lower-case
	// letters, digits, '-', '_' and '.', unique within the policy.
	// Optional; an unnamed rule is called rules[i].
	Name string `json:"name,omitempty"`
	// Allow grants the call when true, e.g. '"finance" in caller.groups'.
	Allow string `json:"allow,omitempty"`
	// Deny refuses the call when true, e.g. request.method == "DELETE".
	Deny string `json:"deny,omitempty"`
}

// ---------------------------------------------------------------- Federation

// MCPUpstream is the upstream MCP server of a Tool with protocol: mcp:
// reached over Streamable HTTP (url) or started by stoad and spoken to
// over stdio (command). Its tools appear as {tenant}__{tool}__{name}.
type MCPUpstream struct {
	// Transport is "streamable-http" or "stdio"; default: streamable-http
	// with url, stdio with command.
	Transport string `json:"transport,omitempty"`
	// URL of the MCP endpoint (streamable-http): absolute http(s), no
	// credentials (use upstreamAuth), no fragment.
	URL string `json:"url,omitempty"`
	// ProtocolVersion pins the protocol era: "2026-07-28", or "2025-11-25",
	// "2025-06-18", "2025-03-26" (initialize). Unset: try 2026-07-28 and
	// fall back to initialize; stdio always initializes.
	ProtocolVersion string `json:"protocolVersion,omitempty"`
	// Command is the program and its arguments (stdio); a program without
	// '/' is looked up in PATH. It runs on the gateway host as stoad's
	// user, so the Gateway must grant it to the tenant
	// (spec.mcp.federation.allowStdio).
	Command []string `json:"command,omitempty"`
	// Dir is the absolute working directory of the command; default
	// stoad's.
	Dir string `json:"dir,omitempty"`
	// Env sets variables of the command, each a value or a secretRef.
	Env []NamedValue `json:"env,omitempty"`
	// InheritEnv names stoad's variables passed to the command as they
	// are, besides PATH, HOME, LANG, LC_ALL, TZ and TMPDIR; nothing else of
	// stoad's environment reaches it.
	InheritEnv []string `json:"inheritEnv,omitempty"`
	// Limits bound the command's resources (Linux).
	Limits *ProcessLimits `json:"limits,omitempty"`
	// Tools selects and renames the upstream's tools.
	Tools *MCPToolFilter `json:"tools,omitempty"`
	// Resources publishes the upstream's resources (off by default).
	Resources *MCPResources `json:"resources,omitempty"`
	// Timeout bounds one call (tools/call, resources/read, one list page);
	// default 30s.
	Timeout Duration `json:"timeout,omitzero"`
	// ConnectTimeout bounds connecting and the handshake (for stdio also
	// starting the command); default 5s, 30s for stdio.
	ConnectTimeout Duration `json:"connectTimeout,omitzero"`
}

// NamedValue is a name with a literal value or a secret read by stoad
// (at most one of value and secretRef).
type NamedValue struct {
	// Name of the variable or header.
	Name string `json:"name"`
	// Value, literally. Prefer secretRef for credentials: a value is
	// stored and shown with the spec.
	Value string `json:"value,omitempty"`
	// SecretRef holds the value outside the spec.
	SecretRef *SecretRef `json:"secretRef,omitempty"`
}

// ProcessLimits bound a command stoad starts, with prlimit(2). Unset means
// unlimited.
type ProcessLimits struct {
	// Memory is the address-space limit (RLIMIT_AS), e.g. 2Gi. Runtimes
	// that reserve large virtual ranges (V8, the JVM) need generous values.
	Memory Quantity `json:"memory,omitzero"`
	// CPU is the total CPU time (RLIMIT_CPU), whole seconds; beyond it the
	// command is killed and restarted.
	CPU Duration `json:"cpu,omitzero"`
	// OpenFiles caps open file descriptors (RLIMIT_NOFILE).
	OpenFiles int64 `json:"openFiles,omitempty"`
	// Processes caps processes of stoad's user (RLIMIT_NPROC, counted per
	// user, not per command).
	Processes int64 `json:"processes,omitempty"`
}

// MCPToolFilter selects and renames an upstream's tools. Patterns are
// globs over the upstream's own names: '*' matches any run of characters,
// '?' one.
type MCPToolFilter struct {
	// Allow exposes only tools matching one of these; empty: all.
	Allow []string `json:"allow,omitempty"`
	// Deny hides tools matching one of these; deny wins over allow.
	Deny []string `json:"deny,omitempty"`
	// Rename maps an upstream tool name to the last segment of its exposed
	// name {tenant}__{tool}__{new}: letters, digits, '_' and '-', the whole
	// name at most 64 characters.
	Rename map[string]string `json:"rename,omitempty"`
}

// MCPResources says whether and which upstream resources are published,
// under stoa://tools/{tenant}/{tool}/upstream/{uri}.
type MCPResources struct {
	// Expose publishes the upstream's resources; default false.
	Expose bool `json:"expose,omitempty"`
	// Allow publishes only URIs matching one of these globs; empty: all.
	Allow []string `json:"allow,omitempty"`
	// Deny hides URIs matching one of these globs; deny wins.
	Deny []string `json:"deny,omitempty"`
}

// MCPFederation holds what only cluster admins may allow Tools with
// protocol: mcp.
type MCPFederation struct {
	// AllowStdio lets a tenant's Tools run commands on the gateway host
	// (transport: stdio). Without a grant naming the command, a stdio Tool
	// is refused.
	AllowStdio []StdioGrant `json:"allowStdio,omitempty"`
}

// StdioGrant lets one tenant's stdio Tools run the listed commands.
type StdioGrant struct {
	// Tenant is the name of the Tenant granted.
	Tenant string `json:"tenant"`
	// Commands are the programs the tenant's Tools may run, compared with
	// their command[0] as written: an absolute path (/usr/bin/mcp-files)
	// or a name looked up in PATH (npx).
	Commands []string `json:"commands"`
}

// ---------------------------------------------------------------- Tracing

// Tracing exports OpenTelemetry traces over OTLP/HTTP (docs/tracing.md).
type Tracing struct {
	// Enabled turns tracing on; off, traceparent headers pass through
	// untouched.
	Enabled bool `json:"enabled"`
	// Endpoint is the OTLP/HTTP traces URL, e.g.
	// http://collector:4318/v1/traces (/v1/traces is added to a URL
	// without a path). Required when enabled.
	Endpoint string `json:"endpoint,omitempty"`
	// Headers are sent with every export, each a value or a secretRef
	// (read on every reload).
	Headers []NamedValue `json:"headers,omitempty"`
	// SampleRatio is the share of new traces recorded, 0 to 1; default 1.
	// A continued trace follows its parent's sampled flag.
	SampleRatio *float64 `json:"sampleRatio,omitempty"`
	// Accept is whose traceparent is continued: "trusted" (local callers
	// and trustedClients, the default), "all" or "none".
	Accept string `json:"accept,omitempty"`
	// TrustedClients are CIDRs whose traceparent is continued under accept:
	// trusted; default: spec.trustedProxies.
	TrustedClients []string `json:"trustedClients,omitempty"`
	// ServiceName is the service.name resource attribute; default stoad.
	ServiceName string `json:"serviceName,omitempty"`
	// ResourceAttributes are more resource attributes, e.g.
	// deployment.environment.name: prod.
	ResourceAttributes map[string]string `json:"resourceAttributes,omitempty"`
	// Compression of exports: "none" (default) or "gzip".
	Compression string `json:"compression,omitempty"`
	// CAFile is an absolute path of PEM CAs that sign the endpoint's
	// certificate; default the system's roots.
	CAFile string `json:"caFile,omitempty"`
	// ExportTimeout bounds one export request; default 10s.
	ExportTimeout Duration `json:"exportTimeout,omitzero"`
	// BatchTimeout is the longest a finished span waits to be sent; default
	// 5s.
	BatchTimeout Duration `json:"batchTimeout,omitzero"`
	// QueueSize is how many finished spans may wait; beyond it new spans
	// are dropped, never requests. Default 2048.
	QueueSize int `json:"queueSize,omitempty"`
	// DrainTimeout is how long a replaced configuration waits for its spans
	// to end; default 30s.
	DrainTimeout Duration `json:"drainTimeout,omitzero"`
}

// ---------------------------------------------------------------- Redis

// RedisConfig is how data planes reach the Redis that holds their shared
// rate limits and quotas: one node (address) or the primary behind
// Sentinel. Redis Cluster is not supported.
type RedisConfig struct {
	// Address is host:port of the Redis server. Exactly one of address and
	// sentinel.
	Address string `json:"address,omitempty"`
	// Sentinel follows a primary across failovers.
	Sentinel *RedisSentinel `json:"sentinel,omitempty"`
	// DB is the database number (SELECT).
	DB int `json:"db,omitempty"`
	// Username is the ACL user; it needs a password.
	Username string `json:"username,omitempty"`
	// Password authenticates (ACL user, or requirepass alone).
	Password *RedisPassword `json:"password,omitempty"`
	// TLS encrypts the connection.
	TLS bool `json:"tls,omitempty"`
	// CAFile is an absolute path of PEM CAs that sign Redis' certificate
	// (with tls); default the system's roots.
	CAFile string `json:"caFile,omitempty"`
	// Prefix starts every key stoad writes; default "stoa:". Data planes
	// sharing limits use the same prefix, gateways sharing one Redis
	// different ones.
	Prefix string `json:"prefix,omitempty"`
	// FailMode is what happens while Redis is unreachable: "open" (each
	// data plane enforces its share of every limit, the default) or
	// "closed" (what local tokens do not cover is refused with 503).
	FailMode string `json:"failMode,omitempty"`
	// LeaseWindow is how much of a data plane's demand on a key one lease
	// of tokens covers; default 20ms. 0s takes no leases: every request
	// asks Redis (exact, one round trip each).
	LeaseWindow Duration `json:"leaseWindow,omitzero"`
	// LeaseTTL is how long leased tokens may sit unused before they are
	// returned; default 1s.
	LeaseTTL Duration `json:"leaseTTL,omitzero"`
	// Accuracy bounds the tokens the fleet holds in leases for a key, as a
	// fraction of its rate per second (0 to 1); default 0.01.
	Accuracy float64 `json:"accuracy,omitempty"`
	// Timeout bounds how long a request waits for Redis; a slower answer
	// counts as Redis lost. Default 100ms.
	Timeout Duration `json:"timeout,omitzero"`
	// DialTimeout bounds connecting; default 1s.
	DialTimeout Duration `json:"dialTimeout,omitzero"`
}

// RedisSentinel names the Sentinels and the master set they watch.
type RedisSentinel struct {
	// Master is the name of the master set.
	Master string `json:"master"`
	// Addresses are host:port of Sentinels.
	Addresses []string `json:"addresses"`
}

// RedisPassword is where stoad reads the Redis password.
type RedisPassword struct {
	// SecretRef holds the password.
	SecretRef SecretRef `json:"secretRef"`
}

// Protocols and MCP transports.
const (
	ProtocolREST            = "rest"
	ProtocolMCP             = "mcp"
	TransportStreamableHTTP = "streamable-http"
	TransportStdio          = "stdio"
)
