package proxy

import "bytes"

// wireCheck is a strict check of the framing of every request on a
// connection, fed the bytes as they arrive (trackedConn.Read) before
// fasthttp parses them. fasthttp is lenient where RFC 9112 lets a server
// be strict, and some of its leniencies are where a front proxy and the
// gateway could frame a request differently:
//
//   - a bare LF ends a line (and a header block ended by bare LFs makes
//     fasthttp wait for a CRLFCRLF that never comes: no answer until the
//     read timeout);
//   - a header line starting with SP or HTAB (obs-fold) is joined to the
//     previous one;
//   - a chunk-size line may have trailing whitespace, and a chunk
//     extension any byte but LF (NUL included), of any length;
//   - "Transfer-Encoding: identity" is accepted and means no body, so the
//     body is read as the next request;
//   - trailer fields of a chunked body are merged into the header section
//     after the gateway checked it.
//
// wireCheck refuses all of these as soon as it sees them. It follows each
// request's framing — the request line and header block line by line,
// then a Content-Length or chunked body — so it knows where every request
// ends, pipelined ones included. It does not parse what fasthttp parses
// well (methods, targets, field names and values): fasthttp still refuses
// those. It allocates nothing.
//
// When a request is refused, trackedConn.Read hands fasthttp at most the
// first byte of it, and an error on the next read: fasthttp never has the
// request whole, and answers it through errorHandler (400). Requests before
// it on the connection are served.
type wireCheck struct {
	state   uint8
	fault   wireFault
	prev    byte     // the last byte of the head fed
	lineLen int      // bytes of the current line so far, CR included
	line    [48]byte // the current line's first bytes
	started bool     // the request line was seen
	te, cl  bool     // the head has Transfer-Encoding / Content-Length
	size    int64    // Content-Length, chunk size / bytes of body left
	digits  int      // hex digits of the chunk size
	extLen  int      // bytes of the chunk extension
	// heads counts header blocks seen complete on the connection.
	heads int
}

// wireCheck states.
const (
	wsIdle        = iota // the next byte starts a request
	wsHead               // request line and header block
	wsBody               // Content-Length body (size bytes left)
	wsChunkSize          // chunk-size digits
	wsChunkExt           // after ';', up to CR
	wsChunkSizeLF        // the LF after a chunk-size line's CR
	wsChunkData          // chunk data (size bytes left)
	wsChunkDataCR        // the CRLF after chunk data
	wsChunkDataLF
	wsTrailer // trailer section, up to the empty line
)

// maxChunkExt bounds a chunk extension: extensions are not part of the
// body, so the body limit does not bound them.
const maxChunkExt = 4096

// maxChunkDigits is fasthttp's own bound on a chunk size's hex digits.
const maxChunkDigits = 15

// maxLengthDigits bounds Content-Length (fasthttp refuses more too).
const maxLengthDigits = 18

// wireFault is what a request's framing got wrong.
type wireFault uint8

const (
	faultNone wireFault = iota
	faultBareLF
	faultObsFold
	faultTE
	faultCL
	faultCLTE
	faultChunkSize
	faultChunkExt
	faultChunkData
	faultTrailer
)

func (f wireFault) String() string {
	switch f {
	case faultBareLF:
		return "line not terminated by CRLF"
	case faultObsFold:
		return "folded header line (obs-fold)"
	case faultTE:
		return "unsupported or repeated Transfer-Encoding (only a single chunked)"
	case faultCL:
		return "invalid or repeated Content-Length"
	case faultCLTE:
		return "both Content-Length and Transfer-Encoding"
	case faultChunkSize:
		return "malformed chunk size line"
	case faultChunkExt:
		return "invalid chunk extension"
	case faultChunkData:
		return "chunk data not followed by CRLF"
	case faultTrailer:
		return "trailer fields are not accepted"
	}
	return "no fault"
}

// wireError is returned by trackedConn.Read once a fault is seen.
type wireError struct{ fault wireFault }

func (e wireError) Error() string { return "malformed request framing: " + e.fault.String() }

// feed checks the next bytes of the connection and returns how many of
// them may be handed to fasthttp: all of them, or, after a fault, those
// before the refused request and its first byte when it began in p (so
// that fasthttp, having started a request, reports the read error instead
// of closing silently).
func (w *wireCheck) feed(p []byte) int {
	start := -1 // where the request being checked began in p
	off := 0
	for off < len(p) && w.fault == faultNone {
		switch w.state {
		case wsIdle:
			*w = wireCheck{state: wsHead, prev: '\n', heads: w.heads}
			start = off
		case wsHead, wsTrailer:
			off = w.lines(p, off)
		case wsBody, wsChunkData:
			n := int64(len(p) - off)
			if n > w.size {
				n = w.size
			}
			w.size -= n
			off += int(n)
			if w.size == 0 {
				if w.state == wsBody {
					w.state = wsIdle
				} else {
					w.state = wsChunkDataCR
				}
			}
		default:
			w.chunkByte(p[off])
			off++
		}
	}
	switch {
	case w.fault == faultNone:
		return len(p)
	case start < 0:
		return 0
	case p[start] == '\r' || p[start] == '\n':
		// fasthttp takes a lone CR or LF for the end of the connection
		// and closes it without an answer; without the byte the first
		// request on a connection still gets one.
		return start
	}
	return start + 1
}

// lines follows a header block (or trailer section) line by line from
// p[off:] and returns the offset where it stopped.
func (w *wireCheck) lines(p []byte, off int) int {
	for off < len(p) {
		seg := p[off:]
		i := bytes.IndexByte(seg, '\n')
		if i >= 0 {
			seg = seg[:i]
		}
		if w.lineLen == 0 && len(seg) > 0 && (seg[0] == ' ' || seg[0] == '\t') && (w.started || w.state == wsTrailer) {
			w.fault = faultObsFold
			return off
		}
		if w.lineLen < len(w.line) {
			copy(w.line[w.lineLen:], seg)
		}
		w.lineLen += len(seg)
		if i < 0 {
			w.prev = p[len(p)-1]
			return len(p)
		}
		cr := w.prev == '\r'
		if i > 0 {
			cr = seg[i-1] == '\r'
		}
		off += i + 1
		if !cr {
			w.fault = faultBareLF
			return off
		}
		n := w.lineLen - 1 // without the CR
		w.lineLen, w.prev = 0, '\n'
		switch {
		case w.state == wsTrailer:
			if n > 0 {
				w.fault = faultTrailer
			} else {
				w.state = wsIdle
			}
			return off
		case n == 0 && !w.started:
			// An empty line before the request line is tolerated (RFC
			// 9112 §2.2), as fasthttp does.
		case n == 0:
			w.headDone()
			return off
		case !w.started:
			w.started = true // the request line
		default:
			w.field(n)
		}
		if w.fault != faultNone {
			return off
		}
	}
	return off
}

// field checks a header line of n bytes (in w.line, as far as it fits)
// that frames the body: Transfer-Encoding must be a single "chunked",
// Content-Length a single number.
func (w *wireCheck) field(n int) {
	l := w.line[:min(n, len(w.line))]
	isTE := len(l) >= 18 && bytes.EqualFold(l[:18], []byte("transfer-encoding:"))
	isCL := len(l) >= 15 && bytes.EqualFold(l[:15], []byte("content-length:"))
	switch {
	case !isTE && !isCL:
		return
	case n > len(w.line) && isTE:
		w.fault = faultTE // no valid value is that long
	case n > len(w.line):
		w.fault = faultCL
	case isTE:
		if w.te || !bytes.EqualFold(bytes.Trim(l[18:], " \t"), []byte("chunked")) {
			w.fault = faultTE
		}
		w.te = true
	default:
		v := bytes.Trim(l[15:], " \t")
		if w.cl || len(v) == 0 || len(v) > maxLengthDigits {
			w.fault = faultCL
			return
		}
		w.size = 0
		for _, c := range v {
			if c < '0' || c > '9' {
				w.fault = faultCL
				return
			}
			w.size = w.size*10 + int64(c-'0')
		}
		w.cl = true
	}
}

// headDone moves past a complete header block to the body.
func (w *wireCheck) headDone() {
	w.heads++
	switch {
	case w.te && w.cl:
		w.fault = faultCLTE
	case w.te:
		w.state, w.size, w.digits = wsChunkSize, 0, 0
	case w.cl && w.size > 0:
		w.state = wsBody
	default:
		w.state = wsIdle
	}
}

// chunkByte checks one byte of chunk framing (RFC 9112 §7.1): 1*HEXDIG,
// then ';' and an extension of visible characters, SP and HTAB, or CRLF
// at once — no whitespace after the size, no control characters, CR
// only before LF.
func (w *wireCheck) chunkByte(c byte) {
	switch w.state {
	case wsChunkSize:
		switch v := unhex(c); {
		case v >= 0:
			if w.digits == maxChunkDigits {
				w.fault = faultChunkSize
				return
			}
			w.size = w.size<<4 | int64(v)
			w.digits++
		case w.digits == 0:
			w.fault = faultChunkSize
		case c == ';':
			w.state, w.extLen = wsChunkExt, 0
		case c == '\r':
			w.state = wsChunkSizeLF
		default:
			w.fault = faultChunkSize
		}
	case wsChunkExt:
		switch {
		case c == '\r':
			w.state = wsChunkSizeLF
		case c == '\t' || (c >= ' ' && c != 0x7f):
			w.extLen++
			if w.extLen > maxChunkExt {
				w.fault = faultChunkExt
			}
		default:
			w.fault = faultChunkExt
		}
	case wsChunkSizeLF:
		switch {
		case c != '\n':
			w.fault = faultChunkSize
		case w.size == 0:
			w.state, w.lineLen, w.prev = wsTrailer, 0, '\n'
		default:
			w.state = wsChunkData
		}
	case wsChunkDataCR:
		if c != '\r' {
			w.fault = faultChunkData
			return
		}
		w.state = wsChunkDataLF
	case wsChunkDataLF:
		if c != '\n' {
			w.fault = faultChunkData
			return
		}
		w.state, w.size, w.digits = wsChunkSize, 0, 0
	}
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
