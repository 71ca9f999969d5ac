// Package fleet is the dashboard's fleet panel, shown on a control plane:
// its data planes with the revision each serves, how far behind it is, its
// health and when it was last heard from.
package fleet

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
)

// Panel is the fleet panel.
type Panel struct {
	c             *common.Common
	width, height int
	list          *fleet.DataPlaneList
	at            time.Time
	err           error
	seen          bool
}

// New returns an empty panel.
func New(c *common.Common) *Panel { return &Panel{c: c} }

// SetSize implements common.Component.
func (p *Panel) SetSize(width, height int) { p.width, p.height = width, height }

// Update implements common.Component.
func (p *Panel) Update(msg tea.Msg) tea.Cmd {
	if m, ok := msg.(common.FleetMsg); ok {
		p.seen, p.err = true, m.Err
		if m.Err == nil && m.List != nil {
			// A failed poll keeps the last list: the error line says it
			// may be out of date.
			p.list, p.at = m.List, m.At
		}
	}
	return nil
}

// Columns right of the name: revision, lag, health, last seen.
const (
	revW, lagW, healthW, seenW = 5, 4, 10, 5
	fixedW                     = revW + lagW + healthW + seenW + 4
)

// View implements common.Component.
func (p *Panel) View() string {
	st := p.c.Styles
	title := st.PanelTitle.Render("Data planes")
	if p.list != nil {
		title += st.Muted.Render(fmt.Sprintf(" · %d · rev %d", len(p.list.Items), p.list.Revision))
	}
	lines := []string{title}
	if p.err != nil {
		lines = append(lines, st.Warning.Render("cannot list: ")+st.Muted.Render(p.err.Error()))
	}
	switch {
	case !p.seen:
		lines = append(lines, st.Muted.Render("loading…"))
	case p.list == nil:
	case len(p.list.Items) == 0:
		lines = append(lines, st.Muted.Render("none yet; let one join with:"), st.Muted.Render("stoa fleet join-token create"))
	default:
		nameW := max(p.width-fixedW, 8)
		lines = append(lines, st.TableHead.Render(common.Fit("NAME", nameW)+" "+common.FitRight("REV", revW)+" "+
			common.FitRight("LAG", lagW)+" "+common.Fit("HEALTH", healthW)+" "+common.FitRight("SEEN", seenW)))
		items := Ordered(p.list.Items)
		room := p.height - len(lines)
		for i, dp := range items {
			if i == room-1 && len(items) > room {
				lines = append(lines, st.Muted.Render(fmt.Sprintf("+%d more (stoa get dataplanes)", len(items)-i)))
				break
			}
			lag := common.FitRight(fmt.Sprint(dp.Lag), lagW)
			if dp.Lag > 0 {
				lag = st.Warning.Render(lag)
			}
			lines = append(lines, common.Fit(dp.Name, nameW)+" "+common.FitRight(fmt.Sprint(dp.Revision), revW)+" "+
				lag+" "+p.health(dp.Health)+" "+common.FitRight(Since(p.at, dp.LastSeen), seenW))
		}
	}
	return common.Clip(strings.Join(lines, "\n"), p.width, p.height)
}

func (p *Panel) health(h string) string {
	st := p.c.Styles
	cell := common.Fit(h, healthW-2)
	switch h {
	case fleet.HealthOK:
		return st.OK.Render("● " + cell)
	case fleet.HealthDegraded, fleet.HealthStale:
		return st.Warning.Render("◐ " + cell)
	}
	return st.Error.Render("○ " + cell)
}

// Ordered puts the data planes that need a look first (not ok, then
// behind, most first), then the rest by name, so that a short panel shows
// the problems.
func Ordered(items []fleet.DataPlane) []fleet.DataPlane {
	out := slices.Clone(items)
	slices.SortStableFunc(out, func(a, b fleet.DataPlane) int {
		return cmp.Or(
			cmp.Compare(rank(a.Health), rank(b.Health)),
			cmp.Compare(b.Lag, a.Lag),
			cmp.Compare(a.Name, b.Name))
	})
	return out
}

func rank(h string) int {
	switch h {
	case fleet.HealthRevoked:
		return 0
	case fleet.HealthStale:
		return 1
	case fleet.HealthDegraded:
		return 2
	case fleet.HealthOK:
		return 4
	}
	return 3
}

// Since is how long before now t was, in the largest unit (3s, 2m, 5h,
// 3d), as `stoa get dataplanes` shows it.
func Since(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}
