// Package yamlenc renders JSON documents as block-style YAML, keeping the key
// order of the JSON (so Go struct field order survives). stoa prints objects
// this way in `stoa get -o yaml` and in diffs; it is much faster than a
// round trip through a YAML library and its output is stable.
package yamlenc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// FromJSON converts one JSON value to YAML.
func FromJSON(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decode(dec)
	if err != nil {
		return nil, fmt.Errorf("yamlenc: %w", err)
	}
	var buf bytes.Buffer
	writeValue(&buf, v, 0, false)
	return buf.Bytes(), nil
}

// Marshal encodes v as JSON, then renders it as YAML.
func Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return FromJSON(b)
}

type member struct {
	key string
	val any
}

type object []member

func decode(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var obj object
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decode(dec)
				if err != nil {
					return nil, err
				}
				obj = append(obj, member{k, v})
			}
			_, err := dec.Token()
			return obj, err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decode(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token()
			return arr, err
		}
		return nil, io.ErrUnexpectedEOF
	default:
		return t, nil
	}
}

func indent(buf *bytes.Buffer, n int) {
	for i := 0; i < n; i++ {
		buf.WriteString("  ")
	}
}

// writeValue writes v at nesting level lvl. inline is true when the caller
// already wrote a "- " or "key:" prefix on the current line.
func writeValue(buf *bytes.Buffer, v any, lvl int, inline bool) {
	switch t := v.(type) {
	case object:
		if len(t) == 0 {
			if inline {
				buf.WriteString(" ")
			}
			buf.WriteString("{}\n")
			return
		}
		for i, m := range t {
			if !(inline && i == 0) {
				indent(buf, lvl)
			}
			buf.WriteString(scalarKey(m.key))
			buf.WriteString(":")
			writeChild(buf, m.val, lvl)
		}
	case []any:
		if len(t) == 0 {
			if inline {
				buf.WriteString(" ")
			}
			buf.WriteString("[]\n")
			return
		}
		for i, e := range t {
			if !(inline && i == 0) {
				indent(buf, lvl)
			}
			buf.WriteString("-")
			switch e.(type) {
			case object:
				if len(e.(object)) == 0 {
					buf.WriteString(" {}\n")
					continue
				}
				buf.WriteString(" ")
				writeValue(buf, e, lvl+1, true)
			case []any:
				if len(e.([]any)) == 0 {
					buf.WriteString(" []\n")
					continue
				}
				buf.WriteString(" ")
				writeValue(buf, e, lvl+1, true)
			default:
				buf.WriteString(" ")
				buf.WriteString(scalar(e))
				buf.WriteString("\n")
			}
		}
	default:
		if inline {
			buf.WriteString(" ")
		}
		buf.WriteString(scalar(v))
		buf.WriteString("\n")
	}
}

func writeChild(buf *bytes.Buffer, v any, lvl int) {
	switch t := v.(type) {
	case object:
		if len(t) == 0 {
			buf.WriteString(" {}\n")
			return
		}
		buf.WriteString("\n")
		writeValue(buf, v, lvl+1, false)
	case []any:
		if len(t) == 0 {
			buf.WriteString(" []\n")
			return
		}
		buf.WriteString("\n")
		writeValue(buf, v, lvl+1, false)
	default:
		buf.WriteString(" ")
		buf.WriteString(scalar(v))
		buf.WriteString("\n")
	}
}

func scalarKey(k string) string {
	if needsQuote(k) {
		return strconv.Quote(k)
	}
	return k
}

func scalar(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return t.String()
	case string:
		if strings.Contains(t, "\n") {
			// Double-quoted keeps the output one line per scalar, which
			// keeps line-based diffs exact.
			return strconv.Quote(t)
		}
		if needsQuote(t) {
			return strconv.Quote(t)
		}
		return t
	}
	return fmt.Sprint(v)
}

// needsQuote reports whether a plain YAML scalar would be read back as
// something other than this string.
func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	switch strings.ToLower(s) {
	case "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n":
		return true
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return true
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0o") {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return true
	}
	switch s[0] {
	case '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`':
		if s[0] != '-' || len(s) == 1 || s[1] == ' ' {
			return true
		}
	}
	if strings.Contains(s, ": ") || strings.Contains(s, " #") || strings.HasSuffix(s, ":") {
		return true
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
