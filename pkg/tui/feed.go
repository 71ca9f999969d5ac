package tui

import (
	"context"
	"errors"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
)

// Source is where the dashboard's data comes from: *client.Client for the
// local stoad (a remote control plane's client later).
type Source interface {
	FollowStats(ctx context.Context, fn func(*api.StatsSample) error) error
	Events(ctx context.Context, o client.EventsOptions, fn func(api.Event) error) error
}

var _ Source = (*client.Client)(nil)

// errStreamEnded is what the dashboard shows when stoad closed a stream
// (it stopped or restarts).
var errStreamEnded = errors.New("stream ended (stoad stopped?)")

// Feed follows stoad's stats and event streams and sends their data to the
// program as messages until ctx ends. When stoad goes away it reports a
// ConnMsg and keeps retrying with backoff; the event stream resumes after
// the last event it delivered.
func Feed(ctx context.Context, src Source, send func(tea.Msg)) {
	go followEvents(ctx, src, send)
	backoff := newBackoff()
	for ctx.Err() == nil {
		err := src.FollowStats(ctx, func(s *api.StatsSample) error {
			backoff.reset()
			send(common.StatsMsg{Sample: s})
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errStreamEnded
		}
		send(common.ConnMsg{Err: err})
		backoff.wait(ctx)
	}
}

func followEvents(ctx context.Context, src Source, send func(tea.Msg)) {
	var last int64
	backoff := newBackoff()
	for ctx.Err() == nil {
		o := client.EventsOptions{Follow: true, Last: 20}
		if last > 0 {
			o = client.EventsOptions{Follow: true, Since: last}
		}
		_ = src.Events(ctx, o, func(e api.Event) error {
			backoff.reset()
			last = max(last, e.Seq)
			send(common.EventMsg{Event: e})
			return nil
		})
		backoff.wait(ctx)
	}
}

// backoff waits 250ms, doubling to 2s between reconnection attempts.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 250 * time.Millisecond} }
func (b *backoff) reset()  { b.d = 250 * time.Millisecond }
func (b *backoff) wait(ctx context.Context) {
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	b.d = min(b.d*2, 2*time.Second)
}
