package tui

import (
	"context"
	"errors"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
)

// Source is where the dashboard's data comes from: *client.Client for the
// local stoad (a remote control plane's client later).
type Source interface {
	FollowStats(ctx context.Context, fn func(*api.StatsSample) error) error
	Events(ctx context.Context, o client.EventsOptions, fn func(api.Event) error) error
	Status(ctx context.Context) (*api.Status, error)
	DataPlanes(ctx context.Context) (*fleet.DataPlaneList, error)
}

var _ Source = client.API(nil)

// errStreamEnded is what the dashboard shows when stoad closed a stream
// (it stopped or restarts).
var errStreamEnded = errors.New("stream ended (stoad stopped?)")

// Feed follows stoad's stats and event streams and sends their data to the
// program as messages until ctx ends. When stoad goes away it reports a
// ConnMsg and keeps retrying with backoff; the event stream resumes after
// the last event it delivered.
func Feed(ctx context.Context, src Source, send func(tea.Msg)) {
	go followEvents(ctx, src, send)
	go pollFleet(ctx, src, send, fleetInterval)
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

// fleetInterval is how often the dashboard asks for stoad's status and,
// on a control plane, its data planes (heartbeats come every few seconds;
// the list is small).
const fleetInterval = 3 * time.Second

// pollFleet sends stoad's status every interval and, while stoad is a
// control plane, its data planes. A failed status is not reported (the
// stats stream says when stoad is unreachable): the dashboard keeps the
// role it last knew. A failed list is reported, and polling goes on.
func pollFleet(ctx context.Context, src Source, send func(tea.Msg), interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if st, err := src.Status(ctx); err == nil && st != nil {
			send(common.StatusMsg{Status: st})
			if st.Role == common.RoleControlPlane {
				l, err := src.DataPlanes(ctx)
				if ctx.Err() != nil {
					return
				}
				send(common.FleetMsg{List: l, Err: err, At: time.Now()})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
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
