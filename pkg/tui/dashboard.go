// Package tui is stoa's terminal dashboard (`stoa dashboard`): a Bubble
// Tea program composed of components (pkg/tui/components/...) that share
// styles, key bindings and a history (pkg/tui/common). Data arrives as
// messages from stoad's stats and event streams (feed.go); components
// never fetch anything themselves, so tests drive them with messages.
package tui

import (
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/tui/common"
	"github.com/stoa-gateway/stoa/pkg/tui/components/detail"
	"github.com/stoa-gateway/stoa/pkg/tui/components/events"
	"github.com/stoa-gateway/stoa/pkg/tui/components/fleet"
	"github.com/stoa-gateway/stoa/pkg/tui/components/header"
	"github.com/stoa-gateway/stoa/pkg/tui/components/tools"
	"github.com/stoa-gateway/stoa/pkg/tui/components/xdp"
	"github.com/stoa-gateway/stoa/pkg/tui/keymap"
)

// Smallest terminal the layout is designed for; smaller ones get a note.
const (
	MinWidth  = 80
	MinHeight = 24
)

// Model is the dashboard: header, the tools table (or one tool's detail
// view), the XDP (on a control plane: fleet) and events panels, and a
// help line.
type Model struct {
	c             *common.Common
	width, height int

	header *header.Header
	table  *tools.Table
	detail *detail.Detail
	xdp    *xdp.Panel
	fleet  *fleet.Panel
	events *events.Panel

	// controlPlane: stoad said it is a control plane, which serves no
	// traffic: the fleet panel takes the XDP panel's place.
	controlPlane bool

	showDetail bool
}

// NewModel builds the dashboard for the stoad at socket (shown until the
// first sample arrives).
func NewModel(c *common.Common, socket string) *Model {
	m := &Model{
		c:      c,
		header: header.New(c, socket),
		table:  tools.New(c),
		detail: detail.New(c),
		xdp:    xdp.New(c),
		fleet:  fleet.New(c),
		events: events.New(c),
	}
	m.resize(MinWidth, MinHeight)
	return m
}

// Events is the events panel (the feed resumes after its last event).
func (m *Model) Events() *events.Panel { return m.events }

// Init implements tea.Model.
func (m *Model) Init() tea.Cmd { return nil }

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return m, nil
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case common.StatsMsg:
		m.record(msg)
		return m, m.broadcast(msg)
	case common.EventMsg:
		return m, m.events.Update(msg)
	case common.ConnMsg:
		return m, m.header.Update(msg)
	case common.StatusMsg:
		if cp := msg.Status != nil && msg.Status.Role == common.RoleControlPlane; cp != m.controlPlane {
			m.controlPlane = cp
			m.resize(m.width, m.height)
		}
		return m, m.header.Update(msg)
	case common.FleetMsg:
		return m, tea.Batch(m.header.Update(msg), m.fleet.Update(msg))
	case common.OpenToolMsg:
		m.detail.Show(msg.Tenant, msg.Tool)
		m.showDetail = true
		return m, nil
	case common.CloseDetailMsg:
		m.showDetail = false
		return m, nil
	}
	return m, nil
}

func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	if m.table.Filtering() && !m.showDetail {
		return m.table.Update(msg)
	}
	if m.c.Keys.Quit.Matches(msg) {
		return tea.Quit
	}
	if m.showDetail {
		return m.detail.Update(msg)
	}
	return m.table.Update(msg)
}

// record adds the sample's figures to the sparkline history.
func (m *Model) record(msg common.StatsMsg) {
	s := msg.Sample
	if s == nil || s.IntervalSeconds == 0 {
		return // no rates in a stream's first sample
	}
	h := m.c.History
	h.Tick()
	h.Record("", s.Totals.RPS, s.Totals.P99Ms)
	for _, t := range s.Tenants {
		for _, tool := range t.Tools {
			h.Record(common.Key(t.Name, tool.Name), tool.RPS, tool.P99Ms)
		}
	}
}

func (m *Model) broadcast(msg tea.Msg) tea.Cmd {
	var cmds []tea.Cmd
	for _, c := range []common.Component{m.header, m.table, m.detail, m.xdp, m.events} {
		cmds = append(cmds, c.Update(msg))
	}
	return tea.Batch(cmds...)
}

// minTableRows is how many rows of tools the table keeps however small the
// terminal: the XDP and events panels shrink, then go, to make room.
const minTableRows = 5

// panelHeight is the height of the XDP and events panels on a terminal h
// lines high (0: not shown).
func panelHeight(h int) int {
	if h >= 40 {
		return 10
	}
	// header, rule and help; the table's heading and status line
	room := h - header.Height - 2 - (minTableRows + 2)
	if room < 4 {
		return 0 // a panel of fewer lines says nothing useful
	}
	return min(room, 7)
}

func (m *Model) resize(w, h int) {
	m.width, m.height = w, h
	p := panelHeight(h)
	main := max(h-header.Height-1-p-1, 3)
	m.header.SetSize(w, header.Height)
	m.table.SetSize(w, main)
	m.detail.SetSize(w, main)
	xw := m.leftWidth(w)
	m.xdp.SetSize(xw, p)
	m.fleet.SetSize(xw, p)
	m.events.SetSize(max(w-xw-2, 10), p)
}

// leftWidth is the width of the bottom-left panel: XDP, or the fleet on a
// control plane (a row per data plane wants more room).
func (m *Model) leftWidth(w int) int {
	if m.controlPlane {
		return min(max(w*2/5, 40), 64)
	}
	return xdpWidth(w)
}

func xdpWidth(w int) int {
	if w >= 120 {
		return 40
	}
	return 30
}

// Render draws the whole screen as text (View wraps it; tests read it).
func (m *Model) Render() string {
	st := m.c.Styles
	if m.width < 20 || m.height < 10 {
		return common.Clip("terminal too small for the dashboard", m.width, m.height)
	}
	rule := st.Rule.Render(strings.Repeat("─", m.width))
	main := m.table.View()
	if m.showDetail {
		main = m.detail.View()
	}
	parts := []string{m.header.View(), rule, main}
	if p := panelHeight(m.height); p > 0 {
		xw := m.leftWidth(m.width)
		left := m.xdp.View()
		if m.controlPlane {
			left = m.fleet.View()
		}
		parts = append(parts, joinColumns(left, m.events.View(), xw, m.width-xw-2, p))
	}
	parts = append(parts, m.help())
	return common.Clip(strings.Join(parts, "\n"), m.width, m.height)
}

// View implements tea.Model: the dashboard fills the alternate screen,
// which Bubble Tea leaves (restoring the terminal) when it quits.
func (m *Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	v.WindowTitle = "stoa dashboard"
	return v
}

func (m *Model) help() string {
	k := m.c.Keys
	var bs []keymap.Binding
	switch {
	case m.showDetail:
		bs = []keymap.Binding{k.Back, k.Quit}
	case m.table.Filtering():
		bs = []keymap.Binding{{Key: "type", Help: "filter"}, {Key: "enter", Help: "keep"}, {Key: "esc", Help: "clear"}}
	default:
		bs = []keymap.Binding{k.Up, k.Down, k.Open, k.Sort, k.Reverse, k.Filter, k.Quit}
	}
	return keymap.HelpLine(m.c.Styles, m.width, bs...)
}

// joinColumns puts two blocks side by side, each cut to its width.
func joinColumns(left, right string, lw, rw, h int) string {
	l := strings.Split(common.Clip(left, lw, h), "\n")
	r := strings.Split(common.Clip(right, rw, h), "\n")
	out := make([]string, h)
	for i := range out {
		out[i] = common.Fit(l[i], lw) + "  " + r[i]
	}
	return strings.Join(out, "\n")
}
