// Package detail is the dashboard's view of one tool: sparklines of req/s
// and p99 over the last minutes, the status classes, per-operation MCP
// figures and the upstreams with their health.
package detail

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
	"github.com/stoa-gateway/stoa/pkg/tui/components/sparkline"
)

// sparklineMinHeight is the least height that shows the req/s and p99
// charts (three lines); below it the view keeps the figures and tables.
const sparklineMinHeight = 12

// Detail shows one tool.
type Detail struct {
	c             *common.Common
	width, height int
	tenant, tool  string
	sample        *api.StatsSample
}

// New returns an empty detail view.
func New(c *common.Common) *Detail { return &Detail{c: c} }

// Show selects the tool to show.
func (d *Detail) Show(tenant, tool string) { d.tenant, d.tool = tenant, tool }

// Tool is the tool shown.
func (d *Detail) Tool() (tenant, tool string) { return d.tenant, d.tool }

// SetSize implements common.Component.
func (d *Detail) SetSize(width, height int) { d.width, d.height = width, height }

// Update implements common.Component.
func (d *Detail) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case common.StatsMsg:
		d.sample = msg.Sample
	case tea.KeyPressMsg:
		if d.c.Keys.Back.Matches(msg) {
			return func() tea.Msg { return common.CloseDetailMsg{} }
		}
	}
	return nil
}

func (d *Detail) find() *api.ToolStats {
	if d.sample == nil {
		return nil
	}
	for _, t := range d.sample.Tenants {
		if t.Name != d.tenant {
			continue
		}
		for i := range t.Tools {
			if t.Tools[i].Name == d.tool {
				return &t.Tools[i]
			}
		}
	}
	return nil
}

// View implements common.Component.
func (d *Detail) View() string {
	st := d.c.Styles
	var lines []string
	title := st.PanelTitle.Render(d.tenant + " / " + d.tool)
	t := d.find()
	if t == nil {
		lines = append(lines, title, st.Muted.Render("this tool is not in the live revision (esc goes back)"))
		return common.Clip(strings.Join(lines, "\n"), d.width, d.height)
	}
	lines = append(lines, common.Spread(title, st.Label.Render("upstreams ")+health(d.c, t.Health), d.width))

	figure := func(label, value string) string { return st.Label.Render(label) + " " + value }
	var figures []string
	if d.height >= sparklineMinHeight {
		rps, p99 := d.c.History.Series(common.Key(d.tenant, d.tool))
		sw := max(d.width-22, 10)
		lines = append(lines,
			st.Label.Render(common.Fit("req/s", 7))+st.Spark.Render(sparkline.Render(rps, sw))+" "+st.Value.Render(common.FitRight(common.Rate(t.RPS), 8)),
			st.Label.Render(common.Fit("p99", 7))+st.Spark.Render(sparkline.Render(p99, sw))+" "+st.Value.Render(common.FitRight(common.Ms(t.P99Ms), 8)),
			st.Muted.Render(fmt.Sprintf("%-7s%s", "", span(len(rps)))))
	} else {
		// Too few lines for charts: the current figures only.
		figures = append(figures, figure("req/s", st.Value.Render(common.Rate(t.RPS))), figure("p99", st.Value.Render(common.Ms(t.P99Ms))))
	}
	figures = append(figures,
		figure("p50", common.Ms(t.P50Ms)),
		figure("2xx/s", common.Rate(t.CodeRates.S2xx)),
		figure("4xx/s", common.Rate(t.CodeRates.S4xx)),
		figure("5xx/s", common.Rate(t.CodeRates.S5xx)),
		figure("429/s", common.Rate(t.LimitedRate)),
		figure("upstream errors", common.Count(t.UpstreamErrors)),
		figure("total", common.Count(t.Requests)))
	lines = append(lines, common.JoinWrapped(figures, "  ", d.width)...)

	// Per-operation figures come from the MCP series of the tool.
	var opLines []string
	nameW := max(d.width-44, 16)
	opLines = append(opLines, st.TableHead.Render(common.Fit("OPERATION (MCP tools/call)", nameW)+
		fmt.Sprintf(" %7s %7s %7s %7s %9s", "CALLS/S", "P50", "P99", "ERRORS", "CALLS")))
	ops := 0
	for _, m := range d.sample.MCP {
		if m.Tenant != d.tenant || m.Tool != d.tool {
			continue
		}
		ops++
		opLines = append(opLines, common.Fit(m.Operation, nameW)+fmt.Sprintf(" %7s %7s %7s %7s %9s",
			common.Rate(m.RPS), common.Ms(m.P50Ms), common.Ms(m.P99Ms), common.Count(m.Errors), common.Count(m.Requests)))
	}
	if ops == 0 {
		opLines = append(opLines, st.Muted.Render("no MCP calls recorded for this tool"))
	}
	upLines := []string{st.TableHead.Render("UPSTREAMS")}
	for _, u := range t.Upstreams {
		state := st.Muted.Render("? unknown")
		if t.Health != "unknown" {
			state = st.OK.Render("● available")
			if !u.Available {
				state = st.Error.Render("○ unavailable")
			}
		}
		upLines = append(upLines, fmt.Sprintf("%s  %s  %s", state, u.URL, st.Muted.Render(fmt.Sprintf("weight %d", u.Weight))))
	}
	// Blank lines between the sections only when everything fits with them.
	sep := []string{""}
	if len(lines)+len(opLines)+len(upLines)+2 > d.height {
		sep = nil
	}
	lines = append(append(append(append(lines, sep...), opLines...), sep...), upLines...)
	return common.Clip(strings.Join(lines, "\n"), d.width, d.height)
}

// span describes how far back the sparklines reach.
func span(samples int) string {
	if samples < 120 {
		return fmt.Sprintf("last %ds", samples)
	}
	return fmt.Sprintf("last %d min", samples/60)
}

func health(c *common.Common, h string) string {
	switch h {
	case "ok":
		return c.Styles.OK.Render("● ok")
	case "degraded":
		return c.Styles.Warning.Render("◐ degraded")
	case "down":
		return c.Styles.Error.Render("○ down")
	}
	return c.Styles.Muted.Render("? unknown")
}
