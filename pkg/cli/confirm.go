package cli

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/plan"
)

// confirmation is what a destructive command asks before it acts: the
// changes (shown as a diff on stderr, the conversation's stream), a
// question, and the command lines to suggest when it cannot ask.
type confirmation struct {
	changes  []plan.Change
	warning  string // printed before the question, when set
	question string // without the [y/N]
	preview  string // the command that only shows the diff (--dry-run)
	force    string // the command that skips the question (--yes)
}

// confirm shows the diff and asks on the terminal whether to go ahead.
// --yes skips the question (the diff is still shown); without a terminal
// it refuses, so CI says explicitly what it wants.
func confirm(f *Factory, yes bool, c confirmation) error {
	io := f.IO
	if !yes && !io.InTTY {
		return &hintError{
			err:  errors.New("confirmation needed, and stdin is not a terminal to ask on: nothing changed"),
			hint: fmt.Sprintf("review it with: %s, then run: %s", c.preview, c.force),
		}
	}
	if f.Output != "json" {
		if err := plan.RenderText(io.ErrOut, c.changes, plan.RenderOptions{Color: io.ColorErr()}); err != nil {
			return err
		}
	}
	if c.warning != "" {
		fmt.Fprintln(io.ErrOut, c.warning)
	}
	if yes {
		return nil
	}
	fmt.Fprintf(io.ErrOut, "%s [y/N] ", c.question)
	line, err := bufio.NewReader(io.In).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(io.ErrOut)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("cancelled: nothing changed")
}
