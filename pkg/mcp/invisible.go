package mcp

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Invisible characters never reach an agent. Text an operator (or an
// imported OpenAPI document) puts into tool names, titles, descriptions and
// schemas is shown to a model that reads every code point, while a human
// reviewing the spec sees nothing: Unicode tag characters can spell out
// hidden instructions, bidi controls reorder what a reviewer reads, and
// zero-width characters hide words inside words. The catalog strips them
// once, when it is built, so no request pays for it.
//
// TODO(lead): replace with spec.StripInvisible once pkg/spec has it; the
// semantics are the same.

// isInvisible reports whether r is stripped: tag characters
// U+E0000–U+E007F, bidi embedding/override/isolate controls U+202A–U+202E
// and U+2066–U+2069, zero-width and direction marks U+200B–U+200F, word
// joiner and invisible operators U+2060–U+2064, the BOM / zero-width
// no-break space U+FEFF and the soft hyphen U+00AD.
func isInvisible(r rune) bool {
	switch {
	case r >= 0xE0000 && r <= 0xE007F,
		r >= 0x202A && r <= 0x202E,
		r >= 0x2066 && r <= 0x2069,
		r >= 0x200B && r <= 0x200F,
		r >= 0x2060 && r <= 0x2064,
		r == 0xFEFF, r == 0x00AD:
		return true
	}
	return false
}

// mayHoldInvisible is a fast pre-check: every stripped character's UTF-8
// encoding starts with one of these bytes, so text without them (almost
// all text) is returned without decoding.
func mayHoldInvisible[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 0xC2, 0xE2, 0xEF, 0xF3:
			return true
		}
	}
	return false
}

// stripInvisible returns s without invisible characters (s itself when it
// has none).
func stripInvisible(s string) string {
	if !mayHoldInvisible(s) {
		return s
	}
	found := false
	for _, r := range s {
		if isInvisible(r) {
			found = true
			break
		}
	}
	if !found {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if !isInvisible(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// stripInvisibleBytes is stripInvisible for byte slices; it returns b
// itself when there is nothing to strip.
func stripInvisibleBytes(b []byte) []byte {
	if !mayHoldInvisible(b) {
		return b
	}
	var out []byte
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if isInvisible(r) {
			if out == nil {
				out = append(make([]byte, 0, len(b)), b[:i]...)
			}
		} else if out != nil {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	if out == nil {
		return b
	}
	return out
}

// stripSchema returns v (a decoded JSON Schema value) with invisible
// characters removed from every string, member names included, and whether
// anything changed. It copies only what changes: spec objects are shared
// and must not be modified. Two member names that differ only by invisible
// characters are an error: one would silently replace the other.
func stripSchema(v any) (any, bool, error) {
	switch x := v.(type) {
	case string:
		s := stripInvisible(x)
		return s, len(s) != len(x), nil
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			nk := stripInvisible(k)
			ne, changed, err := stripSchema(e)
			if err != nil {
				return nil, false, err
			}
			if !changed && nk == k {
				continue
			}
			if nk != k {
				if _, clash := x[nk]; clash {
					return nil, false, fmt.Errorf("schema member names %q and %q differ only by invisible characters; remove them", k, nk)
				}
			}
			if out == nil {
				out = make(map[string]any, len(x))
				for k2, e2 := range x {
					out[k2] = e2
				}
			}
			delete(out, k)
			if _, clash := out[nk]; clash && nk != k {
				return nil, false, fmt.Errorf("schema member name %q appears twice once invisible characters are removed; remove them", nk)
			}
			out[nk] = ne
		}
		if out == nil {
			return x, false, nil
		}
		return out, true, nil
	case []any:
		var out []any
		for i, e := range x {
			ne, changed, err := stripSchema(e)
			if err != nil {
				return nil, false, err
			}
			if changed && out == nil {
				out = append(make([]any, 0, len(x)), x[:i]...)
			}
			if out != nil {
				out = append(out, ne)
			}
		}
		if out == nil {
			return x, false, nil
		}
		return out, true, nil
	}
	return v, false, nil
}
