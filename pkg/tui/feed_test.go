package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
)

// flakySource fails its first stats stream (stoad restarting), then
// streams two samples and ends; events resume after the last one seen.
type flakySource struct {
	mu         sync.Mutex
	statsCalls int
	eventOpts  []client.EventsOptions
}

func (f *flakySource) FollowStats(ctx context.Context, fn func(*api.StatsSample) error) error {
	f.mu.Lock()
	f.statsCalls++
	n := f.statsCalls
	f.mu.Unlock()
	if n == 1 {
		return errors.New("connection refused")
	}
	if n == 2 {
		fn(&api.StatsSample{Revision: 1})
		fn(&api.StatsSample{Revision: 2})
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *flakySource) Events(ctx context.Context, o client.EventsOptions, fn func(api.Event) error) error {
	f.mu.Lock()
	f.eventOpts = append(f.eventOpts, o)
	n := len(f.eventOpts)
	f.mu.Unlock()
	if n == 1 {
		fn(api.Event{Seq: 41})
		fn(api.Event{Seq: 42})
		return errors.New("stream ended")
	}
	<-ctx.Done()
	return ctx.Err()
}

// A standalone stoad: no role, no data planes.
func (f *flakySource) Status(context.Context) (*api.Status, error) { return &api.Status{}, nil }
func (f *flakySource) DataPlanes(context.Context) (*fleet.DataPlaneList, error) {
	return &fleet.DataPlaneList{}, nil
}

func TestFeedReconnects(t *testing.T) {
	src := &flakySource{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs := make(chan tea.Msg, 100)
	go Feed(ctx, src, func(m tea.Msg) { msgs <- m })

	var got []string
	deadline := time.After(10 * time.Second)
	resumed := func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return len(src.eventOpts) >= 2
	}
	for len(got) < 4 || !resumed() {
		select {
		case m := <-msgs:
			switch m := m.(type) {
			case common.StatsMsg:
				got = append(got, "stats")
			case common.ConnMsg:
				got = append(got, "lost:"+m.Err.Error())
			}
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("feed stalled after %v", got)
		}
	}
	want := []string{"lost:connection refused", "stats", "stats", "lost:" + errStreamEnded.Error()}
	for i, w := range want {
		if i >= len(got) || got[i] != w {
			t.Fatalf("messages %v, want prefix %v", got, want)
		}
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.eventOpts) < 2 || src.eventOpts[0].Last != 20 || src.eventOpts[1].Since != 42 || !src.eventOpts[1].Follow {
		t.Fatalf("event stream options: %+v", src.eventOpts)
	}
}

// fleetSource is a stoad whose status fails once (restarting), then says
// it is role; its data planes fail to list once, then list one.
type fleetSource struct {
	flakySource
	role        string
	statusCalls int
	listCalls   int
}

func (f *fleetSource) Status(context.Context) (*api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statusCalls++
	if f.statusCalls == 1 {
		return nil, errors.New("connection refused")
	}
	return &api.Status{Role: f.role}, nil
}

func (f *fleetSource) DataPlanes(context.Context) (*fleet.DataPlaneList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listCalls++
	if f.listCalls == 1 {
		return nil, errors.New("permission denied")
	}
	return &fleet.DataPlaneList{Revision: 4, Items: []fleet.DataPlane{{Name: "edge-1", Revision: 4, Health: fleet.HealthOK}}}, nil
}

func TestFeedPollsFleet(t *testing.T) {
	for _, role := range []string{common.RoleControlPlane, common.RoleDataPlane, ""} {
		t.Run("role="+role, func(t *testing.T) {
			src := &fleetSource{role: role}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			msgs := make(chan tea.Msg, 100)
			go pollFleet(ctx, src, func(m tea.Msg) { msgs <- m }, time.Millisecond)

			var got []string
			deadline := time.After(10 * time.Second)
			for len(got) < 4 {
				select {
				case m := <-msgs:
					switch m := m.(type) {
					case common.StatusMsg:
						got = append(got, "status:"+m.Status.Role)
					case common.FleetMsg:
						switch {
						case m.Err != nil:
							got = append(got, "fleet:"+m.Err.Error())
						case m.At.IsZero():
							t.Fatal("a fleet list without the time it was fetched")
						default:
							got = append(got, fmt.Sprintf("fleet:%d", len(m.List.Items)))
						}
					}
				case <-deadline:
					t.Fatalf("poll stalled after %v", got)
				}
			}
			// The failed status is not reported; data planes are listed
			// only on a control plane, and a failed list is.
			want := []string{"status:" + role, "status:" + role, "status:" + role, "status:" + role}
			if role == common.RoleControlPlane {
				want = []string{"status:" + role, "fleet:permission denied", "status:" + role, "fleet:1"}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("messages %v, want %v", got, want)
			}
		})
	}
}
