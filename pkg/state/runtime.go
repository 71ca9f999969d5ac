package state

import (
	"context"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// Runtime is one part of the data plane compiled from each revision (the
// proxy, MCP, XDP, admission, …). Reloads are transactional: every
// runtime prepares the new revision first; only when all succeed are they
// swapped in, so a bad revision changes nothing. Runtimes live next to
// their domain and are composed by pkg/daemon.
type Runtime interface {
	Name() string
	// Prepare compiles rev without touching what is serving and returns
	// the function that swaps it in. swap must not fail. A dry run
	// prepares and never swaps.
	Prepare(rev *Revision) (swap func(), err error)
	// Start begins serving (called once, after the first swap).
	Start(ctx context.Context) error
	// Stop shuts down gracefully within ctx.
	Stop(ctx context.Context) error
	// Status is the runtime's line in `stoa status`.
	Status() api.Component
}
