package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/tui"
)

// DashboardOptions are the inputs of `stoa dashboard`.
type DashboardOptions struct{ F *Factory }

func newDashboardCmd(f *Factory) *cobra.Command {
	o := &DashboardOptions{F: f}
	return noOutput(&cobra.Command{
		Use:     "dashboard",
		Aliases: []string{"dash"},
		Short:   "Live terminal dashboard: traffic per tenant and tool, XDP, events",
		Long: `Dashboard shows stoad live: a header (version, uptime, revision, listeners,
XDP mode), tenants and their tools with req/s, p50/p99, status classes, 429s
and upstream health, a detail view per tool with sparklines of the last
minutes, the XDP panel and recent events. It follows stoad across restarts.

Keys: ↑/↓ move, enter opens a tool, esc goes back, s cycles the sort column,
r reverses it, / filters by tenant or tool name, q quits.

It needs a terminal; scripts use: stoa top -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	})
}

// errNoTTY is returned when stdin or stdout is not a terminal.
var errNoTTY = &hintError{
	err:  errors.New("stoa dashboard needs a terminal (stdin and stdout are not both a TTY)"),
	hint: "for scripts and pipes use: stoa top -o json (or stoa top --follow -o json)",
}

// Run shows the dashboard until the user quits.
func (o *DashboardOptions) Run(ctx context.Context) error {
	io := o.F.IO
	if !io.InTTY || !io.OutTTY {
		return errNoTTY
	}
	c := o.F.Client()
	return tui.Run(ctx, tui.Options{Source: c, Socket: c.Endpoint(), In: io.In, Out: io.Out})
}

// hintError is an error with a fix the user can apply.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
func (e *hintError) Hint() string  { return e.hint }
