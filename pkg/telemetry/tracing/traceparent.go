package tracing

// W3C Trace Context (https://www.w3.org/TR/trace-context-2/) on byte
// slices: the proxy reads headers as []byte from fasthttp's buffers and
// must not allocate to look at them.

// Header names, lower-case as W3C Trace Context writes them.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// Trace flags this package understands. Every other bit is reserved: it
// is read, and set to zero when the context is propagated (Level 1 §3.2.2.5).
const (
	FlagSampled byte = 0x01
	// FlagRandom (Level 2) says the trace id's right-most 7 bytes are
	// random; it belongs to the trace id, so it travels with it.
	FlagRandom byte = 0x02
	knownFlags      = FlagSampled | FlagRandom
)

// TraceparentLen is the length of a version-00 traceparent value.
const TraceparentLen = 55

// SpanContext identifies one span of one trace: what a traceparent
// carries.
type SpanContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
	// The padding makes the struct 32 bytes: copied in two aligned moves
	// instead of overlapping ones that stall store forwarding, which was
	// most of what a disabled tracer cost per request.
	_ [7]byte
}

// IsValid reports whether both ids are non-zero, as W3C requires.
func (sc SpanContext) IsValid() bool {
	return sc.TraceID != [16]byte{} && sc.SpanID != [8]byte{}
}

// Sampled reports whether the sampled flag is set.
func (sc SpanContext) Sampled() bool { return sc.Flags&FlagSampled != 0 }

// ParseTraceparent parses a traceparent header value strictly (W3C Trace
// Context Level 1 and 2, §3.2): lower-case hex only, version ff refused,
// all-zero trace or parent ids refused. A version-00 value is exactly 55
// bytes; a higher version may carry more fields after a '-', which are
// ignored, as the specification asks. Reserved flag bits are dropped.
// It does not allocate.
func ParseTraceparent(b []byte) (SpanContext, bool) {
	var sc SpanContext
	if len(b) < TraceparentLen {
		return sc, false
	}
	ver, ok := hexByte(b[0], b[1])
	if !ok || ver == 0xff {
		return sc, false
	}
	if ver == 0 && len(b) != TraceparentLen {
		return sc, false
	}
	if len(b) > TraceparentLen && b[TraceparentLen] != '-' {
		return sc, false
	}
	if b[2] != '-' || b[35] != '-' || b[52] != '-' {
		return sc, false
	}
	for i := range sc.TraceID {
		if sc.TraceID[i], ok = hexByte(b[3+2*i], b[4+2*i]); !ok {
			return SpanContext{}, false
		}
	}
	for i := range sc.SpanID {
		if sc.SpanID[i], ok = hexByte(b[36+2*i], b[37+2*i]); !ok {
			return SpanContext{}, false
		}
	}
	flags, ok := hexByte(b[53], b[54])
	if !ok || !sc.IsValid() {
		return SpanContext{}, false
	}
	sc.Flags = flags & knownFlags
	return sc, true
}

// AppendTraceparent appends sc as a version-00 traceparent value (55
// bytes) to dst. Reserved flag bits are written as zero.
func (sc SpanContext) AppendTraceparent(dst []byte) []byte {
	dst = append(dst, '0', '0', '-')
	dst = appendHex(dst, sc.TraceID[:])
	dst = append(dst, '-')
	dst = appendHex(dst, sc.SpanID[:])
	dst = append(dst, '-')
	return appendHex(dst, []byte{sc.Flags & knownFlags})
}

// MaxTracestateMembers is the most list members a tracestate may carry
// (§3.3.1.1); a longer one is discarded whole.
const MaxTracestateMembers = 32

// ValidTracestate reports whether b is a well-formed tracestate value
// (§3.3.1): 1 to 32 comma-separated key=value members with optional
// spaces or tabs around them, no duplicate keys, keys of Level 2's
// grammar (1 to 256 of a-z 0-9 _ - * / @, starting with a letter or
// digit), values of 1 to 256 printable ASCII characters other than ','
// and '=' that do not end in a space. Empty members (",,", a trailing
// comma) are allowed and not counted, as §3.3.1.1 asks; a value with no
// member at all is reported false, there being nothing to propagate. A
// value that fails is not propagated; the traceparent still is. It does
// not allocate.
func ValidTracestate(b []byte) bool {
	members := 0
	var keys [MaxTracestateMembers][]byte
	for len(b) > 0 {
		var m []byte
		if i := indexByte(b, ','); i >= 0 {
			m, b = b[:i], b[i+1:]
		} else {
			m, b = b, nil
		}
		m = trimOWS(m)
		if len(m) == 0 {
			continue
		}
		eq := indexByte(m, '=')
		if eq < 0 || !validStateKey(m[:eq]) || !validStateValue(m[eq+1:]) {
			return false
		}
		if members == MaxTracestateMembers {
			return false
		}
		for _, k := range keys[:members] {
			if string(k) == string(m[:eq]) {
				return false
			}
		}
		keys[members] = m[:eq]
		members++
	}
	return members > 0
}

// validStateKey checks a key against Level 2's grammar, which takes in
// Level 1's simple and tenant@system keys:
// key = ( lcalpha / DIGIT ) 0*255 ( lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@" ).
func validStateKey(k []byte) bool {
	if len(k) < 1 || len(k) > 256 || !(isLCAlpha(k[0]) || isDigit(k[0])) {
		return false
	}
	for _, c := range k[1:] {
		if !isLCAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '*' && c != '/' && c != '@' {
			return false
		}
	}
	return true
}

func validStateValue(v []byte) bool {
	if len(v) < 1 || len(v) > 256 || v[len(v)-1] == ' ' {
		return false
	}
	for _, c := range v {
		if c < 0x20 || c > 0x7e || c == ',' || c == '=' {
			return false
		}
	}
	return true
}

func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// hexByte decodes two lower-case hex digits.
func hexByte(hi, lo byte) (byte, bool) {
	h, l := hexVal[hi], hexVal[lo]
	return h<<4 | l&0x0f, h|l < 0x10
}

// hexVal maps a lower-case hex digit to its value and every other byte to
// 0xff: one load per digit (a switch per digit made parsing a traceparent
// cost as much as the rest of an unsampled request's tracing).
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < 16; i++ {
		t["0123456789abcdef"[i]] = byte(i)
	}
	return t
}()

const hexDigits = "0123456789abcdef"

func appendHex(dst, src []byte) []byte {
	for _, c := range src {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return dst
}
