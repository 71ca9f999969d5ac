package policy

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Position is a place in a file: 1-based line and column, the column
// counted in characters as goccy/go-yaml and pkg/spec's diagnostics count
// it.
type Position struct {
	Line, Column int
}

// MapOffset maps a byte offset inside a YAML scalar's value to the
// position in src (the whole file) of the character it was read from.
// start is where the scalar begins, as goccy reports it and pkg/spec's
// Source.Position returns it: the opening quote of a quoted scalar, the
// indicator (| or >) of a block scalar, the first character of a plain
// one. value is the scalar's decoded value; MapOffset reads the scalar
// again from src and, if that does not give value (a style it does not
// follow), returns start and false rather than a wrong position.
//
// It handles plain, single- and double-quoted (with escapes and line
// folding) and literal and folded block scalars with any chomping and
// indentation indicator. So a diagnostic at offset 9 of
//
//	allow: >-
//	  caller.tenant ==
//	  "acme"
//
// points at line 2 of the block, not at the line of "allow:".
func MapOffset(src string, start Position, value string, offset int) (Position, bool) {
	idx, ok := indexOf(src, start)
	if !ok {
		return start, false
	}
	var s scalarReader
	s.src, s.value = src, value
	switch src[idx] {
	case '"':
		ok = s.doubleQuoted(idx + 1)
	case '\'':
		ok = s.singleQuoted(idx + 1)
	case '|', '>':
		ok = s.block(idx)
	default:
		ok = s.plain(idx)
	}
	if !ok || !s.matches() {
		return start, false
	}
	if offset < 0 {
		offset = 0
	}
	if offset >= len(s.pos) {
		if len(s.pos) == 0 {
			return start, true
		}
		p := s.pos[len(s.pos)-1]
		p.Column++
		return p, true
	}
	return s.pos[offset], true
}

// indexOf converts a position into a byte index of src.
func indexOf(src string, p Position) (int, bool) {
	if p.Line < 1 || p.Column < 1 {
		return 0, false
	}
	i := 0
	for l := 1; l < p.Line; l++ {
		j := strings.IndexByte(src[i:], '\n')
		if j < 0 {
			return 0, false
		}
		i += j + 1
	}
	for c := 1; c < p.Column; c++ {
		if i >= len(src) || src[i] == '\n' {
			return 0, false
		}
		_, n := utf8.DecodeRuneInString(src[i:])
		i += n
	}
	if i >= len(src) {
		return 0, false
	}
	return i, true
}

// scalarReader decodes a scalar from src, recording for every byte of
// the output the position of the source character it came from.
type scalarReader struct {
	src, value string
	out        []byte
	pos        []Position
}

// matches reports whether the decoded text is the value. Block scalars may
// decode trailing line breaks that chomping removed; they do not matter
// for positions inside the value.
func (s *scalarReader) matches() bool {
	out := string(s.out)
	if out == s.value {
		return true
	}
	if strings.HasPrefix(out, s.value) && strings.Trim(out[len(s.value):], "\n") == "" {
		s.out, s.pos = s.out[:len(s.value)], s.pos[:len(s.value)]
		return true
	}
	return false
}

// posOf returns the position of byte index i of src.
func (s *scalarReader) posOf(i int) Position {
	line := 1 + strings.Count(s.src[:i], "\n")
	ls := strings.LastIndexByte(s.src[:i], '\n') + 1
	return Position{Line: line, Column: utf8.RuneCountInString(s.src[ls:i]) + 1}
}

// emit appends text, all of it attributed to source index at.
func (s *scalarReader) emit(text string, at int) {
	p := s.posOf(at)
	for i := 0; i < len(text); i++ {
		s.out = append(s.out, text[i])
		s.pos = append(s.pos, p)
	}
}

// emitSrc copies src[i:j] to the output, each byte at its own position.
func (s *scalarReader) emitSrc(i, j int) {
	for i < j {
		_, n := utf8.DecodeRuneInString(s.src[i:])
		s.emit(s.src[i:i+n], i)
		i += n
	}
}

// lineEnd is the index of the line break at or after i (or len(src)).
func (s *scalarReader) lineEnd(i int) int {
	if j := strings.IndexByte(s.src[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(s.src)
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// fold handles the line break at src[i] inside a quoted scalar: trailing
// blanks were already dropped by the caller; an empty line gives "\n",
// otherwise the break folds into a space. It returns the index of the
// next content character.
func (s *scalarReader) fold(i int) int {
	breakAt := i
	i++ // the '\n'
	empties := 0
	for {
		j := i
		for j < len(s.src) && isBlank(s.src[j]) {
			j++
		}
		if j < len(s.src) && (s.src[j] == '\n' || s.src[j] == '\r' && j+1 < len(s.src) && s.src[j+1] == '\n') {
			empties++
			i = s.lineEnd(j) + 1
			continue
		}
		i = j
		break
	}
	if empties == 0 {
		s.emit(" ", breakAt)
	} else {
		s.emit(strings.Repeat("\n", empties), breakAt)
	}
	return i
}

// trimBlanksBefore drops output blanks written since mark (the blanks
// before a line break in a quoted scalar are not part of the value).
func (s *scalarReader) trimBlanksBefore(mark int) {
	for len(s.out) > mark && isBlank(s.out[len(s.out)-1]) {
		s.out, s.pos = s.out[:len(s.out)-1], s.pos[:len(s.pos)-1]
	}
}

func (s *scalarReader) singleQuoted(i int) bool {
	mark := 0
	for i < len(s.src) {
		c := s.src[i]
		switch {
		case c == '\'' && i+1 < len(s.src) && s.src[i+1] == '\'':
			s.emit("'", i)
			i += 2
			mark = len(s.out)
		case c == '\'':
			return true
		case c == '\r' && i+1 < len(s.src) && s.src[i+1] == '\n':
			i++
		case c == '\n':
			s.trimBlanksBefore(mark)
			i = s.fold(i)
			mark = len(s.out)
		default:
			_, n := utf8.DecodeRuneInString(s.src[i:])
			s.emitSrc(i, i+n)
			if !isBlank(c) {
				mark = len(s.out)
			}
			i += n
		}
	}
	return false
}

var simpleEscapes = map[byte]string{
	'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", '\t': "\t", 'n': "\n", 'v': "\v", 'f': "\f",
	'r': "\r", 'e': "\x1b", ' ': " ", '"': `"`, '/': "/", '\\': `\`, 'N': "\u0085", '_': "\u00a0",
	'L': "\u2028", 'P': "\u2029",
}

func (s *scalarReader) doubleQuoted(i int) bool {
	mark := 0
	for i < len(s.src) {
		c := s.src[i]
		switch {
		case c == '"':
			return true
		case c == '\\' && i+1 < len(s.src):
			e := s.src[i+1]
			if r, ok := simpleEscapes[e]; ok {
				s.emit(r, i)
				i += 2
				mark = len(s.out)
				continue
			}
			width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			switch {
			case width > 0 && i+2+width <= len(s.src):
				n, err := strconv.ParseUint(s.src[i+2:i+2+width], 16, 32)
				if err != nil {
					return false
				}
				s.emit(string(rune(n)), i)
				i += 2 + width
				mark = len(s.out)
			case e == '\n' || e == '\r':
				// An escaped line break joins the lines without a space.
				i = s.lineEnd(i+1) + 1
				for i < len(s.src) && isBlank(s.src[i]) {
					i++
				}
				mark = len(s.out)
			default:
				return false
			}
		case c == '\r' && i+1 < len(s.src) && s.src[i+1] == '\n':
			i++
		case c == '\n':
			s.trimBlanksBefore(mark)
			i = s.fold(i)
			mark = len(s.out)
		default:
			_, n := utf8.DecodeRuneInString(s.src[i:])
			s.emitSrc(i, i+n)
			if !isBlank(c) {
				mark = len(s.out)
			}
			i += n
		}
	}
	return false
}

// plain reads a plain scalar: its first line up to a comment, then as
// many continuation lines (folded with spaces) as the value has.
func (s *scalarReader) plain(i int) bool {
	first := true
	for i <= len(s.src) && len(s.out) < len(s.value) {
		end := s.lineEnd(i)
		j := i
		for !first && j < end && isBlank(s.src[j]) {
			j++
		}
		k := end
		if c := strings.Index(s.src[j:end], " #"); c >= 0 {
			k = j + c
		}
		for k > j && (isBlank(s.src[k-1]) || s.src[k-1] == '\r') {
			k--
		}
		if j == k && !first {
			// An empty line is a line break of the value.
			s.emit("\n", end)
		} else {
			if !first && len(s.out) > 0 && s.out[len(s.out)-1] != '\n' {
				s.emit(" ", i-1)
			}
			s.emitSrc(j, k)
		}
		first = false
		if end >= len(s.src) {
			break
		}
		i = end + 1
	}
	return true
}

// block reads a literal (|) or folded (>) block scalar whose header starts
// at src[i].
func (s *scalarReader) block(i int) bool {
	folded := s.src[i] == '>'
	end := s.lineEnd(i)
	header := s.src[i+1 : end]
	if c := strings.IndexByte(header, '#'); c >= 0 {
		header = header[:c]
	}
	explicit := 0
	for _, c := range strings.TrimSpace(header) {
		if c >= '1' && c <= '9' {
			explicit = int(c - '0')
		}
	}
	if end >= len(s.src) {
		return true // empty block
	}
	// Collect the lines after the header.
	type line struct {
		start, end int // byte range, without the line break
	}
	var lines []line
	for j := end + 1; j <= len(s.src); {
		e := s.lineEnd(j)
		le := e
		if le > j && s.src[le-1] == '\r' {
			le--
		}
		lines = append(lines, line{j, le})
		if e >= len(s.src) {
			break
		}
		j = e + 1
	}
	indentOf := func(l line) int {
		n := 0
		for l.start+n < l.end && s.src[l.start+n] == ' ' {
			n++
		}
		return n
	}
	// The content indentation: that of the first non-empty line, less the
	// leading spaces an indentation indicator kept in the value.
	indent := -1
	for _, l := range lines {
		if n := indentOf(l); l.start+n < l.end {
			indent = n
			if explicit > 0 {
				lead := len(s.value) - len(strings.TrimLeft(strings.TrimLeft(s.value, "\n"), " ")) - (len(s.value) - len(strings.TrimLeft(s.value, "\n")))
				indent = n - lead
			}
			break
		}
	}
	if indent <= 0 {
		return indent == -1 // only empty lines: an empty value
	}
	prevMore, started, pending := false, false, 0
	var lastEnd int
	for _, l := range lines {
		n := indentOf(l)
		empty := l.start+n >= l.end
		if !empty && n < indent {
			break // the block ended
		}
		if empty {
			pending++
			lastEnd = l.end
			continue
		}
		content := l.start + indent
		more := s.src[content] == ' ' || s.src[content] == '\t'
		switch {
		case !folded:
			if started {
				pending++
			}
			s.emit(strings.Repeat("\n", pending), lastEnd)
		case !started:
			s.emit(strings.Repeat("\n", pending), lastEnd)
		case pending == 0 && !more && !prevMore:
			s.emit(" ", lastEnd)
		case !more && !prevMore:
			s.emit(strings.Repeat("\n", pending), lastEnd)
		default:
			s.emit(strings.Repeat("\n", pending+1), lastEnd)
		}
		s.emitSrc(content, l.end)
		started, prevMore, pending, lastEnd = true, more, 0, l.end
	}
	if started {
		s.emit(strings.Repeat("\n", pending+1), lastEnd)
	}
	return true
}
