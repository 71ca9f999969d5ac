package proxy

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// ErrNoRoute means no Tool of that tenant and name is live.
var ErrNoRoute = errors.New("no such tool")

// CallRequest is an upstream call made on behalf of someone other than a
// proxied HTTP client — an MCP tools/call. It runs through the same
// admission, limits, pools, retries and statistics as proxied requests.
type CallRequest struct {
	Tenant, Tool string
	// Principal is the authenticated caller; nil for a trusted local
	// caller (the MCP unix socket's owner).
	Principal *auth.Principal
	// Client is the caller's address, for per-source limits; may be zero.
	Client netip.Addr
	// OpLimit is the operation's own limit and OpKey its rate-limit key
	// (limits.NameKey, so that a fleet shares it).
	OpLimit limits.Limit
	OpKey   limits.Key
	// Method, Path (below the tool's base, escaped), Query (escaped, no
	// '?'), headers and body of the upstream request.
	Method      string
	Path, Query []byte
	Header      [][2][]byte
	Body        []byte
	ContentType string
	// Timeout overrides the tool's total timeout when positive.
	Timeout time.Duration
	// Start is when the call began (the zero time: when Call is called);
	// timeouts and statistics count from it. A caller that reads the
	// clock anyway passes its reading on.
	Start time.Time
	// MaxBodyBytes is how much of the answer's body is kept (default
	// DefaultCallMaxBody). One byte more is read to tell a longer body
	// (Truncated); the rest is never read and its connection is closed.
	MaxBodyBytes int
	// Trace is the caller's span (an MCP tools/call); zero while tracing
	// is off. Call records under it what the proxy records under a proxied
	// request's span: a limits child around admission, and a client span
	// per upstream attempt (a retry is a new one) whose traceparent goes
	// upstream, with Trace's tracestate when its trace was continued. A
	// traceparent or tracestate in Header is replaced. The attempts'
	// url.full is the upstream's origin only: the path holds the tool's
	// arguments, which spans never carry.
	Trace tracing.Span
}

// DefaultCallMaxBody is how much of an upstream answer Call keeps by
// default: the MCP server's cap on a tool result.
const DefaultCallMaxBody = 1 << 20

// CallResponse is the upstream's answer, or the gateway's own refusal
// (Refused set: rate limit, quota, subscription) in the same shape.
type CallResponse struct {
	Status      int
	ContentType string
	Body        []byte
	// Refused is set when the gateway answered itself.
	Refused *Rejection
	// Truncated is set when the body was longer than MaxBodyBytes: Body
	// then holds MaxBodyBytes+1 bytes, and BodyLen the declared length
	// (Content-Length), or -1 when the upstream did not declare one.
	Truncated bool
	BodyLen   int64
	// Upstream is the upstream that answered.
	Upstream string
	// Elapsed is the call's time from its start to the answer (its
	// body read), as its route's statistics count it.
	Elapsed time.Duration
	ans     callAnswer
}

// Release returns pooled buffers; Body is invalid afterwards.
func (r *CallResponse) Release() {
	r.ans.release()
}

// contentTypeString is ct as a string, without allocating for the usual
// JSON one.
func contentTypeString(ct []byte) string {
	if string(ct) == "application/json" {
		return "application/json"
	}
	return string(ct)
}

// Call performs cr. An error means no upstream answered (connection
// failure, timeout, no healthy upstream, unknown tool); its text is safe to
// show to the caller.
func (p *Proxy) Call(ctx context.Context, cr *CallRequest) (*CallResponse, error) {
	start := cr.Start
	if start.IsZero() {
		start = time.Now()
	}
	t := p.table.Load()
	if t == nil {
		return nil, errors.New("gateway has no configuration loaded")
	}
	r := t.byTool[toolKey{cr.Tenant, cr.Tool}]
	if r == nil || r.federated {
		return nil, ErrNoRoute
	}
	if cr.Principal != nil && !cr.Principal.CanAccess(r.Tenant) {
		return nil, ErrNoRoute
	}
	if r.suspended {
		rej := &Rejection{Status: fasthttp.StatusForbidden, Code: errForbidden, Message: "tenant is suspended"}
		return &CallResponse{Status: rej.Status, ContentType: "application/json", Refused: rej, Body: rejectionBody(rej),
			Elapsed: time.Since(start)}, nil
	}
	var extra *extraLimit
	if !cr.OpLimit.IsZero() {
		extra = &extraLimit{Key: cr.OpKey, Limit: cr.OpLimit}
	}
	var rej *Rejection
	if cr.Trace.Recording() {
		_, rej = p.admitTracedExtra(&cr.Trace, r, cr.Principal, cr.Client, start, extra)
	} else {
		_, rej = p.admit(r, cr.Principal, cr.Client, start, extra)
	}
	if rej != nil {
		elapsed := time.Since(start)
		r.stats.Observe(rej.Status, elapsed)
		return &CallResponse{Status: rej.Status, ContentType: "application/json", Refused: rej, Body: rejectionBody(rej), Elapsed: elapsed}, nil
	}

	var idb [20]byte
	reqID := p.ids.next(&idb)
	timeout := r.totalTimeout
	if cr.Timeout > 0 {
		timeout = cr.Timeout
	}
	deadline := start.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	o := exchangeOpts{maxBytes: t.gw.maxResponse, idle: r.headerTimeout}
	if cr.Trace.IsValid() {
		// Each attempt sets its own traceparent; the call's own trace
		// headers are replaced (traceHeadersUpstream, appendCallRequest).
		o.span, o.spanNoPath = &cr.Trace, true
	}
	var (
		code int
		u    *upstream
		fail failure
		err  error
	)
	out := &CallResponse{}
	if plainCall(r, cr) {
		consumer := ""
		if cr.Principal != nil {
			consumer = cr.Principal.Consumer
		}
		code, u, fail, err = p.callExchange(cr, &out.ans, r, consumer, reqID, start, deadline, &o)
	} else {
		code, u, fail, err = p.callExchangeFasthttp(cr, out.ans.response(), r, reqID, deadline, &o)
	}
	out.Elapsed = time.Since(start)
	r.stats.Observe(code, out.Elapsed)
	out.Status = code
	if u != nil {
		out.Upstream = u.URL
	}
	if fail != failNone {
		if p.opts.OnFailure == nil {
			out.Release()
		}
		switch {
		case err == errNoHealthy:
			return nil, errors.New("no healthy upstream for this tool")
		case fail == failTimeout:
			return nil, errors.New("upstream did not answer within " + timeout.String())
		case fail == failTooLarge:
			return nil, errors.New("upstream response is larger than the gateway's limits.maxResponseBytes")
		case fail == failProtocol:
			return nil, errors.New("upstream sent a malformed response")
		default:
			return nil, errors.New("upstream connection failed")
		}
	}
	limit := cr.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultCallMaxBody
	}
	if a := &out.ans; a.plain {
		out.ContentType = contentTypeString(a.ct)
		out.BodyLen = a.cl
		out.Body = a.body
		if len(a.body) > limit {
			out.Truncated = true
			out.Body = a.body[:limit+1]
		}
		return out, nil
	}
	resp := out.ans.resp
	out.ContentType = string(resp.Header.ContentType())
	if err := readCallBody(out, resp, limit); err != nil {
		out.Release()
		return nil, err
	}
	return out, nil
}

// callExchangeFasthttp is Call's exchange for a request plainCall does not
// take: built as a fasthttp.Request, whose rules (header names, repeated
// and special headers) then apply, and sent by Proxy.exchange.
func (p *Proxy) callExchangeFasthttp(cr *CallRequest, resp *fasthttp.Response, r *Route, reqID []byte,
	deadline time.Time, o *exchangeOpts) (int, *upstream, failure, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	buildCallRequest(req, cr, r, reqID)
	if o.span != nil {
		traceHeadersUpstream(&req.Header, o.span)
	}
	return p.exchange(req, resp, r, cr.Path, deadline, o)
}

// buildCallRequest fills req with cr's request to r's upstream, less
// what Proxy.exchange sets (path, host, scheme) and trace headers.
func buildCallRequest(req *fasthttp.Request, cr *CallRequest, r *Route, reqID []byte) {
	req.Header.SetMethod(cr.Method)
	for _, h := range cr.Header {
		req.Header.SetBytesKV(h[0], h[1])
	}
	if r.upstreamValue != nil {
		req.Header.SetBytesV(r.upstreamHeader, r.upstreamValue)
	}
	req.Header.Set(hdrTenant, r.Tenant)
	if cr.Principal != nil && cr.Principal.Consumer != "" {
		req.Header.Set(hdrConsumer, cr.Principal.Consumer)
	}
	req.Header.SetBytesV(hdrRequestID, reqID)
	if len(cr.Body) > 0 {
		req.SetBodyRaw(cr.Body)
		ct := cr.ContentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.SetContentType(ct)
	}
	req.URI().SetQueryStringBytes(cr.Query)
}

// readCallBody puts at most limit+1 bytes of resp's body in out.Body. A
// streamed body is read only that far: the rest stays unread, and closing
// the stream closes its connection rather than draining it.
func readCallBody(out *CallResponse, resp *fasthttp.Response, limit int) error {
	out.BodyLen = int64(resp.Header.ContentLength())
	if out.BodyLen < 0 {
		out.BodyLen = -1
	}
	b, ok := resp.BodyStream().(*upstreamBody)
	if !ok {
		body := resp.Body()
		if len(body) > limit {
			out.Truncated = true
			body = body[:limit+1]
		}
		out.Body = body
		return nil
	}
	size := limit + 1
	if out.BodyLen >= 0 && out.BodyLen < int64(size) {
		size = int(out.BodyLen)
	}
	buf := make([]byte, 0, size)
	var err error
	for len(buf) < limit+1 && err == nil {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow: the declared length was wrong
		}
		var n int
		n, err = b.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
	}
	_ = resp.CloseBodyStream()
	switch {
	case err == errStreamTooLarge:
		return errors.New("upstream response is larger than the gateway's limits.maxResponseBytes")
	case err != nil && err != io.EOF:
		return errors.New("upstream connection failed while sending the response")
	}
	out.Truncated = len(buf) > limit
	out.Body = buf
	return nil
}

func rejectionBody(rej *Rejection) []byte {
	b := []byte(`{"error":"`)
	b = append(b, rej.Code...)
	b = append(b, `","message":`...)
	msg := rej.Message
	if rej.Code == errRateLimited {
		msg = "rate limit exceeded (" + rej.Message + ")"
	}
	b = strconv.AppendQuote(b, msg)
	if rej.RetryAfter > 0 {
		b = append(b, `,"retryAfterSeconds":`...)
		b = strconv.AppendInt(b, int64((rej.RetryAfter+time.Second-1)/time.Second), 10)
	}
	return append(b, '}')
}

// Admit runs the admission of a call to cr's Tool without calling an
// upstream: the tenant's suspension, the consumer's subscription and
// quota, and the rate limits (cr's operation limit, the Tool's, the
// tenant's, its ToolSets', the consumer's plan, the source address's), as
// Call does before it sends anything. The MCP runtime admits the calls of
// federated MCP servers (Tools with protocol: mcp, which have no HTTP
// route) this way, so they share every limit and quota with proxied
// requests. It returns the refusal or nil, and ErrNoRoute when the tenant
// has no such Tool. Only Tenant, Tool, Principal, Client, OpLimit and
// OpKey of cr are read.
func (p *Proxy) Admit(cr *CallRequest) (*Rejection, error) {
	t := p.table.Load()
	if t == nil {
		return nil, errors.New("gateway has no configuration loaded")
	}
	r := t.byTool[toolKey{cr.Tenant, cr.Tool}]
	if r == nil || (cr.Principal != nil && !cr.Principal.CanAccess(r.Tenant)) {
		return nil, ErrNoRoute
	}
	if r.suspended {
		return &Rejection{Status: fasthttp.StatusForbidden, Code: errForbidden, Message: "tenant is suspended"}, nil
	}
	var extra *extraLimit
	if !cr.OpLimit.IsZero() {
		extra = &extraLimit{Key: cr.OpKey, Limit: cr.OpLimit}
	}
	_, rej := p.admit(r, cr.Principal, cr.Client, time.Now(), extra)
	return rej, nil
}
