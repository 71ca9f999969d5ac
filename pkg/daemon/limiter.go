package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/limits"
)

// limiterRuntime sweeps idle limiter cells and reports the limiter's size.
// The limiter holds state only (limits come with every call), so a revision
// needs nothing compiled here.
type limiterRuntime struct {
	l      *limits.Limiter
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *limiterRuntime) Name() string                   { return "limits" }
func (r *limiterRuntime) Prepare(*State) (func(), error) { return func() {}, nil }
func (r *limiterRuntime) Status() api.Component {
	return api.Component{Name: "limits", State: "ok", Detail: fmt.Sprintf("GCRA, %d active keys", r.l.Len())}
}

func (r *limiterRuntime) Start(context.Context) error {
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

func (r *limiterRuntime) Stop(context.Context) error {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	return nil
}
