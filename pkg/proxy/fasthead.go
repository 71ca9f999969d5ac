package proxy

import (
	"bytes"
	"encoding/binary"
)

// maxFastFields bounds the header fields of a request the fast path takes;
// a request with more goes to fasthttp (which applies limits.maxHeaders).
const maxFastFields = 64

// fastHead is a request head the fast path accepted (parseFastHead): the
// pieces it needs, as slices of the connection's read buffer.
type fastHead struct {
	n      int    // bytes of the head, up to and including the empty line
	line   int    // bytes of the request line, without its CRLF
	method []byte // GET, HEAD, POST, PUT, DELETE, PATCH or OPTIONS
	path   []byte // origin-form path, already normal (see fastTarget)
	query  []byte // after '?', nil when there is none
	// block is the header block: the field lines and the empty line.
	block []byte
	host  []byte
	// authz and apiKey are the Authorization and X-Api-Key values (each
	// at most once).
	authz, apiKey []byte
	// repeat: block is byte for byte the last one parsed on this
	// connection, so everything read from it (below) is too.
	repeat bool
	// gen counts the header blocks parsed (not repeated) on this
	// connection.
	gen uint64

	// What the block says, kept for a request that repeats it.
	fields                 [maxFastFields]fastField
	nf                     int
	hostAt, authzAt, keyAt span
	cl                     int64 // Content-Length (-1: none)
	close                  bool  // "Connection: close"
	contentType            bool  // a Content-Type field
	// hostKey is the Host as routing reads it (hostOnly).
	hostKey    [64]byte
	hostKeyLen int
	// prev is a copy of the last block parsed: clients on keep-alive
	// connections repeat theirs (only the request line changes), and a
	// repeat is recognised by one comparison instead of being parsed.
	prev []byte
}

// span is a value's place in the block (end 0: none).
type span struct{ start, end uint16 }

func (s span) of(b []byte) []byte {
	if s.end == 0 {
		return nil
	}
	return b[s.start:s.end]
}

// fastField is one header line of a fastHead: offsets in the block.
type fastField struct {
	start, nameEnd, end uint16 // the line is block[start:end], without CRLF
	class               hdrClass
	strip               bool
}

// Methods the fast path takes; anything else (CONNECT, TRACE, extension
// methods) goes to fasthttp.
var (
	methodGET     = []byte("GET")
	methodHEAD    = []byte("HEAD")
	methodPOST    = []byte("POST")
	methodPUT     = []byte("PUT")
	methodDELETE  = []byte("DELETE")
	methodPATCH   = []byte("PATCH")
	methodOPTIONS = []byte("OPTIONS")
)

// fieldValueByte marks the bytes the fast path accepts in a field value:
// visible ASCII, SP and HTAB. Control characters are refused by fasthttp;
// obs-text (0x80-0xff) is left to it too.
var fieldValueByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	t['\t'] = true
	return
}()

// nameByte marks the bytes of a field name the fast path takes: token
// characters but '_'.
var nameByte = func() (t [256]bool) {
	t = tokenChar
	t['_'] = false
	return
}()

// validValue reports whether every byte of v is in fieldValueByte, eight
// at a time: a word passes when no byte is below 0x20, 0x7f or above.
func validValue(v []byte) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for len(v) >= 8 {
		x := binary.LittleEndian.Uint64(v)
		y := x ^ (0x7f * lo) // a zero byte where x has 0x7f
		if ((x-0x20*lo)|x|((y-lo)&^y))&hi != 0 {
			// Rare: an HTAB, or a byte to refuse.
			for _, c := range v[:8] {
				if !fieldValueByte[c] {
					return false
				}
			}
		}
		v = v[8:]
	}
	for _, c := range v {
		if !fieldValueByte[c] {
			return false
		}
	}
	return true
}

// queryByte marks the bytes the fast path accepts in a query string:
// visible ASCII but '#' (a fragment, which fasthttp cuts off).
var queryByte = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = true
	}
	t['#'] = false
	return
}()

// parseFastHead parses the request head at the start of b for the fast
// path. It returns the head's length, 0 when b holds only part of it, or
// -1 when the request is not one the fast path takes: then fasthttp
// serves it, and refuses it when it must.
//
// The fast path takes a strict subset of what the fasthttp path accepts,
// and forwards it as that path would (FuzzFastPathEquivalence): an
// HTTP/1.1 request line with a listed method and an origin-form target
// that normalisation would leave as it is; CRLF line ends; token field
// names without '_'; values of visible ASCII, SP and HTAB; exactly one
// valid Host; at most one Content-Length, in canonical digits; no
// Transfer-Encoding, Expect or hop-by-hop field but "Connection:
// keep-alive" or "Connection: close"; at most one Authorization and one
// X-Api-Key. Everything the framing check (wireCheck) and fasthttp's
// parser refuse is outside this set.
func parseFastHead(b []byte, h *fastHead) int {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return 0
	}
	if nl == 0 || b[nl-1] != '\r' {
		return -1
	}
	if !h.requestLine(b[:nl-1]) {
		return -1
	}
	h.line = nl - 1
	bs := nl + 1
	h.repeat = false
	// A block equal to the last one ends where that one did: its first
	// empty line is its last.
	if l := len(h.prev); l > 0 && len(b)-bs >= l && bytes.Equal(b[bs:bs+l], h.prev) {
		h.repeat = true
		h.n = bs + l
	}
	if !h.repeat {
		h.gen++
		h.prev = h.prev[:0]
		n := h.fieldLines(b, bs)
		if n <= 0 {
			return n
		}
		h.n = n
		h.prev = append(h.prev, b[bs:n]...)
	}
	h.block = b[bs:h.n]
	h.host, h.authz, h.apiKey = h.hostAt.of(h.block), h.authzAt.of(h.block), h.keyAt.of(h.block)
	// fasthttp reads a body after HEAD too; not worth the fast path's
	// while.
	if h.cl > 0 && len(h.method) == 4 && h.method[0] == 'H' {
		return -1
	}
	return h.n
}

// fieldLines parses the field lines from b[bs:] up to the empty line and
// returns the end of the head (0: incomplete, -1: not for the fast path).
func (h *fastHead) fieldLines(b []byte, bs int) int {
	h.hostAt, h.authzAt, h.keyAt = span{}, span{}, span{}
	h.cl, h.close, h.contentType, h.nf = -1, false, false, 0
	hosts, agents := 0, 0
	pos := bs
	for {
		nl := bytes.IndexByte(b[pos:], '\n')
		if nl < 0 {
			return 0
		}
		end := pos + nl
		if nl == 0 || b[end-1] != '\r' {
			return -1
		}
		line := b[pos : end-1]
		if len(line) == 0 {
			if hosts != 1 {
				return -1
			}
			return end + 1
		}
		if h.nf == maxFastFields || end-bs > 0xffff {
			return -1
		}
		// The name: a token, up to the colon, with no '_' (underscore
		// twins of special names are fasthttp's to refuse, and an
		// upstreamAuth twin could be any name).
		i := 0
		for i < len(line) && nameByte[line[i]] {
			i++
		}
		if i == 0 || i == len(line) || line[i] != ':' {
			return -1
		}
		name := line[:i]
		v := line[i+1:]
		if !validValue(v) {
			return -1
		}
		vs := pos + i + 1 - bs // the value's offset in the block
		for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
			v, vs = v[1:], vs+1
		}
		for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			v = v[:len(v)-1]
		}
		at := span{uint16(vs), uint16(vs + len(v))}
		f := &h.fields[h.nf]
		f.start, f.nameEnd, f.end = uint16(pos-bs), uint16(pos-bs+i), uint16(end-1-bs)
		f.class, f.strip = classifyHeader(name), false
		switch f.class {
		case hcFraming:
			switch len(name) {
			case 4: // Host
				hosts++
				if !validHost(v) || len(v) == 0 {
					return -1
				}
				h.hostAt = at
				h.hostKeyLen = len(hostOnly(v, &h.hostKey))
				if h.hostKeyLen > len(h.hostKey) {
					return -1 // longer than any route's host
				}
				f.strip = true
			case 12: // Content-Type: fasthttp keeps the last of several,
				// and drops an empty one.
				if h.contentType || len(v) == 0 {
					return -1
				}
				h.contentType = true
			case 14: // Content-Length
				if h.cl >= 0 || !canonicalLength(v) {
					return -1
				}
				h.cl = 0
				for _, c := range v {
					h.cl = h.cl*10 + int64(c-'0')
				}
			case 17: // Transfer-Encoding
				return -1
			}
		case hcHop:
			// Only "Connection: keep-alive" or "close": fasthttp checks
			// the rest (Trailer names, Upgrade), and a Connection header
			// naming other fields removes them.
			switch {
			case !equalFoldLower(name, "connection"):
				// Keep-Alive has Connection's length, and is not it.
				return -1
			case equalFoldLower(v, "close"):
				h.close = true
			case !equalFoldLower(v, "keep-alive"):
				return -1
			}
			f.strip = true
		case hcExpect:
			return -1
		case hcDrop, hcStoa, hcRequestID, hcXFF, hcXFProto, hcXFHost, hcXFOther, hcClientAddr:
			f.strip = true
		case hcAuthz:
			if h.authzAt.end != 0 || len(v) == 0 {
				return -1
			}
			h.authzAt = at
		case hcAPIKey:
			if h.keyAt.end != 0 || len(v) == 0 {
				return -1
			}
			h.keyAt = at
		case hcOther:
			// User-Agent is another field fasthttp keeps once, and drops
			// when empty.
			if len(name) == 10 && name[0]|0x20 == 'u' && equalFoldLower(name, "user-agent") {
				if agents++; agents > 1 || len(v) == 0 {
					return -1
				}
			}
		}
		h.nf++
		pos = end + 1
	}
}

// requestLine parses "METHOD SP target SP HTTP/1.1".
func (h *fastHead) requestLine(l []byte) bool {
	var m []byte
	switch {
	case len(l) > 4 && l[0] == 'G' && l[1] == 'E' && l[2] == 'T' && l[3] == ' ':
		m = methodGET
	case bytes.HasPrefix(l, []byte("POST ")):
		m = methodPOST
	case bytes.HasPrefix(l, []byte("HEAD ")):
		m = methodHEAD
	case bytes.HasPrefix(l, []byte("PUT ")):
		m = methodPUT
	case bytes.HasPrefix(l, []byte("DELETE ")):
		m = methodDELETE
	case bytes.HasPrefix(l, []byte("PATCH ")):
		m = methodPATCH
	case bytes.HasPrefix(l, []byte("OPTIONS ")):
		m = methodOPTIONS
	default:
		return false
	}
	h.method = l[:len(m)]
	const proto = " HTTP/1.1"
	rest := l[len(m)+1:]
	if len(rest) <= len(proto) || string(rest[len(rest)-len(proto):]) != proto {
		return false
	}
	return h.target(rest[:len(rest)-len(proto)])
}

// target takes an origin-form target whose path fasthttp's normalisation
// would leave unchanged: path bytes that need no escaping (pathSafe: no
// '%', so nothing to decode), no empty, "." or ".." segment; then an
// optional query of visible ASCII without '#'.
func (h *fastHead) target(t []byte) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	i := 1
	seg := 1 // where the current segment starts
	for ; i < len(t); i++ {
		c := t[i]
		if c == '/' || c == '?' {
			if !plainSegment(t[seg:i], c == '?') {
				return false
			}
			if c == '?' {
				break
			}
			seg = i + 1
			continue
		}
		if !pathSafe[c] {
			return false
		}
	}
	if i == len(t) && !plainSegment(t[seg:], true) {
		return false
	}
	h.path, h.query = t[:i], nil
	if i < len(t) {
		q := t[i+1:]
		for _, c := range q {
			if !queryByte[c] {
				return false
			}
		}
		h.query = q
	}
	return true
}

// plainSegment reports whether a path segment survives normalisation as it
// is: not "." or "..", and not empty unless it is the last one (a trailing
// slash is kept; "//" is collapsed).
func plainSegment(s []byte, last bool) bool {
	switch len(s) {
	case 0:
		return last
	case 1:
		return s[0] != '.'
	case 2:
		return s[0] != '.' || s[1] != '.'
	}
	return true
}

// canonicalLength reports whether v is a Content-Length as fasthttp would
// write it back: 1 to 18 digits, no leading zero.
func canonicalLength(v []byte) bool {
	if len(v) == 0 || len(v) > maxLengthDigits || (v[0] == '0' && len(v) > 1) {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// equalFoldLower reports whether b equals the lower-case ASCII s, ignoring
// b's case.
func equalFoldLower(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func trimOWSBytes(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
