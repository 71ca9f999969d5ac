// Package xdp is the dashboard's XDP panel: mode, passed and dropped per
// second, active blocks and the top sources.
package xdp

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
)

// Panel is the XDP panel.
type Panel struct {
	c             *common.Common
	width, height int
	x             *api.XDPStats
	seen          bool
}

// New returns an empty panel.
func New(c *common.Common) *Panel { return &Panel{c: c} }

// SetSize implements common.Component.
func (p *Panel) SetSize(width, height int) { p.width, p.height = width, height }

// Update implements common.Component.
func (p *Panel) Update(msg tea.Msg) tea.Cmd {
	if m, ok := msg.(common.StatsMsg); ok {
		p.x, p.seen = m.Sample.XDP, true
	}
	return nil
}

// View implements common.Component.
func (p *Panel) View() string {
	st := p.c.Styles
	lines := []string{st.PanelTitle.Render("XDP")}
	switch {
	case !p.seen:
	case p.x == nil:
		lines = append(lines, st.Muted.Render("not reported by this stoad"))
	default:
		x := p.x
		mode := st.OK.Render(x.Mode)
		if !x.Attached {
			mode = st.Warning.Render("off")
			if x.Fallback {
				mode += st.Muted.Render(" · userspace limiter")
			}
		}
		lines = append(lines, st.Label.Render("mode ")+mode)
		// The figures below the reason: the rate line (unless XDP and its
		// fallback are both off, when there is nothing to count) and the
		// blocks line.
		below := 1
		if x.Attached || x.Fallback {
			below = 2
		}
		if r := common.XDPReason(x); r != "" && !x.Attached {
			// The reason is the one hint an operator needs: as many whole
			// lines as fit, cut at a word with "…" if it must be.
			room := max(p.height-len(lines)-below, 1)
			for _, l := range common.Wrap(r, p.width, min(room, 3)) {
				lines = append(lines, st.Muted.Render(l))
			}
		}
		drop := common.Rate(x.DroppedRate)
		if x.DroppedRate > 0 {
			drop = st.Error.Render(drop)
		}
		switch {
		case x.Attached:
			lines = append(lines, fmt.Sprintf("%s %s  %s %s", st.Label.Render("pass/s"), st.Value.Render(common.Rate(x.PassedRate)), st.Label.Render("drop/s"), drop))
		case x.Fallback:
			// The userspace limiter counts connections, not packets.
			lines = append(lines, fmt.Sprintf("%s %s  %s %s", st.Label.Render("conn/s"), st.Value.Render(common.Rate(x.PassedRate)), st.Label.Render("refused/s"), drop))
		}
		lines = append(lines, fmt.Sprintf("%s %d  %s %d", st.Label.Render("blocks"), x.Blocks, st.Label.Render("sources"), x.TrackedSources))
		for _, s := range x.TopSources {
			verb := " dropped"
			if !x.Attached {
				verb = " refused"
			}
			lines = append(lines, common.Fit(s.Addr, max(p.width-14, 8))+" "+
				st.Muted.Render(common.FitRight(common.Count(s.Dropped), 5)+verb))
		}
	}
	return common.Clip(strings.Join(lines, "\n"), p.width, p.height)
}
