package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/yamlenc"
)

// RenderOptions tune the text rendering.
type RenderOptions struct {
	// Color adds ANSI colours (only on a terminal without NO_COLOR).
	Color bool
	// Context is the number of unchanged lines around each hunk (default 3).
	Context int
	// Brief prints one line per change instead of full diffs.
	Brief bool
}

const (
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiCyan  = "\x1b[36m"
	ansiBold  = "\x1b[1m"
	ansiReset = "\x1b[0m"
)

// ObjectYAML renders an object as YAML with secret values masked.
func ObjectYAML(o *spec.Object) string {
	if o == nil {
		return ""
	}
	b, err := json.Marshal(spec.Mask(o))
	if err != nil {
		return fmt.Sprintf("# cannot render: %v\n", err)
	}
	y, err := yamlenc.FromJSON(b)
	if err != nil {
		return fmt.Sprintf("# cannot render: %v\n", err)
	}
	return string(y)
}

// Verb is the past-tense word for an operation, as apply prints it.
func (op Op) Verb() string {
	switch op {
	case Create:
		return "created"
	case Update:
		return "updated"
	case Delete:
		return "deleted"
	}
	return string(op)
}

// RenderText writes a readable unified diff per changed object.
func RenderText(w io.Writer, changes []Change, opts RenderOptions) error {
	if opts.Context == 0 {
		opts.Context = 3
	}
	c := func(code, s string) string {
		if !opts.Color {
			return s
		}
		return code + s + ansiReset
	}
	var buf bytes.Buffer
	for _, ch := range changes {
		sign, code := "~", ansiCyan
		switch ch.Op {
		case Create:
			sign, code = "+", ansiGreen
		case Delete:
			sign, code = "-", ansiRed
		}
		fmt.Fprintf(&buf, "%s\n", c(ansiBold+code, fmt.Sprintf("%s %s %s", sign, ch.Op, ch.Ref)))
		if opts.Brief {
			continue
		}
		before, after := ObjectYAML(ch.Before), ObjectYAML(ch.After)
		switch ch.Op {
		case Create, Delete:
			text, p, code := after, "+", ansiGreen
			if ch.Op == Delete {
				text, p, code = before, "-", ansiRed
			}
			for _, line := range strings.SplitAfter(strings.TrimSuffix(text, "\n"), "\n") {
				buf.WriteString(c(code, "  "+p+" "+strings.TrimSuffix(line, "\n")))
				buf.WriteByte('\n')
			}
		case Update:
			ud := difflib.UnifiedDiff{
				A:       difflib.SplitLines(before),
				B:       difflib.SplitLines(after),
				Context: opts.Context,
			}
			text, err := difflib.GetUnifiedDiffString(ud)
			if err != nil {
				return err
			}
			for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
				switch {
				case strings.HasPrefix(line, "@@"):
					line = c(ansiCyan, line)
				case strings.HasPrefix(line, "+"):
					line = c(ansiGreen, "+ "+line[1:])
				case strings.HasPrefix(line, "-"):
					line = c(ansiRed, "- "+line[1:])
				default:
					line = "  " + strings.TrimPrefix(line, " ")
				}
				buf.WriteString("  " + line + "\n")
			}
		}
		if buf.Len() > 64<<10 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return err
			}
			buf.Reset()
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// JSONChange is the stable JSON form of a change (objects masked).
type JSONChange struct {
	Op     Op           `json:"op"`
	Ref    spec.Ref     `json:"ref"`
	Before *spec.Object `json:"before,omitempty"`
	After  *spec.Object `json:"after,omitempty"`
}

// MaskChanges returns changes with every object masked for output.
func MaskChanges(changes []Change) []JSONChange {
	out := make([]JSONChange, len(changes))
	for i, ch := range changes {
		out[i] = JSONChange{Op: ch.Op, Ref: ch.Ref}
		if ch.Before != nil {
			out[i].Before = spec.Mask(ch.Before)
		}
		if ch.After != nil {
			out[i].After = spec.Mask(ch.After)
		}
	}
	return out
}
