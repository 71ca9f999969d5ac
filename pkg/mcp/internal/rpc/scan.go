// Package rpc is the hot-path JSON layer of the MCP server: a validating,
// allocation-free scanner for JSON-RPC envelopes and MCP params, a small
// decoder into Go values (for schema validation), and JSON string escaping
// for responses.
//
// Everything here works on byte slices and returns sub-slices of its input;
// nothing is retained after a call returns.
package rpc

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of arrays and objects accepted anywhere.
const MaxDepth = 128

// Syntax errors reported by the scanner.
var (
	ErrSyntax   = errors.New("invalid JSON")
	ErrTooDeep  = errors.New("JSON nested too deeply")
	ErrTrailing = errors.New("invalid JSON: data after the top-level value")
	ErrEmpty    = errors.New("empty body")
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first non-whitespace byte at or after i.
func SkipSpace(b []byte, i int) int {
	// Every JSON whitespace byte is at most ' ': one comparison for the
	// usual case, a token right there.
	for i < len(b) && b[i] <= ' ' && isSpace(b[i]) {
		i++
	}
	return i
}

// SkipValue validates the JSON value starting at b[i] (after optional
// whitespace) and returns the index just past it.
func SkipValue(b []byte, i int) (int, error) {
	return skipValue(b, SkipSpace(b, i), 0)
}

func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, ErrSyntax
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := skipString(b, i)
		return end, err
	case c == '{':
		return skipObject(b, i, depth+1)
	case c == '[':
		return skipArray(b, i, depth+1)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	}
	return i, ErrSyntax
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, ErrSyntax
	}
	return i + len(lit), nil
}

func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, ErrSyntax
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return i, ErrSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, ErrSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, ErrSyntax
		}
	}
	return i, nil
}

// skipString validates the string starting at b[i] == '"' and returns the
// index past the closing quote and whether it contains escapes.
func skipString(b []byte, i int) (int, bool, error) {
	i++
	escaped := false
	for {
		// Eight bytes at a time to the first quote, backslash or control
		// character: every message is scanned more than once (envelope,
		// params, arguments), mostly strings, and most of them short, so
		// the word that holds the closing quote is not then walked again
		// byte by byte.
		for i+8 <= len(b) {
			m := special(binary.LittleEndian.Uint64(b[i:]))
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto found
			}
			i += 8
		}
		for i < len(b) && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20 {
			i++
		}
		if i >= len(b) {
			return i, escaped, ErrSyntax
		}
	found:
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, escaped, ErrSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return i, escaped, ErrSyntax
				}
				for _, h := range b[i+2 : i+6] {
					if hexVal(h) < 0 {
						return i, escaped, ErrSyntax
					}
				}
				i += 6
			default:
				return i, escaped, ErrSyntax
			}
		default: // c < 0x20
			return i, escaped, ErrSyntax
		}
	}
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special returns the high bit of each of the eight bytes of w that may be
// '"', '\\' or below 0x20. The lowest one set is always such a byte (a
// borrow only flags bytes above a match), and none is missed.
func special(w uint64) uint64 {
	q := w ^ (lsb * '"')
	s := w ^ (lsb * '\\')
	return ((q-lsb)&^q | (s-lsb)&^s | (w-lsb*0x20)&^w) & msb
}

// hasSpecial reports whether one of the eight bytes of w may be '"', '\\'
// or below 0x20 (it never misses one; a borrow may flag a byte after one).
func hasSpecial(w uint64) bool { return special(w) != 0 }

func skipObject(b []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return i, ErrTooDeep
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, ErrSyntax
		}
		var err error
		if i, _, err = skipString(b, i); err != nil {
			return i, err
		}
		i = SkipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, ErrSyntax
		}
		if i, err = skipValue(b, SkipSpace(b, i+1), depth); err != nil {
			return i, err
		}
		i = SkipSpace(b, i)
		if i >= len(b) {
			return i, ErrSyntax
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return i, ErrSyntax
		}
		i = SkipSpace(b, i+1)
	}
}

func skipArray(b []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return i, ErrTooDeep
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = skipValue(b, i, depth); err != nil {
			return i, err
		}
		i = SkipSpace(b, i)
		if i >= len(b) {
			return i, ErrSyntax
		}
		if b[i] == ']' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return i, ErrSyntax
		}
		i = SkipSpace(b, i+1)
	}
}

// Valid reports whether b holds exactly one JSON value (with optional
// surrounding whitespace), nested at most MaxDepth deep.
func Valid(b []byte) bool {
	end, err := SkipValue(b, 0)
	return err == nil && SkipSpace(b, end) == len(b)
}

// Member is one member of a JSON object: the unescaped key and the raw value.
type Member struct {
	Key   []byte
	Value []byte
}

// Iterator walks the members of one JSON object. Keys are sub-slices of the
// input unless they contain escapes (rare), which are unescaped into a new
// slice.
type Iterator struct {
	b       []byte
	i       int
	depth   int
	started bool
	done    bool
	trusted bool // b is valid JSON already: skip, do not validate
	err     error
	// KeyEscaped reports whether the key Next last returned held escapes
	// (and is therefore a new, unescaped slice).
	KeyEscaped bool
}

// NewIterator starts iterating the object that b must hold (after optional
// whitespace). Errors surface from Next and Err.
func NewIterator(b []byte) Iterator {
	return Iterator{b: b}
}

// NewTrustedIterator is NewIterator for an object a validating scan
// already accepted (a member value of a message DecodeRequest decoded, or
// a value Valid accepted): keys and values are delimited without being
// validated again, so each member costs a fraction of a validating step.
// On such input it returns exactly what NewIterator's would
// (FuzzDecodeRequest); on any other input it stops, without an error, at
// some point that is not specified.
func NewTrustedIterator(b []byte) Iterator {
	return Iterator{b: b, trusted: true}
}

// Next advances to the next member. It returns false at the end of the object
// or on a syntax error (see Err).
func (it *Iterator) Next() (key, value []byte, ok bool) {
	if it.done {
		return nil, nil, false
	}
	b := it.b
	i := it.i
	if !it.started {
		it.started = true
		i = SkipSpace(b, 0)
		if i >= len(b) || b[i] != '{' {
			return it.fail(i, ErrSyntax)
		}
		i = SkipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			it.i = i + 1
			it.done = true
			return nil, nil, false
		}
	} else {
		i = SkipSpace(b, i)
		if i >= len(b) {
			return it.fail(i, ErrSyntax)
		}
		if b[i] == '}' {
			it.i = i + 1
			it.done = true
			return nil, nil, false
		}
		if b[i] != ',' {
			return it.fail(i, ErrSyntax)
		}
		i = SkipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		return it.fail(i, ErrSyntax)
	}
	var (
		kend int
		esc  bool
		err  error
	)
	if it.trusted {
		kend, esc = endString(b, i)
	} else if kend, esc, err = skipString(b, i); err != nil {
		return it.fail(kend, err)
	}
	it.KeyEscaped = esc
	if esc {
		key = AppendUnquote(nil, b[i:kend])
	} else {
		key = b[i+1 : kend-1]
	}
	i = SkipSpace(b, kend)
	if i >= len(b) || b[i] != ':' {
		return it.fail(i, ErrSyntax)
	}
	vstart := SkipSpace(b, i+1)
	var vend int
	if it.trusted {
		if vstart >= len(b) {
			return it.fail(vstart, ErrSyntax)
		}
		vend = endValue(b, vstart)
	} else if vend, err = skipValue(b, vstart, it.depth+1); err != nil {
		return it.fail(vend, err)
	}
	it.i = vend
	return key, b[vstart:vend], true
}

// endString returns the index past the string starting at b[i] == '"' of
// valid JSON, and whether it holds escapes: the first quote not escaped,
// eight bytes at a time (such a string holds no control byte).
func endString(b []byte, i int) (int, bool) {
	i++
	escaped := false
	for i < len(b) {
		if i+8 <= len(b) {
			m := special(binary.LittleEndian.Uint64(b[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		}
		switch b[i] {
		case '"':
			return i + 1, escaped
		case '\\':
			escaped = true
			i += 2 // \uXXXX: the hex digits are plain bytes
		default:
			i++
		}
	}
	return len(b), escaped
}

// endValue returns the index past the value starting at b[i] of valid
// JSON: a string's closing quote, a container's matching bracket, a
// number's or literal's last byte.
func endValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := endString(b, i)
		return end
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i, _ = endString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		if c := b[i]; c == ',' || c == '}' || c == ']' || c <= ' ' {
			return i
		}
		i++
	}
	return i
}

func (it *Iterator) fail(i int, err error) ([]byte, []byte, bool) {
	it.i = i
	it.done = true
	it.err = err
	return nil, nil, false
}

// Err returns the syntax error that stopped the iteration, if any.
func (it *Iterator) Err() error { return it.err }

// End returns the index just past the object once iteration finished.
func (it *Iterator) End() int { return it.i }

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// IsString reports whether raw is a JSON string value.
func IsString(raw []byte) bool { return len(raw) >= 2 && raw[0] == '"' }

// StringBytes returns the contents of the JSON string raw: a sub-slice when
// it holds no escapes, otherwise the unescaped bytes appended to dst.
func StringBytes(dst, raw []byte) []byte {
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' {
			return AppendUnquote(dst, raw)
		}
	}
	return raw[1 : len(raw)-1]
}

// AppendUnquote appends the unescaped contents of the valid JSON string raw
// (including its quotes) to dst. Invalid surrogates become U+FFFD, as with
// encoding/json.
func AppendUnquote(dst, raw []byte) []byte {
	s := raw[1 : len(raw)-1]
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			break
		}
		switch s[i+1] {
		case '"', '\\', '/':
			dst = append(dst, s[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(hex4(s[i+2:]))
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 = rune(hex4(s[i+2:]))
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					i += 6
					r = dec
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) int {
	if len(b) < 4 {
		return 0xFFFD
	}
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

// ArrayElements appends to dst the raw elements of the JSON array that b
// holds; b must be Valid and start (after whitespace) with '['.
func ArrayElements(b []byte, dst [][]byte) [][]byte {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return dst
	}
	i = SkipSpace(b, i+1)
	for i < len(b) && b[i] != ']' {
		end, err := SkipValue(b, i)
		if err != nil {
			return dst
		}
		dst = append(dst, b[i:end])
		i = SkipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
	}
	return dst
}
