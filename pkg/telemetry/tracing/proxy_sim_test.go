package tracing

import (
	"errors"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
)

// simProxy drives the tracing API the way pkg/proxy is to call it (see
// docs/tracing.md, "Wiring"): a server span per request started before
// routing, auth and limits children, one client span per upstream
// attempt whose id goes upstream in traceparent. It forwards to real
// loopback upstreams with fasthttp.
type simProxy struct {
	tr        *Tracer
	upstreams []string // host:port, tried in order (a retry moves on)
	client    fasthttp.Client
	authFails bool
}

// traceBuf is where a traceparent is formatted: on the stack in the proxy.
type traceBuf [TraceparentLen]byte

func (p *simProxy) serve(req *fasthttp.Request, resp *fasthttp.Response, peer netip.AddrPort) int {
	h := &req.Header
	start := time.Now()
	var sp Span
	if p.tr.Enabled() {
		sp = p.tr.Start(&Incoming{
			Traceparent: h.Peek(HeaderTraceparent),
			Tracestate:  h.Peek(HeaderTracestate),
			Peer:        peer.Addr(),
			Start:       start,
		}, "HTTP", KindServer)
	}
	status := p.handleRoute(req, resp, peer, &sp)
	sp.SetHTTPStatus(status)
	sp.End()
	return status
}

func (p *simProxy) handleRoute(req *fasthttp.Request, resp *fasthttp.Response, peer netip.AddrPort, sp *Span) int {
	h := &req.Header
	if sp.Recording() {
		sp.SetHTTPServer(&HTTPServer{
			Method: h.Method(), Path: req.URI().Path(), Host: h.Host(), UserAgent: h.UserAgent(),
			Route: "/acme/billing", Peer: peer,
		})
		sp.SetString(AttrTenant, "acme")
		sp.SetString(AttrTool, "billing")
		sp.SetBytes(AttrRequestID, []byte("req-1"))
	}

	auth := sp.StartChild("auth", KindInternal)
	if p.authFails {
		auth.SetError("unauthorized", "missing or invalid credentials")
		auth.End()
		return fasthttp.StatusUnauthorized
	}
	auth.End()

	lim := sp.StartChild("limits", KindInternal)
	lim.End()

	// The upstream request: a client's tracestate goes on only with the
	// trace it belongs to.
	if sp.IsValid() && sp.Tracestate() == nil {
		h.Del(HeaderTracestate)
	}
	path := append([]byte(nil), req.URI().Path()...)
	var err error
	for i, up := range p.upstreams {
		att := sp.StartChild("HTTP", KindClient)
		if att.Recording() {
			att.SetHTTPClient(&HTTPClient{Method: h.Method(), Scheme: "http", Host: up, Path: path, ResendCount: i})
		}
		var tb traceBuf
		if att.IsValid() {
			h.SetBytesV(HeaderTraceparent, att.AppendTraceparent(tb[:0]))
		}
		req.SetHost(up)
		err = p.client.DoTimeout(req, resp, 5*time.Second)
		if err != nil {
			att.SetError("connect_error", "upstream connection failed")
			att.End()
			continue
		}
		code := resp.StatusCode()
		att.SetHTTPStatus(code)
		att.End()
		return code
	}
	if errors.Is(err, fasthttp.ErrTimeout) {
		sp.SetError("upstream_timeout", "upstream did not answer in time")
		return fasthttp.StatusGatewayTimeout
	}
	sp.SetError("upstream_unavailable", "upstream connection failed")
	return fasthttp.StatusBadGateway
}
