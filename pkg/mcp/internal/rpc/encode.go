package rpc

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

const hexDigits = "0123456789abcdef"

// safe[c] is true for ASCII bytes that need no escaping inside a JSON string.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD so
// the output is always valid JSON, whatever bytes an upstream sent.
func AppendString[T string | []byte](dst []byte, s T) []byte {
	// The work is done on a []byte, not on T: instantiated for a shape,
	// the generic loop ran two to three times slower (per-byte indexing
	// and the chunk copies through the shape's dictionary).
	switch v := any(&s).(type) {
	case *string:
		return appendString(dst, unsafe.Slice(unsafe.StringData(*v), len(*v)))
	case *[]byte:
		return appendString(dst, *v)
	}
	panic("unreachable")
}

func appendString(dst, s []byte) []byte {
	// Room for the usual case, a few escapes: appends then never grow.
	dst = slices.Grow(dst, len(s)+len(s)/4+2)
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight plain ASCII bytes at a time (no quote, backslash, control
		// or non-ASCII byte among them), to the first byte that is not.
		if i+8 <= len(s) {
			w := binary.LittleEndian.Uint64(s[i:])
			if m := special(w) | w&msb; m == 0 {
				i += 8
				continue
			} else {
				i += bits.TrailingZeros64(m) >> 3
			}
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			if i-start < 8 {
				// Short runs between escapes (the keys of a JSON text)
				// cost less byte by byte than through memmove.
				for _, b := range s[start:i] {
					dst = append(dst, b)
				}
			} else {
				dst = append(dst, s[start:i]...)
			}
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		size := runeLen(s, i)
		if size == 0 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// runeLen returns the length of the valid UTF-8 sequence starting at s[i]
// (a non-ASCII lead byte), or 0 when it is invalid.
func runeLen[T string | []byte](s T, i int) int {
	c := s[i]
	n := len(s) - i
	cont := func(j int) bool { return j < len(s) && s[j]&0xC0 == 0x80 }
	switch {
	case c < 0xC2:
		return 0
	case c < 0xE0:
		if n >= 2 && cont(i+1) {
			return 2
		}
	case c < 0xF0:
		if n >= 3 && cont(i+1) && cont(i+2) {
			c1 := s[i+1]
			if (c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) {
				return 0
			}
			return 3
		}
	case c < 0xF5:
		if n >= 4 && cont(i+1) && cont(i+2) && cont(i+3) {
			c1 := s[i+1]
			if (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90) {
				return 0
			}
			return 4
		}
	}
	return 0
}

// AppendInt appends n in decimal.
func AppendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }
