// Package argmap turns the JSON arguments of an MCP tools/call into the
// parts of an upstream HTTP request: path placeholders, query string,
// headers and a JSON body. It is pure (no I/O, no globals) and fuzzed.
//
// Placement of one argument, in order:
//
//  1. an explicit location from the operation's `in` map (path, query,
//     header, body or payload);
//  2. path, when the path template has a {name} placeholder;
//  3. query for GET, HEAD, DELETE and OPTIONS; a JSON body member otherwise.
//
// Encoding per location:
//
//   - path: strings, numbers and booleans only; every byte outside the
//     RFC 3986 unreserved set is percent-encoded (so "/" can never add a
//     segment), and "", "." and ".." are refused where they would form a
//     whole segment.
//   - query: name=value pairs percent-encoded the same way; arrays repeat
//     the name (tag=a&tag=b); objects are sent as compact JSON text; null is
//     omitted.
//   - header: strings, numbers, booleans, and arrays of them joined by ", ";
//     control characters (CR, LF, NUL, ...) are refused.
//   - body: the members keep their raw JSON text, in argument order, inside
//     one JSON object; no body is sent when no argument lands there.
//   - payload: the argument's raw JSON text is the whole body, for bodies
//     that are not objects of named members (arrays, oneOf, scalars). At
//     most one argument is the payload, and no argument may then go to the
//     body.
package argmap

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

// Location says where an argument goes.
type Location uint8

// Locations.
const (
	Path Location = iota + 1
	Query
	Header
	Body
	Payload
)

// String returns the spec spelling of l.
func (l Location) String() string {
	switch l {
	case Path:
		return "path"
	case Query:
		return "query"
	case Header:
		return "header"
	case Body:
		return "body"
	case Payload:
		return "payload"
	}
	return "unknown"
}

// ParseLocation parses path|query|header|body|payload.
func ParseLocation(s string) (Location, bool) {
	switch s {
	case "path":
		return Path, true
	case "query":
		return Query, true
	case "header":
		return Header, true
	case "body":
		return Body, true
	case "payload":
		return Payload, true
	}
	return 0, false
}

// Plan is the compiled mapping of one operation. It is immutable and safe
// for concurrent use.
type Plan struct {
	method      string
	segments    []segment
	staticQuery string
	// in and headerNames stay nil when the operation has no `in` entries
	// (most): a catalog holds one Plan per tool.
	in          map[string]Location
	headerNames map[string]string // argument name -> canonical header name
	defaultLoc  Location
	payload     string // the argument that is the whole body, if any
}

// isPlaceholder reports whether the path has a {name} placeholder.
func (p *Plan) isPlaceholder(name string) bool {
	for _, s := range p.segments {
		if s.literal == "" && s.param == name {
			return true
		}
	}
	return false
}

type segment struct {
	literal string
	param   string // placeholder name when literal == ""
	whole   bool   // the placeholder is a whole path segment
}

// forbiddenHeaders may never be set from arguments: they frame or route the
// upstream request.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Keep-Alive": true, "Te": true, "Trailer": true, "Upgrade": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Expect": true, "Content-Type": true,
}

// Compile builds the plan of an operation from its HTTP method, path
// template (below the upstream base, with {name} placeholders and an
// optional static "?query") and its per-argument location overrides.
func Compile(method, path string, in map[string]string) (*Plan, error) {
	p := &Plan{method: strings.ToUpper(method)}
	switch p.method {
	case "GET", "HEAD", "DELETE", "OPTIONS":
		p.defaultLoc = Query
	case "POST", "PUT", "PATCH":
		p.defaultLoc = Body
	default:
		return nil, fmt.Errorf("unsupported method %q", method)
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, p.staticQuery = path[:i], path[i+1:]
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	for rest := path; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			p.segments = append(p.segments, segment{literal: rest})
			break
		}
		if open > 0 {
			p.segments = append(p.segments, segment{literal: rest[:open]})
		}
		closing := strings.IndexByte(rest[open:], '}')
		if closing < 0 {
			return nil, fmt.Errorf("path %q: unclosed {", path)
		}
		name := rest[open+1 : open+closing]
		if name == "" || strings.ContainsAny(name, "{/") {
			return nil, fmt.Errorf("path %q: bad placeholder {%s}", path, name)
		}
		if p.isPlaceholder(name) {
			return nil, fmt.Errorf("path %q: placeholder {%s} appears twice", path, name)
		}
		after := rest[open+closing+1:]
		whole := (open > 0 && rest[open-1] == '/' || open == 0 && endsWithSlash(p.segments)) &&
			(after == "" || after[0] == '/')
		p.segments = append(p.segments, segment{param: name, whole: whole})
		rest = after
	}
	for name, where := range in {
		loc, ok := ParseLocation(where)
		if !ok {
			return nil, fmt.Errorf("in.%s: %q is not path, query, header, body or payload", name, where)
		}
		if loc == Path && !p.isPlaceholder(name) {
			return nil, fmt.Errorf("in.%s: path has no {%s} placeholder", name, name)
		}
		if loc != Path && p.isPlaceholder(name) {
			return nil, fmt.Errorf("in.%s: %s, but the path has a {%s} placeholder", name, where, name)
		}
		if loc == Header {
			if !validToken(name) {
				return nil, fmt.Errorf("in.%s: not a valid header name", name)
			}
			canon := textproto.CanonicalMIMEHeaderKey(name)
			if forbiddenHeaders[canon] {
				return nil, fmt.Errorf("in.%s: header %s cannot be set from arguments", name, canon)
			}
			if p.headerNames == nil {
				p.headerNames = map[string]string{}
			}
			p.headerNames[name] = canon
		}
		if loc == Payload {
			if p.payload != "" {
				a, b := p.payload, name
				if b < a {
					a, b = b, a
				}
				return nil, fmt.Errorf("in.%s: %s is already the payload; one argument at most is the whole body", b, a)
			}
			p.payload = name
		}
		if p.in == nil {
			p.in = make(map[string]Location, len(in))
		}
		p.in[name] = loc
	}
	if p.payload != "" {
		for name, loc := range p.in {
			if loc == Body {
				return nil, fmt.Errorf("in.%s: body, but %s is the whole body (payload)", name, p.payload)
			}
		}
	}
	return p, nil
}

func endsWithSlash(segs []segment) bool {
	if len(segs) == 0 {
		return false
	}
	l := segs[len(segs)-1].literal
	return l != "" && l[len(l)-1] == '/'
}

// Method returns the upstream HTTP method.
func (p *Plan) Method() string { return p.method }

// Placeholders returns the path placeholder names.
func (p *Plan) Placeholders() []string {
	var out []string
	for _, s := range p.segments {
		if s.param != "" {
			out = append(out, s.param)
		}
	}
	return out
}

// Payload returns the argument that is the whole body ("" when none).
func (p *Plan) Payload() string { return p.payload }

// LocationOf returns where the argument called name goes.
func (p *Plan) LocationOf(name string) Location {
	if loc, ok := p.in[name]; ok {
		return loc
	}
	if p.isPlaceholder(name) {
		return Path
	}
	return p.defaultLoc
}

// HeaderField is one upstream request header.
type HeaderField struct {
	Name  string
	Value []byte
}

// Request is the mapped upstream request. Its byte slices are owned by the
// Request and reused by the next Map call with the same Request.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the escaped path below the upstream base ("/invoices/42").
	Path []byte
	// Query is the encoded query string without "?", possibly empty.
	Query []byte
	// Header lists headers to add.
	Header []HeaderField
	// Body is the JSON body, nil when no argument goes to the body.
	Body []byte

	members []rpc.Member
	pathArg [][]byte
	scratch []byte
}

// Reset empties r, keeping its buffers.
func (r *Request) Reset() {
	r.Method = ""
	r.Path = r.Path[:0]
	r.Query = r.Query[:0]
	r.Header = r.Header[:0]
	r.Body = r.Body[:0]
	r.members = r.members[:0]
	r.pathArg = r.pathArg[:0]
}

// Error is an argument that cannot be mapped; its message names the
// argument and is meant for the model that sent it.
type Error struct {
	Arg string
	Msg string
}

func (e *Error) Error() string {
	if e.Arg == "" {
		return e.Msg
	}
	return "argument " + e.Arg + ": " + e.Msg
}

// ErrNotObject is returned when the arguments are not a JSON object.
var ErrNotObject = errors.New("arguments must be a JSON object")

// Map fills r from the raw JSON arguments object args (nil or "null" mean
// no arguments).
func (p *Plan) Map(args []byte, r *Request) error {
	r.Reset()
	r.Method = p.method
	i := rpc.SkipSpace(args, 0)
	if i == len(args) || string(args[i:]) == "null" {
		args = nil
	} else if args[i] != '{' {
		return ErrNotObject
	}
	var err error
	if args != nil {
		if r.members, err = rpc.Members(r.members, args); err != nil {
			if err == rpc.ErrDuplicateKey {
				return &Error{Msg: "duplicate argument name"}
			}
			return ErrNotObject
		}
	}
	// Path.
	if cap(r.pathArg) < len(p.segments) {
		r.pathArg = make([][]byte, len(p.segments))
	}
	r.pathArg = r.pathArg[:len(p.segments)]
	for si, s := range p.segments {
		r.pathArg[si] = nil
		if s.param == "" {
			continue
		}
		for _, m := range r.members {
			if string(m.Key) == s.param {
				r.pathArg[si] = m.Value
				break
			}
		}
		if r.pathArg[si] == nil || string(r.pathArg[si]) == "null" {
			return &Error{Arg: s.param, Msg: "missing (it fills {" + s.param + "} in the path)"}
		}
	}
	for si, s := range p.segments {
		if s.param == "" {
			r.Path = append(r.Path, s.literal...)
			continue
		}
		raw := r.pathArg[si]
		r.scratch, err = scalarText(r.scratch[:0], raw)
		if err != nil {
			return &Error{Arg: s.param, Msg: "a path parameter must be a string, number or boolean"}
		}
		if s.whole {
			switch string(r.scratch) {
			case "":
				return &Error{Arg: s.param, Msg: "must not be empty (it is a path segment)"}
			case ".", "..":
				return &Error{Arg: s.param, Msg: `must not be "." or ".." (it is a path segment)`}
			}
		}
		r.Path = appendEscaped(r.Path, r.scratch)
	}
	// Query, headers, body.
	r.Query = append(r.Query, p.staticQuery...)
	bodyStarted := false
	for _, m := range r.members {
		name := string(m.Key) // no allocation: only used for lookups below
		loc := p.LocationOf(name)
		switch loc {
		case Path:
			continue
		case Query:
			if err := r.appendQuery(m.Key, m.Value); err != nil {
				return &Error{Arg: name, Msg: err.Error()}
			}
		case Header:
			if err := r.appendHeader(p.headerNames[name], m.Value); err != nil {
				return &Error{Arg: name, Msg: err.Error()}
			}
		case Payload:
			r.Body = append(r.Body[:0], m.Value...)
			bodyStarted = true
			continue
		case Body:
			if p.payload != "" {
				return &Error{Arg: name, Msg: "unexpected: the request body is the argument " + p.payload}
			}
			if bodyStarted {
				r.Body = append(r.Body, ',')
			} else {
				r.Body = append(r.Body, '{')
				bodyStarted = true
			}
			r.Body = rpc.AppendString(r.Body, m.Key)
			r.Body = append(r.Body, ':')
			r.Body = append(r.Body, m.Value...)
		}
	}
	switch {
	case !bodyStarted:
		r.Body = nil
	case p.payload == "":
		r.Body = append(r.Body, '}')
	}
	return nil
}

func (r *Request) appendQuery(key, raw []byte) error {
	switch raw[0] {
	case 'n': // null
		return nil
	case '[':
		var err error
		walkArray(raw, func(elem []byte) bool {
			if elem[0] == 'n' {
				return true
			}
			if err = r.appendQueryPair(key, elem); err != nil {
				return false
			}
			return true
		})
		return err
	}
	return r.appendQueryPair(key, raw)
}

func (r *Request) appendQueryPair(key, raw []byte) error {
	if len(r.Query) > 0 {
		r.Query = append(r.Query, '&')
	}
	r.Query = appendEscaped(r.Query, key)
	r.Query = append(r.Query, '=')
	var err error
	if raw[0] == '{' || raw[0] == '[' {
		r.scratch = compact(r.scratch[:0], raw)
	} else if r.scratch, err = scalarText(r.scratch[:0], raw); err != nil {
		return err
	}
	r.Query = appendEscaped(r.Query, r.scratch)
	return nil
}

func (r *Request) appendHeader(name string, raw []byte) error {
	if raw[0] == 'n' {
		return nil
	}
	r.scratch = r.scratch[:0]
	var err error
	switch raw[0] {
	case '{':
		return errors.New("a header value must be a string, number, boolean or an array of them")
	case '[':
		n := 0
		walkArray(raw, func(elem []byte) bool {
			if elem[0] == 'n' {
				return true
			}
			if n > 0 {
				r.scratch = append(r.scratch, ", "...)
			}
			n++
			if r.scratch, err = scalarText(r.scratch, elem); err != nil {
				err = errors.New("a header value must be a string, number, boolean or an array of them")
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
	default:
		if r.scratch, err = scalarText(r.scratch, raw); err != nil {
			return err
		}
	}
	for _, c := range r.scratch {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return errors.New("a header value must not contain control characters")
		}
	}
	v := append([]byte(nil), r.scratch...)
	r.Header = append(r.Header, HeaderField{Name: name, Value: v})
	return nil
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
