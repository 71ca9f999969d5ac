package spec

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Severity says whether a diagnostic blocks an apply.
type Severity string

// The severities. Only errors block an apply; a note says something the
// reader should know that is not a problem of the files (an object they
// refer to is checked against the live state later).
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityNote    Severity = "note"
)

// Diagnostic is one problem found while loading or validating specs.
type Diagnostic struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Object *Ref   `json:"object,omitempty"`
	// Path is the field path inside the object, e.g. "spec.operations[1].name".
	Path     string   `json:"path,omitempty"`
	Message  string   `json:"message"`
	Hint     string   `json:"hint,omitempty"`
	Severity Severity `json:"severity"`
	// SourceLine is the offending line's text, for rendering.
	SourceLine string `json:"sourceLine,omitempty"`
	// Related are other places involved: the other side of a conflict.
	Related []Related `json:"related,omitempty"`
}

// Related is another place a diagnostic involves, such as the object a
// route collides with. Like a Diagnostic it has a file position when the
// object came from a file, else the object and field path.
type Related struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Object  *Ref   `json:"object,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Location renders where r points, like Diagnostic.Location; objects
// without a file are marked "(live)".
func (r *Related) Location() string {
	if r.File != "" {
		d := Diagnostic{File: r.File, Line: r.Line, Column: r.Column}
		return d.Location()
	}
	d := Diagnostic{Object: r.Object, Path: r.Path}
	if loc := d.Location(); loc != "" {
		return loc + " (live)"
	}
	return ""
}

// IsError reports whether the diagnostic blocks an apply (anything that is
// not a warning or a note).
func (d *Diagnostic) IsError() bool {
	return d.Severity != SeverityWarning && d.Severity != SeverityNote
}

// Location renders where the diagnostic points: file:line:col when known,
// else the object and field path.
func (d *Diagnostic) Location() string {
	var b strings.Builder
	switch {
	case d.File != "":
		b.WriteString(d.File)
		if d.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(d.Line))
			if d.Column > 0 {
				b.WriteByte(':')
				b.WriteString(strconv.Itoa(d.Column))
			}
		}
	case d.Object != nil:
		b.WriteString(d.Object.String())
		if d.Path != "" {
			b.WriteByte(' ')
			b.WriteString(d.Path)
		}
	case d.Path != "":
		b.WriteString(d.Path)
	}
	return b.String()
}

// String renders the diagnostic on one line: "location: [warning: ]message".
func (d *Diagnostic) String() string {
	var b strings.Builder
	if loc := d.Location(); loc != "" {
		b.WriteString(loc)
		b.WriteString(": ")
	}
	if !d.IsError() {
		b.WriteString(string(d.Severity))
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	for _, r := range d.Related {
		b.WriteString(" (")
		if loc := r.Location(); loc != "" {
			b.WriteString(loc)
			b.WriteString(": ")
		}
		b.WriteString(r.Message)
		b.WriteByte(')')
	}
	return b.String()
}

// Diagnostics is a list of problems; as an error it renders all of them.
type Diagnostics []*Diagnostic

// HasErrors reports whether any diagnostic has error severity.
func (d Diagnostics) HasErrors() bool {
	for _, x := range d {
		if x.IsError() {
			return true
		}
	}
	return false
}

// Errors counts the diagnostics of error severity.
func (d Diagnostics) Errors() int {
	n := 0
	for _, x := range d {
		if x.IsError() {
			n++
		}
	}
	return n
}

// OnlyErrors returns the diagnostics of error severity.
func (d Diagnostics) OnlyErrors() Diagnostics {
	var out Diagnostics
	for _, x := range d {
		if x.IsError() {
			out = append(out, x)
		}
	}
	return out
}

// Files counts the distinct files the diagnostics point into.
func (d Diagnostics) Files() int {
	seen := map[string]bool{}
	for _, x := range d {
		if x.File != "" {
			seen[x.File] = true
		}
	}
	return len(seen)
}

// Error renders every diagnostic in plain text, one per line, each hint in
// parentheses.
func (d Diagnostics) Error() string {
	var b strings.Builder
	for i, x := range d {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(x.String())
		if x.Hint != "" {
			b.WriteString(" (hint: ")
			b.WriteString(x.Hint)
			b.WriteByte(')')
		}
	}
	return b.String()
}

// ANSI escapes used by Format when colour is on.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

// Format writes the human rendering: the location and message, the source
// line with a caret under the column, and the hint; diagnostics are
// separated by a blank line. With color, the location is bold, the caret red
// (yellow for warnings) and "hint:" cyan; the text is the same either way.
func (d Diagnostics) Format(w io.Writer, color bool) {
	var b strings.Builder
	for i, x := range d {
		if i > 0 {
			b.WriteByte('\n')
		}
		formatOne(&b, x, color)
	}
	io.WriteString(w, b.String())
}

func formatOne(b *strings.Builder, x *Diagnostic, color bool) {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	accent := ansiRed
	switch x.Severity {
	case SeverityWarning:
		accent = ansiYellow
	case SeverityNote:
		accent = ansiCyan
	}
	if loc := x.Location(); loc != "" {
		b.WriteString(paint(ansiBold, loc+":"))
		b.WriteByte(' ')
	}
	if !x.IsError() {
		b.WriteString(paint(accent, string(x.Severity)+":"))
		b.WriteByte(' ')
	}
	b.WriteString(x.Message)
	b.WriteByte('\n')
	if x.Line > 0 && x.SourceLine != "" {
		num := strconv.Itoa(x.Line)
		width := max(5, len(num)+1)
		pad := strings.Repeat(" ", width)
		line, col := displayLine(strings.TrimRight(x.SourceLine, "\r"), x.Column)
		fmt.Fprintf(b, "%*s | %s\n", width, num, line)
		b.WriteString(pad)
		b.WriteString(" | ")
		b.WriteString(caretPad(line, col))
		b.WriteString(paint(accent, "^"))
		b.WriteByte('\n')
	}
	for _, r := range x.Related {
		b.WriteString("  ")
		if loc := r.Location(); loc != "" {
			b.WriteString(paint(ansiBold, loc+":"))
			b.WriteByte(' ')
		}
		b.WriteString(r.Message)
		b.WriteByte('\n')
	}
	if x.Hint != "" {
		b.WriteString("  ")
		b.WriteString(paint(ansiCyan, "hint:"))
		b.WriteByte(' ')
		b.WriteString(x.Hint)
		b.WriteByte('\n')
	}
}

// displayLine makes a source line safe to print: characters that would
// hide themselves or reorder the terminal line (see texthazards.go) and
// invalid UTF-8 are shown as <U+XXXX> (<0xNN> for bytes), and col (in
// runes) is moved to the same character of the result.
func displayLine(line string, col int) (string, int) {
	if !needsScan(line) {
		return line, col
	}
	var b strings.Builder
	last, outCol := 0, col
	scanChars(line, func(off, size int, r rune, c HazardClass) {
		m := fmt.Sprintf("<U+%04X>", r)
		if c == "" {
			m = fmt.Sprintf("<0x%02X>", line[off])
		}
		b.WriteString(line[last:off])
		b.WriteString(m)
		last = off + size
		if utf8.RuneCountInString(line[:off])+1 < col {
			outCol += len(m) - 1
		}
	})
	b.WriteString(line[last:])
	return b.String(), outCol
}

// caretPad returns the whitespace that puts a caret under column col
// (1-based, counted in bytes as goccy does for ASCII, runes otherwise) of
// line, keeping tabs so the caret lines up.
func caretPad(line string, col int) string {
	if col <= 1 {
		return ""
	}
	var b strings.Builder
	n := 0
	for _, r := range line {
		if n >= col-1 {
			break
		}
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
		n++
	}
	for ; n < col-1; n++ {
		b.WriteByte(' ')
	}
	return b.String()
}

// Sort orders the diagnostics by file, line and column; diagnostics without
// a file keep their relative order after those with one.
func (d Diagnostics) Sort() {
	sort.SliceStable(d, func(i, j int) bool {
		a, b := d[i], d[j]
		if (a.File == "") != (b.File == "") {
			return b.File == ""
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}
