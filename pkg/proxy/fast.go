package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// The fast path.
//
// fasthttp parses every request into its own header structure, the proxy
// edits that structure, and fasthttp serialises it again for the upstream;
// the answer takes the same trip back. Per proxied request that was most
// of the gateway's own work (docs/performance.md). The fast path serves
// the requests that make up nearly all traffic without it: it parses the
// request head once (parseFastHead), writes the upstream request from the
// client's own header lines minus the ones the gateway strips plus the
// ones it adds, and passes a plain answer back line by line.
//
// Everything else goes the way it always went, so every rule in
// docs/proxy.md keeps its one implementation:
//
//   - a request the fast path does not take (parseFastHead's subset, no
//     route, a mounted path, a failed credential, an access log, a trusted
//     proxy...) is handed to fasthttp's server with the bytes already read,
//     and the connection stays there (fasthttp answers, refuses, hijacks);
//   - an answer that is not plain (a 5xx, a redirect, a stream, an
//     unusual head) is read by the same code as before into a
//     fasthttp.Response, finished by the same code (answer) and written by
//     fasthttp;
//   - the gateway's refusals after admission are written by the same
//     functions into the same kind of response.
//
// FuzzFastPathEquivalence checks that both paths send the upstream and
// the client the same thing for requests the fast path takes.

// fastConn is a client connection served by the fast path.
type fastConn struct {
	p    *Proxy
	t    *trackedConn
	conn net.Conn // t.Conn: the fast parser is stricter than wireCheck
	peer netip.Addr
	// buf holds what was read and not yet served: buf[start:end].
	buf        []byte
	start, end int
	served     int
	h          fastHead
	up         []byte // the upstream request
	out        []byte // the client response
	// writeDL is the write deadline set last (Unix ns; 0: unknown).
	writeDL int64
	// ctx is the fasthttp context of answers written by fasthttp.
	ctx *fasthttp.RequestCtx
	bw  *bufio.Writer
	// mr and mbr read a mounted endpoint's request into ctx (serveMount).
	mr  bytes.Reader
	mbr *bufio.Reader

	// The route of the last request, for its path and the header block
	// of generation rgen (see route), and the grant of the last credential
	// verified, for the header block of generation grantGen (see
	// authenticate).
	rt       *table
	r        *Route
	rpath    []byte
	rgen     uint64
	grant    auth.Grant
	grantGen uint64
	// xff is the client's address as X-Forwarded-For writes it.
	xff []byte
	// idNext and idEnd are the request ids reserved for the connection.
	idNext, idEnd uint64
	// limitLine is the RateLimit-Limit line of limit limitOf.
	limitLine []byte
	limitOf   int64

	// While tracing is on (traced), the request's server span, and the
	// traceparent of the attempt being written (tp[:tpLen]); tpath is
	// where a sampled attempt's upstream path is built for its span
	// (reused: on the stack it escaped, one allocation per request).
	traced bool
	sp     tracing.Span
	tp     [tracing.TraceparentLen]byte
	tpLen  int
	tpath  []byte
	// last is the last plain answer head passed on (see plainHead).
	last lastPlain
	// upFields are the field lines of the last upstream request, for
	// upKey (see buildUpstream).
	upFields []byte
	upKey    upFieldsKey
}

// serveConn serves one accepted connection: on the fast path, and from the
// first request it does not take, through fasthttp's server.
func (p *Proxy) serveConn(c net.Conn) {
	defer p.connWG.Done()
	t, ok := c.(*trackedConn)
	if !ok || p.slowOnly.Load() {
		_ = p.srv.ServeConn(c)
		return
	}
	fc := &fastConn{p: p, t: t, conn: t.Conn, peer: peerAddr(t), buf: make([]byte, p.srv.ReadBufferSize)}
	if fc.serve() {
		_ = p.srv.ServeConn(t)
		return
	}
	_ = t.Close()
}

// peerAddr is the client's address as clientAddr reads it from a
// fasthttp context.
func peerAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		x, _ := netip.AddrFromSlice(a.IP)
		return x.Unmap()
	}
	return netip.IPv4Unspecified()
}

// fastAction is what serve does after a request.
type fastAction uint8

const (
	fastKeep    fastAction = iota // next request
	fastClose                     // close the connection
	fastHandoff                   // give the connection to fasthttp
)

// serve runs the connection until it closes (false) or is to be handed
// to fasthttp (true), with the bytes not yet served pending in t.
func (fc *fastConn) serve() bool {
	for {
		if fc.start == fc.end {
			fc.start, fc.end = 0, 0
			if fc.p.stopping.Load() {
				return false
			}
			fc.t.busy.Store(false)
			n, _ := fc.conn.Read(fc.buf)
			fc.t.busy.Store(true)
			if n == 0 {
				// Nothing of a request came (closed, timed out, reset).
				// After a request fasthttp closes quietly; before the first
				// it may answer (408), so it decides.
				return fc.served == 0 && fc.handoff(time.Time{})
			}
			fc.end = n
		}
		n := parseFastHead(fc.buf[fc.start:fc.end], &fc.h)
		switch {
		case n == 0:
			if !fc.more(phaseHead) {
				return fc.handoff(time.Time{})
			}
			continue
		case n < 0:
			return fc.handoff(time.Now())
		}
		if cl := fc.h.cl; cl > 0 && fc.end-fc.start < n+int(cl) {
			if n+int(cl) > len(fc.buf) {
				return fc.handoff(time.Now())
			}
			for fc.end-fc.start < n+int(cl) {
				if !fc.more(phaseBody) {
					return fc.handoff(time.Time{})
				}
			}
			// The buffer may have moved.
			n = parseFastHead(fc.buf[fc.start:fc.end], &fc.h)
		}
		switch fc.request() {
		case fastHandoff:
			return fc.handoff(time.Now())
		case fastClose:
			return false
		}
	}
}

// more reads more of a partial request (its head, or its body) under the
// read deadline of that phase, and reports whether anything came. The
// buffer is compacted when full; false when it is full of one request.
func (fc *fastConn) more(phase uint8) bool {
	if fc.end == len(fc.buf) {
		if fc.start == 0 {
			return false
		}
		fc.end = copy(fc.buf, fc.buf[fc.start:fc.end])
		fc.start = 0
	}
	if t := fc.t; t.phase != phase {
		since := t.since // the first request's time runs from the accept
		if phase == phaseHead {
			since = time.Now()
		}
		t.setPhaseAt(phase, since)
	}
	n, _ := fc.conn.Read(fc.buf[fc.end:])
	fc.end += n
	return n > 0
}

// handoff gives the connection to fasthttp with the bytes not yet served;
// the request they begin started at start (zero: as the connection's
// phase says). fasthttp reads them first, and a read error the fast path
// saw comes again (a deadline passed, the end of the stream), so it
// answers as it always did.
func (fc *fastConn) handoff(start time.Time) bool {
	t := fc.t
	if start.IsZero() || t.phase != phaseIdle {
		start = t.since
	}
	t.handoff(fc.buf[fc.start:fc.end], start)
	return true
}

// request serves the request parsed into fc.h, whose body (if any) is
// buffered.
func (fc *fastConn) request() fastAction {
	p, h := fc.p, &fc.h
	t := p.table.Load()
	if t == nil || t.gw.accessLog && p.access != nil {
		return fastHandoff
	}
	// Limits fasthttp's path checks (414, 431, 413) and routes it takes
	// (mounts, no route, a suspended tenant, a trusted proxy's headers).
	if h.line-len(" HTTP/1.1")+10 > t.gw.maxRequestLine || h.nf >= t.gw.maxHeaders || h.cl > int64(t.gw.maxBody) {
		return fastHandoff
	}
	if mh := p.mountFor(h.path); mh != nil {
		if !fc.mountable() {
			return fastHandoff
		}
		return fc.serveMount(t, mh)
	}
	r := fc.route(t)
	if r == nil || r.suspended || (len(t.gw.trusted) > 0 && t.gw.isTrusted(fc.peer)) {
		return fastHandoff
	}
	now := time.Now()
	tr := p.opts.Tracer
	traced := tr.Enabled()
	var (
		principal *auth.Principal
		authEnd   time.Time
	)
	if r.auth.required {
		// A refused credential has no side effect: fasthttp's path checks
		// it again and answers (and traces the refusal).
		pr, err := fc.authenticate(now)
		if err != nil || pr.Check(&r.auth.req) != nil || !pr.CanAccess(r.Tenant) {
			return fastHandoff
		}
		principal = pr
		if traced {
			// The auth span is recorded once the request's span is
			// started, if it is sampled: it needs the check's end (read
			// as span times are, one clock rather than time.Now's two).
			authEnd = tracing.Now()
		}
	}

	// From here on the request is the fast path's.
	var id [20]byte
	reqID := fc.requestID(&id)
	bodyEnd := fc.start + h.n + max(0, int(h.cl))
	closeConn := h.close || p.stopping.Load()
	isHead := len(h.method) == 4 && h.method[0] == 'H'

	var status int
	if traced {
		fc.startSpan(tr, r, principal, reqID, now)
		if principal != nil && fc.sp.Recording() {
			a := fc.sp.StartChildAt("auth", tracing.KindInternal, now)
			endAuth(&a, principal, nil, nil, "", "", "", authEnd)
		}
	}
	if r.policy != nil {
		req := policyRequest{method: h.method, path: h.path, host: h.host, headers: (*fastHeaders)(h), source: fc.peer}
		if d := p.decide(r, principal, &req); !d.Allowed() {
			ctx := fc.context()
			ctx.Response.Header.SetBytesV(hdrRequestID, reqID)
			status = p.deny(ctx, r, principal, &req, &d, reqID)
			r.stats.Observe(status, time.Since(now))
			fc.endSpan(status)
			fc.start = bodyEnd
			return fc.writeContext(ctx, t, isHead, closeConn)
		}
	}
	var (
		decision limits.Decision
		rej      *Rejection
	)
	if fc.sp.Recording() {
		decision, rej = p.admitTraced(&fc.sp, r, principal, fc.peer, now)
	} else {
		decision, rej = p.admit(r, principal, fc.peer, now, nil)
	}
	if rej != nil {
		ctx := fc.context()
		ctx.Response.Header.SetBytesV(hdrRequestID, reqID)
		status = writeRefusal(ctx, rej, &decision, reqID)
		r.stats.Observe(status, time.Since(now))
		fc.endSpan(status)
		fc.start = bodyEnd
		return fc.writeContext(ctx, t, isHead, closeConn)
	}

	rest := h.path[len(r.Prefix):]
	deadline := now.Add(r.totalTimeout)
	o := exchangeOpts{maxBytes: t.gw.maxResponse, idle: r.headerTimeout, clientWrite: t.gw.writeTimeout}
	plain, code, u, fail, err := fc.exchange(r, principal, &decision, reqID, rest, now, deadline, isHead, closeConn, &o)
	if plain {
		status = code
		end := time.Now()
		r.stats.Observe(status, end.Sub(now))
		fc.endSpanAt(status, end)
		fc.start = bodyEnd
		if err := fc.write(fc.out, t, end.UnixNano()); err != nil || closeConn {
			return fastClose
		}
		fc.served++
		fc.t.setPhaseAt(phaseIdle, end)
		return fastKeep
	}
	// Anything else is finished as fasthttp's path finishes it, on a
	// fasthttp context holding the request as sent upstream (and the
	// answer, when there is one).
	ctx := fc.ctx
	if ctx == nil || fail != failNone {
		ctx = fc.context()
	}
	fc.loadRequest(ctx)
	status = p.answer(ctx, t, r, principal, &decision, reqID, rest, now, closeConn, code, u, fail, err)
	r.stats.Observe(status, time.Since(now))
	fc.endSpan(status)
	fc.start = bodyEnd
	return fc.writeContext(ctx, t, isHead, closeConn)
}

// requestID formats the next request id of the connection's block into
// dst.
func (fc *fastConn) requestID(dst *[20]byte) []byte {
	if fc.idNext == fc.idEnd {
		fc.idNext = fc.p.ids.reserve()
		fc.idEnd = fc.idNext + idBlock
	}
	id := fc.p.ids.format(dst, fc.idNext)
	fc.idNext++
	return id
}

// route finds the request's route. A request for the path of the one
// before it on the connection, with the same header block (so the same
// Host), under the same table, has its route. The block is known by its
// generation, not by h.repeat: a head parsed again once its body has
// arrived repeats itself, not the request before it.
func (fc *fastConn) route(t *table) *Route {
	h := &fc.h
	if t == fc.rt && h.gen == fc.rgen && bytes.Equal(h.path, fc.rpath) {
		return fc.r
	}
	r := t.lookup(h.hostKey[:h.hostKeyLen], h.path)
	fc.rt, fc.r, fc.rpath = nil, nil, fc.rpath[:0]
	if r != nil && len(h.path) <= 256 {
		fc.rt, fc.r, fc.rgen, fc.rpath = t, r, h.gen, append(fc.rpath, h.path...)
	}
	return r
}

// authenticate checks the request's credential. A request repeating the
// header block of the one before it on the connection presents the same
// credential: the grant of that one is renewed (lifecycle checked again)
// instead of verifying the key anew.
func (fc *fastConn) authenticate(now time.Time) (*auth.Principal, error) {
	a, h := fc.p.opts.Auth, &fc.h
	if h.repeat && fc.grantGen == h.gen {
		if p, ok, err := a.Renew(&fc.grant, now); ok {
			return p, err
		}
	}
	fc.grantGen = h.gen
	return a.AuthenticateGrant(context.Background(), h.authz, h.apiKey, now, &fc.grant)
}

// exchange sends the request to one of the route's upstreams, retrying as
// Proxy.exchange does. A plain answer (plain) is in fc.out, ready for the
// client; any other answer is in fc.ctx's response (failNone), or the
// exchange failed.
func (fc *fastConn) exchange(r *Route, principal *auth.Principal, d *limits.Decision, reqID, rest []byte, now, deadline time.Time,
	isHead, closeConn bool, o *exchangeOpts) (plain bool, code int, last *upstream, fail failure, err error) {
	attempts := 1
	if r.retries > 0 && idempotent(fc.h.method) {
		attempts += r.retries
	}
	for i := 0; i < attempts; i++ {
		if i > 0 {
			now = time.Now()
			if fc.ctx != nil {
				// Closes a 5xx answer's stream (and its connection).
				fc.ctx.Response.Reset()
			}
		}
		nowNs := now.UnixNano()
		u := r.upstreams.pick(nowNs, last)
		if u == nil {
			if last == nil {
				fc.buildUpstream(nil, r, principal, reqID, rest)
			}
			return false, fasthttp.StatusServiceUnavailable, last, failOther, errNoHealthy
		}
		last = u
		var att tracing.Span
		if fc.traced {
			att = fc.startAttempt(u, rest, i)
		}
		fc.buildUpstream(u, r, principal, reqID, rest)
		plain, code, err = fc.attempt(u, d, reqID, now, deadline, r.headerTimeout, isHead, closeConn, o)
		fail = classify(err)
		if fc.traced {
			endAttempt(&att, code, fail, err)
		}
		answered, again := r.afterAttempt(u, nowNs, code, fail, i+1 < attempts, deadline)
		if answered {
			if !plain {
				stripResponseHopByHop(&fc.ctx.Response.Header)
			}
			return plain, code, u, failNone, nil
		}
		if !again {
			break
		}
	}
	return false, failureStatus(fail), last, fail, err
}

// attempt is one exchange with u (roundTrip's work for a request already
// written out in fc.up). A plain answer goes to fc.out; any other to
// fc.ctx's response, read by readResponse.
func (fc *fastConn) attempt(u *upstream, d *limits.Decision, reqID []byte, now, deadline time.Time, header time.Duration,
	isHead, closeConn bool, o *exchangeOpts) (plain bool, code int, err error) {
	// In Unix nanoseconds: time.Time arithmetic costs several times more,
	// and this runs for every request.
	nowNs, dl := now.UnixNano(), deadline.UnixNano()
	if dl <= nowNs {
		return false, 0, fasthttp.ErrTimeout
	}
	readBy := min(nowNs+int64(header), dl)
	c, err := u.pool.acquire(time.Duration(dl - nowNs))
	if err != nil {
		return false, 0, err
	}
	if err := c.setReadDeadline(nowNs, readBy); err != nil {
		u.pool.closeConn(c)
		return false, 0, ioError(err)
	}
	// A write error comes from the first read (see upConn.send).
	if err := c.send(fc.up, nowNs); err != nil {
		u.pool.closeConn(c)
		return false, 0, ioError(err)
	}
	br := c.br
	// Most answers arrive whole in one read: find the head's end in what
	// is buffered, and take it when it is plain. Anything else (a head
	// still arriving, one plainHead does not take) is readResponse's,
	// which waits, checks and refuses as it always did.
	b, err := br.Peek(1)
	if err != nil {
		u.pool.closeConn(c)
		return false, 0, headError(err, 1)
	}
	b, _ = br.Peek(br.Buffered())
	pr := fc.plainHead(b, d, reqID, isHead, closeConn, o, br.Size(), now)
	switch {
	case pr.err != nil:
		u.pool.closeConn(c)
		return false, 0, pr.err
	case !pr.ok:
		ctx := fc.context()
		o.client = ctx
		err := u.readResponse(c, &ctx.Response, isHead, false, o)
		return false, ctx.Response.StatusCode(), err
	}
	n := pr.n
	if pr.body > 0 {
		b, err := br.Peek(n + pr.body)
		if err != nil {
			u.pool.closeConn(c)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the body ended early
			}
			return false, 0, ioError(err)
		}
		fc.out = append(fc.out, b[n:]...)
		n += pr.body
	}
	_, _ = br.Discard(n)
	if pr.noBody && br.Buffered() > 0 {
		// A body where none can be: the upstream's framing and ours
		// disagree.
		u.pool.closeConn(c)
		return false, 0, errBadResponse
	}
	// Bytes past the answer: the next answer on this connection would
	// start with them.
	u.done(c, pr.close || br.Buffered() > 0)
	return true, pr.code, nil
}

// plainResult is plainHead's verdict.
type plainResult struct {
	ok     bool  // the answer is plain: its head is in fc.out
	err    error // the answer is refused (framing)
	code   int
	n      int  // bytes of the head
	body   int  // body bytes to pass on
	noBody bool // the answer cannot have a body (HEAD, 204, 304)
	close  bool // the upstream closes the connection
}

// plainHead decides whether the upstream answer whose bytes head begins
// with has a plain head, all in head — one the fast path passes on line by line
// with the gateway's changes — and if so writes the client's response
// head to fc.out. Plain is: "HTTP/1.1 <2xx-4xx> <reason>", CRLF lines, a
// body framed by one canonical Content-Length that fits in the read buffer
// with the head (none for HEAD, 204 and 304), token names right before
// their colon, values of visible ASCII, SP and HTAB, nothing the gateway
// rewrites (Location, Refresh), no repeated single field (Content-Type,
// Server, Content-Encoding), no Transfer-Encoding and no hop-by-hop field
// but "Connection: close" or "keep-alive". checkHead and fasthttp's parser
// accept every plain head and read it the same way; everything else goes
// through readResponse, which decides.
//
// An upstream repeats its answer's head (the Date line changes once a
// second): a head equal byte for byte to the last plain one on this
// connection, for a request of the same kind (HEAD or not, limited or
// not), has its verdict and its rewritten lines (fc.last), and is
// recognised by one comparison. It ends where that one did, at its first
// empty line.
func (fc *fastConn) plainHead(head []byte, d *limits.Decision, reqID []byte, isHead, closeConn bool,
	o *exchangeOpts, bufSize int, now time.Time) plainResult {
	var res plainResult
	limited := d.Limit > 0
	var b []byte
	var cl int64
	if l := &fc.last; len(l.head) > 0 && l.isHead == isHead && l.limited == limited &&
		len(head) >= len(l.head) && bytes.Equal(head[:len(l.head)], l.head) {
		b = append(fc.out[:0], l.head[:l.statusEnd]...)
		b = appendDate(b, now)
		b = append(b, l.fields...)
		res.code, res.close, res.noBody, res.n, cl = l.code, l.close, l.noBody, len(l.head), l.cl
	} else {
		if b, cl = fc.parsePlainHead(head, isHead, limited, now, &res); b == nil {
			return res
		}
	}
	if !res.noBody {
		if o.maxBytes > 0 && cl > o.maxBytes {
			res.err = errResponseTooLarge
			return res
		}
		if res.n+int(cl) > bufSize {
			return res
		}
		res.body = int(cl)
	}
	if limited {
		if d.Limit != fc.limitOf || fc.limitLine == nil {
			fc.limitOf = d.Limit
			fc.limitLine = append(appendUint(append(fc.limitLine[:0], limits.HeaderLimit+": "...), uint64(d.Limit)), "\r\n"...)
		}
		b = append(b, fc.limitLine...)
		b = appendUint(append(b, limits.HeaderRemaining+": "...), uint64(max(0, d.Remaining)))
		b = limits.AppendSeconds(append(b, "\r\n"+limits.HeaderReset+": "...), d.Reset)
		b = append(b, "\r\n"...)
	}
	b = append(append(append(b, "X-Request-Id: "...), reqID...), "\r\n"...)
	if closeConn {
		b = append(b, "Connection: close\r\n"...)
	}
	fc.out = append(b, "\r\n"...)
	res.ok = true
	return res
}

// lastPlain is the last plain answer head on a client connection, and
// what plainHead made of it.
type lastPlain struct {
	head            []byte // as received, up to and including the empty line
	statusEnd       int    // the status line's end, CRLF included
	fields          []byte // the field lines passed on, rewritten
	isHead, limited bool   // the kind of request it answered
	code            int
	cl              int64
	close, noBody   bool
}

// parsePlainHead is plainHead's reading of a head it has not seen: it
// returns the client's status line, Date and field lines (in fc.out's
// storage) and the Content-Length (-1: none), or nil when the head is not
// plain (res.err set when it is refused), and remembers the head in
// fc.last. res gets code, close, noBody and n.
func (fc *fastConn) parsePlainHead(head []byte, isHead, limited bool, now time.Time, res *plainResult) ([]byte, int64) {
	fc.last.head = fc.last.head[:0]
	if len(head) < 19 {
		return nil, 0
	}
	// "HTTP/1.1 200 OK\r\n"
	nl := bytes.IndexByte(head, '\n')
	if nl < 15 || head[nl-1] != '\r' {
		return nil, 0
	}
	sl := head[:nl-1]
	if string(sl[:9]) != "HTTP/1.1 " || sl[12] != ' ' {
		return nil, 0
	}
	c0, c1, c2 := sl[9]-'0', sl[10]-'0', sl[11]-'0'
	if c0 < 2 || c0 > 4 || c1 > 9 || c2 > 9 || !validValue(sl[13:]) {
		return nil, 0
	}
	code := int(c0)*100 + int(c1)*10 + int(c2)
	noBody := isHead || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified
	b := append(fc.out[:0], head[:nl+1]...)
	b = appendDate(b, now)
	fieldsAt := len(b)
	var seen uint8 // Content-Type, Server, Content-Encoding
	cl := int64(-1)
	pos := nl + 1
	for {
		at := pos
		name, v, next, end, ok := respFieldLine(head, pos)
		if !ok {
			return nil, 0
		}
		pos = next
		if end {
			break
		}
		keep := true
		switch f := respField(name); f {
		case rfDate, rfRequestID:
			keep = false
		case rfRateLimit:
			keep = !limited
		case rfConnection:
			switch v = trimOWSBytes(v); {
			case equalFoldLower(v, "close"):
				res.close = true
			case !equalFoldLower(v, "keep-alive"):
				return nil, 0
			}
			keep = false
		case rfContentLength:
			v = trimOWSBytes(v)
			if cl >= 0 || !canonicalLength(v) {
				return nil, 0
			}
			cl = 0
			for _, c := range v {
				cl = cl*10 + int64(c-'0')
			}
			if code == fasthttp.StatusNoContent {
				if cl != 0 {
					res.err = errBadResponse // a 204 framing a body
					return nil, 0
				}
				keep = false // fasthttp writes none on a 204
			}
		case rfContentType, rfServer, rfContentEncoding:
			bit := uint8(1) << (f - rfContentType)
			if seen&bit != 0 {
				return nil, 0
			}
			seen |= bit
		case rfComplex:
			return nil, 0
		}
		if keep {
			b = append(b, head[at:pos]...)
		}
	}
	if !noBody && cl < 0 {
		return nil, 0 // until close: streamed
	}
	res.code, res.noBody, res.n = code, noBody, pos
	l := &fc.last
	l.head = append(l.head, head[:pos]...)
	l.statusEnd = nl + 1
	l.fields = append(l.fields[:0], b[fieldsAt:]...)
	l.isHead, l.limited = isHead, limited
	l.code, l.cl, l.close, l.noBody = code, cl, res.close, noBody
	return b, cl
}

// respFieldLine reads the line of a response head that starts at pos:
// a field's name and its value (untrimmed), and where the next line
// starts. end reports the empty line that closes the head. ok is false
// for a bare LF, a head still arriving, a name that is not a token and a
// value with bytes no field may hold: the caller leaves the fast path.
func respFieldLine(head []byte, pos int) (name, v []byte, next int, end, ok bool) {
	i := bytes.IndexByte(head[pos:], '\n')
	if i <= 0 || head[pos+i-1] != '\r' {
		return nil, nil, 0, false, false
	}
	line := head[pos : pos+i-1]
	next = pos + i + 1
	if len(line) == 0 {
		return nil, nil, next, true, true
	}
	j := 0
	for j < len(line) && tokenChar[line[j]] {
		j++
	}
	if j == 0 || j == len(line) || line[j] != ':' {
		return nil, nil, 0, false, false
	}
	name, v = line[:j], line[j+1:]
	return name, v, next, false, validValue(v)
}

// Response fields plainHead treats specially.
const (
	rfOther = iota
	rfDate
	rfRequestID
	rfRateLimit
	rfConnection
	rfContentLength
	rfContentType // the three single fields, in this order
	rfServer
	rfContentEncoding
	rfComplex // leaves the fast path: hop-by-hop, Transfer-Encoding, Location, Refresh
)

func respField(name []byte) int {
	a, b := foldName(name)
	for _, f := range respFields[min(len(name), len(respFields)-1)] {
		// The two words cover names of up to 16 bytes.
		if f.a == a && f.b == b && (len(name) <= 16 || equalFoldLower(name, f.name)) {
			return f.class
		}
	}
	return rfOther
}

// respFields are the response fields respField knows, by length (the
// last slot holds none: longer names are none of them).
var respFields = func() (t [21][]foldedName) {
	for _, f := range []struct {
		name  string
		class int
	}{
		{"date", rfDate}, {"x-request-id", rfRequestID},
		{"ratelimit-limit", rfRateLimit}, {"ratelimit-remaining", rfRateLimit}, {"ratelimit-reset", rfRateLimit},
		{"connection", rfConnection}, {"content-length", rfContentLength},
		{"content-type", rfContentType}, {"server", rfServer}, {"content-encoding", rfContentEncoding},
		{"te", rfComplex}, {"trailer", rfComplex}, {"upgrade", rfComplex}, {"keep-alive", rfComplex},
		{"proxy-connection", rfComplex}, {"proxy-authenticate", rfComplex}, {"proxy-authorization", rfComplex},
		{"transfer-encoding", rfComplex}, {"location", rfComplex}, {"refresh", rfComplex},
	} {
		a, b := foldName([]byte(f.name))
		t[len(f.name)] = append(t[len(f.name)], foldedName{a, b, f.class, f.name})
	}
	return
}()

// foldedName is a field name as foldName reads it.
type foldedName struct {
	a, b  uint64
	class int
	name  string
}

// foldName reads a token (a field name) as two words that identify it
// among names of its length, ASCII case folded: its first and last eight
// bytes (four, for shorter names; its bytes, for the shortest). On token
// characters OR 0x20 folds letters and turns no other byte into a letter
// or '-', so names of letters, digits and '-' compare exactly.
func foldName(n []byte) (uint64, uint64) {
	const fold8, fold4 = 0x2020202020202020, 0x20202020
	switch l := len(n); {
	case l >= 8:
		return binary.LittleEndian.Uint64(n) | fold8, binary.LittleEndian.Uint64(n[l-8:]) | fold8
	case l >= 4:
		return uint64(binary.LittleEndian.Uint32(n) | fold4), uint64(binary.LittleEndian.Uint32(n[l-4:]) | fold4)
	}
	var a uint64
	for _, c := range n {
		a = a<<8 | uint64(c|0x20)
	}
	return a, 0
}

// appendUint appends v in decimal, two digits at a time.
func appendUint(b []byte, v uint64) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 100 {
		q := v / 100
		p := decimalPairs[v-q*100]
		i -= 2
		buf[i], buf[i+1] = p[0], p[1]
		v = q
	}
	if v >= 10 {
		p := decimalPairs[v]
		i -= 2
		buf[i], buf[i+1] = p[0], p[1]
	} else {
		i--
		buf[i] = byte('0' + v)
	}
	return append(b, buf[i:]...)
}

var decimalPairs = func() (t [100][2]byte) {
	for i := range t {
		t[i] = [2]byte{byte('0' + i/10), byte('0' + i%10)}
	}
	return
}()

// buildUpstream writes the upstream request for u into fc.up: what the
// fasthttp path sends (stripRequestHopByHop, credentials, upstreamAuth,
// the gateway's headers, setForwarded), from the client's own lines. With
// u nil (no upstream was available) the request keeps the client's
// target and Host, as the fasthttp path's does.
func (fc *fastConn) buildUpstream(u *upstream, r *Route, principal *auth.Principal, reqID, rest []byte) {
	h := &fc.h
	b := append(fc.up[:0], h.method...)
	b = append(b, ' ')
	if u != nil {
		b = appendUpstreamPath(b, u.base, rest)
	} else {
		b = append(b, h.path...)
	}
	if len(h.query) > 0 {
		b = append(append(b, '?'), h.query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	if u != nil {
		b = append(b, u.host...)
	} else {
		b = append(b, h.host...)
	}
	b = append(b, "\r\n"...)
	consumer := ""
	if principal != nil {
		consumer = principal.Consumer
	}
	// Content-Length: 0 for a request without a body that fasthttp frames
	// anyway (all but GET and HEAD).
	empty := h.cl < 0 && !(len(h.method) == 3 && h.method[0] == 'G') && !(len(h.method) == 4 && h.method[0] == 'H')
	if k := &fc.upKey; k.gen == h.gen && k.r == r && k.consumer == consumer && k.empty == empty && k.traced == fc.traced {
		// The header block of the request before, for the same route and
		// consumer: the same lines.
		b = append(b, fc.upFields...)
	} else {
		at := len(b)
		b = fc.appendFields(b, r, consumer, empty)
		fc.upFields = append(fc.upFields[:0], b[at:]...)
		*k = upFieldsKey{gen: h.gen, r: r, consumer: consumer, empty: empty, traced: fc.traced}
	}
	// The attempt's own trace context: never part of the kept lines.
	if fc.traced {
		b = fc.appendTraceHeaders(b)
	}
	b = append(append(append(b, hdrRequestID+": "...), reqID...), "\r\n"...)
	if fc.xff == nil {
		fc.xff = append(fc.peer.AppendTo([]byte(hdrXFF+": ")), "\r\n"...)
	}
	b = append(b, fc.xff...)
	b = append(b, hdrXFProto+": http\r\n"...)
	b = append(append(append(b, hdrXFHost+": "...), h.host...), "\r\n\r\n"...)
	if h.cl > 0 {
		b = append(b, fc.buf[fc.start+h.n:fc.start+h.n+int(h.cl)]...)
	}
	fc.up = b
}

// upFieldsKey is what the upstream request's field lines (appendFields)
// depend on besides the header block's contents: the block (its
// generation), the route, the consumer and the empty-body framing.
type upFieldsKey struct {
	gen      uint64
	r        *Route
	consumer string
	empty    bool
	traced   bool // the client's trace headers are dropped (replaced)
}

// appendFields appends the upstream request's field lines that follow
// Host and come before X-Request-Id: the client's lines but the stripped
// ones, the body's framing, upstreamAuth, the tenant and the consumer.
func (fc *fastConn) appendFields(b []byte, r *Route, consumer string, empty bool) []byte {
	h := &fc.h
	block := h.block
	dropAuthz := !r.forwardCreds && (r.auth.required || isStoaBearer(h.authz))
	dropKey := !r.forwardCreds && (r.auth.required || isStoaKey(h.apiKey))
	for i := 0; i < h.nf; i++ {
		f := &h.fields[i]
		switch {
		case f.strip:
			continue
		case f.class == hcAuthz && dropAuthz, f.class == hcAPIKey && dropKey:
			continue
		case r.upstreamValue != nil && equalFoldLower(block[f.start:f.nameEnd], r.upstreamHeaderFold):
			continue
		case fc.traced && isTraceHeader(block[f.start:f.nameEnd]):
			continue // replaced below
		}
		b = append(append(b, block[f.start:f.end]...), "\r\n"...)
	}
	// fasthttp frames every body but a GET's or HEAD's, empty ones too,
	// and gives a body without a Content-Type its default one.
	if empty {
		b = append(b, "Content-Length: 0\r\n"...)
	}
	if h.cl > 0 && !h.contentType {
		b = append(b, "Content-Type: application/octet-stream\r\n"...)
	}
	if r.upstreamValue != nil {
		b = append(append(append(append(b, r.upstreamHeader...), ": "...), r.upstreamValue...), "\r\n"...)
	}
	b = append(append(append(b, hdrTenant+": "...), r.Tenant...), "\r\n"...)
	if consumer != "" {
		b = append(append(append(b, hdrConsumer+": "...), consumer...), "\r\n"...)
	}
	return b
}

// context returns the connection's fasthttp context, reset, for an answer
// fasthttp writes.
func (fc *fastConn) context() *fasthttp.RequestCtx {
	if fc.ctx == nil {
		fc.ctx = new(fasthttp.RequestCtx)
		fc.ctx.Init2(fc.t, fasthttpLogger{fc.p.log}, false)
	}
	ctx := fc.ctx
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Response.Header.SetNoDefaultContentType(true)
	return ctx
}

// loadRequest puts the request as sent upstream (fc.up) in ctx, for what
// follows an exchange on the fasthttp path: redirects read the forwarded
// origin from it, OnFailure snapshots it.
func (fc *fastConn) loadRequest(ctx *fasthttp.RequestCtx) {
	ctx.Request.Reset()
	if err := ctx.Request.Read(bufio.NewReader(bytes.NewReader(fc.up))); err != nil {
		fc.p.log.Debug("fast path: reload the upstream request", "err", errorClass(err))
	}
	ctx.Request.URI().DisablePathNormalizing = true
}

// writeContext writes the answer in ctx to the client, as fasthttp's
// server does, and says what comes next.
func (fc *fastConn) writeContext(ctx *fasthttp.RequestCtx, t *table, isHead, closeConn bool) fastAction {
	resp := &ctx.Response
	closeConn = closeConn || resp.ConnectionClose()
	if closeConn {
		resp.SetConnectionClose()
	}
	resp.SkipBody = isHead
	if fc.bw == nil {
		fc.bw = bufio.NewWriterSize(fc.conn, 4096)
	}
	now := time.Now()
	if err := fc.armWrite(t, now.UnixNano()); err != nil {
		return fastClose
	}
	streamed := resp.IsBodyStream()
	err := resp.Write(fc.bw)
	if err == nil {
		err = fc.bw.Flush()
	} else {
		fc.bw.Reset(fc.conn)
	}
	if streamed || err != nil {
		// A streamed body renews the write deadline as it goes: the one
		// set here is no longer known.
		fc.writeDL = 0
	}
	ctx.Response.Reset()
	ctx.Request.Reset()
	if err != nil || closeConn {
		return fastClose
	}
	fc.served++
	fc.t.setPhaseAt(phaseIdle, now)
	return fastKeep
}

// write writes a response under the live write timeout.
func (fc *fastConn) write(b []byte, t *table, now int64) error {
	if err := fc.armWrite(t, now); err != nil {
		return err
	}
	_, err := fc.conn.Write(b)
	return err
}

// armWrite sets the write deadline for a response written now: the
// revision's writeTimeout from now, or a deadline already set that is at
// most a little earlier (deadlineSlack), so that a keep-alive connection
// does not re-arm its timer for every response.
func (fc *fastConn) armWrite(t *table, now int64) error {
	wt := int64(t.gw.writeTimeout)
	if wt <= 0 {
		if fc.writeDL == -1 {
			return nil
		}
		fc.writeDL = -1
		return fc.conn.SetWriteDeadline(time.Time{})
	}
	d := now + wt
	if old := fc.writeDL; old > 0 && old <= d && d-old <= deadlineSlack(wt) {
		return nil
	}
	fc.writeDL = d
	return fc.conn.SetWriteDeadline(time.Unix(0, d))
}

// httpDate is the Date line of the current second.
var httpDate atomic.Pointer[dateLine]

type dateLine struct {
	sec  int64
	line []byte
}

// appendDate appends "Date: <now, HTTP format>\r\n", formatted once a
// second.
func appendDate(b []byte, now time.Time) []byte {
	s := now.Unix()
	d := httpDate.Load()
	if d == nil || d.sec != s {
		line := now.UTC().AppendFormat([]byte("Date: "), "Mon, 02 Jan 2006 15:04:05 GMT")
		d = &dateLine{sec: s, line: append(line, "\r\n"...)}
		httpDate.Store(d)
	}
	return append(b, d.line...)
}

// acceptLoop accepts client connections until the listener is closed.
func (p *Proxy) acceptLoop(ln net.Listener) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors (or another passing error): wait and try
			// again, as net/http does, rather than stop serving.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
				errors.Is(err, syscall.ECONNABORTED) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				p.log.Warn("proxy: accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		p.connWG.Add(1)
		go p.serveConn(c)
	}
}

// drain closes idle client connections until every connection has ended
// or ctx is done: a connection in a request finishes it (its answer says
// "Connection: close" when the fast path writes it) and is closed when it
// goes idle.
func (p *Proxy) drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.connWG.Wait()
		close(done)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		p.conns.closeIdle()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
