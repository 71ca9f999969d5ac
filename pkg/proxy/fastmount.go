package proxy

import (
	"bufio"
	"bytes"

	"github.com/valyala/fasthttp"
)

// Mounted endpoints (MCP) on the fast path.
//
// A request for a mounted path used to hand its connection to fasthttp's
// server for good, so every MCP call paid for that server's loop as well
// as for the request (docs/performance.md, MCP). The fast path now keeps
// the connection for the requests a mount answers in one response: the
// request, already read whole, is put into the connection's fasthttp
// context from the fast parser's fields (fillRequest; fasthttp's own
// parser for a head it leaves to it), the proxy's fasthttp handler (serve:
// the same checks, request id, tracing and mount dispatch) answers it,
// and the answer is written as fasthttp's server writes it
// (writeContext). Whatever the endpoint does, it does on the same kind of
// context, so its rules — Host and Origin checks, authentication, the
// protocol headers, CORS, error bodies, 202s — have one implementation.
//
// The fast path takes a POST with its whole body (Content-Length) that
// cannot open a stream: an endpoint that streams takes over the
// connection (Hijack), which only fasthttp's server can hand over. MCP
// streams answer GET and the 2026-07-28 "subscriptions/listen" method, so
// a body that names it, or escapes a character (\u) that could spell it,
// goes to fasthttp with the connection, as every other request for a
// mount does. FuzzMountPathsAgree checks both ways answer the same.

// mountable reports whether the request parsed into fc.h (a mounted path)
// is one serveMount takes.
func (fc *fastConn) mountable() bool {
	h := &fc.h
	if string(h.method) != "POST" || h.cl <= 0 {
		return false
	}
	body := fc.buf[fc.start+h.n : fc.start+h.n+int(h.cl)]
	return !bytes.Contains(body, []byte("listen")) && !bytes.Contains(body, []byte(`\u`))
}

// serveMount answers a mountable request with mh, its mount's handler.
func (fc *fastConn) serveMount(t *table, mh fasthttp.RequestHandler) fastAction {
	h := &fc.h
	end := fc.start + h.n + int(h.cl)
	ctx := fc.context()
	// A fresh request time (ctx.Time), as the server gives each request.
	ctx.Init2(fc.t, fasthttpLogger{fc.p.log}, false)
	var err error
	if !fc.fillRequest(&ctx.Request, fc.buf[fc.start:end]) {
		ctx.Request.Reset()
		err = fc.readRequest(&ctx.Request, fc.buf[fc.start:end])
	}
	if err != nil {
		// The fast head is a subset of what fasthttp reads; should the
		// two ever disagree, fasthttp's server decides.
		fc.p.log.Debug("fast path: read a mounted endpoint's request", "err", errorClass(err))
		ctx.Request.Reset()
		return fastHandoff
	}
	fc.start = end
	// What serve does for a mounted path, less the checks this request
	// passed when the fast parser took it (serveRequest: checkRequest,
	// the request line and header limits, scanHeaders' refusals; see
	// FuzzFastHead) and the lookups done already: a request id, then the
	// mount's handler. A mount traces its own calls.
	var id [20]byte
	ctx.Response.Header.SetCanonical(requestIDKey, fc.requestID(&id))
	mh(ctx)
	ctx.ResetUserValues() // as the server does after each request
	if ctx.Hijacked() {
		// Not a request mountable lets through; the stream cannot be
		// handed over from here.
		fc.p.log.Error("fast path: a mounted endpoint took over its connection; closing it")
		ctx.Response.Reset()
		ctx.Request.Reset()
		return fastClose
	}
	return fc.writeContext(ctx, t, false, fc.h.close || fc.p.stopping.Load())
}

// requestIDKey is X-Request-Id as fasthttp normalizes it, for SetCanonical
// (SetBytesV copies and normalizes the name on every call).
var requestIDKey = []byte(hdrRequestID)

// readRequest reads the request in b into req with fasthttp's parser, as
// the server reads it: no multipart form parsed ahead
// (DisablePreParseMultipartForm).
func (fc *fastConn) readRequest(req *fasthttp.Request, b []byte) error {
	if fc.mbr == nil {
		fc.mbr = bufio.NewReaderSize(&fc.mr, len(fc.buf))
	}
	fc.mr.Reset(b)
	fc.mbr.Reset(&fc.mr)
	err := req.Header.Read(fc.mbr)
	if err == nil {
		err = req.ContinueReadBody(fc.mbr, 0, false)
	}
	fc.mbr.Reset(nil)
	fc.mr.Reset(nil)
	return err
}

// fillRequest puts the request in b, parsed into fc.h, into req (just
// reset) as readRequest would, from the fast parser's fields instead of
// a second parse of the head (about 5,000 instructions a call for an MCP
// request's five fields), and reports whether it did: a head with a field
// whose handling by fasthttp is more than "keep the value" (Cookie, which
// it parses into cookies), or without a body, is left to readRequest. FuzzMountFill holds the
// two to the same result: every field as All, Peek and PeekAll see it, in
// the same order, the method, target, Host, Content-Type, Content-Length,
// User-Agent, Connection and the body.
//
// What it does not set is the header's raw copy (RawHeaders, and
// AllInOrder, which walks it): nothing a mounted endpoint calls reads it
// (the proxy's header hygiene does, on requests that go upstream).
//
// The fast head is a subset of what fasthttp reads (parseFastHead): one
// Host, one Content-Type, at most one User-Agent, one canonical
// Content-Length, no Transfer-Encoding or Trailer, Connection only
// "close" or "keep-alive", token names without spaces, values of visible
// ASCII, SP and HTAB, an HTTP/1.1 request line with an origin-form
// target.
func (fc *fastConn) fillRequest(req *fasthttp.Request, b []byte) bool {
	h := &fc.h
	if h.cl <= 0 {
		return false // without a body, fasthttp decides on a Content-Length
	}
	rh := &req.Header
	rh.SetMethodBytes(h.method)
	rh.SetRequestURIBytes(b[len(h.method)+1 : h.line-len(" HTTP/1.1")])
	block := h.block
	for i := range h.nf {
		f := &h.fields[i]
		name := block[f.start:f.nameEnd]
		v := block[f.nameEnd+1 : f.end]
		for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			v = v[:len(v)-1]
		}
		switch f.class {
		case hcFraming:
			switch len(name) {
			case len("Host"):
				rh.SetHostBytes(v)
			case len("Content-Type"):
				rh.SetContentTypeBytes(v)
			case len("Content-Length"):
				rh.SetContentLength(int(h.cl))
			default:
				return false // not on the fast path
			}
			continue
		case hcHop:
			if !equalFoldLower(name, "connection") {
				break // Keep-Alive: a plain field to fasthttp
			}
			if equalFoldLower(v, "close") {
				// Kept as a flag, not as a field.
				rh.SetConnectionClose()
				continue
			}
			// "keep-alive": a plain field (Add would replace an
			// earlier one and clear the flag a "close" set).
			orig := rh.DisableSpecialHeader()
			rh.AddBytesKV(name, v)
			if !orig {
				rh.EnableSpecialHeader()
			}
			continue
		case hcOther:
			switch len(name) {
			case len("Cookie"):
				if equalFoldLower(name, "cookie") {
					return false
				}
			case len("User-Agent"):
				if equalFoldLower(name, "user-agent") {
					rh.SetUserAgentBytes(v)
					continue
				}
			}
		}
		// Any other name is none of the special ones (above), so Add
		// appends it, its name normalized as the parser does.
		rh.AddBytesKV(name, v)
	}
	req.SetBody(b[h.n:])
	return true
}
