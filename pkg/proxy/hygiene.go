package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
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

// The gateway sets these headers itself; what a client sent under these
// names never reaches the upstream as the client wrote it.
const (
	hdrTenant    = "X-Stoa-Tenant"
	hdrConsumer  = "X-Stoa-Consumer"
	hdrRequestID = "X-Request-Id"
	hdrXFF       = "X-Forwarded-For"
	hdrXFProto   = "X-Forwarded-Proto"
	hdrXFHost    = "X-Forwarded-Host"
)

// hdrClass is what the gateway does with a client header of a given name.
type hdrClass uint8

const (
	hcOther      hdrClass = iota
	hcHop                 // hop-by-hop (hopByHop): removed
	hcDrop                // HTTP2-Settings (only meaningful with Upgrade: h2c), Proxy (httpoxy): removed
	hcExpect              // Expect: answered by the gateway, removed
	hcStoa                // X-Stoa-*: removed, the gateway sets its own
	hcRequestID           // replaced
	hcXFF                 // X-Forwarded-For: replaced, or appended to from a trusted proxy
	hcXFProto             // X-Forwarded-Proto: replaced, or kept from a trusted proxy
	hcXFHost              // X-Forwarded-Host: likewise
	hcXFOther             // any other X-Forwarded-*: removed, or kept from a trusted proxy
	hcClientAddr          // Forwarded, X-Real-IP, True-Client-IP, … and URL overrides: removed
	hcAuthz               // Authorization
	hcAPIKey              // X-Api-Key
	hcFraming             // Host, Content-Length, Transfer-Encoding, Content-Type
)

// hdrName is one name classifyHeader knows, lower case.
type hdrName struct {
	name  string
	class hdrClass
}

// maxExactName bounds the exact names classifyHeader knows.
const maxExactName = 20

// hdrExact holds the exact names by first letter and length, so that a
// name is compared with at most a few candidates (most with none).
var hdrExact = func() (t [26][maxExactName][]hdrName) {
	for _, n := range []hdrName{
		{"connection", hcHop}, {"keep-alive", hcHop}, {"proxy-connection", hcHop},
		{"proxy-authenticate", hcHop}, {"proxy-authorization", hcHop}, {"te", hcHop},
		{"trailer", hcHop}, {"upgrade", hcHop},
		{"http2-settings", hcDrop}, {"proxy", hcDrop},
		{"expect", hcExpect},
		{"x-request-id", hcRequestID},
		{"x-forwarded-for", hcXFF}, {"x-forwarded-proto", hcXFProto}, {"x-forwarded-host", hcXFHost},
		{"forwarded", hcClientAddr}, {"x-forwarded", hcClientAddr},
		{"x-real-ip", hcClientAddr}, {"true-client-ip", hcClientAddr},
		{"x-client-ip", hcClientAddr}, {"client-ip", hcClientAddr},
		{"x-cluster-client-ip", hcClientAddr}, {"cf-connecting-ip", hcClientAddr},
		{"cf-connecting-ipv6", hcClientAddr}, {"fastly-client-ip", hcClientAddr},
		{"fly-client-ip", hcClientAddr}, {"x-originating-ip", hcClientAddr},
		{"x-remote-ip", hcClientAddr}, {"x-remote-addr", hcClientAddr},
		{"x-proxyuser-ip", hcClientAddr}, {"x-host", hcClientAddr},
		{"x-original-url", hcClientAddr}, {"x-rewrite-url", hcClientAddr},
		{"authorization", hcAuthz}, {"x-api-key", hcAPIKey},
		{"host", hcFraming}, {"content-length", hcFraming},
		{"transfer-encoding", hcFraming}, {"content-type", hcFraming},
	} {
		c, l := n.name[0]-'a', len(n.name)
		t[c][l] = append(t[c][l], n)
	}
	return
}()

// Name prefixes with a class of their own (every suffix).
const (
	prefixXF   = "x-forwarded-" // hcXFOther, unless an exact name above
	prefixStoa = "x-stoa-"      // hcStoa
)

// clientIPSuffix catches the client-address headers of every CDN and
// load balancer not listed (Akamai-, Azure-, …-Client-IP).
const clientIPSuffix = "-client-ip"

// classifyHeader classifies a header name, ASCII case folded and with '_'
// read as '-' (so an underscore twin classifies as its original), without
// allocating.
func classifyHeader(k []byte) hdrClass {
	if len(k) < 2 {
		return hcOther
	}
	c := k[0] | 0x20
	if 'a' <= c && c <= 'z' && len(k) < maxExactName {
		for _, n := range hdrExact[c-'a'][len(k)] {
			if foldEq(k, []byte(n.name), false) {
				return n.class
			}
		}
	}
	// The prefix and suffix rules, each behind a one-byte test that
	// ordinary names fail.
	if c == 'x' && len(k) > 2 && (k[1] == '-' || k[1] == '_') {
		switch k[2] | 0x20 {
		case 'f':
			if foldEq(k, []byte(prefixXF), true) {
				return hcXFOther
			}
		case 's':
			if foldEq(k, []byte(prefixStoa), true) {
				return hcStoa
			}
		}
	}
	if n := len(k); n > len(clientIPSuffix) && k[n-1]|0x20 == 'p' &&
		foldEq(k[n-len(clientIPSuffix):], []byte(clientIPSuffix), false) {
		return hcClientAddr
	}
	return hcOther
}

// headerScan is the result of the single pass over request headers.
type headerScan struct {
	count int
	// bad: a name with whitespace, or an underscore twin of a name the
	// gateway treats specially (some upstream stacks — CGI, WSGI, PHP —
	// fold "X_Api_Key" into the same variable as "X-Api-Key").
	bad        bool
	stoa       bool // X-Stoa-* (to delete)
	connNamed  bool // Connection names extra headers to drop
	hop        bool // a hop-by-hop header (most requests have none)
	drop       bool // HTTP2-Settings or Proxy
	expect     bool
	xfOther    bool // an X-Forwarded-* other than For/Proto/Host
	clientAddr bool
	// credHeaders counts Authorization and X-Api-Key fields; more than one
	// of a kind is refused.
	credHeaders   int
	authz, apiKey int
	// gwSeen marks which of X-Request-Id and X-Forwarded-For/-Proto/-Host
	// the client sent; gwRepeated is set when one came twice (Set replaces
	// only the first copy).
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

// scanHeaders walks the request headers once, without allocating. It
// walks the fields as received (AllInOrder): All would parse the Cookie
// fields into cookies, which fasthttp then writes back as one field of its
// own making (unquoted, merged, invalid ones dropped); a proxy forwards
// them as they came.
func scanHeaders(h *fasthttp.RequestHeader) headerScan {
	var s headerScan
	for k := range h.AllInOrder() {
		s.count++
		if bytes.IndexByte(k, ' ') >= 0 || bytes.IndexByte(k, '\t') >= 0 {
			s.bad = true
			continue
		}
		class := classifyHeader(k)
		if class == hcOther {
			continue
		}
		if bytes.IndexByte(k, '_') >= 0 {
			// Every name classifyHeader knows is spelt with dashes.
			s.bad = true
			continue
		}
		switch class {
		case hcHop:
			s.hop = true
		case hcDrop:
			s.drop = true
		case hcExpect:
			s.expect = true
		case hcStoa:
			s.stoa = true
		case hcRequestID, hcXFF, hcXFProto, hcXFHost:
			bit := uint8(1) << (class - hcRequestID)
			if s.gwSeen&bit != 0 {
				s.gwRepeated = true
			}
			s.gwSeen |= bit
		case hcXFOther:
			s.xfOther = true
		case hcClientAddr:
			s.clientAddr = true
		case hcAuthz:
			s.authz++
		case hcAPIKey:
			s.apiKey++
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
// Connection, and client copies of the headers the gateway sets or that
// claim to describe the client or its path to the gateway. From a trusted
// proxy (trusted) the X-Forwarded-* family is kept: the gateway appends to
// its X-Forwarded-For.
func stripRequestHopByHop(h *fasthttp.RequestHeader, s *headerScan, trusted bool) {
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
	if s.drop {
		h.Del("HTTP2-Settings")
		h.Del("Proxy")
	}
	if s.expect {
		// The gateway answered the expectation (100 Continue, or a final
		// status); the upstream gets the whole body at once.
		h.Del("Expect")
	}
	if s.stoa {
		delMatching(h, isStoaHeader)
	}
	if s.xfOther && !trusted {
		delMatching(h, isXFOther)
	}
	if s.clientAddr {
		delMatching(h, isClientAddrHeader)
	}
	if s.gwRepeated {
		// A second client copy of a header the gateway sets would survive
		// the Set that replaces the first (spoofed X-Forwarded-* or
		// X-Request-Id upstream). Drop every copy, for trusted peers too:
		// the gateway then writes its own values.
		for _, name := range [...]string{hdrRequestID, hdrXFF, hdrXFProto, hdrXFHost} {
			h.Del(name)
		}
	}
}

// hasUnderscoreTwin reports whether the request has a header that reads
// as name (lower case, dashes) once '_' is read as '-' and case is
// folded, but is spelt with an underscore: the twin of a header the
// gateway sets per route (upstreamAuth's header).
func hasUnderscoreTwin(h *fasthttp.RequestHeader, name string) bool {
	for k := range h.AllInOrder() {
		if len(k) != len(name) || bytes.IndexByte(k, '_') < 0 {
			continue
		}
		if foldEq(k, []byte(name), false) {
			return true
		}
	}
	return false
}

func isStoaHeader(k []byte) bool       { return classifyHeader(k) == hcStoa }
func isXFOther(k []byte) bool          { return classifyHeader(k) == hcXFOther }
func isClientAddrHeader(k []byte) bool { return classifyHeader(k) == hcClientAddr }

// delMatching deletes every header whose name match accepts. It reads
// the names as received (see scanHeaders), which deleting does not
// change: round r deletes the matches 8r to 8r+7, until none is left (a
// client may send any number of them, and Del removes every copy of a
// name); names longer than the stack buffer are copied to the heap
// (attackers only).
func delMatching(h *fasthttp.RequestHeader, match func([]byte) bool) {
	for skip := 0; ; skip += 8 {
		var names [8][64]byte
		var lens [8]int
		var long []string
		n, seen, more := 0, 0, false
		for k := range h.AllInOrder() {
			if !match(k) {
				continue
			}
			if seen++; seen <= skip {
				continue
			}
			switch {
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
		if !more {
			return
		}
	}
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
	prefix [8]byte // hex
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [4]byte
	_, _ = rand.Read(b[:])
	g := &requestIDs{}
	hex.Encode(g.prefix[:], b[:])
	return g
}

const hexDigits = "0123456789abcdef"

// hexPairs holds the two hex digits of every byte value.
var hexPairs = func() (t [256][2]byte) {
	for i := range t {
		t[i] = [2]byte{hexDigits[i>>4], hexDigits[i&0xf]}
	}
	return
}()

// next writes a new id into dst and returns it.
func (g *requestIDs) next(dst *[20]byte) []byte {
	return g.format(dst, g.n.Add(1))
}

// idBlock is how many ids a client connection takes from the counter at
// once (reserve): one shared atomic add per idBlock requests instead of
// one per request.
const idBlock = 256

// reserve takes the next idBlock ids: [first, first+idBlock).
func (g *requestIDs) reserve() uint64 {
	return g.n.Add(idBlock) - idBlock + 1
}

// format writes the id with counter value v into dst.
func (g *requestIDs) format(dst *[20]byte, v uint64) []byte {
	copy(dst[:8], g.prefix[:])
	for i := 18; i >= 8; i -= 2 {
		p := hexPairs[v&0xff]
		dst[i], dst[i+1] = p[0], p[1]
		v >>= 8
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
