package spec

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Severity says whether a diagnostic blocks an apply.
type Severity string

// The severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
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
	if d.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is a list of problems; as an error it renders all of them.
type Diagnostics []*Diagnostic

// HasErrors reports whether any diagnostic has error severity.
func (d Diagnostics) HasErrors() bool {
	for _, x := range d {
		if x.Severity != SeverityWarning {
			return true
		}
	}
	return false
}

// Errors counts the diagnostics of error severity.
func (d Diagnostics) Errors() int {
	n := 0
	for _, x := range d {
		if x.Severity != SeverityWarning {
			n++
		}
	}
	return n
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
	if x.Severity == SeverityWarning {
		accent = ansiYellow
	}
	if loc := x.Location(); loc != "" {
		b.WriteString(paint(ansiBold, loc+":"))
		b.WriteByte(' ')
	}
	if x.Severity == SeverityWarning {
		b.WriteString(paint(ansiYellow, "warning:"))
		b.WriteByte(' ')
	}
	b.WriteString(x.Message)
	b.WriteByte('\n')
	if x.Line > 0 && x.SourceLine != "" {
		num := strconv.Itoa(x.Line)
		width := max(5, len(num)+1)
		pad := strings.Repeat(" ", width)
		fmt.Fprintf(b, "%*s | %s\n", width, num, strings.TrimRight(x.SourceLine, "\r"))
		b.WriteString(pad)
		b.WriteString(" | ")
		b.WriteString(caretPad(x.SourceLine, x.Column))
		b.WriteString(paint(accent, "^"))
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
