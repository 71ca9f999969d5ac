package proxy

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// OpenTelemetry traces of proxied requests (docs/tracing.md): a server
// span per request the proxy answers, and a client span per upstream
// attempt, whose id the upstream receives in a new traceparent. While
// tracing is off the proxy pays one atomic load per request and trace
// headers pass through as any other header.

// serve is fasthttp's handler: the request, in a server span when tracing
// is on.
func (p *Proxy) serve(ctx *fasthttp.RequestCtx) {
	if tr := p.opts.Tracer; tr.Enabled() {
		p.serveTraced(ctx, tr)
		return
	}
	p.serveRequest(ctx, nil)
}

func (p *Proxy) serveTraced(ctx *fasthttp.RequestCtx, tr *tracing.Tracer) {
	// A mounted endpoint (MCP) traces its own calls.
	if p.mountFor(ctx.URI().Path()) != nil {
		p.serveRequest(ctx, nil)
		return
	}
	h := &ctx.Request.Header
	// The span is passed down by pointer and would escape from the stack:
	// pooled, an unsampled request allocates nothing.
	sp := spanPool.Get().(*tracing.Span)
	*sp = tr.Start(&tracing.Incoming{
		Traceparent: h.Peek(tracing.HeaderTraceparent), Tracestate: h.Peek(tracing.HeaderTracestate),
		Peer: clientAddr(ctx), Start: ctx.Time(),
	}, "HTTP", tracing.KindServer)
	if sp.Recording() {
		sp.SetHTTPServer(&tracing.HTTPServer{Method: h.Method(), Path: ctx.URI().Path(), Host: h.Host(),
			UserAgent: h.UserAgent(), TLS: ctx.IsTLS(), Peer: remoteAddrPort(ctx.RemoteAddr())})
	}
	p.serveRequest(ctx, sp)
	sp.EndHTTP(ctx.Response.StatusCode())
	*sp = tracing.Span{}
	spanPool.Put(sp)
}

var spanPool = sync.Pool{New: func() any { return new(tracing.Span) }}

// traceRoute records the route on a request's server span: http.route,
// the name "{method} {route}", and the client behind trusted proxies.
func traceRoute(sp *tracing.Span, r *Route, method []byte, client netip.Addr, consumer string, reqID []byte) {
	if !sp.Recording() {
		return
	}
	sp.SetHTTPRoute(&tracing.HTTPRoute{Method: method, Route: r.Prefix, Client: client,
		Tenant: r.Tenant, Tool: r.Tool, Consumer: consumer}, reqID)
}

// traceHeadersUpstream replaces the client's trace headers on fasthttp's
// path: every traceparent goes (each attempt sets its own), and the
// client's tracestate stays only with the trace it belongs to, when that
// trace was continued.
func traceHeadersUpstream(h *fasthttp.RequestHeader, sp *tracing.Span) {
	h.Del(tracing.HeaderTraceparent)
	st := sp.Tracestate()
	if st == nil {
		h.Del(tracing.HeaderTracestate)
		return
	}
	// st aliases the header Del rewrites.
	var buf [512]byte
	st = append(buf[:0], st...)
	h.Del(tracing.HeaderTracestate)
	h.SetBytesV(tracing.HeaderTracestate, st)
}

// startAttempt begins the client span of an upstream attempt under sp.
func startAttempt(sp *tracing.Span, method []byte, u *upstream, path []byte, i int) tracing.Span {
	att := sp.StartChild("HTTP", tracing.KindClient)
	if att.Recording() {
		scheme := "http"
		if u.tls {
			scheme = "https"
		}
		att.SetHTTPClient(&tracing.HTTPClient{Method: method, Scheme: scheme, Host: u.host, Path: path, ResendCount: i,
			Upstream: u.URL})
	}
	return att
}

// endAttempt records how an attempt ended and ends its span.
func endAttempt(att *tracing.Span, code int, fail failure, err error) {
	if att.Recording() && fail != failNone {
		att.SetError(attemptErrorType(fail), errorClass(err))
		att.End()
		return
	}
	att.EndHTTP(code)
}

// attemptErrorType is error.type of a failed attempt: the gateway's error
// class.
func attemptErrorType(f failure) string {
	switch f {
	case failConnect:
		return "connect_error"
	case failTimeout:
		return "timeout"
	case failReset:
		return "reset"
	case failProtocol:
		return "protocol_error"
	case failTooLarge:
		return "too_large"
	}
	return "_OTHER"
}

func remoteAddrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// startSpan begins the server span of a request the fast path serves,
// from the client's trace headers as fasthttp's path reads them (the
// first of repeated fields).
func (fc *fastConn) startSpan(tr *tracing.Tracer, r *Route, principal *auth.Principal, reqID []byte, now time.Time) {
	h := (*fastHeaders)(&fc.h)
	var tp, ts, ua []byte
	for i := 0; i < h.nf; i++ {
		name, value := h.field(i)
		switch {
		case tp == nil && equalFoldLower(name, tracing.HeaderTraceparent):
			tp = value
		case ts == nil && equalFoldLower(name, tracing.HeaderTracestate):
			ts = value
		case ua == nil && equalFoldLower(name, "user-agent"):
			ua = value
		}
	}
	fc.traced, fc.tpLen = true, 0
	fc.sp = tr.Start(&tracing.Incoming{Traceparent: tp, Tracestate: ts, Peer: fc.peer, Start: now}, "HTTP", tracing.KindServer)
	if fc.sp.Recording() {
		// Routed already: the route goes on with the rest, under one lock.
		consumer := ""
		if principal != nil {
			consumer = principal.Consumer
		}
		fc.sp.SetHTTPServerRequest(&tracing.HTTPServer{Method: h.method, Path: h.path, Host: h.host, UserAgent: ua,
			Peer: remoteAddrPort(fc.t.RemoteAddr()), Route: r.Prefix, Client: fc.peer,
			Tenant: r.Tenant, Tool: r.Tool, Consumer: consumer}, reqID)
	}
}

// endSpan ends the fast path's server span with the status sent.
func (fc *fastConn) endSpan(status int) {
	if !fc.traced {
		return
	}
	fc.sp.EndHTTP(status)
	fc.traced, fc.sp = false, tracing.Span{}
}

// endSpanAt is endSpan at end, a time the request read anyway.
func (fc *fastConn) endSpanAt(status int, end time.Time) {
	if !fc.traced {
		return
	}
	fc.sp.EndHTTPAt(status, end)
	fc.traced, fc.sp = false, tracing.Span{}
}

// startAttempt begins an attempt's client span and keeps its traceparent
// for buildUpstream.
func (fc *fastConn) startAttempt(u *upstream, rest []byte, i int) tracing.Span {
	var att tracing.Span
	if fc.sp.Recording() {
		fc.tpath = appendUpstreamPath(fc.tpath[:0], u.base, rest)
		att = startAttempt(&fc.sp, fc.h.method, u, fc.tpath, i)
	} else {
		att = fc.sp.StartChild("HTTP", tracing.KindClient)
	}
	fc.tpLen = len(att.AppendTraceparent(fc.tp[:0]))
	return att
}

// appendTraceHeaders appends the upstream's trace headers: the attempt's
// traceparent, and the client's tracestate when its trace was continued.
func (fc *fastConn) appendTraceHeaders(b []byte) []byte {
	if fc.tpLen > 0 {
		b = append(append(append(b, "traceparent: "...), fc.tp[:fc.tpLen]...), "\r\n"...)
	}
	if st := fc.sp.Tracestate(); st != nil {
		b = append(append(append(b, "tracestate: "...), st...), "\r\n"...)
	}
	return b
}

// isTraceHeader reports whether a field name is traceparent or tracestate.
func isTraceHeader(name []byte) bool {
	return equalFoldLower(name, tracing.HeaderTraceparent) || equalFoldLower(name, tracing.HeaderTracestate)
}

// The auth and limits spans are children of a sampled request's server
// span only: an unsampled or untraced request checks one pointer (and
// Recording) and creates nothing. They carry what was decided, never the
// credential: stoa.auth.method is how the caller presented itself.

// endAuth records the credential check and ends a (at end; zero: now).
// refused is the gateway's error code of a refusal ("" for a caller let
// in), outcome its stoa.auth.outcome, message the answer's message.
func endAuth(a *tracing.Span, pr *auth.Principal, authz, apiKey []byte, refused, outcome, message string, end time.Time) {
	if a.Recording() { // inlined: an unrecorded request makes no call
		recordAuth(a, pr, authz, apiKey, refused, outcome, message, end)
	}
}

func recordAuth(a *tracing.Span, pr *auth.Principal, authz, apiKey []byte, refused, outcome, message string, end time.Time) {
	method := credentialMethod(authz, apiKey)
	if pr != nil {
		method = pr.Method.String()
	}
	if refused == "" {
		a.SetStrings(tracing.AttrAuthMethod, method, tracing.AttrAuthOutcome, "allowed")
	} else {
		a.SetStrings(tracing.AttrAuthMethod, method, tracing.AttrAuthOutcome, outcome)
		a.SetError(refused, message)
	}
	a.EndAt(end)
}

// credentialMethod is stoa.auth.method of a request whose credential was
// refused: what it presented, judged as the authenticator does (a Bearer
// value with the key prefix is an API key).
func credentialMethod(authz, apiKey []byte) string {
	switch {
	case len(bytes.TrimSpace(apiKey)) > 0 || isStoaBearer(authz):
		return "api_key"
	case len(bytes.TrimSpace(authz)) > 0:
		return "jwt"
	}
	return "none"
}

// authOutcome is stoa.auth.outcome of a refusal with the gateway's error
// code.
func authOutcome(code string) string {
	switch code {
	case errForbidden:
		return "forbidden"
	case errBadRequest:
		return "malformed"
	case errUnavailable:
		return "unavailable"
	}
	return "unauthorized"
}

// admitTraced is admit in a limits span under the sampled sp, when the
// route has a limit (or the admission check) to apply.
func (p *Proxy) admitTraced(sp *tracing.Span, r *Route, principal *auth.Principal, client netip.Addr, now time.Time) (limits.Decision, *Rejection) {
	return p.admitTracedExtra(sp, r, principal, client, now, nil)
}

// admitTracedExtra is admitTraced with an operation's own limit (Call).
func (p *Proxy) admitTracedExtra(sp *tracing.Span, r *Route, principal *auth.Principal, client netip.Addr, now time.Time, extra *extraLimit) (limits.Decision, *Rejection) {
	if extra == nil && !p.checksLimits(r, principal) {
		return p.admit(r, principal, client, now, nil)
	}
	lim := sp.StartChild("limits", tracing.KindInternal)
	d, rej := p.admit(r, principal, client, now, extra)
	switch {
	case rej == nil:
		lim.SetString(tracing.AttrLimitsOutcome, "allowed")
	case rej.Code == errRateLimited:
		// Message is the scope that refused: tool, tenant, toolset, plan,
		// source.
		lim.SetString(tracing.AttrLimitsOutcome, "rate_limited")
		lim.SetString(tracing.AttrLimitScope, rej.Message)
		lim.SetError(rej.Code, "rate limit exhausted: "+rej.Message)
	case rej.Code == errLimitsUnavailable:
		lim.SetString(tracing.AttrLimitsOutcome, "unavailable")
		lim.SetError(rej.Code, rej.Message)
	default:
		// The admission check (subscriptions, quotas): its code says which.
		scope := "subscription"
		if strings.HasPrefix(rej.Code, "quota") {
			scope = "quota"
		}
		lim.SetString(tracing.AttrLimitsOutcome, "refused")
		lim.SetString(tracing.AttrLimitScope, scope)
		lim.SetError(rej.Code, rej.Message)
	}
	lim.End()
	return d, rej
}

// checksLimits reports whether admit has anything to check for a call of
// r by principal: a request with nothing to check gets no limits span.
func (p *Proxy) checksLimits(r *Route, principal *auth.Principal) bool {
	if principal != nil && p.opts.Admit != nil {
		return true
	}
	if !r.toolLimit.IsZero() || !r.tenantLimit.IsZero() || !r.sourceLimit.IsZero() {
		return true
	}
	for _, ts := range r.toolSets {
		if !ts.limit.IsZero() {
			return true
		}
	}
	if principal != nil && principal.Consumer != "" && r.planLimits != nil {
		_, ok := r.planLimits[principal.Consumer]
		return ok
	}
	return false
}
