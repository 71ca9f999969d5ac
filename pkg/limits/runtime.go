package limits

import (
	"context"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/state"
)

// Sweeper is the limiter's runtime: it sweeps idle cells every minute and
// reports the limiter's size. The limiter holds state only (limits come
// with every call), so a revision needs nothing compiled here.
type Sweeper struct {
	l      *Limiter
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSweeper returns l's runtime.
func NewSweeper(l *Limiter) *Sweeper { return &Sweeper{l: l} }

func (r *Sweeper) Name() string                            { return "limits" }
func (r *Sweeper) Prepare(*state.Revision) (func(), error) { return func() {}, nil }
func (r *Sweeper) Status() api.Component {
	return api.Component{Name: "limits", State: "ok", Detail: fmt.Sprintf("GCRA, %d active keys", r.l.Len())}
}

func (r *Sweeper) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.l.Sweep()
			}
		}
	}()
	return nil
}

func (r *Sweeper) Stop(context.Context) error {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	return nil
}
