// Package yamlenc renders JSON documents as block-style YAML, keeping the key
// order of the JSON (so Go struct field order survives). stoa prints objects
// this way in `stoa get -o yaml`, `stoa export` and in diffs.
//
// It exists because it is over five times faster than decoding the JSON
// into a yaml.MapSlice and encoding that with goccy/go-yaml, with a seventh
// of the allocation (BenchmarkFromJSON, 1,000 Tools on 2 busy cores: ~64 ms
// and 23 MB against ~360 ms and 171 MB; goccy's JSONToYAML ~440 ms), and
// because goccy's encoder does not round-trip every string (it drops tabs,
// empties a lone "\r", and writes "? a" plain, which reads back as a
// mapping). goccy/go-yaml, the decoder stoa's spec loader uses, reads the
// output back unchanged: the TestRoundTrip* tests and the FuzzRoundTrip and
// FuzzString fuzz targets check it.
//
// Every scalar is written so that YAML 1.1 and YAML 1.2 readers agree on it:
// a string that either would resolve to something else (yes, on, 0x10,
// 1_000, 2001-12-14, .inf, <<, …) is double-quoted, and quoted strings use
// YAML escapes only (never Go's).
package yamlenc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FromJSON converts one JSON value to YAML. Anything after the value other
// than white space is an error, and so is a number no float64 can hold.
func FromJSON(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decode(dec)
	if err != nil {
		return nil, fmt.Errorf("render yaml: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("render yaml: unexpected data after the JSON value")
	}
	var buf bytes.Buffer
	buf.Grow(len(data))
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

// number is a JSON number already rewritten into the form YAML 1.1 and 1.2
// readers both resolve as a number (see yamlNumber).
type number string

func decode(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string) // the decoder only yields strings here
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
	case json.Number:
		n, err := yamlNumber(string(t))
		return number(n), err
	default:
		return t, nil
	}
}

// yamlNumber rewrites the JSON number s so that YAML readers resolve it as
// the same number. goccy/go-yaml reads a float only with a '.' in the
// mantissa, and YAML 1.1 also wants a sign in the exponent: 1e3 becomes 1.0e+3;
// integers past 64 bits are read back as strings by goccy, so they get a
// ".0" and become floats, which is what encoding/json makes of them too.
func yamlNumber(s string) (string, error) {
	mant, exp, hasExp := strings.Cut(s, "e")
	if !hasExp {
		mant, exp, hasExp = strings.Cut(s, "E")
	}
	isInt := !hasExp && !strings.Contains(mant, ".")
	if isInt {
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return s, nil
		}
		if _, err := strconv.ParseUint(s, 10, 64); err == nil {
			return s, nil
		}
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return "", fmt.Errorf("number %.40s is out of range", s)
	}
	if isInt {
		return s + ".0", nil
	}
	if !hasExp {
		return s, nil
	}
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	if exp[0] != '+' && exp[0] != '-' {
		exp = "+" + exp
	}
	return mant + "e" + exp, nil
}

func indent(buf *bytes.Buffer, n int) {
	for i := 0; i < n; i++ {
		buf.WriteString("  ")
	}
}

// maxImplicitKey is the longest key YAML lets stand before ':' on its own;
// longer keys are written in the explicit "? key" form.
const maxImplicitKey = 1024

// writeValue writes v at nesting level lvl. inline is true when the caller
// already wrote a "- " prefix on the current line.
func writeValue(buf *bytes.Buffer, v any, lvl int, inline bool) {
	switch t := v.(type) {
	case object:
		if len(t) == 0 {
			buf.WriteString("{}\n")
			return
		}
		for i, m := range t {
			if !(inline && i == 0) {
				indent(buf, lvl)
			}
			if utf8.RuneCountInString(m.key) > maxImplicitKey {
				buf.WriteString("? ")
				writeString(buf, m.key)
				buf.WriteByte('\n')
				indent(buf, lvl)
			} else {
				writeString(buf, m.key)
			}
			buf.WriteByte(':')
			writeChild(buf, m.val, lvl)
		}
	case []any:
		if len(t) == 0 {
			buf.WriteString("[]\n")
			return
		}
		for i, e := range t {
			if !(inline && i == 0) {
				indent(buf, lvl)
			}
			buf.WriteString("- ")
			writeValue(buf, e, lvl+1, true)
		}
	default:
		writeScalar(buf, v)
		buf.WriteByte('\n')
	}
}

// writeChild writes the value of a mapping entry after its "key:".
func writeChild(buf *bytes.Buffer, v any, lvl int) {
	switch t := v.(type) {
	case object:
		if len(t) > 0 {
			buf.WriteByte('\n')
			writeValue(buf, v, lvl+1, false)
			return
		}
	case []any:
		if len(t) > 0 {
			buf.WriteByte('\n')
			writeValue(buf, v, lvl+1, false)
			return
		}
	}
	buf.WriteByte(' ')
	writeValue(buf, v, lvl, true)
}

func writeScalar(buf *bytes.Buffer, v any) {
	switch t := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(t))
	case number:
		buf.WriteString(string(t))
	case string:
		writeString(buf, t)
	default:
		panic(fmt.Sprintf("yamlenc: unexpected %T", v)) // decode makes no other type
	}
}

// writeString writes s plain when YAML reads it back as the same string, and
// double-quoted otherwise. Multi-line strings are quoted too, with \n
// escapes: one line per scalar keeps line-based diffs exact.
func writeString(buf *bytes.Buffer, s string) {
	if plainOK(s) {
		buf.WriteString(s)
		return
	}
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch c {
			case '"':
				buf.WriteString(`\"`)
			case '\\':
				buf.WriteString(`\\`)
			case 0:
				buf.WriteString(`\0`)
			case '\a':
				buf.WriteString(`\a`)
			case '\b':
				buf.WriteString(`\b`)
			case '\t':
				buf.WriteString(`\t`)
			case '\n':
				buf.WriteString(`\n`)
			case '\v':
				buf.WriteString(`\v`)
			case '\f':
				buf.WriteString(`\f`)
			case '\r':
				buf.WriteString(`\r`)
			case 0x1b:
				buf.WriteString(`\e`)
			default:
				if c < 0x20 || c == 0x7f {
					fmt.Fprintf(buf, `\x%02X`, c)
				} else {
					buf.WriteByte(c)
				}
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			// Not UTF-8: write what encoding/json would have decoded.
			buf.WriteString(`\uFFFD`)
		case r == 0x85:
			buf.WriteString(`\N`)
		case r == 0xa0:
			buf.WriteString(`\_`)
		case r == 0x2028:
			buf.WriteString(`\L`)
		case r == 0x2029:
			buf.WriteString(`\P`)
		case r < 0xa0:
			fmt.Fprintf(buf, `\x%02X`, r)
		case mustEscape(r):
			if r > 0xffff {
				fmt.Fprintf(buf, `\U%08X`, r)
			} else {
				fmt.Fprintf(buf, `\u%04X`, r)
			}
		default:
			buf.WriteString(s[i-size : i])
		}
	}
	buf.WriteByte('"')
}

// mustEscape reports whether a non-ASCII rune is written as an escape in a
// quoted string: the ones YAML forbids raw (C1 controls, U+FFFE, U+FFFF),
// the line and paragraph separators (line breaks in YAML 1.1), no-break
// space, and invisible format characters (byte order mark, bidi controls,
// zero-width space), which would otherwise hide in the output. Zero-width
// joiners stay: emoji sequences and several scripts need them.
func mustEscape(r rune) bool {
	switch {
	case r < 0xa0 || r == 0xa0 || r == 0x2028 || r == 0x2029 || r == 0xfffe || r == 0xffff:
		return true
	case r == 0x200c || r == 0x200d:
		return false
	}
	return unicode.Is(unicode.Cf, r)
}

// plainOK reports whether s can be written as a plain scalar: YAML 1.1 and
// 1.2 readers (and goccy/go-yaml in particular) all read it back as this
// very string, and nothing in it is invisible.
func plainOK(s string) bool {
	if s == "" || resolvesAsNonString(s) {
		return false
	}
	switch s[0] {
	case '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`':
		return false
	case '-':
		// "-x" is plain, but "-", "- x" start a sequence and "---" a
		// document.
		if len(s) == 1 || s[1] == ' ' || strings.HasPrefix(s, "---") {
			return false
		}
	case '.':
		if strings.HasPrefix(s, "...") {
			return false
		}
	}
	if strings.Contains(s, ": ") || strings.Contains(s, " #") || s[len(s)-1] == ':' {
		return false
	}
	// goccy/go-yaml v1.19 takes any key ending in "<<" (a<<: x) for the
	// merge key; quoting every string with "<<" in it is simplest.
	if strings.Contains(s, "<<") {
		return false
	}
	for i, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || r >= 0x80 && mustEscape(r) {
			return false
		}
		// Leading or trailing white space of any kind is invisible, and
		// YAML drops the ASCII kinds.
		if (i == 0 || i+utf8.RuneLen(r) == len(s)) && unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// resolvesAsNonString reports whether a YAML 1.1 or 1.2 reader could take
// the plain scalar s as null, a boolean, a number, a timestamp, a merge key
// or a value key. It errs on the side of quoting: any string that starts
// like a number and holds only characters a number can have is quoted
// (so 10:30 and 1e3 are, and 1s, 4xx, 1.2.3 and 100/s are not).
func resolvesAsNonString(s string) bool {
	switch s {
	case "~", "<<", "=":
		return true
	}
	if len(s) <= 5 {
		switch strings.ToLower(s) {
		case "null", "true", "false", "yes", "no", "on", "off", "y", "n":
			return true
		}
	}
	// goccy reads +-1 as 1, so every leading sign goes, not just one.
	t := strings.TrimLeft(s, "+-")
	if t == "" {
		return false
	}
	switch strings.ToLower(t) {
	case ".inf", ".nan":
		return true
	}
	// goccy/go-yaml drops '_' wherever it stands in a number (+_0 and ._5
	// are numbers to it), so a leading '_' counts like a digit or '.'.
	if !isDigit(t[0]) && t[0] != '.' && t[0] != '_' {
		return false
	}
	if isTimestamp(s) {
		return true
	}
	// goccy ignores '_' anywhere in a number (0_x1 is 1), so the shape is
	// judged without them. A base prefix makes the rest hex, octal or
	// binary digits; otherwise only decimal digits and the marks of floats
	// and YAML 1.1's base-60 numbers (1:30) may follow.
	if strings.IndexByte(t, '_') >= 0 {
		t = strings.ReplaceAll(t, "_", "")
	}
	if !strings.ContainsAny(t, "0123456789") {
		return false // _, ._ and the like
	}
	digitOK := func(c byte) bool {
		return isDigit(c) || c == '.' || c == ':' || c == '+' || c == '-' || c == 'e' || c == 'E'
	}
	if len(t) >= 2 && t[0] == '0' && strings.IndexByte("xXoObB", t[1]) >= 0 {
		t = t[2:]
		digitOK = func(c byte) bool {
			return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
		}
	} else if strings.Count(t, ".") > 1 {
		return false // 1.2.3 and 198.51.100.7: no reader takes them for a number
	}
	for i := 0; i < len(t); i++ {
		if !digitOK(t[i]) {
			return false
		}
	}
	return true
}

// isTimestamp reports whether s starts like a YAML 1.1 timestamp:
// yyyy-m-d or yyyy-mm-dd.
func isTimestamp(s string) bool {
	if len(s) < 8 || !isDigit(s[0]) || !isDigit(s[1]) || !isDigit(s[2]) || !isDigit(s[3]) || s[4] != '-' {
		return false
	}
	i := 5
	for n := 0; n < 2; n++ {
		j := i
		for j < len(s) && j < i+2 && isDigit(s[j]) {
			j++
		}
		if j == i {
			return false
		}
		i = j
		if n == 0 {
			if i >= len(s) || s[i] != '-' {
				return false
			}
			i++
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
