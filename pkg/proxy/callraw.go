package proxy

import (
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// Call's upstream requests, written from lines.
//
// Call used to build a fasthttp.Request, which fasthttp then serialised
// through a buffered writer, and wait for the answer with a read that
// first finds nothing (see sysConn.writeAhead). Per MCP tools/call that
// was a good part of the gateway's own work (docs/performance.md, MCP).
// A call whose parts are all plain is written here instead, as the fast
// path writes a proxied request (fast.go, buildUpstream): one buffer,
// sent by the read that waits for the answer. Its answer is read by the
// same code as before (readResponse: framing checks, buffering, streams,
// the size limit), so only the way the request is written changes.
//
// A call with anything unusual — a method or header name that is not a
// token, a value or target with bytes a request line or field cannot
// carry, a header the gateway or fasthttp treats specially, a repeated
// header — keeps fasthttp's request (the exchange it always had), so the
// rules it applies to those stay in one place. FuzzCallRawEquivalence
// checks that both ways send an upstream the same request.

// callBufs holds the buffers of Call's upstream requests.
var callBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// plainCall reports whether cr can be written from lines: its method is a
// token, its path and query are visible ASCII, and its headers are
// distinct tokens with plain values that no one else sets (see
// callHeaderSpecial).
func plainCall(r *Route, cr *CallRequest) bool {
	if cr.Method == "" || !isToken([]byte(cr.Method)) {
		return false
	}
	if !visibleASCII(cr.Path) || !visibleASCII(cr.Query) || !plainContentType(cr.ContentType) {
		return false
	}
	for i, h := range cr.Header {
		if len(h[0]) == 0 || !isToken(h[0]) || !validValue(h[1]) || callHeaderSpecial(h[0]) {
			return false
		}
		if r.upstreamValue != nil && equalFoldLower(h[0], r.upstreamHeaderFold) {
			return false // replaced by the upstream's credential
		}
		for _, g := range cr.Header[:i] {
			if len(g[0]) == len(h[0]) && equalFoldASCII(g[0], h[0]) {
				return false // fasthttp keeps the last one
			}
		}
	}
	return true
}

// callHeaderSpecial reports the header names fasthttp writes from its own
// fields, or the gateway sets itself, or that frame the message.
func callHeaderSpecial(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFoldLower(name, "te")
	case 4:
		return equalFoldLower(name, "host")
	case 6:
		return equalFoldLower(name, "cookie")
	case 7:
		return equalFoldLower(name, "trailer") || equalFoldLower(name, "upgrade")
	case 10:
		return equalFoldLower(name, "connection") || equalFoldLower(name, "user-agent") || equalFoldLower(name, "keep-alive")
	case 12:
		return equalFoldLower(name, "content-type") || equalFoldLower(name, "x-request-id")
	case 13:
		return equalFoldLower(name, "x-stoa-tenant")
	case 14:
		return equalFoldLower(name, "content-length")
	case 15:
		return equalFoldLower(name, "x-stoa-consumer")
	case 16:
		return equalFoldLower(name, "proxy-connection")
	case 17:
		return equalFoldLower(name, "transfer-encoding")
	}
	return false
}

func visibleASCII(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

func plainContentType(ct string) bool {
	for i := 0; i < len(ct); i++ {
		if !fieldValueByte[ct[i]] {
			return false
		}
	}
	return true
}

// equalFoldASCII compares two header names ignoring ASCII case.
func equalFoldASCII(a, b []byte) bool {
	for i := range a {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y || (a[i] != b[i] && (x < 'a' || x > 'z')) {
			return false
		}
	}
	return true
}

// appendCallRequest appends the upstream request of cr for u: the lines
// fasthttp would write for the request Call built before (request line,
// Host, the body's framing, the call's headers, upstreamAuth, the
// gateway's headers) and the body. traceparent is the attempt's own
// (empty: none; the call's headers pass as they are); with it, the call's
// trace headers are replaced by it and tracestate, the continued trace's
// (empty: none), as traceHeadersUpstream does on fasthttp's path.
func appendCallRequest(b []byte, u *upstream, r *Route, cr *CallRequest, consumer string, reqID, traceparent, tracestate []byte) []byte {
	b = append(b, cr.Method...)
	b = append(b, ' ')
	b = appendUpstreamPath(b, u.base, cr.Path)
	if len(cr.Query) > 0 {
		b = append(append(b, '?'), cr.Query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(append(b, u.host...), "\r\n"...)
	isGetHead := cr.Method == fasthttp.MethodGet || cr.Method == fasthttp.MethodHead
	switch {
	case len(cr.Body) > 0:
		ct := cr.ContentType
		if ct == "" {
			ct = "application/json"
		}
		b = append(append(append(b, "Content-Type: "...), ct...), "\r\n"...)
		b = appendUint(append(b, "Content-Length: "...), uint64(len(cr.Body)))
		b = append(b, "\r\n"...)
	case !isGetHead:
		// fasthttp frames every body but a GET's or HEAD's, empty ones too.
		b = append(b, "Content-Length: 0\r\n"...)
	}
	for _, h := range cr.Header {
		if len(traceparent) > 0 && isTraceHeader(h[0]) {
			continue // the attempt's own, below
		}
		b = append(append(append(append(b, h[0]...), ": "...), h[1]...), "\r\n"...)
	}
	if len(traceparent) > 0 {
		b = append(append(append(b, tracing.HeaderTraceparent+": "...), traceparent...), "\r\n"...)
		if len(tracestate) > 0 {
			b = append(append(append(b, tracing.HeaderTracestate+": "...), tracestate...), "\r\n"...)
		}
	}
	if r.upstreamValue != nil {
		b = append(append(append(append(b, r.upstreamHeader...), ": "...), r.upstreamValue...), "\r\n"...)
	}
	b = append(append(append(b, hdrTenant+": "...), r.Tenant...), "\r\n"...)
	if consumer != "" {
		b = append(append(append(b, hdrConsumer+": "...), consumer...), "\r\n"...)
	}
	b = append(append(append(b, hdrRequestID+": "...), reqID...), "\r\n\r\n"...)
	return append(b, cr.Body...)
}

// callExchange is Proxy.exchange for a call written from lines: the same
// attempts, picks, retries, health and statistics, each attempt's request
// written by appendCallRequest and sent by roundTripRaw.
//
// start is when the call began: the first attempt's time, as the fast
// path's first attempt has its request's (one clock read fewer per call);
// a retry reads the clock again.
func (p *Proxy) callExchange(cr *CallRequest, ans *callAnswer, r *Route, consumer string, reqID []byte,
	start, deadline time.Time, o *exchangeOpts) (int, *upstream, failure, error) {
	attempts := 1
	if r.retries > 0 && idempotent([]byte(cr.Method)) {
		attempts += r.retries
	}
	bp := callBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 {
			callBufs.Put(bp)
		}
	}()
	isHead := cr.Method == fasthttp.MethodHead
	var (
		last *upstream
		fail failure
		err  error
	)
	for i := 0; i < attempts; i++ {
		at := start
		if i > 0 {
			at = time.Now()
		}
		now := at.UnixNano()
		u := r.upstreams.pick(now, last)
		if u == nil {
			ans.reset()
			return fasthttp.StatusServiceUnavailable, last, failOther, errNoHealthy
		}
		last = u
		var (
			att    tracing.Span
			tp, ts []byte
			tb     [tracing.TraceparentLen]byte
		)
		if o.span != nil {
			var path []byte
			if !o.spanNoPath {
				var pb [256]byte
				path = appendUpstreamPath(pb[:0], u.base, cr.Path)
			}
			att = startAttempt(o.span, []byte(cr.Method), u, path, i)
			tp, ts = att.AppendTraceparent(tb[:0]), o.span.Tracestate()
		}
		*bp = appendCallRequest((*bp)[:0], u, r, cr, consumer, reqID, tp, ts)
		err = u.roundTripRaw(*bp, isHead, ans, at, deadline, r.headerTimeout, o)
		fail = classify(err)
		code := ans.status()
		if o.span != nil {
			endAttempt(&att, code, fail, err)
		}
		answered, again := r.afterAttempt(u, now, code, fail, i+1 < attempts, deadline)
		if answered {
			if !ans.plain {
				stripResponseHopByHop(&ans.resp.Header)
			}
			return code, u, failNone, nil
		}
		if !again {
			break
		}
	}
	ans.reset()
	return failureStatus(fail), last, fail, err
}

// roundTripRaw is roundTrip for a request already written out in raw at
// now: the same pool, deadlines and answer reading (readCall), the request
// sent by the read that waits for its answer when it can be (upConn.send).
// A request larger than smallBody is written first, under a write
// deadline.
func (u *upstream) roundTripRaw(raw []byte, isHead bool, ans *callAnswer, now, deadline time.Time, header time.Duration, o *exchangeOpts) error {
	ans.plain = false
	c, readBy, err := u.acquireBy(now, deadline, header)
	if err != nil {
		ans.reset()
		return err
	}
	if len(raw) > smallBody {
		if err = c.SetWriteDeadline(readBy); err == nil {
			if _, err = c.Write(raw); err == nil {
				err = c.SetWriteDeadline(time.Time{})
			}
		}
		if err == nil {
			err = c.setReadDeadline(now.UnixNano(), readBy.UnixNano())
		}
	} else if err = c.setReadDeadline(now.UnixNano(), readBy.UnixNano()); err == nil {
		// A write error comes from the first read (see upConn.send).
		err = c.send(raw, now.UnixNano())
	}
	if err != nil {
		ans.reset()
		u.pool.closeConn(c)
		return ioError(err)
	}
	return u.readCall(c, ans, isHead, o)
}
