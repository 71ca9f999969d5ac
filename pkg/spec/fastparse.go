package spec

import (
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// fastParse parses a document written in the plain YAML that spec files
// are almost always written in — block mappings and sequences, one-line
// flow collections, plain and simply quoted one-line scalars, comments —
// straight into the AST goccy's parser would build, at a small fraction of
// its cost (goccy's lexer and parser dominate loading otherwise).
//
// It is deliberately conservative: on anything else (anchors, aliases,
// tags, block scalars, multi-line scalars, escapes, tabs, CR, odd keys,
// syntax errors) it returns ok=false and the caller parses the document with
// goccy, so goccy stays the reference for every unusual input and for all
// syntax error messages. FuzzFastParse checks that whatever it accepts
// decodes exactly as goccy's AST does, positions included.
//
// The AST lives in the arena a (nil for a private one): the caller must be
// done with it before the arena is reused for the next document. Decoding
// keeps no pointer into it — values are copied out as strings of the source
// text — so one arena per worker makes parsing nearly allocation-free.
func fastParse(src string, a *fastArena) (body ast.Node, ok bool) {
	if strings.IndexByte(src, '\t') >= 0 || strings.IndexByte(src, '\r') >= 0 || !isASCII(src) && !utf8.ValidString(src) {
		return nil, false
	}
	if a == nil {
		a = &fastArena{}
	}
	a.reset()
	p := &fastParser{arena: a}
	p.lines = a.lines
	first := true
	for lineNo, off := 1, 0; off < len(src); lineNo++ {
		end := strings.IndexByte(src[off:], '\n')
		if end < 0 {
			end = len(src)
		} else {
			end += off
		}
		text := src[off:end]
		off = end + 1
		indent := len(text) - len(strings.TrimLeft(text, " "))
		content := text[indent:]
		if content == "" || content[0] == '#' {
			continue
		}
		if isDocMarker(text) {
			rest := strings.TrimLeft(text[3:], " ")
			if !first || lineNo != 1 || (rest != "" && rest[0] != '#') {
				return nil, false
			}
			continue
		}
		if text[0] == '%' || strings.HasPrefix(text, "...") || text[len(text)-1] == ' ' {
			// Trailing spaces shift goccy's column of a plain scalar; let
			// goccy itself say where things are.
			return nil, false
		}
		first = false
		ascii, plain := lineChars(text)
		if !plain {
			// Control characters: goccy decides what they mean (it refuses
			// some, such as a NUL after "- ").
			return nil, false
		}
		p.lines = append(p.lines, fastLine{no: lineNo, indent: indent, text: text, content: content, ascii: ascii})
	}
	a.lines = p.lines[:0]
	if len(p.lines) == 0 || p.lines[0].indent != 0 {
		return nil, false
	}
	defer func() {
		if recover() != nil { // a bail deep inside
			body, ok = nil, false
		}
	}()
	body = p.node(0)
	if p.i != len(p.lines) {
		return nil, false
	}
	return body, true
}

// fastLine is one line with content.
type fastLine struct {
	no      int    // 1-based line number in the chunk
	indent  int    // leading spaces (or the column of content after "- ")
	text    string // the whole line
	content string // the line from indent on
	ascii   bool
}

type fastParser struct {
	lines []fastLine
	i     int
	arena *fastArena
}

// errBail aborts fast parsing; fastParse recovers it and lets goccy parse.
type errBail struct{}

func bail() { panic(errBail{}) }

// lineChars reports whether s is ASCII, and whether it is free of control
// characters (C0 and DEL; tab and CR were refused before).
func lineChars(s string) (ascii, plain bool) {
	ascii = true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return false, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return ascii, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// pos is the position of byte offset off of line l's text.
func (l *fastLine) pos(off int) token.Position {
	col := off + 1
	if !l.ascii {
		col = utf8.RuneCountInString(l.text[:off]) + 1
	}
	return token.Position{Line: l.no, Column: col}
}

// off is the byte offset in l.text of s, a non-empty substring of it (all
// the parser's strings are slices of the line).
func (l *fastLine) off(s string) int {
	return int(uintptr(unsafe.Pointer(unsafe.StringData(s))) - uintptr(unsafe.Pointer(unsafe.StringData(l.text))))
}

// node parses the block node starting at the current line, which must be
// indented at least min.
func (p *fastParser) node(min int) ast.Node {
	l := &p.lines[p.i]
	if l.indent < min {
		bail()
	}
	if isSeqEntry(l.content) {
		return p.sequence(l.indent)
	}
	return p.mapping(l.indent)
}

func isSeqEntry(s string) bool {
	return s == "-" || strings.HasPrefix(s, "- ")
}

// mapping parses block mapping entries at indent.
func (p *fastParser) mapping(indent int) ast.Node {
	a := p.arena
	base := len(a.mvStack)
	for p.i < len(p.lines) && p.lines[p.i].indent == indent {
		l := &p.lines[p.i]
		entry, rest := p.key(l, l.content)
		p.i++
		var value ast.Node
		if rest == "" || rest[0] == '#' {
			switch {
			case p.i < len(p.lines) && p.lines[p.i].indent > indent:
				value = p.node(indent + 1)
			case p.i < len(p.lines) && p.lines[p.i].indent == indent && isSeqEntry(p.lines[p.i].content):
				value = p.sequence(indent)
			default:
				cp := *entry.Start.Position
				cp.Column++
				value = ast.Null(a.token(token.ImplicitNullType, "null", cp))
			}
		} else {
			value = p.inline(l, rest)
			if p.i < len(p.lines) && p.lines[p.i].indent > indent {
				bail() // a multi-line scalar or a syntax error: goccy decides
			}
		}
		entry.Value = value
		a.mvStack = append(a.mvStack, entry)
	}
	if len(a.mvStack) == base {
		bail()
	}
	return a.mapping(a.mvStack[base].Start, false, base)
}

// sequence parses block sequence entries at indent.
func (p *fastParser) sequence(indent int) ast.Node {
	a := p.arena
	base := len(a.nodeStack)
	var start *token.Token
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && isSeqEntry(p.lines[p.i].content) {
		l := &p.lines[p.i]
		if start == nil {
			start = a.token(token.SequenceEntryType, "-", l.pos(indent))
		}
		rest := strings.TrimLeft(l.content[1:], " ")
		if rest == "" || rest[0] == '#' || isSeqEntry(rest) {
			bail()
		}
		// Parse the entry as if the dash were indentation.
		l.indent = len(l.text) - len(rest)
		l.content = rest
		var value ast.Node
		if p.isKey(rest) {
			value = p.mapping(l.indent)
		} else {
			p.i++
			value = p.inline(l, rest)
			if p.i < len(p.lines) && p.lines[p.i].indent > indent {
				bail()
			}
		}
		a.nodeStack = append(a.nodeStack, value)
	}
	if start == nil {
		bail()
	}
	return a.sequence(start, false, base)
}

// isKey reports whether s starts a "key: value" entry.
func (p *fastParser) isKey(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '"', '\'':
		q := strings.IndexByte(s[1:], s[0])
		return q >= 0 && strings.HasPrefix(s[q+2:], ":")
	case '[', '{':
		return false
	}
	for j := 0; j < len(s); j++ {
		switch s[j] {
		case ':':
			if j+1 == len(s) || s[j+1] == ' ' {
				return true
			}
		case '#':
			if j > 0 && s[j-1] == ' ' {
				return false
			}
		}
	}
	return false
}

// key parses "key: rest" at the start of s (part of l) and returns the
// entry (key set, value not yet) and what follows the colon, left-trimmed.
func (p *fastParser) key(l *fastLine, s string) (*ast.MappingValueNode, string) {
	var key ast.MapKeyNode
	var after string
	switch s[0] {
	case '"', '\'':
		q := strings.IndexByte(s[1:], s[0])
		if q < 0 {
			bail()
		}
		key = p.quoted(l, s[:q+2])
		after = s[q+2:]
	default:
		j := -1
		for k := 0; k < len(s); k++ {
			if s[k] == ':' && (k+1 == len(s) || s[k+1] == ' ') {
				j = k
				break
			}
		}
		if j <= 0 {
			bail()
		}
		text := s[:j]
		if strings.ContainsAny(text, "#{}[],&*!|>'\"%@`") || strings.ContainsAny(text[:1], "-?: ") ||
			text[len(text)-1] == ' ' || text == "<<" {
			bail()
		}
		key = p.scalar(l, text)
		after = s[j:]
	}
	if after == "" || after[0] != ':' || (len(after) > 1 && after[1] != ' ') {
		bail()
	}
	e := p.newEntry(l, after)
	e.Key = key
	return e, strings.TrimLeft(after[1:], " ")
}

// inline parses the value that ends line l: a quoted or plain scalar or a
// flow collection, optionally followed by a comment.
func (p *fastParser) inline(l *fastLine, s string) ast.Node {
	var n ast.Node
	var rest string
	switch s[0] {
	case '"', '\'':
		q := strings.IndexByte(s[1:], s[0])
		if q < 0 {
			bail()
		}
		n, rest = p.quoted(l, s[:q+2]), s[q+2:]
	case '[', '{':
		n, rest = p.flow(l, s)
	default:
		text := s
		if c := strings.Index(s, " #"); c >= 0 {
			text = s[:c]
		}
		text = strings.TrimRight(text, " ")
		if strings.Contains(text, ": ") || strings.HasSuffix(text, ":") || strings.ContainsAny(text[:1], "&*!|>%@`?,]}#:") ||
			text[0] == '-' && (len(text) == 1 || text[1] == ' ') {
			bail()
		}
		return p.scalar(l, text)
	}
	if trimmed := strings.TrimLeft(rest, " "); trimmed != "" && (trimmed[0] != '#' || len(trimmed) == len(rest)) {
		bail() // only a comment, after a space, may follow the value
	}
	return n
}

// flow parses a one-line flow collection at the start of s.
func (p *fastParser) flow(l *fastLine, s string) (ast.Node, string) {
	a := p.arena
	open := s[0]
	pos := l.pos(l.off(s))
	s = strings.TrimLeft(s[1:], " ")
	if open == '{' {
		start := a.token(token.MappingStartType, "{", pos)
		base := len(a.mvStack)
		if strings.HasPrefix(s, "}") {
			return a.mapping(start, true, base), s[1:]
		}
		for {
			entry, rest := p.flowKey(l, s)
			if rest == "" || rest[0] == ',' || rest[0] == '}' {
				bail()
			}
			entry.Value, s = p.flowValue(l, rest)
			a.mvStack = append(a.mvStack, entry)
			s = strings.TrimLeft(s, " ")
			if s == "" {
				bail()
			}
			if s[0] == '}' {
				return a.mapping(start, true, base), s[1:]
			}
			if s[0] != ',' {
				bail()
			}
			s = strings.TrimLeft(s[1:], " ")
			if s == "" || s[0] == '}' || s[0] == ',' {
				bail()
			}
		}
	}
	start := a.token(token.SequenceStartType, "[", pos)
	base := len(a.nodeStack)
	if strings.HasPrefix(s, "]") {
		return a.sequence(start, true, base), s[1:]
	}
	for {
		var v ast.Node
		v, s = p.flowValue(l, s)
		a.nodeStack = append(a.nodeStack, v)
		s = strings.TrimLeft(s, " ")
		if s == "" {
			bail()
		}
		if s[0] == ']' {
			return a.sequence(start, true, base), s[1:]
		}
		if s[0] != ',' {
			bail()
		}
		s = strings.TrimLeft(s[1:], " ")
		if s == "" || s[0] == ']' || s[0] == ',' {
			bail()
		}
	}
}

// flowKey parses "key: " inside a flow mapping.
func (p *fastParser) flowKey(l *fastLine, s string) (*ast.MappingValueNode, string) {
	if s == "" {
		bail()
	}
	var key ast.MapKeyNode
	var after string
	if s[0] == '"' || s[0] == '\'' {
		q := strings.IndexByte(s[1:], s[0])
		if q < 0 {
			bail()
		}
		key, after = p.quoted(l, s[:q+2]), s[q+2:]
	} else {
		end := strings.IndexAny(s, ":,[]{}#")
		if end <= 0 || s[end] != ':' {
			bail()
		}
		text := s[:end]
		if strings.ContainsAny(text, "&*!|>'\"%@`") || strings.ContainsAny(text[:1], "-?: ") || text[len(text)-1] == ' ' || text == "<<" {
			bail()
		}
		key, after = p.scalar(l, text), s[end:]
	}
	if !strings.HasPrefix(after, ": ") {
		bail()
	}
	e := p.newEntry(l, after)
	e.Key = key
	return e, strings.TrimLeft(after[1:], " ")
}

// flowValue parses one value inside a flow collection and returns the rest.
func (p *fastParser) flowValue(l *fastLine, s string) (ast.Node, string) {
	if s == "" {
		bail()
	}
	switch s[0] {
	case '"', '\'':
		q := strings.IndexByte(s[1:], s[0])
		if q < 0 {
			bail()
		}
		return p.quoted(l, s[:q+2]), s[q+2:]
	case '[', '{':
		return p.flow(l, s)
	}
	end := flowPlainEnd(s)
	if end < 0 || s[end] == '#' || s[end] == ':' || s[end] == '[' || s[end] == '{' {
		bail() // unclosed, a comment, a key in a list or nested oddities
	}
	text := strings.TrimRight(s[:end], " ")
	if text == "" || strings.ContainsAny(text[:1], "&*!|>%@`?-#") {
		bail()
	}
	return p.scalar(l, text), s[end:]
}

// flowPlainEnd finds where a plain scalar inside a flow collection ends:
// at a flow indicator, at " #", or at a ':' followed by a space or a flow
// indicator ("https://x" stays whole). It returns -1 at the end of s.
func flowPlainEnd(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',', '[', ']', '{', '}':
			return i
		case '#':
			if i > 0 && s[i-1] == ' ' {
				return i
			}
		case ':':
			if i+1 == len(s) || strings.IndexByte(" ,[]{}", s[i+1]) >= 0 {
				return i
			}
		}
	}
	return -1
}
