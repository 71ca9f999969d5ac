package rpc

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// ErrDuplicateKey is returned by DecodeValue and Members for an object with
// the same key twice: validation and forwarding must see the same value.
var ErrDuplicateKey = errors.New("duplicate object key")

// DecodeValue decodes the valid JSON value raw into map[string]any, []any,
// string, json.Number, bool or nil — the shapes JSON Schema validators
// expect. Objects with duplicate keys are refused.
func DecodeValue(raw []byte) (any, error) {
	v, end, err := decodeValue(raw, SkipSpace(raw, 0), 0)
	if err != nil {
		return nil, err
	}
	if SkipSpace(raw, end) != len(raw) {
		return nil, ErrTrailing
	}
	return v, nil
}

func decodeValue(b []byte, i, depth int) (any, int, error) {
	if i >= len(b) {
		return nil, i, ErrSyntax
	}
	switch c := b[i]; {
	case c == '"':
		end, esc, err := skipString(b, i)
		if err != nil {
			return nil, end, err
		}
		if esc {
			return validString(AppendUnquote(nil, b[i:end])), end, nil
		}
		return validString(b[i+1 : end-1]), end, nil
	case c == '{':
		if depth+1 > MaxDepth {
			return nil, i, ErrTooDeep
		}
		m := make(map[string]any, 4)
		i = SkipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return m, i + 1, nil
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return nil, i, ErrSyntax
			}
			kend, esc, err := skipString(b, i)
			if err != nil {
				return nil, kend, err
			}
			var key string
			if esc {
				key = validString(AppendUnquote(nil, b[i:kend]))
			} else {
				key = validString(b[i+1 : kend-1])
			}
			i = SkipSpace(b, kend)
			if i >= len(b) || b[i] != ':' {
				return nil, i, ErrSyntax
			}
			v, end, err := decodeValue(b, SkipSpace(b, i+1), depth+1)
			if err != nil {
				return nil, end, err
			}
			if _, dup := m[key]; dup {
				return nil, end, ErrDuplicateKey
			}
			m[key] = v
			i = SkipSpace(b, end)
			if i >= len(b) {
				return nil, i, ErrSyntax
			}
			if b[i] == '}' {
				return m, i + 1, nil
			}
			if b[i] != ',' {
				return nil, i, ErrSyntax
			}
			i = SkipSpace(b, i+1)
		}
	case c == '[':
		if depth+1 > MaxDepth {
			return nil, i, ErrTooDeep
		}
		a := make([]any, 0, 4)
		i = SkipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return a, i + 1, nil
		}
		for {
			v, end, err := decodeValue(b, i, depth+1)
			if err != nil {
				return nil, end, err
			}
			a = append(a, v)
			i = SkipSpace(b, end)
			if i >= len(b) {
				return nil, i, ErrSyntax
			}
			if b[i] == ']' {
				return a, i + 1, nil
			}
			if b[i] != ',' {
				return nil, i, ErrSyntax
			}
			i = SkipSpace(b, i+1)
		}
	case c == 't':
		end, err := skipLiteral(b, i, "true")
		return true, end, err
	case c == 'f':
		end, err := skipLiteral(b, i, "false")
		return false, end, err
	case c == 'n':
		end, err := skipLiteral(b, i, "null")
		return nil, end, err
	default:
		end, err := skipNumber(b, i)
		if err != nil {
			return nil, end, err
		}
		return json.Number(b[i:end]), end, nil
	}
}

// Members splits the JSON object raw into its members, appending them to
// dst. Keys are unescaped (allocating only when they contain escapes);
// values stay raw. Duplicate keys are refused.
func Members(dst []Member, raw []byte) ([]Member, error) {
	it := NewIterator(raw)
	start := len(dst)
	var seen map[string]struct{} // used past a few members to stay linear
	for {
		key, val, ok := it.Next()
		if !ok {
			break
		}
		if n := len(dst) - start; n < 16 {
			for _, m := range dst[start:] {
				if string(m.Key) == string(key) {
					return dst, ErrDuplicateKey
				}
			}
		} else {
			if seen == nil {
				seen = make(map[string]struct{}, 2*n)
				for _, m := range dst[start:] {
					seen[string(m.Key)] = struct{}{}
				}
			}
			if _, dup := seen[string(key)]; dup {
				return dst, ErrDuplicateKey
			}
			seen[string(key)] = struct{}{}
		}
		dst = append(dst, Member{Key: key, Value: val})
	}
	if err := it.Err(); err != nil {
		return dst, err
	}
	if SkipSpace(raw, it.End()) != len(raw) {
		return dst, ErrTrailing
	}
	return dst, nil
}

// validString converts b to a string, replacing each invalid UTF-8 byte with
// U+FFFD exactly as encoding/json does.
func validString(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			out = append(out, b[i])
			i++
			continue
		}
		n := runeLen(b, i)
		if n == 0 {
			out = utf8.AppendRune(out, utf8.RuneError)
			i++
			continue
		}
		out = append(out, b[i:i+n]...)
		i += n
	}
	return string(out)
}
