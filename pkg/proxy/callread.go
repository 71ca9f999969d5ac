package proxy

import (
	"bytes"
	"sync"

	"github.com/valyala/fasthttp"
)

// Call's upstream answers, read without fasthttp.
//
// A Call written from lines (callraw.go) used to have its answer parsed
// into a fasthttp.Response by readResponse: the head checked (checkHead),
// parsed again by fasthttp's parser, hop-by-hop fields stripped, the body
// copied into the response, and the response reset and pooled. The MCP
// layer reads four things of it: the status, the Content-Type, the body
// and its declared length. A plain answer — most of them — now gives
// those four directly from the connection's buffer, as the fast path
// reads a plain answer to a proxied request (fast.go, plainHead): no
// fasthttp.Response is taken from the pool, and the body is copied once,
// into a pooled buffer the CallResponse owns until Release.
//
// Plain is: all of the head and the body already buffered; "HTTP/1.1
// <200-499 but 204 and 304> <reason>"; CRLF lines; token names right
// before their colon; values of visible ASCII, SP and HTAB; one canonical
// Content-Length; at most one Content-Type; no Transfer-Encoding, no
// hop-by-hop field but "Connection: close" or "keep-alive" (the fields
// respField calls complex). checkHead and fasthttp's parser accept every
// such head and read it the same way; anything else — an interim answer,
// a 5xx, a body by chunks or until close, a head or body still arriving,
// an answer over limits.maxResponseBytes — is readResponse's, which
// waits, checks and refuses as it always did. FuzzCallReadEquivalence
// requires both readings to give a Call the same answer.

// callAnswer is the plain answer of a Call's attempt, or the fasthttp
// response readResponse read a non-plain one into.
type callAnswer struct {
	plain bool
	code  int
	ct    []byte // the Content-Type's value (in buf)
	body  []byte // in buf
	cl    int64  // the declared length
	buf   *[]byte
	// resp is taken from fasthttp's pool when an answer is not plain.
	resp *fasthttp.Response
}

// response is the fasthttp response for readResponse.
func (a *callAnswer) response() *fasthttp.Response {
	if a.resp == nil {
		a.resp = fasthttp.AcquireResponse()
	}
	return a.resp
}

// callBodies holds the buffers of plain Call answers.
var callBodies = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// take copies a plain answer's Content-Type and body out of the
// connection's buffer.
func (a *callAnswer) take(ct, body []byte) {
	if a.buf == nil {
		a.buf = callBodies.Get().(*[]byte)
	}
	b := append(append((*a.buf)[:0], ct...), body...)
	*a.buf = b
	a.ct, a.body = b[:len(ct):len(ct)], b[len(ct):]
}

// status is the attempt's answer's status (fasthttp's reset response's
// 200 when there is none, as before).
func (a *callAnswer) status() int {
	switch {
	case a.plain:
		return a.code
	case a.resp != nil:
		return a.resp.StatusCode()
	}
	return fasthttp.StatusOK
}

// reset forgets an attempt's answer, keeping the buffers.
func (a *callAnswer) reset() {
	a.plain = false
	if a.resp != nil {
		a.resp.Reset()
	}
}

// release returns the buffers.
func (a *callAnswer) release() {
	if a.buf != nil {
		if cap(*a.buf) <= 64<<10 {
			callBodies.Put(a.buf)
		}
		a.buf = nil
	}
	if a.resp != nil {
		fasthttp.ReleaseResponse(a.resp)
		a.resp = nil
	}
	a.ct, a.body = nil, nil
}

// callHead is what parseCallHead reads of a plain head.
type callHead struct {
	code  int
	n     int // bytes of the head, the empty line included
	cl    int64
	ct    []byte
	hasCT bool
	close bool
}

// parseCallHead reads the answer head at the start of b when it is plain
// (above) and whole in b; ok is false otherwise.
func parseCallHead(b []byte) (h callHead, ok bool) {
	if len(b) < 19 {
		return h, false
	}
	nl := bytes.IndexByte(b, '\n')
	if nl < 15 || b[nl-1] != '\r' {
		return h, false
	}
	sl := b[:nl-1]
	if string(sl[:9]) != "HTTP/1.1 " || sl[12] != ' ' {
		return h, false
	}
	c0, c1, c2 := sl[9]-'0', sl[10]-'0', sl[11]-'0'
	if c0 < 2 || c0 > 4 || c1 > 9 || c2 > 9 || !validValue(sl[13:]) {
		return h, false
	}
	h.code = int(c0)*100 + int(c1)*10 + int(c2)
	if h.code == fasthttp.StatusNoContent || h.code == fasthttp.StatusNotModified {
		return h, false
	}
	h.cl = -1
	pos := nl + 1
	for {
		name, v, next, end, ok := respFieldLine(b, pos)
		if !ok {
			return h, false
		}
		pos = next
		if end {
			break
		}
		switch respField(name) {
		case rfConnection:
			switch v = trimOWSBytes(v); {
			case equalFoldLower(v, "close"):
				h.close = true
			case !equalFoldLower(v, "keep-alive"):
				return h, false
			}
		case rfContentLength:
			v = trimOWSBytes(v)
			if h.cl >= 0 || !canonicalLength(v) {
				return h, false
			}
			h.cl = 0
			for _, c := range v {
				h.cl = h.cl*10 + int64(c-'0')
			}
		case rfContentType:
			if h.hasCT {
				return h, false
			}
			h.ct, h.hasCT = trimOWSBytes(v), true
		case rfComplex:
			return h, false
		}
	}
	if h.cl < 0 {
		return h, false // by chunks or until close: streamed
	}
	h.n = pos
	return h, true
}

// readCall reads the answer to a Call's request sent on c into a: a plain
// one from c's buffer, any other into a.response() by readResponse. It
// returns c to the pool or closes it.
func (u *upstream) readCall(c *upConn, a *callAnswer, isHead bool, o *exchangeOpts) error {
	a.plain = false
	if !isHead {
		br := c.br
		// Most answers arrive whole in one read.
		b, err := br.Peek(1)
		if err != nil {
			u.pool.closeConn(c)
			return headError(err, 1)
		}
		b, _ = br.Peek(br.Buffered())
		if h, ok := parseCallHead(b); ok && h.cl <= bufferedBodyMax && (o.maxBytes <= 0 || h.cl <= o.maxBytes) &&
			int64(len(b)-h.n) >= h.cl {
			a.take(h.ct, b[h.n:h.n+int(h.cl)])
			a.plain, a.code, a.cl = true, h.code, h.cl
			_, _ = br.Discard(h.n + int(h.cl))
			// Bytes past the answer: the next answer on this connection
			// would start with them.
			u.done(c, h.close || br.Buffered() > 0)
			return nil
		}
	}
	return u.readResponse(c, a.response(), isHead, false, o)
}
