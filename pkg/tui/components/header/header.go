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

	// Listeners that do not fit are left out whole, never cut mid-address.
	line2 := st.Label.Render("xdp ") + h.xdpMode()
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
