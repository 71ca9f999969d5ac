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
// request, already read whole, is parsed by fasthttp's own parser into
// the connection's fasthttp context, the proxy's fasthttp handler (serve:
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
	if fc.mbr == nil {
		fc.mbr = bufio.NewReaderSize(&fc.mr, len(fc.buf))
	}
	fc.mr.Reset(fc.buf[fc.start:end])
	fc.mbr.Reset(&fc.mr)
	// As the server reads it: no multipart form parsed ahead
	// (DisablePreParseMultipartForm).
	err := ctx.Request.Header.Read(fc.mbr)
	if err == nil {
		err = ctx.Request.ContinueReadBody(fc.mbr, 0, false)
	}
	fc.mbr.Reset(nil)
	fc.mr.Reset(nil)
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
	ctx.Response.Header.SetBytesV(hdrRequestID, fc.requestID(&id))
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
