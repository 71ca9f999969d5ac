package tracing

import (
	"net/netip"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
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
}

// SetHTTPServer sets a server span's HTTP attributes and names it
// "{method} {route}" (or "{method}"), as the HTTP conventions ask.
func (s *Span) SetHTTPServer(r *HTTPServer) {
	if s.rec != nil {
		s.setHTTPServer(r)
	}
}

func (s *Span) setHTTPServer(r *HTTPServer) {
	var buf [12]attribute.KeyValue
	kv := buf[:0]
	method, known := knownMethod(r.Method)
	kv = append(kv, attribute.String(AttrHTTPMethod, method))
	if !known {
		kv = append(kv, attribute.String(AttrHTTPMethodOriginal, string(r.Method)))
		method = "HTTP"
	}
	scheme := "http"
	if r.TLS {
		scheme = "https"
	}
	kv = append(kv, attribute.String(AttrURLScheme, scheme), attribute.String(AttrURLPath, string(r.Path)))
	if host, port, ok := splitHostPort(string(r.Host)); ok {
		kv = append(kv, attribute.String(AttrServerAddress, host))
		if port > 0 {
			kv = append(kv, attribute.Int(AttrServerPort, port))
		}
	}
	if r.Peer.IsValid() {
		kv = append(kv, attribute.String(AttrPeerAddress, r.Peer.Addr().Unmap().String()), attribute.Int(AttrPeerPort, int(r.Peer.Port())))
	}
	client := r.Client
	if !client.IsValid() {
		client = r.Peer.Addr()
	}
	if client.IsValid() {
		kv = append(kv, attribute.String(AttrClientAddress, client.Unmap().String()))
	}
	if len(r.UserAgent) > 0 {
		kv = append(kv, attribute.String(AttrUserAgent, string(r.UserAgent)))
	}
	proto := r.Protocol
	if proto == "" {
		proto = "1.1"
	}
	kv = append(kv, attribute.String(AttrProtocolVersion, proto))
	name := method
	if r.Route != "" {
		kv = append(kv, attribute.String(AttrHTTPRoute, r.Route))
		name = method + " " + r.Route
	}
	s.rec.add(kv...)
	s.rec.rename(name)
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
}

// SetHTTPClient sets an upstream attempt's HTTP attributes and names it
// "{method}", as the HTTP client conventions ask.
func (s *Span) SetHTTPClient(r *HTTPClient) {
	if s.rec != nil {
		s.setHTTPClient(r)
	}
}

func (s *Span) setHTTPClient(r *HTTPClient) {
	var buf [7]attribute.KeyValue
	kv := buf[:0]
	method, known := knownMethod(r.Method)
	kv = append(kv, attribute.String(AttrHTTPMethod, method))
	if !known {
		kv = append(kv, attribute.String(AttrHTTPMethodOriginal, string(r.Method)))
		method = "HTTP"
	}
	if host, port, ok := splitHostPort(r.Host); ok {
		if port == 0 {
			port = 80
			if r.Scheme == "https" {
				port = 443
			}
		}
		kv = append(kv, attribute.String(AttrServerAddress, host), attribute.Int(AttrServerPort, port))
	}
	kv = append(kv, attribute.String(AttrURLFull, r.Scheme+"://"+r.Host+string(r.Path)))
	if r.ResendCount > 0 {
		kv = append(kv, attribute.Int(AttrHTTPResendCount, r.ResendCount))
	}
	s.rec.add(kv...)
	s.rec.rename(method)
}

// SetHTTPStatus records the response status. Per the HTTP conventions a
// server span fails on 5xx, a client span on 4xx and 5xx; error.type is
// then the status code unless SetError gave a more specific class.
func (s *Span) SetHTTPStatus(code int) {
	if s.rec != nil {
		s.setHTTPStatus(code)
	}
}

func (s *Span) setHTTPStatus(code int) {
	r := s.rec
	failed := code >= 500 || (code >= 400 && r.kind == KindClient)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	r.grow()
	r.attrs = append(r.attrs, attribute.Int(AttrHTTPStatus, code))
	if failed && !r.errType {
		r.errType = true
		r.attrs = append(r.attrs, attribute.String(AttrErrorType, strconv.Itoa(code)))
		r.status, r.statusMsg = codes.Error, ""
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
	if s.rec != nil {
		s.setMCP(m)
	}
}

func (s *Span) setMCP(m *MCP) {
	var buf [10]attribute.KeyValue
	kv := buf[:0]
	kv = append(kv, attribute.String(AttrMCPMethod, m.Method))
	name := m.Method
	if m.Tool != "" {
		kv = append(kv, attribute.String(AttrGenAIToolName, m.Tool))
		name += " " + m.Tool
	}
	if m.Method == "tools/call" {
		kv = append(kv, attribute.String(AttrGenAIOperation, "execute_tool"))
	}
	if id := jsonRPCID(m.RequestID); id != "" {
		kv = append(kv, attribute.String(AttrJSONRPCRequestID, id))
	}
	if len(m.SessionID) > 0 {
		kv = append(kv, attribute.String(AttrMCPSessionID, string(m.SessionID)))
	}
	if m.ProtocolVersion != "" {
		kv = append(kv, attribute.String(AttrMCPProtocolVersion, m.ProtocolVersion))
	}
	if m.Transport != "" {
		kv = append(kv, attribute.String(AttrNetworkTransport, m.Transport))
	}
	if m.Client.IsValid() {
		kv = append(kv, attribute.String(AttrClientAddress, m.Client.Addr().Unmap().String()), attribute.Int(AttrClientPort, int(m.Client.Port())))
	}
	if host, port, ok := splitHostPort(m.Server); ok {
		kv = append(kv, attribute.String(AttrServerAddress, host))
		if port > 0 {
			kv = append(kv, attribute.Int(AttrServerPort, port))
		}
	}
	s.rec.add(kv...)
	s.rec.rename(name)
}

// SetRPCError records a JSON-RPC error answer: error.type and
// rpc.response.status_code are the code, the status message the error's.
func (s *Span) SetRPCError(code int, message string) {
	if s.rec != nil {
		c := strconv.Itoa(code)
		s.rec.fail(c, message, attribute.String(AttrRPCStatusCode, c))
	}
}

// SetToolError records a tools/call result with isError: true.
func (s *Span) SetToolError() {
	if s.rec != nil {
		s.rec.fail(ErrorTypeToolError, ErrorTypeToolError)
	}
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
// name; port is 0 when absent or invalid.
func splitHostPort(hp string) (host string, port int, ok bool) {
	if hp == "" {
		return "", 0, false
	}
	if hp[0] == '[' {
		end := indexByte([]byte(hp), ']')
		if end < 0 {
			return "", 0, false
		}
		host, rest := hp[1:end], hp[end+1:]
		if len(rest) > 1 && rest[0] == ':' {
			port, _ = strconv.Atoi(rest[1:])
		}
		return host, validPort(port), true
	}
	i := len(hp) - 1
	for i >= 0 && hp[i] != ':' {
		i--
	}
	if i < 0 {
		return hp, 0, true
	}
	if indexByte([]byte(hp[:i]), ':') >= 0 {
		return hp, 0, true // bare IPv6 address
	}
	port, _ = strconv.Atoi(hp[i+1:])
	return hp[:i], validPort(port), true
}

func validPort(p int) int {
	if p < 1 || p > 65535 {
		return 0
	}
	return p
}

// jsonRPCID renders a JSON-RPC id for jsonrpc.request.id: a string's
// contents or a number's text; "" for null or absent.
func jsonRPCID(raw []byte) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		return string(raw[1 : len(raw)-1])
	}
	return string(raw)
}
