package tui

import (
	"context"
	"io"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/tui/common"
)

// Options are the inputs of Run.
type Options struct {
	Source Source
	Socket string    // shown until the first sample arrives
	In     io.Reader // the terminal
	Out    io.Writer
}

// Run shows the dashboard until the user quits (q) or ctx ends. The
// terminal is restored on return.
func Run(ctx context.Context, o Options) error {
	m := NewModel(common.New(), o.Socket)
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(o.In), tea.WithOutput(o.Out))
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go Feed(fctx, o.Source, p.Send)
	_, err := p.Run()
	if ctx.Err() != nil {
		return nil // interrupted: not an error
	}
	return err
}
