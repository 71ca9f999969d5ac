package tools

import (
	"sort"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// SortBy is a column the table can be sorted by.
type SortBy int

// Sort orders, cycled by the sort key.
const (
	ByName SortBy = iota
	ByRPS
	ByP99
	By5xx
	By429
	numSorts
)

var sortNames = [...]string{"name", "req/s", "p99", "5xx/s", "429/s"}

func (s SortBy) String() string { return sortNames[s] }

// metric is the figure a sort order compares (name sorts compare names).
func (s SortBy) metric(t *api.Traffic) float64 {
	switch s {
	case ByRPS:
		return t.RPS
	case ByP99:
		return t.P99Ms
	case By5xx:
		return t.CodeRates.S5xx
	case By429:
		return t.LimitedRate
	}
	return 0
}

// row is one line of the table: a tenant, or one of its tools.
type row struct {
	tenant string
	tool   *api.ToolStats // nil for a tenant row
	total  *api.Traffic
}

// rows builds the table's lines: tenants, each followed by its tools,
// sorted and filtered. A tenant is kept when its name matches the filter
// (with all its tools) or when any of its tools does (with those).
func rows(s *api.StatsSample, by SortBy, reverse bool, filter string) []row {
	if s == nil {
		return nil
	}
	filter = strings.ToLower(filter)
	tenants := make([]api.TenantStats, len(s.Tenants))
	copy(tenants, s.Tenants)
	less := func(a, b float64, an, bn string) bool {
		if by == ByName || a == b {
			if reverse && by == ByName {
				return an > bn
			}
			return an < bn
		}
		if reverse {
			return a < b
		}
		return a > b // figures sort biggest first
	}
	sort.SliceStable(tenants, func(i, j int) bool {
		return less(by.metric(&tenants[i].Total), by.metric(&tenants[j].Total), tenants[i].Name, tenants[j].Name)
	})
	var out []row
	for ti := range tenants {
		t := &tenants[ti]
		tenantMatch := filter == "" || strings.Contains(strings.ToLower(t.Name), filter)
		var tools []*api.ToolStats
		for i := range t.Tools {
			if tenantMatch || strings.Contains(strings.ToLower(t.Tools[i].Name), filter) {
				tools = append(tools, &t.Tools[i])
			}
		}
		if !tenantMatch && len(tools) == 0 {
			continue
		}
		sort.SliceStable(tools, func(i, j int) bool {
			return less(by.metric(&tools[i].Traffic), by.metric(&tools[j].Traffic), tools[i].Name, tools[j].Name)
		})
		out = append(out, row{tenant: t.Name, total: &t.Total})
		for _, tool := range tools {
			out = append(out, row{tenant: t.Name, tool: tool, total: &tool.Traffic})
		}
	}
	return out
}
