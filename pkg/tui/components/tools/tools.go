// Package tools is the dashboard's main table: tenants and their tools
// with live figures, sortable and filterable, with a cursor that opens a
// tool's detail view.
package tools

import (
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
	"github.com/stoa-gateway/stoa/pkg/tui/components/sparkline"
)

// Table is the tenants → tools table.
type Table struct {
	c             *common.Common
	width, height int
	sample        *api.StatsSample
	rows          []row

	sortBy    SortBy
	reverse   bool
	filter    string
	filtering bool // typing a filter

	// The selection follows a tool by name across samples.
	selTenant, selTool string
	offset             int
}

// New returns an empty table.
func New(c *common.Common) *Table { return &Table{c: c, sortBy: ByName} }

// SetSize implements common.Component.
func (t *Table) SetSize(width, height int) { t.width, t.height = width, height }

// Filtering reports whether keys go to the filter prompt.
func (t *Table) Filtering() bool { return t.filtering }

// Filter is the current filter text.
func (t *Table) Filter() string { return t.filter }

// Sort is the current sort order and direction.
func (t *Table) Sort() (SortBy, bool) { return t.sortBy, t.reverse }

// Selected is the selected tool, if any.
func (t *Table) Selected() (tenant, tool string, ok bool) {
	return t.selTenant, t.selTool, t.selTool != ""
}

// Update implements common.Component.
func (t *Table) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case common.StatsMsg:
		t.sample = msg.Sample
		t.rebuild()
	case tea.KeyPressMsg:
		if t.filtering {
			return t.filterKey(msg)
		}
		k := t.c.Keys
		switch {
		case k.Down.Matches(msg):
			t.move(1)
		case k.Up.Matches(msg):
			t.move(-1)
		case k.PageDown.Matches(msg):
			t.move(max(t.bodyHeight()-1, 1))
		case k.PageUp.Matches(msg):
			t.move(-max(t.bodyHeight()-1, 1))
		case k.Top.Matches(msg):
			t.move(-len(t.rows))
		case k.Bottom.Matches(msg):
			t.move(len(t.rows))
		case k.Sort.Matches(msg):
			t.sortBy = (t.sortBy + 1) % numSorts
			t.rebuild()
		case k.Reverse.Matches(msg):
			t.reverse = !t.reverse
			t.rebuild()
		case k.Filter.Matches(msg):
			t.filtering = true
		case k.ClearFilter.Matches(msg) && t.filter != "":
			t.filter = ""
			t.rebuild()
		case k.Open.Matches(msg):
			if tenant, tool, ok := t.Selected(); ok {
				return func() tea.Msg { return common.OpenToolMsg{Tenant: tenant, Tool: tool} }
			}
		}
	}
	return nil
}

func (t *Table) filterKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "enter":
		t.filtering = false
	case "esc":
		t.filtering, t.filter = false, ""
	case "backspace":
		if r := []rune(t.filter); len(r) > 0 {
			t.filter = string(r[:len(r)-1])
		}
	case "ctrl+c":
		return tea.Quit
	default:
		if txt := msg.Key().Text; txt != "" {
			t.filter += txt
		}
	}
	t.rebuild()
	return nil
}

// rebuild recomputes the rows and keeps the selection on a visible tool.
func (t *Table) rebuild() {
	t.rows = rows(t.sample, t.sortBy, t.reverse, t.filter)
	if t.index() < 0 {
		t.selTenant, t.selTool = "", ""
		t.move(1)
	}
	t.scroll()
}

// index is the selected row's position, or -1.
func (t *Table) index() int {
	for i, r := range t.rows {
		if r.tool != nil && r.tenant == t.selTenant && r.tool.Name == t.selTool {
			return i
		}
	}
	return -1
}

// move steps the cursor by n tool rows (tenant rows are skipped).
func (t *Table) move(n int) {
	i := t.index()
	step := 1
	if n < 0 {
		step, n = -1, -n
	}
	for ; n > 0; n-- {
		j := i + step
		for j >= 0 && j < len(t.rows) && t.rows[j].tool == nil {
			j += step
		}
		if j < 0 || j >= len(t.rows) {
			break
		}
		i = j
	}
	if i >= 0 && i < len(t.rows) && t.rows[i].tool != nil {
		t.selTenant, t.selTool = t.rows[i].tenant, t.rows[i].tool.Name
	}
	t.scroll()
}

func (t *Table) bodyHeight() int { return max(t.height-2, 1) } // heading and status line

// scroll keeps the selected row (and its tenant row, if it fits) visible.
func (t *Table) scroll() {
	i, h := t.index(), t.bodyHeight()
	if i < 0 {
		t.offset = 0
		return
	}
	if i-1 < t.offset {
		t.offset = max(i-1, 0)
	}
	if i >= t.offset+h {
		t.offset = i - h + 1
	}
	t.offset = max(min(t.offset, len(t.rows)-h), 0)
}

// column widths: name takes what is left.
type col struct {
	title string
	width int
	cell  func(r row) string
}

func (t *Table) columns() []col {
	st := t.c.Styles
	num := func(title string, w int, f func(*api.Traffic) string) col {
		return col{title, w, func(r row) string { return f(r.total) }}
	}
	warn := func(v float64) string {
		if v > 0 {
			return st.Error.Render(common.Rate(v))
		}
		return common.Rate(v)
	}
	cols := []col{
		num("REQ/S", 7, func(x *api.Traffic) string { return common.Rate(x.RPS) }),
		num("P50", 7, func(x *api.Traffic) string { return common.Ms(x.P50Ms) }),
		num("P99", 7, func(x *api.Traffic) string { return common.Ms(x.P99Ms) }),
		num("2XX/S", 6, func(x *api.Traffic) string { return common.Rate(x.CodeRates.S2xx) }),
		num("4XX/S", 6, func(x *api.Traffic) string { return common.Rate(x.CodeRates.S4xx) }),
		num("5XX/S", 6, func(x *api.Traffic) string { return warn(x.CodeRates.S5xx) }),
		num("429/S", 6, func(x *api.Traffic) string { return warn(x.LimitedRate) }),
	}
	if t.width >= 110 {
		cols = append(cols, num("TOTAL", 8, func(x *api.Traffic) string { return common.Count(x.Requests) }))
	}
	cols = append(cols, col{"UPSTREAM", 9, func(r row) string {
		if r.tool == nil {
			return ""
		}
		return t.health(r.tool.Health)
	}})
	if t.width >= 130 {
		cols = append(cols, col{"REQ/S (5 MIN)", 20, func(r row) string {
			if r.tool == nil {
				return ""
			}
			rps, _ := t.c.History.Series(common.Key(r.tenant, r.tool.Name))
			return st.Spark.Render(sparkline.Render(rps, 20))
		}})
	}
	// A narrow terminal keeps the tool names readable: drop the columns
	// that matter least (the 5xx and 429 rates, p99 and health stay).
	for _, drop := range []string{"2XX/S", "4XX/S", "P50"} {
		if nameWidth(t.width, cols) >= minNameWidth {
			break
		}
		cols = slices.DeleteFunc(cols, func(c col) bool { return c.title == drop })
	}
	return cols
}

// minNameWidth is the narrowest the TENANT / TOOL column gets before
// other columns give way.
const minNameWidth = 16

// nameWidth is what the columns leave for the name.
func nameWidth(width int, cols []col) int {
	for _, c := range cols {
		width -= c.width + 1
	}
	return width
}

func (t *Table) health(h string) string {
	st := t.c.Styles
	switch h {
	case "ok":
		return st.OK.Render("● ok")
	case "degraded":
		return st.Warning.Render("◐ degr")
	case "down":
		return st.Error.Render("○ down")
	}
	return st.Muted.Render("? " + h)
}

// View implements common.Component.
func (t *Table) View() string {
	st := t.c.Styles
	cols := t.columns()
	nameW := max(nameWidth(t.width, cols), 12)
	var b strings.Builder
	head := common.Fit("TENANT / TOOL", nameW)
	for _, c := range cols {
		head += " " + common.FitRight(c.title, c.width)
	}
	b.WriteString(st.TableHead.Render(head))
	body := t.bodyHeight()
	shown := 0
	for i := t.offset; i < len(t.rows) && shown < body; i++ {
		r := t.rows[i]
		var line string
		if r.tool == nil {
			line = st.Tenant.Render(common.Fit(r.tenant, nameW))
		} else {
			mark := "  "
			if r.tenant == t.selTenant && r.tool.Name == t.selTool {
				mark = "› "
			}
			line = common.Fit(mark+r.tool.Name, nameW)
		}
		for _, c := range cols {
			line += " " + common.FitRight(c.cell(r), c.width)
		}
		if r.tool != nil && r.tenant == t.selTenant && r.tool.Name == t.selTool {
			line = st.Selected.Render(common.Fit(ansi.Strip(line), t.width))
		}
		b.WriteString("\n" + line)
		shown++
	}
	if len(t.rows) == 0 {
		msg := "no tools yet — apply specs with: stoa apply -f DIR"
		if t.sample == nil {
			msg = "waiting for stoad…"
		} else if t.filter != "" {
			msg = fmt.Sprintf("no tenant or tool matches %q", t.filter)
		}
		b.WriteString("\n" + st.Muted.Render(msg))
		shown++
	}
	for ; shown < body; shown++ {
		b.WriteString("\n")
	}
	b.WriteString("\n" + t.statusLine())
	return common.Clip(b.String(), t.width, t.height)
}

// statusLine shows the sort order and the filter (or its prompt).
func (t *Table) statusLine() string {
	st := t.c.Styles
	dir := "↓"
	if t.reverse {
		dir = "↑"
	}
	s := st.Muted.Render("sort: ") + st.Value.Render(t.sortBy.String()+" "+dir)
	switch {
	case t.filtering:
		s += st.Muted.Render("   filter: ") + st.Filter.Render("/"+t.filter+"▏")
	case t.filter != "":
		s += st.Muted.Render("   filter: ") + st.Filter.Render(t.filter) + st.Muted.Render(" (esc clears)")
	}
	n := 0
	for _, r := range t.rows {
		if r.tool != nil {
			n++
		}
	}
	return common.Spread(s, st.Muted.Render(common.Plural(n, "tool", "tools")), t.width)
}
