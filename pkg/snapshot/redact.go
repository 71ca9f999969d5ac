package snapshot

import (
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Redacted replaces every secret a snapshot would otherwise keep.
const Redacted = "[REDACTED]"

// Headers always redacted, lower case.
var defaultHeaders = []string{
	"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-auth-token",
	"x-amz-security-token", "x-csrf-token", "x-xsrf-token",
}

// sensitiveWords make a JSON field or query parameter secret when its
// (lower-case) name contains one of them.
var sensitiveWords = []string{
	"password", "passwd", "passphrase", "secret", "token", "apikey", "api_key", "api-key",
	"authorization", "credential", "private_key", "privatekey", "session", "cookie",
}

// Redactor removes secrets from what a snapshot keeps. Build one with
// NewRedactor; it is safe for concurrent use.
type Redactor struct {
	headers map[string]bool
	fields  map[string]bool // configured names, exact (lower case)
	secrets [][]byte        // literal values (upstream credentials)
}

// NewRedactor returns a redactor for the default headers and patterns
// plus extra header names, JSON field names and literal secret values.
func NewRedactor(headers, fields []string, secrets [][]byte) *Redactor {
	r := &Redactor{headers: map[string]bool{}, fields: map[string]bool{}}
	for _, h := range append(slices.Clone(defaultHeaders), headers...) {
		r.headers[strings.ToLower(strings.TrimSpace(h))] = true
	}
	for _, f := range fields {
		r.fields[strings.ToLower(f)] = true
	}
	for _, s := range secrets {
		if len(s) >= 4 { // shorter values would redact noise, not secrets
			r.secrets = append(r.secrets, s)
		}
	}
	// Longest first, so a secret containing another is removed whole.
	slices.SortFunc(r.secrets, func(a, b []byte) int { return len(b) - len(a) })
	return r
}

// notes collects what was redacted, without duplicates.
type notes struct{ list []string }

func (n *notes) add(s string) {
	if !slices.Contains(n.list, s) {
		n.list = append(n.list, s)
	}
}

// header returns the value to keep for header name.
func (r *Redactor) header(name, value string, n *notes) (string, bool) {
	if r.headers[strings.ToLower(name)] {
		n.add("header " + name)
		return Redacted, true
	}
	out := r.text(value, n, "header "+name)
	return out, out != value
}

// fieldSecret reports whether a JSON field or parameter name is secret:
// configured exactly, or containing a sensitive word.
func (r *Redactor) fieldSecret(name string) (exact, heuristic bool) {
	l := strings.ToLower(name)
	if r.fields[l] {
		return true, false
	}
	for _, w := range sensitiveWords {
		if strings.Contains(l, w) {
			return false, true
		}
	}
	return false, false
}

// patterns are common secret shapes; each replacement keeps what is safe
// to show (a key's public prefix, a parameter name).
var patterns = []struct {
	name string
	re   *regexp.Regexp
	repl string
	fn   func(string) string // instead of repl
}{
	{"private key", regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`), Redacted, nil},
	{"stoa API key", regexp.MustCompile(`\bstoa_sk_[A-Za-z0-9_]*`), "", stoaKey},
	{"JWT", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}`), Redacted, nil},
	{"bearer token", regexp.MustCompile(`(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]{8,}=*`), "${1}${2}" + Redacted, nil},
	{"basic credentials", regexp.MustCompile(`(?i)\b(basic)(\s+)[A-Za-z0-9+/]{8,}=*`), "${1}${2}" + Redacted, nil},
	{"AWS access key", regexp.MustCompile(`\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b`), Redacted, nil},
	{"AWS secret key", regexp.MustCompile(`(?i)(aws_?secret_?(?:access_?)?key(?:_id)?["']?\s*[:=]\s*["']?)[A-Za-z0-9/+=]{20,}`), "${1}" + Redacted, nil},
	{"GitHub token", regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{20,}`), Redacted, nil},
	{"Slack token", regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`), Redacted, nil},
	{"API secret key", regexp.MustCompile(`\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bsk-[A-Za-z0-9_-]{20,}`), Redacted, nil},
	{"URL credentials", regexp.MustCompile(`(://)[^/\s:@]+:[^/\s@]+@`), "${1}" + Redacted + "@", nil},
	{"secret parameter", secretParam, "", func(m string) string {
		sm := secretParam.FindStringSubmatch(m)
		if len(sm) < 3 || strings.HasPrefix(sm[2], Redacted) || strings.HasPrefix(sm[2], redactedQuery) {
			return m
		}
		return sm[1] + Redacted
	}},
}

// secretParam finds name=value, name: value and "name":"value" pairs
// whose name looks secret.
var secretParam = regexp.MustCompile(`(?i)((?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key|auth|credentials?|session(?:[_-]?id)?)(?:[_-][A-Za-z0-9_-]*)?(?:"\s*:\s*"|'\s*:\s*'|\s*=\s*|\s*:\s*))([^\s&"',;}{]+)`)

// redactedQuery is Redacted as it appears in a URL query.
const redactedQuery = "%5BREDACTED%5D"

// stoaKey keeps an API key's public prefix (stoa_sk_<id>, which may be
// shown) and redacts the rest; a bare prefix is left alone.
func stoaKey(m string) string {
	const idEnd = len("stoa_sk_") + 16
	if len(m) == idEnd || (len(m) == idEnd+1 && m[idEnd] == '_') {
		return m // the public prefix, or one already redacted
	}
	if len(m) > idEnd && m[idEnd] == '_' && isKeyID(m[len("stoa_sk_"):idEnd]) {
		return m[:idEnd] + "_" + Redacted
	}
	return "stoa_sk_" + Redacted
}

func isKeyID(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// text removes secret patterns and literal secrets from s.
func (r *Redactor) text(s string, n *notes, where string) string {
	for _, sec := range r.secrets {
		if strings.Contains(s, string(sec)) {
			s = strings.ReplaceAll(s, string(sec), Redacted)
			n.add(where + ": configured credential")
		}
	}
	for _, p := range patterns {
		if !p.re.MatchString(s) {
			continue
		}
		var out string
		if p.fn != nil {
			out = p.re.ReplaceAllStringFunc(s, p.fn)
		} else {
			out = p.re.ReplaceAllString(s, p.repl)
		}
		if out != s {
			n.add(where + ": " + p.name)
			s = out
		}
	}
	return s
}

// query redacts the values of secret parameters in a raw query string,
// keeping names and order.
func (r *Redactor) query(raw string, n *notes) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if exact, heur := r.fieldSecret(name); ok && (exact || heur) {
			parts[i] = k + "=" + redactedQuery
			n.add("query parameter " + name)
		}
	}
	return r.text(strings.Join(parts, "&"), n, "query")
}

// body returns what to keep of a body: JSON is rewritten with secret
// fields redacted (order kept); text is scrubbed of secret patterns;
// binary is not kept at all.
func (r *Redactor) body(b []byte, contentType string, n *notes) (string, string) {
	if len(b) == 0 {
		return "", ""
	}
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		// A cut can split a rune: tolerate an invalid tail of up to 3 bytes.
		cut := b
		for i := 0; i < 3 && len(cut) > 0 && !utf8.Valid(cut); i++ {
			cut = cut[:len(cut)-1]
		}
		if !utf8.Valid(cut) || bytes.IndexByte(cut, 0) >= 0 {
			return "", "binary body not kept"
		}
		b = cut
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && json.Valid(trimmed) {
		if out, ok := r.json(trimmed, n); ok {
			return r.text(out, n, "body"), ""
		}
	}
	return r.text(string(b), n, "body"), ""
}

// json rewrites a valid JSON document, redacting secret fields.
func (r *Redactor) json(b []byte, n *notes) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(b))
	if err := r.jsonValue(dec, &out, n, 0); err != nil {
		return "", false
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", false
	}
	return out.String(), true
}

const maxJSONDepth = 64

func (r *Redactor) jsonValue(dec *json.Decoder, out *bytes.Buffer, n *notes, depth int) error {
	if depth > maxJSONDepth {
		return errTooDeep
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			out.WriteByte('{')
			for i := 0; dec.More(); i++ {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := kt.(string)
				if i > 0 {
					out.WriteByte(',')
				}
				writeJSONString(out, key)
				out.WriteByte(':')
				exact, heur := r.fieldSecret(key)
				if !exact && !heur {
					if err := r.jsonValue(dec, out, n, depth+1); err != nil {
						return err
					}
					continue
				}
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return err
				}
				// A heuristic match keeps numbers, booleans and null
				// ("max_tokens": 100 is not a secret).
				if c := raw[0]; !exact && (c != '"' && c != '{' && c != '[') {
					out.Write(raw)
					continue
				}
				n.add("body field " + key)
				writeJSONString(out, Redacted)
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := r.jsonValue(dec, out, n, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			out.WriteByte(']')
		}
	case string:
		writeJSONString(out, t)
	case json.Number:
		out.WriteString(t.String())
	case bool:
		if t {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
	case nil:
		out.WriteString("null")
	}
	return nil
}

type jsonErr string

func (e jsonErr) Error() string { return string(e) }

const errTooDeep = jsonErr("json nested too deeply")

func writeJSONString(out *bytes.Buffer, s string) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	out.Truncate(out.Len() - 1) // Encode's newline
}

// Scrub removes the redactor's literal secrets and secret patterns from s;
// it is the last line of defence applied to everything stored.
func (r *Redactor) Scrub(s string) string {
	var n notes
	return r.text(s, &n, "")
}
