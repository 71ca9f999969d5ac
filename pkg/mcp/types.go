// Package mcp serves stoa's tools to AI agents over the Model Context
// Protocol's Streamable HTTP transport, on fasthttp.
//
// Every operation of every Tool spec becomes one MCP tool named
// {tenant}__{tool}__{operation} (or its mcpName). A caller sees the platform
// tools (stoa_*) and its own tenant's tools, never another tenant's; admins
// see every tenant. The server speaks both protocol eras on one endpoint:
// the initialize-based legacy revisions (2025-03-26, 2025-06-18, 2025-11-25)
// and the stateless 2026-07-28 revision (server/discover, per-request _meta,
// Mcp-Method/Mcp-Name headers, subscriptions/listen).
//
// The package owns the protocol only. Authentication, rate limits, upstream
// pools, metrics and audit live behind the Backend interface, which the
// daemon implements; the Catalog is built once per configuration revision
// and swapped atomically with SetCatalog. See docs/mcp.md.
package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"time"

	"github.com/stoa-gateway/stoa/pkg/mcp/argmap"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// Caller is the authenticated identity behind one MCP request.
type Caller struct {
	// Tenant whose tools the caller sees; empty for platform admins that
	// belong to no tenant.
	Tenant string
	// Admin callers see and may call every tenant's tools.
	Admin bool
	// Consumer is the Consumer object the credential belongs to, if any.
	Consumer string
	// Subject is the token subject or key id, for audit.
	Subject string
	// Via says how the caller authenticated: "apikey", "jwt" or "socket".
	Via string
	// Grants, when set, narrows what the caller sees to the tools it can
	// call: tools/list, stoa_tools, stoa_platform_info, resources and
	// list_changed notifications leave out the rest (tools/call still asks
	// the Backend, which has the last word). Nil: every tool of the
	// caller's tenant. Ignored for admins.
	Grants Grants
	// Principal is the Backend's own record of the authenticated identity
	// (the daemon's *auth.Principal), handed back to Call; the server never
	// reads it.
	Principal any
	// Remote is the client's address (zero on the unix socket); the server
	// sets it after Authenticate.
	Remote netip.Addr
	// Span is the server span of the JSON-RPC request being answered (the
	// zero Span when tracing is off or the request is not sampled): the
	// Backend starts its child spans (limits, the upstream call) from it.
	Span tracing.Span
}

// Credentials are what one request presents: its credential headers, the
// tenant it selects and, on the unix socket, the peer's kernel
// credentials. The byte slices are valid only during Authenticate.
type Credentials struct {
	// Authorization and APIKey are the Authorization and X-Api-Key header
	// values (nil when absent).
	Authorization, APIKey []byte
	// Tenant narrows an admin's view to one tenant: the X-Stoa-Tenant
	// header, else the endpoint's ?tenant= (`stoa mcp --tenant` sets the
	// header).
	Tenant string
	// Peer is set on the unix socket (SocketServer): who connected.
	Peer *Peer
	// Time is when the request arrived.
	Time time.Time
}

// Peer is the process on the other end of a unix-socket connection, as
// the kernel recorded it at connect time. UID is ^uint32(0) when the
// kernel could not tell.
type Peer struct {
	UID, GID uint32
	PID      int32
}

// Grants says which tools a caller may call (e.g. its consumer's
// subscriptions and its credential's scopes). The server caches the
// filtered list per catalog and Key, so Allows runs once per tool, key and
// configuration revision, not per request.
type Grants interface {
	// Key identifies the allowed set: two callers of one tenant with equal
	// keys must be allowed the same tools for as long as the catalog is
	// installed. Put into it everything Allows depends on, time included
	// (e.g. the next subscription expiry).
	Key() string
	// Allows reports whether the caller may call t.
	Allows(t *Tool) bool
}

// Backend is what the daemon provides: authentication, the upstream call
// (through the same limits, pools, metrics and audit as the proxy) and
// platform status.
type Backend interface {
	// Authenticate inspects the request's credentials (Authorization,
	// X-Api-Key, or the unix-socket peer). It returns the caller, or an
	// *AuthError (answered with 401/403 and WWW-Authenticate); any other
	// error is answered with 500. ctx ends with the request (or when
	// the server shuts down).
	Authenticate(ctx context.Context, c Credentials) (Caller, error)
	// Call performs the upstream HTTP request of tool. ctx is only valid
	// during the call. The slices of req are owned by the server and only
	// valid during the call. An error means no upstream answer (timeout,
	// refused connection, rate limit, ...): its message is shown to the
	// model, so it must be safe for the tenant to read. Returning
	// ErrUnknownTool makes the call indistinguishable from one to a tool
	// that does not exist.
	Call(ctx context.Context, caller Caller, tool *Tool, req *UpstreamRequest) (UpstreamResponse, error)
	// Info reports platform status for stoa_platform_info.
	Info(caller Caller) PlatformInfo
}

// Authorizer is implemented by a Backend that decides each tools/call of
// a catalog tool before anything is sent (after its arguments passed the
// input schema): the daemon evaluates the CEL policies there. A non-nil
// error refuses the call: its text becomes the isError result the model
// reads, so it must say which rule refused and be safe for the tenant to
// read.
type Authorizer interface {
	Authorize(ctx context.Context, caller Caller, tool *Tool, call *CallInfo) error
}

// AuthorizerFor is implemented by an Authorizer that can tell ahead of a
// call whether Authorize could refuse one of tool (false: it would return
// nil whatever the call); the server then skips Authorize, and building
// its CallInfo, for tools without a policy.
type AuthorizerFor interface {
	Authorizes(tool *Tool) bool
}

// CallInfo is what an Authorizer sees of one tools/call. Its slices are
// valid only during Authorize.
type CallInfo struct {
	// Arguments are the call's arguments (a JSON object, or nil).
	Arguments []byte
	// Upstream is the mapped upstream request of an operation; nil for a
	// federated tool.
	Upstream *UpstreamRequest
	// Host is the MCP request's Host, lower case; Headers its HTTP headers.
	Host    string
	Headers *HTTPHeaders
}

// ErrUnknownTool may be returned by Backend.Call to answer exactly as if the
// tool did not exist (for example when a consumer is not subscribed).
var ErrUnknownTool = errors.New("unknown tool")

// AuthError is a failed authentication. The server answers with Status
// (401 when zero) and a WWW-Authenticate: Bearer challenge carrying the
// protected-resource metadata URL (RFC 9728 §5.1), plus error="invalid_token"
// when a credential was presented (RFC 6750 §3.1).
type AuthError struct {
	// Status is 401 (default) or 403 (insufficient_scope).
	Status int
	// TokenPresent reports whether the request carried a credential; it
	// selects error="invalid_token" when Code is empty.
	TokenPresent bool
	// Code overrides the RFC 6750 error code ("invalid_token",
	// "insufficient_scope", ...).
	Code string
	// Description is a human-readable reason (no secrets).
	Description string
	// Scope lists the scopes needed, for the challenge's scope parameter.
	Scope string
}

func (e *AuthError) Error() string {
	if e.Description != "" {
		return "authenticate: " + e.Description
	}
	return "authenticate: missing or invalid credential"
}

// UpstreamRequest is a mapped tools/call: method, escaped path below the
// upstream base, encoded query, extra headers and JSON body. It is the
// argmap.Request type.
type UpstreamRequest = argmap.Request

// UpstreamResponse is the upstream's answer.
type UpstreamResponse struct {
	Status      int
	ContentType string
	Body        []byte
	// Truncated says the upstream sent more than the backend read: Body
	// holds only its first bytes. Size is then the declared length
	// (Content-Length), or -1 when the upstream did not declare one.
	Truncated bool
	Size      int64
	// Release, when set, is called once the server no longer needs Body
	// (lets the backend return pooled buffers).
	Release func()
}

// PlatformInfo is reported by stoa_platform_info.
type PlatformInfo struct {
	Version  string `json:"version"`
	Health   string `json:"health"`
	Revision int64  `json:"revision"`
	// Details holds any extra status the daemon wants agents to see.
	Details map[string]any `json:"details,omitempty"`
}

// Annotations are the MCP tool hints, resolved (no nil means unset).
type Annotations struct {
	ReadOnly    bool
	Destructive bool
	Idempotent  bool
	OpenWorld   bool
}

// Tool is one MCP tool compiled from a spec operation. It is immutable once
// the Catalog holding it is built.
type Tool struct {
	// Name is the MCP tool name.
	Name string
	// Title is the human-readable title.
	Title string
	// Description tells the model what the tool does.
	Description string
	// Tenant owns the tool; empty for platform tools.
	Tenant string
	// Tags are the tool's and the operation's tags.
	Tags []string
	// InputSchema is the encoded JSON Schema of the arguments.
	InputSchema json.RawMessage
	// OutputSchema is the encoded JSON Schema of the structured result, if
	// declared (federated tools).
	OutputSchema json.RawMessage
	// Annotations are the resolved hints.
	Annotations Annotations
	// Ref names the Tool object; Spec and Operation are the spec the tool was
	// compiled from (nil for platform tools; Operation nil for federated
	// tools).
	Ref       spec.Ref
	Spec      *spec.ToolSpec
	Operation *spec.Operation
	// UpstreamName is set for a tool of a federated MCP server (a Tool with
	// protocol: mcp): the tool's name at that server.
	UpstreamName string
	// Handle is free for the daemon (see WithHandles), e.g. its route.
	Handle any

	plan         *argmap.Plan
	schema       *compiledSchema
	paramHeaders []paramHeader
	platform     platformTool
}

// Method returns the upstream HTTP method.
func (t *Tool) Method() string {
	if t.plan == nil {
		return ""
	}
	return t.plan.Method()
}
