package cli

import (
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are a command's standard streams and what they are attached
// to. A terminal changes decoration (colour), never which data appears.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	OutTTY, ErrTTY, InTTY bool
	// NoColor is set by NO_COLOR or TERM=dumb.
	NoColor bool
}

// SystemStreams returns the process's streams.
func SystemStreams() *IOStreams {
	isTTY := func(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		OutTTY: isTTY(os.Stdout), ErrTTY: isTTY(os.Stderr), InTTY: isTTY(os.Stdin),
		NoColor: os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb",
	}
}

// ColorOut reports whether stdout may carry colour.
func (s *IOStreams) ColorOut() bool { return s.OutTTY && !s.NoColor }

// ColorErr reports whether stderr may carry colour.
func (s *IOStreams) ColorErr() bool { return s.ErrTTY && !s.NoColor }
