package proxy

import (
	"bytes"
	"context"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

var (
	schemeHTTP  = []byte("http")
	schemeHTTPS = []byte("https")
)

// smallBody is the largest request body sent without a write deadline.
const smallBody = 64 << 10

// maxLimitKeys bounds the limits checked per request: tenant, tool,
// source, plan and up to four ToolSets.
const maxLimitKeys = 8

// reqState is the per-request scratch space, on the stack.
type reqState struct {
	id      [20]byte
	scratch [64]byte
	span    *tracing.Span // the request's server span; nil: tracing off
}

// serveRequest is the hot path: route, authenticate, limit, forward. sp is
// the request's server span (nil: tracing off).
func (p *Proxy) serveRequest(ctx *fasthttp.RequestCtx, sp *tracing.Span) {
	start := ctx.Time()
	t := p.table.Load()
	rs := reqState{span: sp}
	reqID := p.ids.next(&rs.id)
	ctx.Response.Header.SetBytesV(hdrRequestID, reqID)
	if t == nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, errUnavailable, "no configuration loaded yet", reqID)
		return
	}
	h := &ctx.Request.Header

	// Version, Host and request target (framing was checked on the wire);
	// the connection is closed after each of these refusals.
	if status, code, msg := checkRequest(h); status != 0 {
		ctx.SetConnectionClose()
		writeError(ctx, status, code, msg, reqID)
		return
	}
	// "OPTIONS *" asks about the server itself (RFC 9110 §9.3.7), not a
	// resource: the gateway answers it rather than send an upstream a
	// path "/*" the client never asked for.
	if uri := h.RequestURI(); len(uri) == 1 && uri[0] == '*' {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}

	// Request line and header limits (the header block itself is bounded
	// by the read buffer: 431 from errorHandler).
	if len(h.RequestURI())+len(h.Method())+10 > t.gw.maxRequestLine {
		writeError(ctx, fasthttp.StatusRequestURITooLong, errURITooLong, "request line too long", reqID)
		return
	}
	scan := scanHeaders(h)
	if scan.count > t.gw.maxHeaders {
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, errHeaderTooLarge, "too many request header fields", reqID)
		return
	}
	if scan.bad {
		// Closed too: a Content_Length twin may mean a body fasthttp did
		// not read, which would otherwise be taken for the next request.
		ctx.SetConnectionClose()
		writeError(ctx, fasthttp.StatusBadRequest, errBadRequest, "invalid header name", reqID)
		return
	}
	// fasthttp's Peek sees only the first of repeated headers; a repeated
	// credential header could be read differently elsewhere.
	if scan.credHeaders > 1 {
		writeError(ctx, fasthttp.StatusBadRequest, errBadRequest, "repeated credential header", reqID)
		return
	}
	// The gateway reads the whole body before forwarding, so it answers
	// "Expect: 100-continue" itself; any other expectation it cannot meet
	// (RFC 9110 §10.1.1).
	if scan.expect && !bytes.EqualFold(bytes.TrimSpace(h.Peek("Expect")), []byte("100-continue")) {
		writeError(ctx, fasthttp.StatusExpectationFailed, errExpectation, "unsupported expectation (only 100-continue)", reqID)
		return
	}

	// One normalised path serves routing, auth and forwarding: fasthttp's
	// URI.Path() is percent-decoded with dot segments and duplicate
	// slashes removed.
	path := ctx.URI().Path()
	if h := p.mountFor(path); h != nil {
		h(ctx)
		return
	}
	host := hostOnly(h.Host(), &rs.scratch)
	route := t.lookup(host, path)
	if route == nil {
		writeError(ctx, fasthttp.StatusNotFound, errNoRoute, "no route for this path", reqID)
		return
	}
	if sp != nil && sp.Recording() {
		peer := clientAddr(ctx)
		client, _ := realClient(ctx, &t.gw, peer)
		traceRoute(sp, route, h.Method(), client, "", reqID)
	}
	status := p.handleRoute(ctx, t, route, path, &scan, reqID, &rs)
	elapsed := time.Since(start)
	route.stats.Observe(status, elapsed)
	if p.access != nil && t.gw.accessLog {
		p.access.log(ctx, route, status, elapsed, reqID)
	}
}

func (p *Proxy) mountFor(path []byte) fasthttp.RequestHandler {
	if len(p.mounts) > 0 {
		if h := p.mounts[string(path)]; h != nil {
			return h
		}
	}
	for _, m := range p.prefixMounts {
		if bytes.HasPrefix(path, []byte(m.prefix)) {
			return m.h
		}
	}
	return nil
}

// hostOnly lower-cases the Host header without its port, into scratch.
func hostOnly(host []byte, scratch *[64]byte) []byte {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host[i:], ']') < 0 {
		host = host[:i]
	}
	if len(host) > len(scratch) {
		return host
	}
	out := scratch[:len(host)]
	for i, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// handleRoute does everything after routing and returns the status sent.
func (p *Proxy) handleRoute(ctx *fasthttp.RequestCtx, t *table, r *Route, path []byte, scan *headerScan, reqID []byte, rs *reqState) int {
	h := &ctx.Request.Header
	now := ctx.Time()

	if r.suspended {
		writeError(ctx, fasthttp.StatusForbidden, errForbidden, "tenant is suspended", reqID)
		return fasthttp.StatusForbidden
	}
	if r.upstreamValue != nil && hasUnderscoreTwin(h, r.upstreamHeaderFold) {
		writeError(ctx, fasthttp.StatusBadRequest, errBadRequest, "invalid header name", reqID)
		return fasthttp.StatusBadRequest
	}

	// Authentication and tenancy.
	var principal *auth.Principal
	authz, apiKey := h.Peek(auth.HeaderAuthorization), h.Peek(auth.HeaderAPIKey)
	if r.auth.required {
		var asp tracing.Span // the auth span, when the request is sampled
		if rs.span != nil && rs.span.Recording() {
			asp = rs.span.StartChild("auth", tracing.KindInternal)
		}
		pr, err := p.opts.Auth.Authenticate(context.Background(), authz, apiKey, now)
		if err == nil {
			err = pr.Check(&r.auth.req)
		}
		if err != nil {
			status := auth.HTTPStatus(err)
			if status == fasthttp.StatusUnauthorized {
				ctx.Response.Header.Set("WWW-Authenticate", auth.Challenge(err, ""))
			}
			msg := "missing or invalid credentials"
			code := errUnauthorized
			switch status {
			case fasthttp.StatusForbidden:
				msg, code = "credentials do not grant access to this tool", errForbidden
			case fasthttp.StatusBadRequest:
				msg, code = "malformed or ambiguous credentials", errBadRequest
			case fasthttp.StatusServiceUnavailable:
				msg, code = "identity provider keys unavailable", errUnavailable
			}
			endAuth(&asp, pr, authz, apiKey, code, authOutcome(code), msg, time.Time{})
			writeError(ctx, status, code, msg, reqID)
			return status
		}
		if !pr.CanAccess(r.Tenant) {
			// Another tenant's credential never reaches the upstream.
			endAuth(&asp, pr, authz, apiKey, errForbidden, "other_tenant", "credentials belong to another tenant", time.Time{})
			if t.gw.crossTenantStatus == fasthttp.StatusNotFound {
				writeError(ctx, fasthttp.StatusNotFound, errNoRoute, "no route for this path", reqID)
				return fasthttp.StatusNotFound
			}
			writeError(ctx, fasthttp.StatusForbidden, errForbidden, "credentials belong to another tenant", reqID)
			return fasthttp.StatusForbidden
		}
		principal = pr
		endAuth(&asp, pr, authz, apiKey, "", "", "", time.Time{})
		if rs.span != nil && pr.Consumer != "" {
			rs.span.SetString(tracing.AttrConsumer, pr.Consumer)
		}
	}

	peer := clientAddr(ctx)
	client, trustedPeer := realClient(ctx, &t.gw, peer)
	if r.policy != nil {
		req := policyRequest{method: h.Method(), path: path, host: h.Host(), headers: (*fasthttpHeaders)(h), source: client}
		if d := p.decide(r, principal, &req); !d.Allowed() {
			return p.deny(ctx, r, principal, &req, &d, reqID)
		}
	}
	var (
		decision limits.Decision
		rej      *Rejection
	)
	if rs.span != nil && rs.span.Recording() {
		decision, rej = p.admitTraced(rs.span, r, principal, client, now)
	} else {
		decision, rej = p.admit(r, principal, client, now, nil)
	}
	if rej != nil {
		return writeRefusal(ctx, rej, &decision, reqID)
	}

	// Rewrite the request for the upstream.
	clientClose := h.ConnectionClose()
	stripRequestHopByHop(h, scan, trustedPeer)
	h.ResetConnectionClose()
	// fasthttp writes URI userinfo upstream as Authorization: Basic.
	// checkRequest refuses every way a client could put it there; clear
	// it anyway, since nothing a client sends may become an upstream
	// credential.
	if u := ctx.URI(); len(u.Username()) > 0 || len(u.Password()) > 0 {
		u.SetUsernameBytes(nil)
		u.SetPasswordBytes(nil)
	}
	// An absolute-form target (checked to name the Host) is forwarded as
	// origin-form would be: its scheme is the client's, not the upstream's.
	if uri := h.RequestURI(); len(uri) > 0 && uri[0] != '/' {
		ctx.URI().SetScheme(scheme(ctx))
	}
	if !r.forwardCreds {
		if r.auth.required || isStoaKey(apiKey) {
			h.Del(auth.HeaderAPIKey)
		}
		if r.auth.required || isStoaBearer(authz) {
			h.Del(auth.HeaderAuthorization)
		}
	}
	if r.upstreamValue != nil {
		// Del first: Set replaces only the first of repeated client copies.
		h.Del(r.upstreamHeader)
		h.SetBytesV(r.upstreamHeader, r.upstreamValue)
	}
	h.Set(hdrTenant, r.Tenant)
	if principal != nil && principal.Consumer != "" {
		h.Set(hdrConsumer, principal.Consumer)
	}
	h.SetBytesV(hdrRequestID, reqID)
	if rs.span != nil {
		traceHeadersUpstream(h, rs.span)
	}
	// X-Forwarded-For is appended with the peer (the proxy that
	// connected), not the client it named, so a chain through trusted
	// proxies reads "client, proxy" rather than "client, client".
	setForwarded(ctx, peer, trustedPeer, rs.scratch[:])
	// The upstream path is the route's remainder, escaped again: the
	// normalised path is decoded, and HostClient writes paths verbatim.
	var restBuf [256]byte
	rest := appendEscapedPath(restBuf[:0], path[len(r.Prefix):])

	o := exchangeOpts{maxBytes: t.gw.maxResponse, idle: r.headerTimeout, client: ctx, clientWrite: t.gw.writeTimeout, span: rs.span}
	code, u, fail, err := p.exchange(&ctx.Request, &ctx.Response, r, rest, now.Add(r.totalTimeout), &o)
	return p.answer(ctx, t, r, principal, &decision, reqID, rest, now, clientClose, code, u, fail, err)
}

// writeRefusal answers a call that admit refused.
func writeRefusal(ctx *fasthttp.RequestCtx, rej *Rejection, decision *limits.Decision, reqID []byte) int {
	if rej.Status == fasthttp.StatusTooManyRequests && rej.Code == errRateLimited {
		writeLimitHeaders(&ctx.Response.Header, decision)
		writeRateLimited(ctx, int64((decision.RetryAfter+time.Second-1)/time.Second), rej.Message, reqID)
		return rej.Status
	}
	if rej.RetryAfter > 0 {
		var buf [24]byte
		ctx.Response.Header.SetBytesV(limits.HeaderRetryAfter, limits.AppendRetryAfter(buf[:0], rej.RetryAfter))
	}
	writeError(ctx, rej.Status, rej.Code, rej.Message, reqID)
	return rej.Status
}

// answer completes the response after an exchange (exchange's results:
// the status, the upstream last tried, how it failed): the gateway's error
// when no usable answer came, redirects mapped back to the route,
// OnFailure for failed exchanges, and the gateway's response headers. It
// returns the status sent.
func (p *Proxy) answer(ctx *fasthttp.RequestCtx, t *table, r *Route, principal *auth.Principal, decision *limits.Decision,
	reqID, rest []byte, now time.Time, clientClose bool, code int, u *upstream, fail failure, err error) int {
	status := p.forwardResult(ctx, r, reqID, code, u, fail, err)
	if status >= 500 && p.opts.OnFailure != nil {
		f := Failure{Tenant: r.Tenant, Tool: r.Tool, Status: status, Reason: fail.String(), Err: err,
			Start: now, Duration: time.Since(now), Revision: t.revision, RequestID: string(reqID),
			Prefix: r.Prefix, Rest: string(rest)}
		if u != nil {
			f.Upstream = u.URL
		}
		if principal != nil {
			f.Consumer = principal.Consumer
		}
		p.onFailure(ctx, f)
	}
	if clientClose {
		ctx.SetConnectionClose()
	}
	if decision.Limit > 0 {
		writeLimitHeaders(&ctx.Response.Header, decision)
	}
	ctx.Response.Header.SetBytesV(hdrRequestID, reqID)
	return status
}

// snapshotPeek is how much of a streamed error answer OnFailure sees.
const snapshotPeek = 64 << 10

// onFailure calls OnFailure. A hook copies the response body with
// Response.Body(), which would read a streamed body whole into memory: it
// sees the first snapshotPeek bytes instead, and the client still gets
// all of it.
func (p *Proxy) onFailure(ctx *fasthttp.RequestCtx, f Failure) {
	b, ok := ctx.Response.BodyStream().(*upstreamBody)
	if !ok {
		p.reportFailure(ctx, &f)
		return
	}
	cl := ctx.Response.Header.ContentLength()
	b.hold = true // SetBodyRaw closes the stream it replaces
	ctx.Response.SetBodyRaw(b.readAhead(snapshotPeek + 1))
	p.reportFailure(ctx, &f)
	b.hold = false
	ctx.Response.SetBodyStream(b, cl)
}

// writeLimitHeaders sets RateLimit-Limit/-Remaining/-Reset (and
// Retry-After when refused) from d. It formats into a stack buffer and calls
// the header setter directly, so nothing escapes to the heap.
func writeLimitHeaders(h *fasthttp.ResponseHeader, d *limits.Decision) {
	if d.Limit == 0 {
		return
	}
	var buf [24]byte
	h.SetBytesV(limits.HeaderLimit, strconv.AppendInt(buf[:0], d.Limit, 10))
	h.SetBytesV(limits.HeaderRemaining, strconv.AppendInt(buf[:0], max(0, d.Remaining), 10))
	h.SetBytesV(limits.HeaderReset, limits.AppendSeconds(buf[:0], d.Reset))
	if !d.Allowed {
		h.SetBytesV(limits.HeaderRetryAfter, limits.AppendRetryAfter(buf[:0], d.RetryAfter))
	}
}

// limitScratch holds one request's rate-limit keys while they are checked.
type limitScratch struct {
	keys   [maxLimitKeys]limits.Key
	lims   [maxLimitKeys]limits.Limit
	scopes [maxLimitKeys]string
}

var limitScratchPool = sync.Pool{New: func() any { return new(limitScratch) }}

// extraLimit is one more limit to check with a route's (an MCP
// operation's own rate limit).
type extraLimit struct {
	Key   limits.Key
	Limit limits.Limit
}

// admit runs subscriptions/quotas (Admit) and every rate limit that
// applies to a call of route r, charged all or none. A refusal comes back
// as a Rejection; for rate limits its Code is errRateLimited, its Message
// the scope that refused, and the Decision carries the header values.
func (p *Proxy) admit(r *Route, principal *auth.Principal, client netip.Addr, now time.Time, extra *extraLimit) (limits.Decision, *Rejection) {
	if principal != nil && p.opts.Admit != nil {
		if rej := p.opts.Admit(r.Tenant, r.Tool, principal, now); rej != nil {
			if rej.Status == fasthttp.StatusTooManyRequests {
				r.stats.Limited.Add(1)
			}
			return limits.Decision{}, rej
		}
	}
	// The keys and limits go to the Checker interface, which the compiler
	// cannot prove keeps no reference: arrays on the stack would escape to
	// the heap on every request, so they come from a pool.
	sc := limitScratchPool.Get().(*limitScratch)
	defer limitScratchPool.Put(sc)
	keys, lims, scopes := &sc.keys, &sc.lims, &sc.scopes
	n := 0
	add := func(k limits.Key, l limits.Limit, scope string) {
		if !l.IsZero() && n < maxLimitKeys {
			keys[n], lims[n], scopes[n] = k, l, scope
			n++
		}
	}
	if extra != nil {
		add(extra.Key, extra.Limit, "operation")
	}
	add(r.toolKey, r.toolLimit, "tool")
	add(r.tenantKey, r.tenantLimit, "tenant")
	for _, ts := range r.toolSets {
		add(ts.key, ts.limit, "toolset")
	}
	if principal != nil && principal.Consumer != "" && r.planLimits != nil {
		if pl, ok := r.planLimits[principal.Consumer]; ok {
			add(pl.key, pl.limit, "plan")
		}
	}
	add(limits.AddrKey(limits.KindSource, client), r.sourceLimit, "source")
	if n == 0 {
		return limits.Decision{}, nil
	}
	d := p.opts.Limiter.AllowAll(keys[:n], lims[:n])
	if d.Allowed {
		return d, nil
	}
	if principal != nil && p.opts.Admit != nil && p.opts.Refund != nil {
		p.opts.Refund(r.Tenant, r.Tool, principal, now)
	}
	if d.Unavailable {
		// The shared limit store is unreachable and the Gateway fails
		// closed: the gateway cannot tell, which is not the client's doing
		// (no 429, no escalation, no RateLimit-* headers).
		return limits.Decision{}, &Rejection{Status: fasthttp.StatusServiceUnavailable, Code: errLimitsUnavailable,
			Message: "rate limits cannot be checked: the shared limit store is unreachable; retry later", RetryAfter: d.RetryAfter}
	}
	r.stats.Limited.Add(1)
	// Only refusals a client earns on its own (its address's or its
	// plan's limit) count towards escalation into the XDP block list: a
	// tool- or tenant-wide limit is exhausted by everyone together.
	if p.opts.OnReject != nil && client.IsValid() && (scopes[d.Index] == "source" || scopes[d.Index] == "plan") {
		p.opts.OnReject(client)
	}
	return d, &Rejection{Status: fasthttp.StatusTooManyRequests, Code: errRateLimited, Message: scopes[d.Index], RetryAfter: d.RetryAfter}
}

func isStoaKey(v []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(v), []byte(auth.KeyPrefix))
}

func isStoaBearer(v []byte) bool {
	v = bytes.TrimSpace(v)
	if len(v) < 7 || !bytes.EqualFold(v[:7], []byte("bearer ")) {
		return false
	}
	return isStoaKey(v[7:])
}

// idempotent reports whether a method may be retried (RFC 9110 §9.2.2).
func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// forwardResult writes the gateway's JSON error when an exchange brought
// no usable answer, and maps an answer's redirects back to the route. It
// returns the status sent.
func (p *Proxy) forwardResult(ctx *fasthttp.RequestCtx, r *Route, reqID []byte, code int, u *upstream, fail failure, err error) int {
	switch {
	case fail == failNone:
		rewriteRedirects(ctx, r, u)
		return code
	case err == errNoHealthy:
		writeError(ctx, fasthttp.StatusServiceUnavailable, errNoUpstream, "no healthy upstream for this tool", reqID)
	case fail == failTimeout:
		writeError(ctx, fasthttp.StatusGatewayTimeout, errTimeout, "upstream did not answer in time", reqID)
	case fail == failTooLarge:
		writeError(ctx, fasthttp.StatusBadGateway, errTooLarge, "upstream response is larger than the gateway's limits.maxResponseBytes", reqID)
	case fail == failProtocol:
		writeError(ctx, fasthttp.StatusBadGateway, errBadUpstream, "upstream sent a malformed response", reqID)
	default:
		writeError(ctx, fasthttp.StatusBadGateway, errBadUpstream, "upstream connection failed", reqID)
	}
	return ctx.Response.StatusCode()
}

// exchange sends req to one of the route's upstreams (path: the
// upstream's base path + rest, which must be escaped), retrying idempotent
// requests within the route's policy until deadline. For an upstream answer
// (even a 5xx) it returns its status and failNone; a large body is then
// still on the connection, behind resp's body stream. Otherwise it returns
// the failure, resp reset.
func (p *Proxy) exchange(req *fasthttp.Request, resp *fasthttp.Response, r *Route, rest []byte, deadline time.Time, o *exchangeOpts) (int, *upstream, failure, error) {
	attempts := 1
	if r.retries > 0 && idempotent(req.Header.Method()) {
		attempts += r.retries
	}
	// rest may point into the URI buffer that SetPathBytes overwrites: copy.
	var restBuf [256]byte
	rest = append(restBuf[:0], rest...)
	var (
		last *upstream
		fail failure
		err  error
	)
	for i := 0; i < attempts; i++ {
		now := time.Now().UnixNano()
		u := r.upstreams.pick(now, last)
		if u == nil {
			resp.Reset()
			return fasthttp.StatusServiceUnavailable, last, failOther, errNoHealthy
		}
		last = u
		uri := req.URI()
		// base + rest: the route prefix replaced by the upstream's base path.
		var pbuf [256]byte
		uri.SetPathBytes(appendUpstreamPath(pbuf[:0], u.base, rest))
		req.Header.SetHost(u.host)
		uri.SetHost(u.host)
		// The client's scheme is not the upstream's: HostClient refuses a
		// request whose scheme differs from its own (IsTLS).
		if u.tls {
			uri.SetSchemeBytes(schemeHTTPS)
		} else {
			uri.SetSchemeBytes(schemeHTTP)
		}
		var att tracing.Span
		if o.span != nil {
			var path []byte
			if !o.spanNoPath {
				path = uri.Path()
			}
			att = startAttempt(o.span, req.Header.Method(), u, path, i)
			var tb [tracing.TraceparentLen]byte
			req.Header.SetBytesV(tracing.HeaderTraceparent, att.AppendTraceparent(tb[:0]))
		}
		err = u.roundTrip(req, resp, deadline, r.headerTimeout, o)
		fail = classify(err)
		if o.span != nil {
			endAttempt(&att, resp.StatusCode(), fail, err)
		}
		// The next attempt's roundTrip resets resp, which closes a
		// streamed 5xx body (and its connection).
		answered, again := r.afterAttempt(u, now, resp.StatusCode(), fail, i+1 < attempts, deadline)
		if answered {
			stripResponseHopByHop(&resp.Header)
			return resp.StatusCode(), u, failNone, nil
		}
		if !again {
			break
		}
	}
	resp.Reset()
	return failureStatus(fail), last, fail, err
}

// afterAttempt applies the route's health and retry policy to one
// attempt's outcome on u (started at now, in Unix nanoseconds; more: the
// policy allows another attempt). answered: the upstream's answer (even a
// 5xx) is the result; otherwise again says whether to try once more.
func (r *Route) afterAttempt(u *upstream, now int64, code int, fail failure, more bool, deadline time.Time) (answered, again bool) {
	switch fail {
	case failNone:
		if code < 500 {
			u.success()
			return true, false
		}
		u.failure(now)
		if r.retryOn.status5xx && more && time.Now().Before(deadline) {
			return false, true
		}
		return true, false
	case failTooLarge:
		// The upstream answered; it is the answer that is refused.
		u.success()
		return false, false
	}
	u.failure(now)
	r.stats.UpstreamErrors.Add(1)
	retry := (fail == failConnect && r.retryOn.connectFailure) ||
		(fail == failReset && r.retryOn.reset) ||
		(fail == failTimeout && r.retryOn.timeout)
	return false, retry && more && time.Now().Before(deadline)
}

// failureStatus is the gateway's answer when no attempt was answered.
func failureStatus(fail failure) int {
	if fail == failTimeout {
		return fasthttp.StatusGatewayTimeout
	}
	return fasthttp.StatusBadGateway
}
