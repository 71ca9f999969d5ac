package mcp

import (
	"fmt"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Invisible characters never reach an agent. Text an operator (or an
// imported OpenAPI document) puts into tool names, titles, descriptions and
// schemas is shown to a model that reads every code point, while a human
// reviewing the spec sees nothing: Unicode tag characters can spell out
// hidden instructions, bidi controls reorder what a reviewer reads, and
// zero-width characters hide words inside words. The catalog strips them
// once, when it is built, so no request pays for it.
// The class of characters is spec.StripInvisible's, the one `stoa
// validate` reports (pkg/spec/texthazards.go).

// stripInvisible returns s without invisible characters (s itself when it
// has none).
func stripInvisible(s string) string { return spec.StripInvisible(s) }

// stripInvisibleBytes is stripInvisible for byte slices; it returns b
// itself when there is nothing to strip.
func stripInvisibleBytes(b []byte) []byte {
	s := string(b)
	if out := spec.StripInvisible(s); len(out) != len(s) || out != s {
		return []byte(out)
	}
	return b
}

// mayHaveInvisible reports whether a schema encoded by encodeSchema may
// hold a character stripSchema removes: those are all non-ASCII or
// control characters, which the encoding shows either as such or as an
// escape (\u..., \b, \f). Printable ASCII, \t, \n and \r never need
// stripping.
func mayHaveInvisible(encoded []byte) bool {
	for i, c := range encoded {
		if c >= 0x7F {
			return true
		}
		if c == '\\' && i+1 < len(encoded) {
			switch encoded[i+1] {
			case 'u', 'b', 'f':
				return true
			}
		}
	}
	return false
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
