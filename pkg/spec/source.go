package spec

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Source says where an object came from.
type Source struct {
	// File is the path as the user gave it ("<stdin>" for "-").
	File string
	// Line and Column are those of the object's first token.
	Line, Column int

	doc    *docState
	prefix string   // the object's path in its document: "" or "items[3]" in a List
	bad    []string // paths where decoding failed (validation does not repeat those problems)
}

// fileSource is one input buffer shared by the Sources of its documents.
type fileSource struct {
	name string
	data string

	once  sync.Once
	lines []int // byte offset of the start of every line
}

// line returns the text of 1-based line n without its line break, or "".
func (f *fileSource) line(n int) string {
	f.once.Do(func() {
		// Sized first: a 6 MB spec set has 300,000 lines.
		f.lines = make([]int, 1, strings.Count(f.data, "\n")+1)
		for off := 0; ; {
			i := strings.IndexByte(f.data[off:], '\n')
			if i < 0 {
				break
			}
			off += i + 1
			f.lines = append(f.lines, off)
		}
	})
	if n < 1 || n > len(f.lines) {
		return ""
	}
	start := f.lines[n-1]
	end := len(f.data)
	if n < len(f.lines) {
		end = f.lines[n] - 1
	}
	if start > end {
		return ""
	}
	return strings.TrimSuffix(f.data[start:end], "\r")
}

// lineOf returns the 1-based line holding byte offset off.
func (f *fileSource) lineOf(off int) int {
	f.line(1)
	return sort.Search(len(f.lines), func(i int) bool { return f.lines[i] > off })
}

// numLines is the number of lines of the buffer (a final line without a
// line break counts).
func (f *fileSource) numLines() int {
	f.line(1)
	return len(f.lines)
}

// clamp keeps a position inside the buffer so that a diagnostic never
// points past the input, whatever the parser reports.
func (f *fileSource) clamp(line, col int) (int, int, string) {
	if n := f.numLines(); line > n {
		line = n
	}
	if line < 1 {
		line = 1
	}
	text := f.line(line)
	if col < 1 {
		col = 1
	}
	if max := len([]rune(text)) + 1; col > max {
		col = max
	}
	return line, col, text
}

// docState is what the Sources of a document's objects keep of it: where
// its text is (the AST is dropped after decoding — goccy's trees take ~50 KB
// per small document — and re-parsed only when a position is asked for).
type docState struct {
	file       *fileSource
	base       int // lines of the file before the parsed chunk
	start, end int // the chunk's byte range in file.data
	index      int // the document's index among the chunk's documents

	mu  sync.Mutex
	ast *docAST // re-parsed on demand
}

// pos converts a chunk-relative token position into a file position.
func (s *docState) pos(tk *token.Token) (int, int) {
	if tk == nil || tk.Position == nil {
		return s.base + 1, 1
	}
	return s.base + tk.Position.Line, tk.Position.Column
}

// parsed returns the document's AST, parsing the chunk again if needed.
// The caller holds s.mu.
func (s *docState) parsed() *docAST {
	if s.ast != nil {
		return s.ast
	}
	s.ast = &docAST{}
	func() {
		defer func() { _ = recover() }() // it parsed before; be safe anyway
		af, err := parser.Parse(lexer.Tokenize(s.file.data[s.start:s.end]), 0, parser.AllowDuplicateMapKey())
		if err == nil && s.index < len(af.Docs) && af.Docs[s.index] != nil {
			s.ast.root = af.Docs[s.index].Body
		}
	}()
	return s.ast
}

// docAST is a parsed document and its anchors (collected on first use). It
// is used by one goroutine at a time.
type docAST struct {
	root    ast.Node
	anchors map[string]ast.Node
}

// anchor resolves an alias name within the document.
func (a *docAST) anchor(name string) ast.Node {
	if a.anchors == nil {
		a.anchors = map[string]ast.Node{}
		collectAnchors(a.root, a.anchors, 0)
	}
	return a.anchors[name]
}

// collectAnchors records every anchor under n.
func collectAnchors(n ast.Node, m map[string]ast.Node, depth int) {
	if n == nil || depth > maxDepth {
		return
	}
	switch v := n.(type) {
	case *ast.AnchorNode:
		if v.Name != nil {
			m[v.Name.String()] = v.Value
		}
		collectAnchors(v.Value, m, depth+1)
	case *ast.TagNode:
		collectAnchors(v.Value, m, depth+1)
	case *ast.MappingNode:
		for _, mv := range v.Values {
			collectAnchors(mv.Key, m, depth+1)
			collectAnchors(mv.Value, m, depth+1)
		}
	case *ast.MappingValueNode:
		collectAnchors(v.Key, m, depth+1)
		collectAnchors(v.Value, m, depth+1)
	case *ast.MappingKeyNode:
		collectAnchors(v.Value, m, depth+1)
	case *ast.SequenceNode:
		for _, e := range v.Values {
			collectAnchors(e, m, depth+1)
		}
	}
}

// isBad reports whether path lies at or under a path where decoding failed.
func (s *Source) isBad(path string) bool {
	for _, b := range s.bad {
		if hasPathPrefix(path, b) {
			return true
		}
	}
	return false
}

// hasPathPrefix reports whether path equals prefix or lies below it.
func hasPathPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	if len(path) == len(prefix) || prefix == "" {
		return true
	}
	c := path[len(prefix)]
	return c == '.' || c == '['
}

// Position resolves a field path such as "spec.operations[1].name" or
// "metadata.name" to line, column and the full text of that source line.
// key=true points at the mapping key (for unknown-field errors), false at
// the value. A path that does not exist falls back to the nearest existing
// ancestor, pointing at that ancestor's key (the line a missing field would
// be added under).
func (s *Source) Position(path string, key bool) (line, col int, lineText string) {
	if s == nil || s.doc == nil {
		if s == nil {
			return 0, 0, ""
		}
		return s.Line, s.Column, ""
	}
	s.doc.mu.Lock()
	defer s.doc.mu.Unlock()
	d := s.doc.parsed()
	if d.root == nil {
		return s.doc.file.clamp(s.Line, s.Column)
	}
	switch {
	case s.prefix == "":
	case path == "":
		path = s.prefix
	default:
		path = s.prefix + "." + path
	}
	return s.doc.position(d, path, key)
}

// text returns the whole text of the object's file, in which its
// positions count lines and columns; false for objects not read from text.
func (s *Source) text() (string, bool) {
	if s == nil || s.doc == nil || s.doc.file == nil {
		return "", false
	}
	return s.doc.file.data, true
}

// find looks for text at or after line:col (col in runes) in the rest of
// the object's document and returns where it starts. Diagnostics about a
// part of a value (a hidden character in a description) use it to point
// at the part rather than at the value's first character; text written
// with escapes is not found, and the caller keeps the value's position.
func (s *Source) find(line, col int, text string) (int, int, string, bool) {
	if s == nil || s.doc == nil || text == "" {
		return 0, 0, "", false
	}
	f := s.doc.file
	last := f.lineOf(s.doc.end - 1)
	for l := line; l <= last; l++ {
		lt := f.line(l)
		from := 0
		if l == line {
			for c := 1; c < col && from < len(lt); c++ {
				_, size := utf8.DecodeRuneInString(lt[from:])
				from += size
			}
		}
		if i := strings.Index(lt[from:], text); i >= 0 {
			return l, utf8.RuneCountInString(lt[:from+i]) + 1, lt, true
		}
	}
	return 0, 0, "", false
}

// walk follows path in the document AST d as far as it exists: the node
// reached, the key of the entry holding it (if any), and whether the whole
// path was found.
func (d *docAST) walk(path string) (node, keyNode ast.Node, found bool) {
	node = d.resolve(d.root, 0)
	for _, seg := range splitPath(path) {
		var next, nextKey ast.Node
		if seg.index != -1 {
			if seq, ok := node.(*ast.SequenceNode); ok && seg.index >= 0 && seg.index < len(seq.Values) {
				next = seq.Values[seg.index]
			}
		} else if mv := d.lookup(node, seg.key); mv != nil {
			next, nextKey = mv.Value, mv.Key
		}
		if next == nil {
			return node, keyNode, false
		}
		node, keyNode = d.resolve(next, 0), nextKey
	}
	return node, keyNode, true
}

// has reports whether path is written in the object's source (not only
// filled in by defaults). Objects without a source have nothing written.
func (s *Source) has(path string) bool {
	if s == nil || s.doc == nil {
		return false
	}
	s.doc.mu.Lock()
	defer s.doc.mu.Unlock()
	d := s.doc.parsed()
	if d.root == nil {
		return false
	}
	if s.prefix != "" {
		path = s.prefix + "." + path
	}
	_, _, found := d.walk(path)
	return found
}

// position resolves path in the document AST a.
func (s *docState) position(d *docAST, path string, key bool) (line, col int, lineText string) {
	node, keyNode, found := d.walk(path)
	target := node
	if keyNode != nil && (key || isNull(node) || !found && isContainer(node)) {
		target = keyNode
	}
	l, c := s.pos(nodeStart(target))
	return s.file.clamp(l, c)
}

// lookup finds the entry for key in the mapping n, following merge keys
// (each merged mapping once, breadth first, as the decoder does).
func (s *docAST) lookup(n ast.Node, key string) *ast.MappingValueNode {
	seen := map[ast.Node]bool{}
	level := []ast.Node{n}
	for len(level) > 0 {
		var next []ast.Node
		for _, m := range level {
			if seen[m] {
				continue
			}
			seen[m] = true
			values, ok := mappingValues(m)
			if !ok {
				continue
			}
			for _, mv := range values {
				if k, ok := keyText(mv.Key); ok && k == key {
					if _, merge := mv.Key.(*ast.MergeKeyNode); !merge {
						return mv
					}
				}
			}
			for _, mv := range values {
				if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
					next = append(next, s.mergeSources(mv.Value, 0)...)
				}
			}
		}
		level = next
	}
	return nil
}

// mergeSources lists the mappings a merge key's value brings in.
func (s *docAST) mergeSources(v ast.Node, depth int) []ast.Node {
	v = s.resolve(v, depth)
	if seq, ok := v.(*ast.SequenceNode); ok {
		out := make([]ast.Node, 0, len(seq.Values))
		for _, e := range seq.Values {
			out = append(out, s.resolve(e, depth))
		}
		return out
	}
	return []ast.Node{v}
}

// resolve unwraps anchors, tags and aliases.
func (s *docAST) resolve(n ast.Node, depth int) ast.Node {
	for i := 0; i < maxDepth; i++ {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			if v.Value == nil {
				return n
			}
			t := s.anchor(v.Value.String())
			if t == nil {
				return n
			}
			n = t
		default:
			return n
		}
	}
	return n
}

// isNull reports whether n is an empty or null value.
func isNull(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, ok := n.(*ast.NullNode)
	return ok
}

// isContainer reports whether n is a mapping or a list.
func isContainer(n ast.Node) bool {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		return true
	}
	return false
}

// nodeStart is the token where n begins in the source.
func nodeStart(n ast.Node) *token.Token {
	switch v := n.(type) {
	case nil:
		return nil
	case *ast.MappingNode:
		if v.IsFlowStyle || len(v.Values) == 0 {
			return v.Start
		}
		return nodeStart(v.Values[0])
	case *ast.MappingValueNode:
		return nodeStart(v.Key)
	case *ast.MappingKeyNode:
		return v.Start
	case *ast.SequenceNode:
		return v.Start
	case *ast.AnchorNode:
		return v.Start
	case *ast.AliasNode:
		return v.Start
	case *ast.TagNode:
		return v.Start
	case *ast.LiteralNode:
		return v.Start
	case *ast.DocumentNode:
		return nodeStart(v.Body)
	}
	return n.GetToken()
}

// pathSeg is one step of a field path: a key or a list index.
type pathSeg struct {
	key   string
	index int // -1 for keys
}

// splitPath parses "spec.operations[1].in[\"x.y\"]" into segments.
func splitPath(p string) []pathSeg {
	var out []pathSeg
	for p != "" {
		switch p[0] {
		case '.':
			p = p[1:]
		case '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return out
			}
			inner := p[1:end]
			if strings.HasPrefix(inner, `"`) {
				// A quoted key may itself contain ']'.
				if q, err := strconv.QuotedPrefix(p[1:]); err == nil {
					k, _ := strconv.Unquote(q)
					out = append(out, pathSeg{key: k, index: -1})
					p = p[1+len(q):]
					p = strings.TrimPrefix(p, "]")
					continue
				}
			}
			i, err := strconv.Atoi(inner)
			if err != nil {
				i = -2 // matches nothing
			}
			out = append(out, pathSeg{index: i})
			p = p[end+1:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			out = append(out, pathSeg{key: p[:end], index: -1})
			p = p[end:]
		}
	}
	return out
}

// pathKey renders a map key as a path segment: ".key" for simple keys,
// `["odd key"]` otherwise.
func pathKey(k string) string {
	simple := k != ""
	for i := 0; i < len(k) && simple; i++ {
		c := k[i]
		simple = c == '_' || c == '-' || c == '/' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	if simple {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}
