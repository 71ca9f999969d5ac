// Package events is the dashboard's recent-events panel: applies,
// rollbacks, reloads, upstream ejections, blocks and errors, newest first.
package events

import (
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
)

// keep bounds the events held (the panel shows fewer).
const keep = 100

// Panel is the recent-events panel.
type Panel struct {
	c             *common.Common
	width, height int
	events        []api.Event // oldest first
	lastSeq       int64
	// Local turns event times into the viewer's zone (tests pin it).
	Local *time.Location
}

// New returns an empty panel.
func New(c *common.Common) *Panel { return &Panel{c: c, Local: time.Local} }

// LastSeq is the sequence number of the newest event seen (to resume the
// stream after a reconnect).
func (p *Panel) LastSeq() int64 { return p.lastSeq }

// SetSize implements common.Component.
func (p *Panel) SetSize(width, height int) { p.width, p.height = width, height }

// Update implements common.Component.
func (p *Panel) Update(msg tea.Msg) tea.Cmd {
	if m, ok := msg.(common.EventMsg); ok {
		if m.Event.Seq != 0 && m.Event.Seq <= p.lastSeq {
			return nil // already shown (a resumed stream's backlog)
		}
		p.lastSeq = max(p.lastSeq, m.Event.Seq)
		p.events = append(p.events, m.Event)
		if len(p.events) > keep {
			p.events = append(p.events[:0:0], p.events[len(p.events)-keep:]...)
		}
	}
	return nil
}

// View implements common.Component.
func (p *Panel) View() string {
	st := p.c.Styles
	lines := []string{st.PanelTitle.Render("Recent events")}
	if len(p.events) == 0 {
		lines = append(lines, st.Muted.Render("none yet"))
	}
	for i := len(p.events) - 1; i >= 0 && len(lines) < p.height; i-- {
		e := p.events[i]
		typ := e.Type
		style := st.Muted
		switch {
		case strings.HasPrefix(typ, "error"), strings.Contains(typ, "ejected"), strings.Contains(typ, "unhealthy"):
			style = st.Error
		case strings.HasPrefix(typ, "xdp."), strings.Contains(typ, "block"):
			style = st.Warning
		case strings.HasPrefix(typ, "config."):
			style = st.OK
		}
		msg := e.Message
		if e.Tenant != "" {
			msg = "[" + e.Tenant + "] " + msg
		}
		lines = append(lines, st.Muted.Render(e.Time.In(p.Local).Format("15:04:05"))+" "+
			style.Render(common.Fit(typ, 18))+" "+msg)
	}
	return common.Clip(strings.Join(lines, "\n"), p.width, p.height)
}
