package mcp

import (
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// handleTraced answers one JSON-RPC request inside its server span
// (docs/tracing.md). The span's parent is the trace context in the
// message's params._meta (MCP's OpenTelemetry conventions), the HTTP
// request's traceparent then being a link; without _meta the HTTP header
// is the parent. Whether a caller's context is continued at all is the
// tracer's accept policy, decided on the connection's peer; the unix
// socket is local (trusted). Attributes: the MCP method, the tool name,
// the JSON-RPC id, session, protocol version, transport, client address,
// tenant and consumer; never arguments, results or credentials.
func (s *Server) handleTraced(ctx *fasthttp.RequestCtx, tr *tracing.Tracer, caller Caller, st *reqState, b []byte, inBatch bool) ([]byte, int, bool) {
	h := &ctx.Request.Header
	in := tracing.Incoming{Traceparent: h.Peek(tracing.HeaderTraceparent), Tracestate: h.Peek(tracing.HeaderTracestate), Start: ctx.Time()}
	m := tracing.MCP{Method: methodName(st.req.Method), RequestID: st.req.ID, SessionID: h.Peek("Mcp-Session-Id"), Transport: "tcp"}
	switch a := ctx.RemoteAddr().(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		in.Peer = ap.Addr().Unmap()
		m.Client = netip.AddrPortFrom(in.Peer, ap.Port())
	case *net.UnixAddr:
		in.Local, m.Transport = true, "unix"
	}
	if len(st.par.MetaTraceparent) > 0 {
		in.Link = in.Traceparent
		in.Traceparent, in.Tracestate = st.par.MetaTraceparent, st.par.MetaTracestate
	}
	sp := tr.Start(&in, m.Method, tracing.KindServer)
	defer sp.End()
	if sp.Recording() {
		if m.Method == "tools/call" || m.Method == "prompts/get" {
			m.Tool = string(st.par.Name)
		}
		switch {
		case st.par.HasMetaVersion:
			m.ProtocolVersion = string(st.par.MetaVersion)
		default:
			m.ProtocolVersion = string(h.Peek("Mcp-Protocol-Version"))
		}
		sp.SetMCP(&m)
		if caller.Tenant != "" {
			sp.SetString(tracing.AttrTenant, caller.Tenant)
		}
		if caller.Consumer != "" {
			sp.SetString(tracing.AttrConsumer, caller.Consumer)
		}
	}
	caller.Span = sp
	start := len(b)
	b, status, streamed := s.handleRequest(ctx, caller, st, b, inBatch)
	switch {
	case st.rerr != nil:
		sp.SetRPCError(st.rerr.code, st.rerr.message)
	case sp.Recording() && m.Method == "tools/call" && start < len(b) && resultIsError(b[start:]):
		sp.SetToolError()
	}
	return b, status, streamed
}

// methodName returns the MCP method as a string; the common ones without
// allocating (an unsampled request costs no allocation for its name).
func methodName(m []byte) string {
	switch string(m) {
	case "tools/call":
		return "tools/call"
	case "tools/list":
		return "tools/list"
	case "resources/list":
		return "resources/list"
	case "resources/read":
		return "resources/read"
	case "initialize":
		return "initialize"
	case "ping":
		return "ping"
	case "server/discover":
		return "server/discover"
	case "subscriptions/listen":
		return "subscriptions/listen"
	}
	return string(m)
}

// resultIsError reports whether the JSON-RPC response resp carries a
// result with isError: true.
func resultIsError(resp []byte) bool {
	res, ok := member(resp, "result")
	if !ok {
		return false
	}
	v, ok := member(res, "isError")
	return ok && string(v) == "true"
}
