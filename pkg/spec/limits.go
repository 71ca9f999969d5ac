package spec

import (
	"fmt"
	"unicode/utf8"
)

// Size caps. Specs are configuration, not data: a cap keeps a mistake (or
// a hostile file) from reaching MCP clients as megabytes of tool
// description, or from making stoad hold gigabytes. Each is far above what
// a hand-written or generated spec needs; docs/specs.md lists them.
const (
	// MaxFileBytes caps one spec file (or stdin). A file of 10,000 Tools
	// with two operations each is about 6 MB; stoa import openapi of
	// GitHub's published description writes about 23 MiB of YAML.
	MaxFileBytes = 64 << 20
	// MaxDescriptionBytes caps every description (about 2,000 tokens: what
	// a model reads on every tools/list).
	MaxDescriptionBytes = 8 << 10
	// MaxTitleBytes caps operation titles, which clients show as labels.
	MaxTitleBytes = 256
	// MaxTagBytes caps each tag.
	MaxTagBytes = 128
	// MaxSchemaBytes caps an operation's input schema, encoded as JSON.
	MaxSchemaBytes = 128 << 10
	// MaxStringBytes caps every other string value and mapping key.
	MaxStringBytes = 64 << 10
)

// sizeText renders a byte count for messages: "12 MiB", "9.5 KiB", "300 bytes".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<20))) + " MiB"
	case n >= 1<<10:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<10))) + " KiB"
	}
	return fmt.Sprintf("%d bytes", n)
}

func trimZero(s string) string {
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

// fileTooLarge is the diagnostic of a file over MaxFileBytes.
func fileTooLarge(name string, size int64) *Diagnostic {
	msg := fmt.Sprintf("file too large: %s; at most %s per file", sizeText(size), sizeText(MaxFileBytes))
	if size < 0 {
		msg = fmt.Sprintf("file too large: more than %s per file", sizeText(MaxFileBytes))
	}
	return &Diagnostic{File: name, Severity: SeverityError, Message: msg,
		Hint: "split the specs into several files; -f accepts a directory"}
}

// maxEncodingErrors bounds the invalid-UTF-8 diagnostics of one file.
const maxEncodingErrors = 5

// checkEncoding reports bytes of f that are not UTF-8, at their position.
// It returns false when the file is not UTF-8 at all (UTF-16) and should
// not be parsed.
func checkEncoding(f *fileSource) (Diagnostics, bool) {
	data := f.data
	if len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		return Diagnostics{{File: f.name, Line: 1, Column: 1, SourceLine: f.line(1), Severity: SeverityError,
			Message: "file is UTF-16 encoded; specs are UTF-8",
			Hint:    "convert it, e.g. iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8"}}, false
	}
	if utf8.ValidString(data) {
		return nil, true
	}
	var diags Diagnostics
	more, moreLine, moreCol := 0, 0, 0
	line, lineStart := 1, 0
	for i := 0; i < len(data); {
		c := data[i]
		if c == '\n' {
			line, lineStart = line+1, i+1
			i++
			continue
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(data[i:])
		if r != utf8.RuneError || size != 1 {
			i += size
			continue
		}
		if len(diags) == maxEncodingErrors {
			if more == 0 {
				moreLine, moreCol = line, utf8.RuneCountInString(data[lineStart:i])+1
			}
			more++
			i++
			continue
		}
		col := utf8.RuneCountInString(data[lineStart:i]) + 1
		diags = append(diags, &Diagnostic{File: f.name, Line: line, Column: col, SourceLine: f.line(line),
			Severity: SeverityError, Message: fmt.Sprintf("invalid UTF-8: byte 0x%02X is not part of a UTF-8 character", c),
			Hint: "save the file as UTF-8; stoa does not guess encodings, and would otherwise store U+FFFD in its place"})
		i++
	}
	if more > 0 {
		diags = append(diags, &Diagnostic{File: f.name, Line: moreLine, Column: moreCol, SourceLine: f.line(moreLine),
			Severity: SeverityError, Message: fmt.Sprintf("invalid UTF-8: %d more bytes from here on", more)})
	}
	return diags, true
}
