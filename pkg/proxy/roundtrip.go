package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// bufferedBodyMax is the largest upstream body (by Content-Length) read
// into memory before the answer is passed on. Larger bodies, chunked bodies
// and bodies delimited by the connection's close are streamed to the client
// as they arrive, so the gateway's memory does not grow with response size.
const bufferedBodyMax = 64 << 10

// maxInterimResponses bounds the 1xx answers (100 Continue, 103 Early
// Hints) skipped before the final response.
const maxInterimResponses = 10

var (
	// errBadResponse is an upstream answer whose framing cannot be trusted
	// (RFC 9112 §6.3): the connection it came on is closed, never reused.
	errBadResponse = errors.New("upstream sent a malformed response")
	// errResponseTooLarge is an upstream answer whose Content-Length is over
	// the Gateway's limits.maxResponseBytes.
	errResponseTooLarge = errors.New("upstream response larger than limits.maxResponseBytes")
)

// exchangeOpts is what one exchange needs besides the request.
type exchangeOpts struct {
	// maxBytes is the Gateway's limits.maxResponseBytes; 0 means no limit.
	maxBytes int64
	// idle bounds each wait for more of a streamed body (the tool's header
	// timeout, like nginx's proxy_read_timeout).
	idle time.Duration
	// client, when set, is the client whose write deadline is renewed
	// (by clientWrite) while a streamed body flows, so a large download is
	// bounded by stalls rather than by its total length.
	client      *fasthttp.RequestCtx
	clientWrite time.Duration
	// span is the request's server span, the parent of each attempt's
	// (nil: tracing off).
	span *tracing.Span
	// spanNoPath leaves the upstream path out of the attempts' url.full:
	// a Call's path holds the MCP tool's arguments, which spans never carry.
	spanNoPath bool
}

// acquireBy takes a pooled connection of u for an exchange that must end
// by deadline, and says when its answer's head must have arrived:
// min(deadline, now+header). A deadline already past is a timeout.
func (u *upstream) acquireBy(now, deadline time.Time, header time.Duration) (*upConn, time.Time, error) {
	if !deadline.After(now) {
		return nil, time.Time{}, fasthttp.ErrTimeout
	}
	readBy := now.Add(header)
	if deadline.Before(readBy) {
		readBy = deadline
	}
	c, err := u.pool.acquire(deadline.Sub(now))
	return c, readBy, err
}

// roundTrip sends req on a pooled connection of u and reads the answer into
// resp. It does what fasthttp's HostClient.Do does, plus what a gateway
// needs: the response head is checked for framing a proxy must not pass
// on, small bodies are buffered, large ones are left on the connection
// behind resp's body stream (an *upstreamBody), which returns the
// connection to the pool when it is read to the end and closes it
// otherwise.
//
// The head must arrive by min(deadline, now+header); a buffered body too.
func (u *upstream) roundTrip(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, header time.Duration, o *exchangeOpts) error {
	now := time.Now()
	c, readBy, err := u.acquireBy(now, deadline, header)
	if err != nil {
		resp.Reset()
		return err
	}

	// Writing a small request to a connected socket does not block; only a
	// large body gets a write deadline (cleared again before the connection
	// goes back to the pool).
	writeDeadline := len(req.Body()) > smallBody
	if writeDeadline {
		err = c.SetWriteDeadline(readBy)
	}
	if err == nil {
		// We forward the path we normalised and routed on.
		req.URI().DisablePathNormalizing = true
		bw := writerPool.Get().(*bufio.Writer)
		bw.Reset(c.Conn)
		err = req.Write(bw)
		if err == nil {
			err = bw.Flush()
		}
		bw.Reset(nil)
		writerPool.Put(bw)
	}
	if err == nil && writeDeadline {
		err = c.SetWriteDeadline(time.Time{})
	}
	if err == nil {
		err = c.setReadDeadline(now.UnixNano(), readBy.UnixNano())
	}
	if err != nil {
		resp.Reset()
		u.pool.closeConn(c)
		return ioError(err)
	}
	return u.readResponse(c, resp, req.Header.IsHead(), req.Header.ConnectionClose(), o)
}

// readResponse reads the answer to a request sent on c into resp (see
// roundTrip), and returns c to the pool or closes it.
func (u *upstream) readResponse(c *upConn, resp *fasthttp.Response, isHead, reqClose bool, o *exchangeOpts) error {
	resp.Reset()
	// Reset forgets the server's NoDefaultContentType: an answer without a
	// Content-Type must reach the client without one.
	resp.Header.SetNoDefaultContentType(true)
	br := c.br
	var head headInfo
	var err error
	for i := 0; ; i++ {
		if head, err = readHead(br, &resp.Header); err != nil {
			break
		}
		code := resp.Header.StatusCode()
		if code >= 200 {
			break
		}
		// 101 is never asked for (Upgrade is not forwarded), so the
		// connection would now speak another protocol. Interim answers
		// have no body (RFC 9110 §15.2): one that frames one is lying.
		if code == fasthttp.StatusSwitchingProtocols || code < 100 || head.cl || head.te || i >= maxInterimResponses {
			err = errBadResponse
			break
		}
	}
	if err != nil {
		u.pool.closeConn(c)
		return err
	}
	code := resp.Header.StatusCode()
	closeConn := reqClose || resp.Header.ConnectionClose()

	// Answers that never have a body (RFC 9112 §6.3 rule 1). A 204 must
	// not even frame one (RFC 9110 §8.6, RFC 9112 §6.1); 304 and HEAD
	// answers may carry the framing of the body they stand for. Bytes
	// already waiting after the head mean the upstream sent a body anyway:
	// its framing and ours disagree.
	if isHead || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		if (code == fasthttp.StatusNoContent && (head.te || head.clNonZero)) || br.Buffered() > 0 {
			u.pool.closeConn(c)
			return errBadResponse
		}
		u.done(c, closeConn)
		return nil
	}

	cl := resp.Header.ContentLength() // -1 chunked, -2 until close
	if o.maxBytes > 0 && int64(cl) > o.maxBytes {
		u.pool.closeConn(c)
		return errResponseTooLarge
	}
	if cl >= 0 && cl <= bufferedBodyMax {
		if err := resp.ReadBody(br, 0); err != nil {
			u.pool.closeConn(c)
			return ioError(err)
		}
		// Bytes past the end of the body: the next answer on this
		// connection would start with them.
		u.done(c, closeConn || br.Buffered() > 0)
		return nil
	}

	// Stream. fasthttp's own response stream decodes the framing (chunked,
	// Content-Length, until close); src holds it and only that.
	src := fasthttp.AcquireResponse()
	src.Header.SetContentLength(cl)
	src.StreamBody = true
	if err := src.ReadBody(br, 0); err != nil {
		fasthttp.ReleaseResponse(src)
		u.pool.closeConn(c)
		return ioError(err)
	}
	b := &upstreamBody{
		src: src, r: src.BodyStream(), br: br, conn: c, pool: u.pool, closeConn: closeConn,
		limit: o.maxBytes, idle: o.idle, client: o.client, clientWrite: o.clientWrite,
	}
	resp.SetBodyStream(b, cl)
	return nil
}

// done ends an exchange on c: back to the pool, or closed.
func (u *upstream) done(c *upConn, closeConn bool) {
	if closeConn {
		u.pool.closeConn(c)
	} else {
		u.pool.release(c)
	}
}

// ioError maps transport errors to what classify expects: an upstream that
// closes before answering is a reset, any timeout is fasthttp.ErrTimeout,
// and a broken body (bad chunk, short Content-Length) is a bad response.
func ioError(err error) error {
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fasthttp.ErrTimeout
	case err == io.EOF:
		return fasthttp.ErrConnectionClosed
	}
	var bc *fasthttp.ErrBrokenChunk
	if errors.As(err, &bc) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errBadResponse
	}
	return err
}

// headInfo is what the raw response head says about framing.
type headInfo struct {
	cl, te    bool // a Content-Length / Transfer-Encoding field is present
	clNonZero bool // some Content-Length is not "0"
}

// readHead reads one response head into h after checking its raw bytes:
// fasthttp's parser is lenient where a proxy must not be (it lets chunked
// win over Content-Length, joins obs-folded lines and takes bare LF), and
// once parsed those facts are gone. Any parse error is errBadResponse:
// fasthttp's messages quote the upstream's bytes.
func readHead(br *bufio.Reader, h *fasthttp.ResponseHeader) (headInfo, error) {
	block, err := peekHead(br)
	if err != nil {
		return headInfo{}, err
	}
	info, ok := checkHead(block)
	if !ok {
		return info, errBadResponse
	}
	if err := h.Read(br); err != nil {
		return info, errBadResponse
	}
	return info, nil
}

// peekHead waits until a whole response head (up to the blank line) is
// buffered in br and returns it without consuming it. A bare LF anywhere in
// it is refused at once, without waiting for more.
func peekHead(br *bufio.Reader) ([]byte, error) {
	scanned := 0
	for n := 1; ; {
		b, err := br.Peek(n)
		if len(b) < n {
			return nil, headError(err, n)
		}
		b, _ = br.Peek(br.Buffered())
		for ; scanned < len(b); scanned++ {
			if b[scanned] != '\n' {
				continue
			}
			if scanned == 0 || b[scanned-1] != '\r' {
				return nil, errBadResponse
			}
			if scanned >= 3 && b[scanned-2] == '\n' {
				return b[:scanned+1], nil
			}
		}
		n = len(b) + 1
		if n > br.Size() {
			return nil, errBadResponse
		}
	}
}

// headError maps the error of a read that wanted the head's first n bytes.
func headError(err error, n int) error {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fasthttp.ErrTimeout
	case n == 1 && err == io.EOF:
		return fasthttp.ErrConnectionClosed
	case n == 1:
		return err // a reset, before any byte
	}
	return errBadResponse // closed mid-head, or head too large
}

// checkHead reports the framing fields of a raw response head (CRLF lines,
// ending in a blank line) and whether a proxy may pass it on: no obs-fold
// (RFC 9112 §5.2 lets a proxy refuse it), not both Content-Length and
// Transfer-Encoding (§6.1: a sign of smuggling), and no Transfer-Encoding
// in an HTTP/1.0 answer (§6.1: its framing is faulty).
func checkHead(block []byte) (headInfo, bool) {
	var info headInfo
	line, rest, _ := bytes.Cut(block, []byte("\r\n"))
	http10 := bytes.HasPrefix(line, []byte("HTTP/1.0 "))
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return info, false
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		// Whitespace before the colon is removed (RFC 9112 §5.1 asks a
		// proxy to), as fasthttp does: "Content-Length :" is
		// Content-Length. What is left must be a token, or fasthttp would
		// pass "X A: 1" on to the client.
		name = bytes.TrimRight(name, " \t")
		if !found || !isToken(name) {
			return info, false
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			info.cl = true
			if v := bytes.TrimSpace(value); len(v) != 1 || v[0] != '0' {
				info.clNonZero = true
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			info.te = true
		}
	}
	if (info.cl && info.te) || (info.te && http10) {
		return info, false
	}
	return info, true
}

// upstreamBody is a response body still on the upstream connection, read
// as the client's response is written. At most limit bytes (when set) are
// passed on: an answer that grows past it mid-stream fails the read, which
// aborts the client connection (the headers are gone already). Close
// returns the connection to the pool when the body was read to its end,
// and closes it otherwise (client gone, cap crossed, upstream error).
type upstreamBody struct {
	src       *fasthttp.Response // owns the framing stream r
	r         io.Reader
	br        *bufio.Reader
	conn      *upConn
	pool      *connPool
	closeConn bool // the connection cannot be reused whatever happens

	// pre holds bytes read ahead (for an error snapshot), served first.
	pre []byte
	// hold makes Close a no-op while the body is moved out of and back
	// into a response (see peekStream).
	hold bool

	limit, n    int64
	idle        time.Duration
	client      *fasthttp.RequestCtx
	clientWrite time.Duration
	renewed     time.Time
	eof, failed bool
}

// errStreamTooLarge fails a streamed body that grew past the cap.
var errStreamTooLarge = errors.New("upstream response grew past limits.maxResponseBytes")

func (b *upstreamBody) Read(p []byte) (int, error) {
	if len(b.pre) > 0 {
		n := copy(p, b.pre)
		b.pre = b.pre[n:]
		return n, nil
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.failed || b.src == nil {
		return 0, errBadResponse
	}
	if b.limit > 0 {
		// Read one byte past the cap at most, to see it crossed.
		if left := b.limit - b.n + 1; int64(len(p)) > left {
			p = p[:left]
		}
	}
	if now := time.Now(); now.Sub(b.renewed) > 100*time.Millisecond {
		b.renewed = now
		if b.idle > 0 {
			_ = b.conn.SetReadDeadline(now.Add(b.idle))
		}
		if b.client != nil && b.clientWrite > 0 {
			_ = b.client.SetWriteDeadline(now.Add(b.clientWrite))
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.limit > 0 && b.n > b.limit {
		n -= int(b.n - b.limit)
		b.n = b.limit
		b.failed = true
		return n, errStreamTooLarge
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.failed = true
	}
	return n, err
}

// Close releases the upstream connection: back to the pool only when the
// body was read to its end and nothing follows it.
func (b *upstreamBody) Close() error {
	if b.hold || b.src == nil {
		return nil
	}
	reuse := b.eof && !b.failed && !b.closeConn && b.br.Buffered() == 0
	_ = b.src.CloseBodyStream()
	fasthttp.ReleaseResponse(b.src)
	b.src, b.r = nil, nil
	if reuse {
		b.pool.release(b.conn)
	} else {
		b.pool.closeConn(b.conn)
	}
	return nil
}

// readAhead fills pre with up to n bytes of the body (less when it ends
// first), for a snapshot of an error answer.
func (b *upstreamBody) readAhead(n int) []byte {
	buf := make([]byte, 0, n)
	for len(buf) < n && !b.eof && !b.failed {
		m, err := b.Read(buf[len(buf):n])
		buf = buf[:len(buf)+m]
		if err != nil {
			break
		}
	}
	b.pre = buf
	return buf
}

// isToken reports whether s is an RFC 9110 token (a valid field name).
func isToken(s []byte) bool {
	for _, c := range s {
		if !tokenChar[c] {
			return false
		}
	}
	return len(s) > 0
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
