package tracing

import (
	"net/netip"
	"strconv"
	"time"
)

// Attribute keys. HTTP, URL, network, server and client keys are the
// stable OpenTelemetry semantic conventions; mcp.*, gen_ai.* and jsonrpc.*
// follow the MCP conventions (development status, GenAI semconv repo);
// stoa.* are stoad's own.
const (
	AttrHTTPMethod         = "http.request.method"
	AttrHTTPMethodOriginal = "http.request.method_original"
	AttrHTTPStatus         = "http.response.status_code"
	AttrHTTPRoute          = "http.route"
	AttrHTTPResendCount    = "http.request.resend_count"
	AttrURLPath            = "url.path"
	AttrURLScheme          = "url.scheme"
	AttrURLFull            = "url.full"
	AttrServerAddress      = "server.address"
	AttrServerPort         = "server.port"
	AttrClientAddress      = "client.address"
	AttrClientPort         = "client.port"
	AttrPeerAddress        = "network.peer.address"
	AttrPeerPort           = "network.peer.port"
	AttrProtocolVersion    = "network.protocol.version"
	AttrNetworkTransport   = "network.transport"
	AttrUserAgent          = "user_agent.original"
	AttrErrorType          = "error.type"

	AttrMCPMethod          = "mcp.method.name"
	AttrMCPSessionID       = "mcp.session.id"
	AttrMCPProtocolVersion = "mcp.protocol.version"
	AttrGenAIToolName      = "gen_ai.tool.name"
	AttrGenAIOperation     = "gen_ai.operation.name"
	AttrJSONRPCRequestID   = "jsonrpc.request.id"
	AttrRPCStatusCode      = "rpc.response.status_code"

	AttrTenant     = "stoa.tenant"
	AttrTool       = "stoa.tool"
	AttrConsumer   = "stoa.consumer"
	AttrRequestID  = "stoa.request_id"
	AttrRevision   = "stoa.revision"
	AttrLimitScope = "stoa.limit.scope"
	// The proxy's auth and limits spans (docs/tracing.md).
	AttrAuthMethod    = "stoa.auth.method"
	AttrAuthOutcome   = "stoa.auth.outcome"
	AttrLimitsOutcome = "stoa.limits.outcome"
	AttrUpstream      = "stoa.upstream"
	AttrDryRun        = "stoa.dry_run"
	AttrChanges       = "stoa.changes"
)

// Error types of MCP results.
const ErrorTypeToolError = "tool_error"

// HTTPServer describes a proxied request for its server span. Byte slices
// are read during the call only.
type HTTPServer struct {
	Method, Path, Host, UserAgent []byte
	// Route is the matched route's template (the Tool's path prefix):
	// http.route, and with the method the span's name. Empty before
	// routing or when no route matched.
	Route string
	TLS   bool
	// Peer is the connection's remote end; Client the client behind
	// trusted proxies (zero: the peer).
	Peer   netip.AddrPort
	Client netip.Addr
	// Protocol is network.protocol.version (default "1.1").
	Protocol string
	// What routing found, when the span starts after routing (the fast
	// path): stoa.tenant, stoa.tool and stoa.consumer, each recorded when
	// not empty. They go on the span under the same lock as the rest; a
	// request routed later gets them from SetHTTPRoute.
	Tenant, Tool, Consumer string
}

// SetHTTPServer sets a server span's HTTP attributes and names it
// "{method} {route}" (or "{method}"), as the HTTP conventions ask.
func (s *Span) SetHTTPServer(r *HTTPServer) {
	s.SetHTTPServerRequest(r, nil)
}

// SetHTTPServerRequest is SetHTTPServer with the request's id
// (stoa.request_id; not recorded when empty). The id is not a field of
// HTTPServer: the span keeps r's strings, so escape analysis would move
// whatever r's slices point at to the heap, the id's buffer included.
func (s *Span) SetHTTPServerRequest(r *HTTPServer, requestID []byte) {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.setHTTPServer(r, requestID)
		s.rec.mu.Unlock()
	}
}

func (rec *recording) setHTTPServer(r *HTTPServer, requestID []byte) {
	// A span without attributes yet takes these keys, distinct from one
	// another, without looking for an earlier value of each.
	rec.unique = rec.nattrs == 0
	method, known := knownMethod(r.Method)
	rec.putString(AttrHTTPMethod, method)
	if !known {
		rec.putBytes(AttrHTTPMethodOriginal, r.Method)
		method = "HTTP"
	}
	scheme := "http"
	if r.TLS {
		scheme = "https"
	}
	rec.putString(AttrURLScheme, scheme)
	rec.putBytes(AttrURLPath, r.Path)
	if host, port, ok := splitHostPort(r.Host); ok {
		rec.putBytes(AttrServerAddress, host)
		if port > 0 {
			rec.putInt(AttrServerPort, int64(port))
		}
	}
	if r.Peer.IsValid() {
		rec.putAddr(AttrPeerAddress, r.Peer.Addr())
		rec.putInt(AttrPeerPort, int64(r.Peer.Port()))
	}
	client := r.Client
	if !client.IsValid() {
		client = r.Peer.Addr()
	}
	if client.IsValid() {
		rec.putAddr(AttrClientAddress, client)
	}
	if len(r.UserAgent) > 0 {
		rec.putBytes(AttrUserAgent, r.UserAgent)
	}
	proto := r.Protocol
	if proto == "" {
		proto = "1.1"
	}
	rec.putString(AttrProtocolVersion, proto)
	rec.name, rec.name2 = method, ""
	if r.Route != "" {
		rec.putString(AttrHTTPRoute, r.Route)
		rec.name2 = r.Route
	}
	rec.setRouted(r.Tenant, r.Tool, r.Consumer, requestID)
	rec.unique = false
}

// setRouted records what routing found, where known.
func (rec *recording) setRouted(tenant, tool, consumer string, reqID []byte) {
	if tenant != "" {
		rec.putString(AttrTenant, tenant)
	}
	if tool != "" {
		rec.putString(AttrTool, tool)
	}
	if consumer != "" {
		rec.putString(AttrConsumer, consumer)
	}
	if len(reqID) > 0 {
		rec.putBytes(AttrRequestID, reqID)
	}
}

// HTTPRoute is what routing found for a request whose server span
// started before it (fasthttp's path).
type HTTPRoute struct {
	// Method is the request's; with Route, the span's name
	// "{method} {route}".
	Method []byte
	// Route is http.route, the matched Tool's path prefix.
	Route string
	// Client is client.address, the client behind trusted proxies (zero:
	// not recorded).
	Client netip.Addr
	// Tenant, Tool and Consumer are recorded when not empty.
	Tenant, Tool, Consumer string
}

// SetHTTPRoute records a route, and the request's id (stoa.request_id,
// when not empty; outside r for the reason SetHTTPServerRequest gives),
// and renames the span after the route, under one lock.
func (s *Span) SetHTTPRoute(r *HTTPRoute, requestID []byte) {
	if s.rec != nil && s.rec.open(s.gen) {
		rec := s.rec
		rec.putString(AttrHTTPRoute, r.Route)
		rec.name, rec.name2 = SpanMethod(r.Method), r.Route
		if r.Client.IsValid() {
			rec.putAddr(AttrClientAddress, r.Client)
		}
		rec.setRouted(r.Tenant, r.Tool, r.Consumer, requestID)
		rec.mu.Unlock()
	}
}

// HTTPClient describes one upstream attempt for its client span.
type HTTPClient struct {
	Method []byte
	// Scheme ("http"/"https") and Host (host[:port]) of the upstream;
	// Path is the request's path there, without query (url.full carries
	// no query string: it may hold credentials).
	Scheme, Host string
	Path         []byte
	// ResendCount is 0 for the first attempt, n for the n-th retry.
	ResendCount int
	// Upstream is stoa.upstream, the upstream's configured URL (empty:
	// not recorded).
	Upstream string
}

// SetHTTPClient sets an upstream attempt's HTTP attributes and names it
// "{method}", as the HTTP client conventions ask.
func (s *Span) SetHTTPClient(r *HTTPClient) {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.setHTTPClient(r)
		s.rec.mu.Unlock()
	}
}

func (rec *recording) setHTTPClient(r *HTTPClient) {
	method, known := knownMethod(r.Method)
	rec.putString(AttrHTTPMethod, method)
	if !known {
		rec.putBytes(AttrHTTPMethodOriginal, r.Method)
		method = "HTTP"
	}
	if host, port, ok := splitHostPort(r.Host); ok {
		if port == 0 {
			port = 80
			if r.Scheme == "https" {
				port = 443
			}
		}
		rec.putString(AttrServerAddress, host)
		rec.putInt(AttrServerPort, int64(port))
	}
	off := len(rec.arena)
	rec.arena = append(rec.arena, r.Scheme...)
	rec.arena = append(rec.arena, "://"...)
	rec.arena = append(rec.arena, r.Host...)
	rec.arena = append(rec.arena, r.Path...)
	rec.putArena(AttrURLFull, off)
	if r.ResendCount > 0 {
		rec.putInt(AttrHTTPResendCount, int64(r.ResendCount))
	}
	if r.Upstream != "" {
		rec.putString(AttrUpstream, r.Upstream)
	}
	rec.name, rec.name2 = method, ""
}

// SetHTTPStatus records the response status. Per the HTTP conventions a
// server span fails on 5xx, a client span on 4xx and 5xx; error.type is
// then the status code unless SetError gave a more specific class.
func (s *Span) SetHTTPStatus(code int) {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.setHTTPStatus(code)
		s.rec.mu.Unlock()
	}
}

// EndHTTP records the response status, as SetHTTPStatus, and ends s now,
// under one lock.
func (s *Span) EndHTTP(code int) {
	if s.rec != nil {
		s.endHTTP(code, now())
	}
}

// EndHTTPAt is EndHTTP at t.
func (s *Span) EndHTTPAt(code int, t time.Time) {
	if s.rec != nil {
		s.endHTTP(code, nanos(t))
	}
}

func (s *Span) endHTTP(code int, t int64) {
	if s.rec.open(s.gen) {
		s.rec.setHTTPStatus(code)
		s.endLocked(t)
	}
}

func (r *recording) setHTTPStatus(code int) {
	r.putInt(AttrHTTPStatus, int64(code))
	if failed := code >= 500 || (code >= 400 && r.kind == KindClient); failed && !r.errType {
		r.errType, r.failed, r.statusMsg = true, true, ""
		off := len(r.arena)
		r.arena = strconv.AppendInt(r.arena, int64(code), 10)
		r.putArena(AttrErrorType, off)
	}
}

// MCP describes an MCP request for a server span (a call stoad answers) or
// a client span (a federated call stoad makes upstream).
type MCP struct {
	// Method is mcp.method.name, e.g. "tools/call".
	Method string
	// Tool is gen_ai.tool.name: the name this side of the call uses (the
	// gateway's name on the server span, the upstream's on a federated
	// client span).
	Tool string
	// RequestID is the JSON-RPC id as it appears in the message (7 or
	// "abc"; quotes are dropped, escapes kept); absent or null is not
	// recorded.
	RequestID []byte
	// SessionID is the Mcp-Session-Id, if any.
	SessionID []byte
	// ProtocolVersion is the negotiated MCP version.
	ProtocolVersion string
	// Transport is network.transport: "tcp" (Streamable HTTP), "unix"
	// (stoad's MCP socket) or "pipe" (stdio).
	Transport string
	// Client is the caller (server spans); Server is the upstream's
	// host[:port] (client spans).
	Client netip.AddrPort
	Server string
}

// SetMCP sets an MCP span's attributes and names it "{method} {tool}".
func (s *Span) SetMCP(m *MCP) {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.setMCP(m)
		s.rec.mu.Unlock()
	}
}

func (r *recording) setMCP(m *MCP) {
	r.putString(AttrMCPMethod, m.Method)
	r.name, r.name2 = m.Method, ""
	if m.Tool != "" {
		r.putString(AttrGenAIToolName, m.Tool)
		r.name2 = m.Tool
	}
	if m.Method == "tools/call" {
		r.putString(AttrGenAIOperation, "execute_tool")
	}
	if id := jsonRPCID(m.RequestID); len(id) > 0 {
		r.putBytes(AttrJSONRPCRequestID, id)
	}
	if len(m.SessionID) > 0 {
		r.putBytes(AttrMCPSessionID, m.SessionID)
	}
	if m.ProtocolVersion != "" {
		r.putString(AttrMCPProtocolVersion, m.ProtocolVersion)
	}
	if m.Transport != "" {
		r.putString(AttrNetworkTransport, m.Transport)
	}
	if m.Client.IsValid() {
		r.putAddr(AttrClientAddress, m.Client.Addr())
		r.putInt(AttrClientPort, int64(m.Client.Port()))
	}
	if host, port, ok := splitHostPort(m.Server); ok {
		r.putString(AttrServerAddress, host)
		if port > 0 {
			r.putInt(AttrServerPort, int64(port))
		}
	}
}

// SetRPCError records a JSON-RPC error answer: error.type and
// rpc.response.status_code are the code, the status message the error's.
func (s *Span) SetRPCError(code int, message string) {
	if s.rec != nil && s.rec.open(s.gen) {
		r := s.rec
		r.errType, r.failed, r.statusMsg = true, true, message
		off := len(r.arena)
		r.arena = strconv.AppendInt(r.arena, int64(code), 10)
		r.putArena(AttrErrorType, off)
		r.putArena(AttrRPCStatusCode, off)
		r.mu.Unlock()
	}
}

// SetToolError records a tools/call result with isError: true.
func (s *Span) SetToolError() {
	if s.rec != nil && s.rec.open(s.gen) {
		s.rec.fail(ErrorTypeToolError, ErrorTypeToolError)
		s.rec.mu.Unlock()
	}
}

// SpanMethod is how a span's name spells method: the method when the HTTP
// conventions name it, "HTTP" otherwise. The result is a constant.
func SpanMethod(method []byte) string {
	if m, ok := knownMethod(method); ok {
		return m
	}
	return "HTTP"
}

// knownMethod returns the method when it is one the HTTP conventions
// name, "_OTHER" otherwise (an arbitrary method is unbounded cardinality).
func knownMethod(m []byte) (string, bool) {
	switch string(m) {
	case "GET":
		return "GET", true
	case "HEAD":
		return "HEAD", true
	case "POST":
		return "POST", true
	case "PUT":
		return "PUT", true
	case "DELETE":
		return "DELETE", true
	case "CONNECT":
		return "CONNECT", true
	case "OPTIONS":
		return "OPTIONS", true
	case "TRACE":
		return "TRACE", true
	case "PATCH":
		return "PATCH", true
	case "QUERY":
		return "QUERY", true
	}
	return "_OTHER", false
}

// splitHostPort splits host[:port], a bracketed IPv6 literal or a bare
// name; port is 0 when absent or invalid. It takes bytes from a request
// header or a configured string, and returns a sub-slice (no copy).
func splitHostPort[S string | []byte](hp S) (host S, port int, ok bool) {
	if len(hp) == 0 {
		return host, 0, false
	}
	if hp[0] == '[' {
		end := -1
		for i := 1; i < len(hp); i++ {
			if hp[i] == ']' {
				end = i
				break
			}
		}
		if end < 0 {
			return host, 0, false
		}
		host, rest := hp[1:end], hp[end+1:]
		if len(rest) > 1 && rest[0] == ':' {
			port = atoiPort(rest[1:])
		}
		return host, port, true
	}
	i := len(hp) - 1
	for i >= 0 && hp[i] != ':' {
		i--
	}
	if i < 0 {
		return hp, 0, true
	}
	for j := 0; j < i; j++ {
		if hp[j] == ':' {
			return hp, 0, true // bare IPv6 address
		}
	}
	return hp[:i], atoiPort(hp[i+1:]), true
}

// atoiPort parses a decimal port, 0 when it is not one in 1–65535.
func atoiPort[S string | []byte](s S) int {
	if len(s) == 0 || len(s) > 5 {
		return 0
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return validPort(n)
}

func validPort(p int) int {
	if p < 1 || p > 65535 {
		return 0
	}
	return p
}

// jsonRPCID renders a JSON-RPC id for jsonrpc.request.id: a string's
// contents or a number's text; empty for null or absent.
func jsonRPCID(raw []byte) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		return raw[1 : len(raw)-1]
	}
	return raw
}
