package argmap

import (
	"errors"

	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

var errNotScalar = errors.New("must be a string, number or boolean")

// scalarText appends the text of a JSON string (unescaped), number or
// boolean.
func scalarText(dst, raw []byte) ([]byte, error) {
	switch raw[0] {
	case '"':
		for _, c := range raw[1 : len(raw)-1] {
			if c == '\\' {
				return rpc.AppendUnquote(dst, raw), nil
			}
		}
		return append(dst, raw[1:len(raw)-1]...), nil
	case 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return append(dst, raw...), nil
	}
	return dst, errNotScalar
}

// compact appends raw JSON without insignificant whitespace.
func compact(dst, raw []byte) []byte {
	inStr, esc := false, false
	for _, c := range raw {
		switch {
		case inStr:
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// walkArray calls fn with each raw element of the valid JSON array raw until
// fn returns false.
func walkArray(raw []byte, fn func(elem []byte) bool) {
	i := rpc.SkipSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return
	}
	for i < len(raw) {
		end, err := rpc.SkipValue(raw, i)
		if err != nil {
			return
		}
		if !fn(raw[i:end]) {
			return
		}
		i = rpc.SkipSpace(raw, end)
		if i >= len(raw) || raw[i] != ',' {
			return
		}
		i = rpc.SkipSpace(raw, i+1)
	}
}

const upperHex = "0123456789ABCDEF"

// appendEscaped percent-encodes every byte outside the RFC 3986 unreserved
// set (ALPHA / DIGIT / "-" / "." / "_" / "~"). The result is safe in a path
// segment and in a query name or value alike.
func appendEscaped(dst, s []byte) []byte {
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&0xF])
	}
	return dst
}
