package tui

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
)

var fetched = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// planes is a control plane at revision 7 with three data planes: one
// current, one two revisions behind, one not heard from for a minute.
func planes() common.FleetMsg {
	return common.FleetMsg{At: fetched, List: &fleet.DataPlaneList{Revision: 7, Items: []fleet.DataPlane{
		{Name: "edge-ams-1", Address: "10.0.1.5:8080", Revision: 7, LastSeen: fetched.Add(-2 * time.Second), Health: fleet.HealthOK},
		{Name: "edge-fra-2", Revision: 5, Lag: 2, LastSeen: fetched.Add(-4 * time.Second), Health: fleet.HealthDegraded},
		{Name: "edge-nyc-1", Revision: 7, LastSeen: fetched.Add(-75 * time.Second), Health: fleet.HealthStale},
	}}}
}

func controlPlane() common.StatusMsg {
	return common.StatusMsg{Status: &api.Status{Role: common.RoleControlPlane, Revision: 7}}
}

func TestDashboardControlPlaneShowsFleet(t *testing.T) {
	m := newTestModel(80, 24)
	send(m, common.StatsMsg{Sample: sample(1)}, controlPlane())
	out := screen(t, m)
	mustContain(t, out, "control plane data planes…", "Data planes", "loading…", "Recent events")
	if strings.Contains(out, "XDP") || strings.Contains(out, "pass/s") {
		t.Errorf("a control plane serves no traffic: the fleet replaces the XDP panel:\n%s", out)
	}

	send(m, planes())
	out = screen(t, m)
	mustContain(t, out, "control plane 3 data planes · 1 stale · 1 degraded · 1 behind",
		"Data planes · 3 · rev 7", "NAME", "REV", "LAG", "HEALTH", "SEEN",
		"◐ stale", "◐ degraded", "● ok", "1m", "4s", "2s")
	// Those needing a look come first: stale, then degraded, then ok.
	if a, f, n := strings.Index(out, "edge-ams-1"), strings.Index(out, "edge-fra-2"), strings.Index(out, "edge-nyc-1"); !(n < f && f < a) {
		t.Errorf("fleet order: stale, degraded, ok wanted:\n%s", out)
	}
	row := lineWith(out, "edge-fra-2")
	for _, cell := range []string{" 5 ", " 2 ", "◐ degraded", " 4s"} {
		if !strings.Contains(row, cell) {
			t.Errorf("edge-fra-2's row lacks %q: %q", cell, row)
		}
	}
	checkGolden(t, "fleet-80x24.golden", out)

	// A failed poll says so and keeps the last list; the next one clears it.
	send(m, common.FleetMsg{Err: errors.New("forbidden: fleet.read needed")})
	out = screen(t, m)
	mustContain(t, out, "cannot list: forbidden", "edge-fra-2", "data planes unknown")
	send(m, planes())
	if out = screen(t, m); strings.Contains(out, "cannot list") || strings.Contains(out, "unknown") {
		t.Errorf("the error stays after a good poll:\n%s", out)
	}

	// No data planes yet: how to get one.
	send(m, common.FleetMsg{At: fetched, List: &fleet.DataPlaneList{Revision: 7}})
	mustContain(t, screen(t, m), "control plane 0 data planes", "stoa fleet join-token create")
}

func TestDashboardFleetFitsSmallTerminals(t *testing.T) {
	many := planes()
	for i := range 12 {
		many.List.Items = append(many.List.Items, fleet.DataPlane{Name: fmt.Sprintf("edge-%02d", i), Revision: 7, Health: fleet.HealthOK, LastSeen: fetched})
	}
	for _, size := range [][2]int{{60, 15}, {80, 24}, {120, 40}, {200, 60}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			m := newTestModel(size[0], size[1])
			send(m, common.StatsMsg{Sample: sample(1)}, controlPlane(), many)
			out := screen(t, m)
			// The header's summary is there whatever the size.
			mustContain(t, out, "control plane 15 data planes")
			if size[1] < 24 {
				if strings.Contains(out, "Data planes") {
					t.Errorf("%dx%d should give the table the room:\n%s", size[0], size[1], out)
				}
				return
			}
			// The panel is cut with a count of what is not shown, problems
			// first.
			mustContain(t, out, "Data planes · 15", "edge-nyc-1", "edge-fra-2", "more (stoa get dataplanes)")
			send(m, key("enter"))
			screen(t, m)
		})
	}
}

func TestDashboardDataPlaneHeader(t *testing.T) {
	cases := []struct {
		name   string
		status *api.Status
		want   string
	}{
		{"joined", &api.Status{Role: common.RoleDataPlane, Fleet: &fleet.SyncStatus{ControlPlane: "https://cp.example:7443",
			State: fleet.StateConnected, Revision: 3, Origin: api.OriginControlPlane}},
			"config https://cp.example:7443 connected · from control-plane · xdp generic"},
		{"partitioned", &api.Status{Role: common.RoleDataPlane, Fleet: &fleet.SyncStatus{ControlPlane: "https://cp.example:7443",
			State: fleet.StatePartitioned, Revision: 3, Origin: "disk", Lag: 2}},
			"config https://cp.example:7443 partitioned · from disk · 2 behind"},
		{"bundle", &api.Status{Role: common.RoleDataPlane, Bundle: &api.BundleStatus{File: "/etc/stoa/bundle.json", Revision: 3, Origin: "file"}},
			"config bundle /etc/stoa/bundle.json · from file · xdp generic"},
		{"bundle failing", &api.Status{Role: common.RoleDataPlane, Bundle: &api.BundleStatus{File: "/etc/stoa/bundle.json", Origin: "disk", LastError: "signature does not verify"}},
			"config bundle /etc/stoa/bundle.json · from disk · load failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newTestModel(80, 24)
			send(m, common.StatsMsg{Sample: sample(1)}, common.StatusMsg{Status: c.status})
			out := screen(t, m)
			if l := strings.TrimSpace(strings.Split(out, "\n")[1]); !strings.HasPrefix(l, c.want) {
				t.Errorf("header line 2 = %q, want it to begin %q", l, c.want)
			}
			// A data plane serves traffic: the XDP panel stays.
			mustContain(t, out, "XDP", "pass/s 1.2k", "billing-api")
			if strings.Contains(out, "Data planes") {
				t.Errorf("a data plane has no fleet panel:\n%s", out)
			}
			// At 60 columns the source leads; what does not fit goes.
			m.Update(tea.WindowSizeMsg{Width: 60, Height: 15})
			if l := strings.Split(screen(t, m), "\n")[1]; !strings.HasPrefix(l, "config ") {
				t.Errorf("60 columns: %q", l)
			}
		})
	}
}

// TestDashboardStandaloneUnchanged: a standalone stoad's status changes
// nothing on screen — no fleet panel, no role in the header.
func TestDashboardStandaloneUnchanged(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {60, 15}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			before, after := newTestModel(size[0], size[1]), newTestModel(size[0], size[1])
			send(before, common.StatsMsg{Sample: sample(1)})
			send(after, common.StatsMsg{Sample: sample(1)}, common.StatusMsg{Status: &api.Status{Revision: 3}})
			if b, a := screen(t, before), screen(t, after); a != b {
				t.Errorf("standalone status changed the screen:\n%s\nwas:\n%s", a, b)
			}
		})
	}
	// A control plane that becomes standalone (restarted without
	// --control-plane) gets its XDP panel back.
	m := newTestModel(80, 24)
	send(m, common.StatsMsg{Sample: sample(1)}, controlPlane(), planes(), common.StatusMsg{Status: &api.Status{}})
	out := screen(t, m)
	mustContain(t, out, "XDP", "pass/s 1.2k")
	if strings.Contains(out, "Data planes") || strings.Contains(out, "control plane") {
		t.Errorf("standalone again but still showing the fleet:\n%s", out)
	}
}

func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
