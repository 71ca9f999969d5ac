package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// Hop-by-hop headers (RFC 9110 §7.6.1) are never forwarded, in either
// direction. Transfer-Encoding is re-framed by fasthttp itself.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Upgrade",
}

// Gateway headers are set by stoad only; a client's copy is removed, and a
// request carrying a look-alike (underscores for dashes, spaces) is refused,
// since some upstream stacks (CGI, WSGI, PHP) fold "X_Stoa_Tenant" into the
// same variable as "X-Stoa-Tenant".
const (
	hdrTenant    = "X-Stoa-Tenant"
	hdrConsumer  = "X-Stoa-Consumer"
	hdrRequestID = "X-Request-Id"
	hdrXFF       = "X-Forwarded-For"
	hdrXFProto   = "X-Forwarded-Proto"
	hdrXFHost    = "X-Forwarded-Host"
)

// protectedNames are compared after folding case and '_' to '-'.
var protectedNames = [][]byte{
	[]byte("x-stoa-"), // prefix: every X-Stoa-* header
	[]byte("x-request-id"),
	[]byte("x-forwarded-for"),
	[]byte("x-forwarded-proto"),
	[]byte("x-forwarded-host"),
	[]byte("x-real-ip"),
	[]byte("forwarded"),
}

// headerScan is the result of the single pass over request headers.
type headerScan struct {
	count     int
	bad       bool // a name with whitespace, or an underscore twin of a gateway header
	stoa      bool // client sent an X-Stoa-* header (to delete)
	connNamed bool // Connection names extra headers to drop
	realIP    bool
	forwarded bool
	// credHeaders counts Authorization and X-Api-Key fields; more than one
	// of a kind is refused.
	credHeaders   int
	authz, apiKey int
	// hop is set when a hop-by-hop header is present (most requests have
	// none, and then stripping them costs nothing).
	hop bool
	// gwSeen marks which of X-Request-Id and X-Forwarded-For/-Proto/-Host
	// (bits 1-4, as in protectedNames) the client sent; gwRepeated is set
	// when one came twice (Set replaces only the first copy).
	gwSeen     uint8
	gwRepeated bool
}

// foldEq reports whether name, with '_' read as '-' and ASCII case folded,
// equals (or, for prefix=true, starts with) want (lower case).
func foldEq(name, want []byte, prefix bool) bool {
	if len(name) < len(want) || (!prefix && len(name) != len(want)) {
		return false
	}
	for i, w := range want {
		c := name[i]
		if c == '_' {
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w {
			return false
		}
	}
	return true
}

// scanHeaders walks the request headers once, without allocating.
func scanHeaders(h *fasthttp.RequestHeader) headerScan {
	var s headerScan
	for k := range h.All() {
		s.count++
		if bytes.IndexByte(k, ' ') >= 0 || bytes.IndexByte(k, '\t') >= 0 {
			s.bad = true
			continue
		}
		if isHopByHop(k) {
			s.hop = true
			continue
		}
		if len(k) == 13 && bytes.EqualFold(k, []byte("Authorization")) {
			s.authz++
			continue
		}
		if len(k) == 9 && bytes.EqualFold(k, []byte("X-Api-Key")) {
			s.apiKey++
			continue
		}
		if len(k) < 7 || (k[0] != 'x' && k[0] != 'X' && k[0] != 'f' && k[0] != 'F') {
			continue
		}
		hasUnderscore := bytes.IndexByte(k, '_') >= 0
		for i, p := range protectedNames {
			if !foldEq(k, p, i == 0) {
				continue
			}
			if hasUnderscore {
				s.bad = true
			}
			switch i {
			case 0:
				s.stoa = true
			case 1, 2, 3, 4:
				if s.gwSeen&(1<<i) != 0 {
					s.gwRepeated = true
				}
				s.gwSeen |= 1 << i
			case 5:
				s.realIP = true
			case 6:
				s.forwarded = true
			}
		}
	}
	if len(h.Peek("Connection")) > 0 {
		s.connNamed = true
	}
	s.credHeaders = max(s.authz, s.apiKey)
	return s
}

// nextToken splits the first comma-separated token (trimmed) off a header
// value: for tok, v := nextToken(v); ...
func nextToken(v []byte) (tok, rest []byte) {
	i := bytes.IndexByte(v, ',')
	if i < 0 {
		return bytes.TrimSpace(v), nil
	}
	return bytes.TrimSpace(v[:i]), v[i+1:]
}

// stripRequestHopByHop removes hop-by-hop headers, headers named in
// Connection, and client copies of gateway headers.
func stripRequestHopByHop(h *fasthttp.RequestHeader, s *headerScan) {
	if s.connNamed {
		// Copy: deleting headers may move the Connection value's bytes.
		var buf [256]byte
		v := append(buf[:0], h.Peek("Connection")...)
		for rest := v; len(rest) > 0; {
			var tok []byte
			tok, rest = nextToken(rest)
			if len(tok) > 0 && !isEndToEndCritical(tok) {
				h.DelBytes(tok)
			}
		}
	}
	if s.hop {
		for _, name := range hopByHop {
			h.Del(name)
		}
	}
	if s.stoa {
		// Fix (tests): the names are collected in rounds of 8 until none
		// is left. Stopping after one round let a client send 8 filler
		// X-Stoa-* headers and then a spoofed X-Stoa-Consumer, or a second
		// X-Stoa-Tenant (Set replaces only the first copy), upstream. Names
		// longer than the buffer are copied to the heap (attackers only).
		for more := true; more; {
			var names [8][64]byte
			var lens [8]int
			var long []string
			n := 0
			more = false
			for k := range h.All() {
				switch {
				case !foldEq(k, protectedNames[0], true):
				case len(k) > len(names[0]):
					long = append(long, string(k))
				case n < len(names):
					lens[n] = copy(names[n][:], k)
					n++
				default:
					more = true
				}
			}
			for i := 0; i < n; i++ {
				h.DelBytes(names[i][:lens[i]])
			}
			for _, k := range long {
				h.Del(k)
			}
		}
	}
	if s.gwRepeated {
		// Fix (tests): a second client copy of a header the gateway sets
		// survived the Set that replaced the first (spoofed X-Forwarded-*
		// or X-Request-Id upstream). Drop every copy, for trusted peers
		// too: the gateway then writes its own values.
		for _, name := range [...]string{hdrRequestID, hdrXFF, hdrXFProto, hdrXFHost} {
			h.Del(name)
		}
	}
	if s.realIP {
		h.Del("X-Real-Ip")
	}
	if s.forwarded {
		h.Del("Forwarded")
	}
}

// hasRawHeader reports whether a raw header block (one field per line)
// has a field called name, ASCII case-insensitively. It is for rare paths
// (chunked requests), not every request.
func hasRawHeader(raw []byte, name string) bool {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if k, _, ok := bytes.Cut(line, []byte{':'}); ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return true
		}
	}
	return false
}

// isEndToEndCritical protects headers a client may not remove through
// Connection: the ones that frame the message and route it.
func isEndToEndCritical(name []byte) bool {
	for _, n := range [...]string{"Host", "Content-Length", "Transfer-Encoding", "Content-Type"} {
		if bytes.EqualFold(name, []byte(n)) {
			return true
		}
	}
	return false
}

// stripResponseHopByHop does the same for the upstream's response.
func stripResponseHopByHop(h *fasthttp.ResponseHeader) {
	if v := h.Peek("Connection"); len(v) > 0 {
		var buf [256]byte
		v = append(buf[:0], v...)
		for rest := v; len(rest) > 0; {
			var tok []byte
			tok, rest = nextToken(rest)
			if len(tok) > 0 && !isEndToEndCritical(tok) && !bytes.EqualFold(tok, []byte("close")) && !bytes.EqualFold(tok, []byte("keep-alive")) {
				h.DelBytes(tok)
			}
		}
	}
	for k := range h.All() {
		if isHopByHop(k) {
			for _, name := range hopByHop {
				h.Del(name)
			}
			break
		}
	}
	// The upstream connection's fate is not the client's.
	h.ResetConnectionClose()
}

// isHopByHop reports whether name is one of hopByHop (any case).
func isHopByHop(name []byte) bool {
	if len(name) < 2 {
		return false
	}
	switch name[0] | 0x20 {
	case 'c', 'k', 'p', 't', 'u':
		for _, h := range hopByHop {
			if len(h) == len(name) && bytes.EqualFold(name, []byte(h)) {
				return true
			}
		}
	}
	return false
}

// requestIDs generates request ids: a random per-process prefix and a
// counter, hex-encoded into 20 bytes, without allocating.
type requestIDs struct {
	prefix uint32
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{prefix: binary.BigEndian.Uint32(b[:])}
}

const hexDigits = "0123456789abcdef"

// next writes a new id into dst and returns it.
func (g *requestIDs) next(dst *[20]byte) []byte {
	v := g.n.Add(1)
	p := g.prefix
	for i := 7; i >= 0; i-- {
		dst[i] = hexDigits[p&0xf]
		p >>= 4
	}
	for i := 19; i >= 8; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return dst[:]
}

// clientAddr is the peer address, unmapped.
func clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a.Unmap()
}

// realClient returns the address of the client: the peer, or, when the peer
// is a trusted proxy, the right-most X-Forwarded-For entry that is not a
// trusted proxy itself.
func realClient(ctx *fasthttp.RequestCtx, gw *gatewayPolicy, peer netip.Addr) (netip.Addr, bool) {
	if len(gw.trusted) == 0 || !gw.isTrusted(peer) {
		return peer, false
	}
	xff := ctx.Request.Header.Peek(hdrXFF)
	for len(xff) > 0 {
		i := bytes.LastIndexByte(xff, ',')
		tok := bytes.TrimSpace(xff[i+1:])
		if i < 0 {
			xff = nil
		} else {
			xff = xff[:i]
		}
		a, err := netip.ParseAddr(string(tok)) // compiler avoids the copy for this call
		if err != nil {
			return peer, true
		}
		a = a.Unmap()
		if !gw.isTrusted(a) {
			return a, true
		}
	}
	return peer, true
}

// setForwarded writes X-Forwarded-For/-Proto/-Host: appended to when the
// peer is a trusted proxy, overwritten otherwise.
func setForwarded(ctx *fasthttp.RequestCtx, peer netip.Addr, trusted bool, scratch []byte) []byte {
	h := &ctx.Request.Header
	ip := peer.AppendTo(scratch[:0])
	if trusted {
		if prev := h.Peek(hdrXFF); len(prev) > 0 {
			v := append(append(append(ip[len(ip):], prev...), ", "...), ip...)
			h.SetBytesV(hdrXFF, v)
			scratch = v
		} else {
			h.SetBytesV(hdrXFF, ip)
		}
		if len(h.Peek(hdrXFProto)) == 0 {
			h.Set(hdrXFProto, scheme(ctx))
		}
		if len(h.Peek(hdrXFHost)) == 0 {
			h.SetBytesV(hdrXFHost, h.Host())
		}
		return scratch
	}
	h.SetBytesV(hdrXFF, ip)
	h.Set(hdrXFProto, scheme(ctx))
	h.SetBytesV(hdrXFHost, h.Host())
	return ip
}

func scheme(ctx *fasthttp.RequestCtx) string {
	if ctx.IsTLS() {
		return "https"
	}
	return "http"
}

// pathSafe marks the bytes that may appear unescaped in a path segment
// (RFC 3986 pchar: unreserved, sub-delims, ':' and '@') plus '/'.
var pathSafe = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,;=:@/" {
		t[c] = true
	}
	return
}()

// appendEscapedPath appends the decoded path p percent-encoded, so a
// decoded '?', '#', '%' or space can never change the meaning of the
// request line sent upstream.
func appendEscapedPath(dst, p []byte) []byte {
	for _, c := range p {
		if pathSafe[c] {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&0xf])
	}
	return dst
}
