package mcp

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/mcp/argmap"
	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// Options configure a Server. The zero value works.
type Options struct {
	// Path is the MCP endpoint path; default "/mcp".
	Path string
	// ResourceURL is the canonical URL of the MCP endpoint, the OAuth
	// resource (token audience) advertised in protected-resource metadata,
	// e.g. "https://gw.example.com/mcp". Default: derived from each request's
	// Host ("http://" + host + Path).
	ResourceURL string
	// AuthorizationServers returns the issuers advertised for tenant ("" for
	// the unauthenticated, tenant-less metadata document). Default: the
	// catalog's Tenant identity issuers and Tool auth issuers.
	AuthorizationServers func(tenant string) []string
	// ScopesSupported is advertised in protected-resource metadata.
	ScopesSupported []string
	// AllowedOrigins lists browser origins ("https://app.example.com")
	// accepted on /mcp; "*" accepts any. Requests without Origin are always
	// accepted (DNS-rebinding protection only concerns browsers), and so are
	// same-origin requests whose Host is allowed (see AllowedHosts).
	AllowedOrigins []string
	// AllowedHosts lists the Host names /mcp answers to (DNS-rebinding
	// defence; a port, if given, is ignored). When set, other names are
	// refused with 403 on every TCP listener; when empty, the Host is
	// checked only if LoopbackListen is set. See hosts.go for the rule.
	AllowedHosts []string
	// LoopbackListen says the TCP listener serving /mcp is bound to a
	// loopback address: the Host must then be localhost, 127.0.0.1, [::1]
	// or one of AllowedHosts.
	LoopbackListen bool
	// PageSize is the number of entries per tools/list and resources/list
	// page; default 100.
	PageSize int
	// ServerName and ServerVersion identify the server (serverInfo).
	ServerName, ServerVersion string
	// Instructions are returned by initialize and server/discover.
	Instructions string
	// ListTTL is the ttlMs hint on 2026-07-28 list/read results; default
	// 30s, negative means 0 (always re-fetch).
	ListTTL time.Duration
	// MaxBodyBytes caps request bodies (413 beyond); default 4 MiB.
	MaxBodyBytes int
	// MaxResultBytes caps the upstream body placed in a result; longer bodies
	// are cut and marked truncated; default 1 MiB.
	MaxResultBytes int
	// MaxStreams caps open SSE streams (GET streams and subscriptions)
	// server-wide, MaxStreamsPerTenant per tenant; defaults 1024 and 64.
	MaxStreams, MaxStreamsPerTenant int
	// KeepAlive is the interval of SSE keep-alive comments; default 25s.
	KeepAlive time.Duration
	// CursorKey authenticates pagination cursors (HMAC-SHA256). Give every
	// daemon of a fleet the same key so cursors survive load balancing;
	// default: random per Server.
	CursorKey []byte
	// Tracer records a server span per JSON-RPC request (docs/tracing.md);
	// nil or off: nothing is recorded and trace context is not read.
	Tracer *tracing.Tracer
}

func (o *Options) setDefaults() {
	if o.Path == "" {
		o.Path = "/mcp"
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.ServerName == "" {
		o.ServerName = "stoa"
	}
	if o.ServerVersion == "" {
		o.ServerVersion = "dev"
	}
	if o.ListTTL == 0 {
		o.ListTTL = 30 * time.Second
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 20
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 1 << 20
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 1024
	}
	if o.MaxStreamsPerTenant <= 0 {
		o.MaxStreamsPerTenant = 64
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 25 * time.Second
	}
	if len(o.CursorKey) == 0 {
		o.CursorKey = make([]byte, 32)
		_, _ = rand.Read(o.CursorKey)
	}
}

// Server is the MCP endpoint. It is safe for concurrent use.
type Server struct {
	opts    Options
	backend Backend
	fed     FederationBackend // backend, when it serves federated MCP servers
	cat     atomic.Pointer[Catalog]
	streams streamSet
	cursors cursorCodec
	ttlMs   int64

	serverInfo     []byte // {"name":...,"version":...}
	metaServerInfo []byte // {"io.modelcontextprotocol/serverInfo":{...}}
	capabilities   []byte
	wellKnownPath  string
	hosts          hostPolicy
	lastHost       atomic.Pointer[hostSplit] // splitHost's last answer (checkHost)

	states sync.Pool
}

// reqState is the pooled per-request scratch space.
type reqState struct {
	req  rpc.Request
	par  rpc.Params
	up   argmap.Request
	out  []byte
	init []byte // initialize result
	// rerr is the JSON-RPC error handleRequest answered, for its span.
	rerr *rpcError
	// The Authorizer's view of a tools/call (see callInfo).
	ci      CallInfo
	hh      HTTPHeaders
	hostRaw []byte
	hostStr string
	// rh are the request's header fields the handler reads.
	rh reqHeaders
}

// NewServer returns a Server answering with an empty catalog until
// SetCatalog is called.
func NewServer(opts Options, backend Backend) *Server {
	opts.setDefaults()
	s := &Server{opts: opts, backend: backend}
	s.fed, _ = backend.(FederationBackend)
	s.ttlMs = opts.ListTTL.Milliseconds()
	if s.ttlMs < 0 {
		s.ttlMs = 0
	}
	s.cursors = newCursorCodec(opts.CursorKey)
	s.serverInfo, _ = json.Marshal(map[string]string{"name": opts.ServerName, "version": opts.ServerVersion})
	s.metaServerInfo = append(append([]byte(`{"io.modelcontextprotocol/serverInfo":`), s.serverInfo...), '}')
	// prompts: stoa has none, but answers prompts/list (an empty list) so
	// clients that list every declared feature get an answer, not -32601.
	s.capabilities = []byte(`{"tools":{"listChanged":true},"resources":{"listChanged":true},"prompts":{}}`)
	s.hosts = newHostPolicy(opts.AllowedHosts, opts.ResourceURL, opts.LoopbackListen)
	s.opts.Instructions = stripInvisible(opts.Instructions)
	s.wellKnownPath = "/.well-known/oauth-protected-resource" + strings.TrimSuffix(opts.Path, "/")
	s.states.New = func() any { return &reqState{out: make([]byte, 0, 4096)} }
	empty, _ := BuildCatalog(0, nil)
	s.cat.Store(empty)
	s.streams.init()
	return s
}

// Catalog returns the catalog in use.
func (s *Server) Catalog() *Catalog { return s.cat.Load() }

// SetCatalog installs c (atomically: in-flight requests finish on the old
// one) and tells open notification streams whose view of tools or
// resources changed.
func (s *Server) SetCatalog(c *Catalog) {
	old := s.cat.Swap(c)
	s.streams.notifyChanged(old, c)
}

// Close ends every open SSE stream. The fasthttp server's Shutdown does not
// see them (they are hijacked connections), so the daemon calls Close when
// it stops.
func (s *Server) Close() { s.streams.closeAll() }

// Handler serves the MCP endpoint (POST; GET opens a legacy notification
// stream; DELETE answers 405 since no sessions are issued) and the
// protected-resource metadata at /.well-known/oauth-protected-resource and
// /.well-known/oauth-protected-resource{Path}. Other paths get 404.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) {
	if string(ctx.Request.Header.RequestURI()) == s.opts.Path {
		// The request target is the endpoint's path as it is (no query,
		// nothing a normalization would change): no URI to parse.
		s.serveMCP(ctx)
		return
	}
	path := ctx.Path()
	switch {
	case string(path) == s.opts.Path:
		s.serveMCP(ctx)
	case string(path) == s.wellKnownPath || string(path) == "/.well-known/oauth-protected-resource":
		s.serveMetadata(ctx)
	default:
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusNotFound, code: rpc.CodeInvalidRequest,
			message: "Not found: the MCP endpoint is " + s.opts.Path})
	}
}

func (s *Server) serveMCP(ctx *fasthttp.RequestCtx) {
	trustedHost, herr := s.checkHost(ctx)
	if herr != nil {
		s.writeHTTPError(ctx, nil, herr)
		return
	}
	var rh reqHeaders
	rh.read(&ctx.Request.Header)
	if origin := rh.origin; len(origin) > 0 {
		if !s.originAllowed(origin) && !(trustedHost && sameOrigin(origin, ctx.Request.Header.Host())) {
			s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusForbidden, code: rpc.CodeInvalidRequest,
				message: "Forbidden: origin " + string(origin) + " is not allowed"})
			return
		}
		h := &ctx.Response.Header
		h.SetBytesV("Access-Control-Allow-Origin", origin)
		h.Set("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Mcp-Session-Id")
	}
	switch string(ctx.Method()) {
	case fasthttp.MethodPost:
		s.servePost(ctx, &rh)
	case fasthttp.MethodGet:
		s.serveGet(ctx, &rh)
	case fasthttp.MethodOptions:
		h := &ctx.Response.Header
		h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, X-Api-Key, Mcp-Protocol-Version, Mcp-Method, Mcp-Name, Mcp-Session-Id, Last-Event-ID")
		h.Set("Access-Control-Max-Age", "600")
		h.Set("Allow", "GET, POST, OPTIONS")
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	default:
		ctx.Response.Header.Set("Allow", "GET, POST, OPTIONS")
		msg := "Method not allowed: POST JSON-RPC messages to this endpoint"
		if string(ctx.Method()) == fasthttp.MethodDelete {
			msg = "Method not allowed: this server issues no sessions, so there is none to delete"
		}
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusMethodNotAllowed, code: rpc.CodeInvalidRequest, message: msg})
	}
}

func (s *Server) originAllowed(origin []byte) bool {
	for _, o := range s.opts.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, string(origin)) {
			return true
		}
	}
	return false
}

// authenticate runs the backend's authentication and answers failures. ok is
// false when a response was written.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx, rh *reqHeaders) (Caller, bool) {
	cr, err := credentials(ctx, rh)
	var caller Caller
	if err == nil {
		caller, err = s.backend.Authenticate(ctx, cr)
	}
	if err == nil {
		if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
			if a, ok := netip.AddrFromSlice(ta.IP); ok {
				caller.Remote = a.Unmap()
			}
		}
		return caller, true
	}
	var ae *AuthError
	if !errors.As(err, &ae) {
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusInternalServerError, code: rpc.CodeInternalError,
			message: "Internal error: authentication failed"})
		return Caller{}, false
	}
	status := ae.Status
	if status == 0 {
		status = fasthttp.StatusUnauthorized
	}
	code := ae.Code
	if code == "" && ae.TokenPresent {
		code = "invalid_token"
	}
	if status == fasthttp.StatusForbidden && code == "" {
		code = "insufficient_scope"
	}
	var ch bytes.Buffer
	ch.WriteString(`Bearer`)
	sep := " "
	param := func(name, value string) {
		ch.WriteString(sep + name + `="` + quoteParam(value) + `"`)
		sep = ", "
	}
	// Protected-resource metadata must list an authorization server
	// (2025-11-25 authorization.mdx); with API keys only there is none to
	// point a client to, so the challenge does not advertise the document.
	if len(s.authorizationServers()) > 0 {
		param("resource_metadata", s.metadataURL(ctx))
	}
	if code != "" {
		param("error", code)
	}
	if ae.Description != "" {
		param("error_description", ae.Description)
	}
	if ae.Scope != "" {
		param("scope", ae.Scope)
	}
	ctx.Response.Header.SetBytesV("WWW-Authenticate", ch.Bytes())
	msg := "Unauthorized: " + ae.Error()[len("authenticate: "):]
	if status == fasthttp.StatusForbidden {
		msg = "Forbidden: " + ae.Error()[len("authenticate: "):]
	}
	s.writeHTTPError(ctx, nil, &rpcError{status: status, code: rpc.CodeInvalidRequest, message: msg})
	return Caller{}, false
}

// quoteParam makes s safe inside a quoted auth-param.
func quoteParam(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return '\''
		}
		return r
	}, s)
}

// writeHTTPError answers with a JSON-RPC error body and an HTTP status.
func (s *Server) writeHTTPError(ctx *fasthttp.RequestCtx, id []byte, e *rpcError) {
	ctx.SetStatusCode(e.status)
	ctx.SetContentType("application/json")
	ctx.SetBody(appendError(nil, id, e))
}

// ErrorHandler is for fasthttp.Server.ErrorHandler of a server dedicated to
// MCP (the unix socket, SocketServer): requests fasthttp could not read get the
// answers /mcp itself gives — a body over the server's MaxRequestBodySize
// is 413 with the same JSON-RPC error as one over MaxBodyBytes — instead of
// fasthttp's plain-text ones. Nothing of the request is echoed.
func (s *Server) ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.writeHTTPError(ctx, nil, errTooLarge())
	case errors.As(err, &small) || errors.Is(err, fasthttp.ErrSmallReadBuffer):
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusRequestHeaderFieldsTooLarge, code: rpc.CodeInvalidRequest,
			message: "Request header too large"})
	case errors.As(err, &ne) && ne.Timeout():
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusRequestTimeout, code: rpc.CodeInvalidRequest,
			message: "Request not received in time"})
	default:
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeInvalidRequest,
			message: "Bad Request: malformed HTTP request"})
	}
	ctx.SetConnectionClose()
}
