// Package header renders the dashboard's top lines: which stoad, its
// version, uptime, revision, listeners and XDP mode, the connection state,
// and the gateway-wide figures.
package header

import (
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
)

// Height is the number of lines the header takes.
const Height = 3

// Header is the dashboard header.
type Header struct {
	c         *common.Common
	width     int
	sample    *api.StatsSample
	connected bool
	err       error
	socket    string
	// status is stoad's last polled status (its role, and where a data
	// plane's configuration comes from); planes a control plane's fleet.
	status   *api.Status
	planes   *fleet.DataPlaneList
	fleetErr error
}

// New returns a header for the stoad at socket.
func New(c *common.Common, socket string) *Header { return &Header{c: c, socket: socket} }

// SetSize implements common.Component.
func (h *Header) SetSize(width, _ int) { h.width = width }

// Update implements common.Component.
func (h *Header) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case common.StatsMsg:
		h.sample, h.connected, h.err = msg.Sample, true, nil
	case common.ConnMsg:
		h.connected, h.err = msg.Connected, msg.Err
	case common.StatusMsg:
		h.status = msg.Status
	case common.FleetMsg:
		h.fleetErr = msg.Err
		if msg.Err == nil {
			h.planes = msg.List
		}
	}
	return nil
}

// View implements common.Component.
func (h *Header) View() string {
	st := h.c.Styles
	var state string
	switch {
	case h.connected:
		state = st.Live.Render("● live")
	case h.sample == nil && h.err == nil:
		state = st.Muted.Render("connecting…")
	default:
		state = st.Warning.Render("reconnecting…")
	}
	if h.sample == nil {
		line1 := st.Title.Render("stoa dashboard") + st.Muted.Render(" · "+h.socket)
		return common.Clip(common.Spread(line1, state, h.width)+"\n"+h.errLine(), h.width, Height)
	}
	s := h.sample
	d := s.Daemon
	left := st.Title.Render("stoad "+d.Version) +
		st.Muted.Render(fmt.Sprintf(" · pid %d · up %s · ", d.PID, common.Uptime(d.UptimeSeconds))) +
		st.Label.Render("rev ") + st.Value.Render(fmt.Sprint(s.Revision))
	line1 := common.Spread(left, state, h.width)

	// Where the configuration comes from (a data plane) or the fleet's
	// state (a control plane) leads, cut only when it alone is too wide;
	// listeners that do not fit are left out whole, never cut mid-address.
	line2 := st.Label.Render("xdp ") + h.xdpMode()
	if role := h.role(); role != "" {
		line2 = role
		if common.Width(role) > h.width {
			line2 = common.Fit(role, h.width)
		}
		if next := st.Muted.Render(" · ") + st.Label.Render("xdp ") + h.xdpMode(); common.Width(line2)+common.Width(next) <= h.width {
			line2 += next
		}
	}
	for _, l := range d.Listeners {
		if l.Name == "localapi" {
			continue
		}
		next := st.Muted.Render(" · " + l.Name + " " + l.Address)
		if common.Width(line2)+common.Width(next) > h.width {
			break
		}
		line2 += next
	}

	t := s.Totals
	figures := []string{
		figure(h, "req/s", common.Rate(t.RPS)), figure(h, "p50", common.Ms(t.P50Ms)),
		figure(h, "p99", common.Ms(t.P99Ms)), figure(h, "2xx", common.Rate(t.CodeRates.S2xx)),
		figure(h, "4xx", common.Rate(t.CodeRates.S4xx)), h.errFigure("5xx", t.CodeRates.S5xx),
		h.errFigure("429", t.LimitedRate), figure(h, "total", common.Count(t.Requests)),
	}
	// On a narrow terminal whole figures give way, least telling first
	// (total, 2xx, 4xx, p50), rather than the line being cut mid-figure.
	join := func() string {
		return strings.Join(slices.DeleteFunc(slices.Clone(figures), func(f string) bool { return f == "" }), "  ")
	}
	for _, drop := range []int{7, 3, 4, 1} {
		if common.Width(join()) <= h.width {
			break
		}
		figures[drop] = ""
	}
	line3 := join()
	if !h.connected && h.err != nil {
		line3 = h.errLine()
	}
	return common.Clip(line1+"\n"+line2+"\n"+line3, h.width, Height)
}

// role is the header's word on the fleet: on a data plane where its
// configuration comes from, on a control plane how its data planes are;
// "" on a standalone stoad.
func (h *Header) role() string {
	st := h.c.Styles
	s := h.status
	if s == nil {
		return ""
	}
	switch {
	case s.Fleet != nil:
		f := s.Fleet
		out := st.Label.Render("config ") + st.Value.Render(f.ControlPlane) + " " + syncState(h, f.State)
		if f.Origin != "" {
			out += st.Muted.Render(" · from " + f.Origin)
		}
		if f.Lag > 0 {
			out += st.Warning.Render(fmt.Sprintf(" · %d behind", f.Lag))
		}
		return out
	case s.Bundle != nil:
		b := s.Bundle
		out := st.Label.Render("config ") + st.Value.Render("bundle "+b.File)
		if b.Origin != "" {
			out += st.Muted.Render(" · from " + b.Origin)
		}
		if b.LastError != "" {
			out += st.Warning.Render(" · load failed")
		}
		return out
	case s.Role == common.RoleControlPlane:
		out := st.Label.Render("control plane ")
		switch {
		case h.fleetErr != nil:
			return out + st.Warning.Render("data planes unknown")
		case h.planes == nil:
			return out + st.Muted.Render("data planes…")
		}
		out += st.Value.Render(plural(len(h.planes.Items), "data plane"))
		counts := map[string]int{}
		behind := 0
		for _, dp := range h.planes.Items {
			counts[dp.Health]++
			if dp.Lag > 0 {
				behind++
			}
		}
		for _, health := range []string{fleet.HealthRevoked, fleet.HealthStale, fleet.HealthDegraded} {
			if counts[health] > 0 {
				out += st.Warning.Render(fmt.Sprintf(" · %d %s", counts[health], health))
			}
		}
		if behind > 0 {
			out += st.Warning.Render(fmt.Sprintf(" · %d behind", behind))
		}
		return out
	case s.Role == common.RoleDataPlane:
		return st.Label.Render("data plane")
	}
	return ""
}

func syncState(h *Header, state string) string {
	st := h.c.Styles
	switch state {
	case fleet.StateConnected:
		return st.OK.Render(state)
	case fleet.StateUnauthorized:
		return st.Error.Render(state)
	case fleet.StatePartitioned:
		return st.Warning.Render(state)
	}
	return st.Muted.Render(state)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func (h *Header) errLine() string {
	if h.err == nil {
		return ""
	}
	return h.c.Styles.Warning.Render("stoad unreachable: ") + h.c.Styles.Muted.Render(h.err.Error())
}

func (h *Header) xdpMode() string {
	st := h.c.Styles
	if x := h.sample.XDP; x != nil {
		switch {
		case x.Attached:
			return st.OK.Render(common.XDPMode(x))
		case x.Fallback:
			return st.Warning.Render(common.XDPMode(x))
		}
		return st.Muted.Render(common.XDPMode(x))
	}
	for _, c := range h.sample.Daemon.Components {
		if c.Name == "xdp" {
			return st.Muted.Render(c.State)
		}
	}
	return st.Muted.Render("n/a")
}

func figure(h *Header, label, value string) string {
	return h.c.Styles.Label.Render(label+" ") + h.c.Styles.Value.Render(value)
}

func (h *Header) errFigure(label string, v float64) string {
	if v > 0 {
		return h.c.Styles.Label.Render(label+" ") + h.c.Styles.Error.Render(common.Rate(v))
	}
	return figure(h, label, common.Rate(v))
}
