package tui

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/stoa-gateway/stoa/internal/golden"
	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
	"github.com/stoa-gateway/stoa/pkg/tui/styles"
)

func traffic(rps, p50, p99, s5 float64, total uint64) api.Traffic {
	return api.Traffic{Requests: total, RPS: rps, P50Ms: p50, P99Ms: p99,
		Codes:     api.StatusClasses{S2xx: total},
		CodeRates: api.StatusRates{S2xx: rps - s5, S5xx: s5}}
}

// sample is a two-tenant stats sample; scale multiplies the rates.
func sample(scale float64) *api.StatsSample {
	billing := api.ToolStats{Tenant: "acme", Name: "billing-api", Traffic: traffic(12.5*scale, 1.2, 4.8, 0, 1250),
		Health: "ok", Upstreams: []api.UpstreamHealth{{URL: "http://127.0.0.1:9001/billing", Weight: 1, Available: true}}}
	inventory := api.ToolStats{Tenant: "acme", Name: "inventory-api", Traffic: traffic(3*scale, 0.8, 2.1, 0.5*scale, 300),
		Health: "degraded", Upstreams: []api.UpstreamHealth{{URL: "http://10.0.0.1/inv", Weight: 9, Available: true}, {URL: "http://10.0.0.2/inv", Weight: 1}}}
	inventory.LimitedRate = 1 * scale
	weather := api.ToolStats{Tenant: "globex", Name: "weather-api", Traffic: traffic(40*scale, 0.4, 0.9, 0, 9000),
		Health: "down", Upstreams: []api.UpstreamHealth{{URL: "http://127.0.0.1:9001/weather", Weight: 1}}}
	return &api.StatsSample{
		Time: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), IntervalSeconds: 1, Revision: 3,
		Daemon: api.DaemonInfo{Version: "v0.3.0", PID: 4242, UptimeSeconds: 3723,
			Listeners: []api.Listener{{Name: "localapi", Address: "/run/stoa/stoad.sock"}, {Name: "ops", Address: "127.0.0.1:9090"}, {Name: "proxy", Address: "127.0.0.1:8080"}}},
		Totals: traffic(55.5*scale, 0.5, 4.1, 0.5*scale, 10550),
		Tenants: []api.TenantStats{
			{Name: "acme", Total: traffic(15.5*scale, 1.1, 4.5, 0.5*scale, 1550), Tools: []api.ToolStats{billing, inventory}},
			{Name: "globex", Total: traffic(40*scale, 0.4, 0.9, 0, 9000), Tools: []api.ToolStats{weather}},
		},
		MCP: []api.MCPToolStats{
			{Tenant: "acme", Name: "acme__billing-api__get_invoice", Tool: "billing-api", Operation: "get_invoice", Traffic: traffic(2*scale, 3, 9, 0, 200)},
			{Tenant: "acme", Name: "acme__billing-api__list_invoices", Tool: "billing-api", Operation: "list_invoices", Traffic: traffic(0, 0, 0, 0, 12)},
		},
		XDP: &api.XDPStats{Mode: "generic", Attached: true, PassedRate: 1200, DroppedRate: 35, Blocks: 2, TrackedSources: 17,
			TopSources: []api.XDPSource{{Addr: "198.51.100.7", Passed: 100, Dropped: 3400}}},
	}
}

func newTestModel(w, h int) *Model {
	c := common.New()
	c.Styles = styles.Plain()
	m := NewModel(c, "/tmp/stoad.sock")
	m.Events().Local = time.UTC
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

func send(m *Model, msgs ...tea.Msg) {
	for _, msg := range msgs {
		_, cmd := m.Update(msg)
		// Components answer keys with messages (open, close): deliver them.
		for cmd != nil {
			out := cmd()
			if batch, ok := out.(tea.BatchMsg); ok {
				cmd = nil
				for _, c := range batch {
					if c != nil {
						if r := c(); r != nil {
							m.Update(r)
						}
					}
				}
				continue
			}
			if out == nil {
				break
			}
			if _, quit := out.(tea.QuitMsg); quit {
				break
			}
			_, cmd = m.Update(out)
		}
	}
}

func key(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

func screen(t *testing.T, m *Model) string {
	t.Helper()
	out := ansi.Strip(m.Render())
	lines := strings.Split(out, "\n")
	if len(lines) != m.height {
		t.Errorf("%d lines, want %d", len(lines), m.height)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > m.width {
			t.Errorf("line %d is %d wide (> %d): %q", i, w, m.width, l)
		}
	}
	return out
}

func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("screen lacks %q:\n%s", w, out)
		}
	}
}

func TestDashboardShowsLiveFigures(t *testing.T) {
	m := newTestModel(80, 24)
	out := screen(t, m)
	mustContain(t, out, "connecting…", "waiting for stoad…", "/tmp/stoad.sock")

	send(m, common.StatsMsg{Sample: sample(1)}, common.EventMsg{Event: api.Event{Seq: 1, Time: time.Date(2026, 11, 28, 11, 59, 0, 0, time.UTC), Type: "config.applied", Message: "revision 3 applied"}})
	out = screen(t, m)
	mustContain(t, out, "stoad v0.3.0", "up 1h2m", "rev 3", "● live", "proxy 127.0.0.1:8080", "xdp generic",
		"acme", "billing-api", "inventory-api", "globex", "weather-api", "12.5", "4.8ms",
		"● ok", "◐ degr", "○ down", "pass/s 1.2k", "drop/s 35", "198.51.100.7",
		"11:59:00 config.applied", "revision 3 applied", "q quit")

	send(m, common.StatsMsg{Sample: sample(2)})
	mustContain(t, screen(t, m), "25.0", "80.0") // billing 25 req/s, weather 80 req/s
}

func TestDashboardGolden(t *testing.T) {
	m := newTestModel(80, 24)
	for i := 1; i <= 30; i++ {
		send(m, common.StatsMsg{Sample: sample(1 + float64(i%7)/4)})
	}
	send(m, common.EventMsg{Event: api.Event{Seq: 1, Time: time.Date(2026, 11, 28, 11, 58, 2, 0, time.UTC), Type: "config.applied", Message: "revision 3 applied (2 created, 1 updated)"}},
		common.EventMsg{Event: api.Event{Seq: 2, Time: time.Date(2026, 11, 28, 11, 59, 40, 0, time.UTC), Type: "upstream.ejected", Message: "upstream http://10.0.0.2/inv ejected: 5 consecutive failures"}})
	checkGolden(t, "dashboard-80x24.golden", screen(t, m))
	send(m, key("enter"))
	checkGolden(t, "detail-80x24.golden", screen(t, m))
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), []byte(got))
}

func TestDashboardResizes(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {100, 30}, {132, 43}, {200, 60}, {60, 20}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			m := newTestModel(size[0], size[1])
			send(m, common.StatsMsg{Sample: sample(1)})
			screen(t, m)
			send(m, key("enter"))
			screen(t, m)
		})
	}
}

// order returns the tool names in screen order.
func order(out string, names ...string) []string {
	type pos struct {
		name string
		at   int
	}
	var ps []pos
	for _, n := range names {
		ps = append(ps, pos{n, strings.Index(out, " "+n)})
	}
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			if ps[j].at < ps[i].at {
				ps[i], ps[j] = ps[j], ps[i]
			}
		}
	}
	var out2 []string
	for _, p := range ps {
		out2 = append(out2, p.name)
	}
	return out2
}

func TestDashboardSortAndFilter(t *testing.T) {
	m := newTestModel(80, 24)
	send(m, common.StatsMsg{Sample: sample(1)})
	if got := order(screen(t, m), "billing-api", "inventory-api", "weather-api"); strings.Join(got, ",") != "billing-api,inventory-api,weather-api" {
		t.Fatalf("by name: %v", got)
	}
	send(m, key("s")) // req/s, biggest first: globex (40) before acme (15.5)
	out := screen(t, m)
	mustContain(t, out, "sort: req/s ↓")
	if got := order(out, "billing-api", "inventory-api", "weather-api"); strings.Join(got, ",") != "weather-api,billing-api,inventory-api" {
		t.Fatalf("by req/s: %v\n%s", got, out)
	}
	send(m, key("r"))
	if got := order(screen(t, m), "billing-api", "inventory-api", "weather-api"); strings.Join(got, ",") != "inventory-api,billing-api,weather-api" {
		t.Fatalf("by req/s reversed: %v", got)
	}

	send(m, key("/"), key("i"), key("n"), key("q"), key("backspace"), key("v"))
	out = screen(t, m)
	mustContain(t, out, "filter: /inv", "inventory-api", "type filter")
	if strings.Contains(out, "billing-api") || strings.Contains(out, "weather-api") {
		t.Fatalf("filter inv shows other tools:\n%s", out)
	}
	send(m, key("enter"))
	mustContain(t, screen(t, m), "filter: inv (esc clears)")
	send(m, key("esc"))
	mustContain(t, screen(t, m), "billing-api", "weather-api")

	send(m, key("/"), key("z"), key("z"), key("enter"))
	mustContain(t, screen(t, m), `no tenant or tool matches "zz"`)
}

func TestDashboardDetailView(t *testing.T) {
	m := newTestModel(80, 24)
	for range 5 {
		send(m, common.StatsMsg{Sample: sample(1)})
	}
	send(m, key("down"), key("enter")) // the second tool: inventory-api
	out := screen(t, m)
	mustContain(t, out, "acme / inventory-api", "◐ degraded", "http://10.0.0.1/inv", "○ unavailable", "weight 9", "esc back", "last 5s")
	send(m, key("esc"), key("g"), key("enter"))
	out = screen(t, m)
	mustContain(t, out, "acme / billing-api", "get_invoice", "list_invoices", "█")
	send(m, key("esc"))
	mustContain(t, screen(t, m), "TENANT / TOOL")
}

func TestDashboardReconnects(t *testing.T) {
	m := newTestModel(80, 24)
	send(m, common.StatsMsg{Sample: sample(1)})
	send(m, common.ConnMsg{Err: fmt.Errorf("cannot reach stoad at /tmp/stoad.sock: connection refused")})
	out := screen(t, m)
	mustContain(t, out, "reconnecting…", "stoad unreachable", "billing-api") // last figures stay
	send(m, common.StatsMsg{Sample: sample(1)})
	out = screen(t, m)
	mustContain(t, out, "● live")
	if strings.Contains(out, "reconnecting") {
		t.Fatalf("still reconnecting after a sample:\n%s", out)
	}
}

func TestDashboardQuit(t *testing.T) {
	m := newTestModel(80, 24)
	for _, k := range []string{"q"} {
		_, cmd := m.Update(key(k))
		if cmd == nil {
			t.Fatalf("%s: no command", k)
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Fatalf("%s does not quit", k)
		}
	}
	// While typing a filter, q is text.
	send(m, key("/"))
	if _, cmd := m.Update(key("q")); cmd != nil {
		if _, ok := cmd().(tea.QuitMsg); ok {
			t.Fatal("q quit while typing a filter")
		}
	}
	if v := m.View(); !v.AltScreen {
		t.Error("the dashboard should use the alternate screen (restored on quit)")
	}
}

func TestEventsPanelSkipsReplayedEvents(t *testing.T) {
	m := newTestModel(80, 24)
	ev := func(seq int64, msg string) tea.Msg {
		return common.EventMsg{Event: api.Event{Seq: seq, Time: time.Unix(0, 0), Type: "reload", Message: msg}}
	}
	send(m, ev(1, "first"), ev(2, "second"), ev(2, "second again"), ev(3, "third"))
	out := screen(t, m)
	if strings.Contains(out, "second again") || !strings.Contains(out, "third") {
		t.Fatalf("events panel:\n%s", out)
	}
	if m.Events().LastSeq() != 3 {
		t.Fatalf("last seq %d", m.Events().LastSeq())
	}
}

func BenchmarkRender(b *testing.B) {
	m := NewModel(common.New(), "/tmp/stoad.sock")
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 50})
	s := sample(1)
	for i := range 100 {
		t := s.Tenants[0].Tools[0]
		t.Name = fmt.Sprintf("tool-%03d", i)
		s.Tenants[0].Tools = append(s.Tenants[0].Tools, t)
	}
	for range 300 {
		m.Update(common.StatsMsg{Sample: s})
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Update(common.StatsMsg{Sample: s})
		_ = m.Render()
	}
}

// bigSample is sample with extra acme tools: more rows than a small
// terminal has.
func bigSample(extra int) *api.StatsSample {
	s := sample(1)
	acme := &s.Tenants[0]
	for i := range extra {
		t := acme.Tools[0]
		t.Name = fmt.Sprintf("tool-%02d", i)
		acme.Tools = append(acme.Tools, t)
	}
	return s
}

// toolRows counts the table rows of tools on screen.
func toolRows(out string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "› ") {
			name := strings.Fields(l)[0]
			if name == "›" {
				name = strings.Fields(l)[1]
			}
			if strings.HasSuffix(name, "-api") || strings.HasPrefix(name, "tool-") {
				n++
			}
		}
	}
	return n
}

func TestDashboardSmallTerminal(t *testing.T) {
	m := newTestModel(60, 15)
	s := bigSample(8)
	s.XDP = &api.XDPStats{Mode: "off", Fallback: true, Reason: "XDP off: no CAP_BPF"}
	send(m, common.StatsMsg{Sample: s})
	out := screen(t, m)
	if n := toolRows(out); n < minTableRows {
		t.Fatalf("60×15 shows %d tool rows, want at least %d:\n%s", n, minTableRows, out)
	}
	// The panels give way to the table; names stay whole, and the
	// columns that matter stay.
	if strings.Contains(out, "Recent events") || strings.Contains(out, "conn/s") {
		t.Errorf("60×15 should drop the XDP and events panels:\n%s", out)
	}
	mustContain(t, out, "› billing-api", "inventory-api", "REQ/S", "P99", "5XX/S", "429/S", "UPSTREAM", "◐ degr", "11 tools", "q quit")
	// Header lines drop whole listeners and figures instead of cutting one.
	if l := strings.Split(out, "\n")[1]; strings.TrimSpace(l) != "xdp off (userspace limiter) · ops 127.0.0.1:9090" {
		t.Errorf("listeners line at 60 columns: %q", l)
	}
	head := strings.Split(out, "\n")[2]
	mustContain(t, head, "req/s 55.5", "p99 4.1ms", "5xx 0.5", "429 0")
	if strings.Contains(head, "total") {
		t.Errorf("totals should give way first at 60 columns: %q", head)
	}

	// The detail view keeps figures, operations and upstreams, without
	// the charts.
	send(m, key("enter"))
	out = screen(t, m)
	mustContain(t, out, "acme / billing-api", "req/s 12.5", "p99 4.8ms", "get_invoice", "UPSTREAMS", "● available")
	if strings.ContainsAny(out, "▁▂▃▄▅▆▇█") || strings.Contains(out, "last ") {
		t.Errorf("60×15 detail should drop the sparklines:\n%s", out)
	}
}

func TestDashboardCountsTools(t *testing.T) {
	m := newTestModel(80, 24)
	s := sample(1)
	s.Tenants = s.Tenants[1:] // globex: one tool
	send(m, common.StatsMsg{Sample: s})
	out := screen(t, m)
	if !strings.Contains(out, " 1 tool\n") || strings.Contains(out, "1 tools") {
		t.Fatalf("one tool should read \"1 tool\":\n%s", out)
	}
}

// TestDashboardXDPOff: with XDP off and the userspace limiter standing in
// the dashboard says so, counts connections, and wraps the reason at word
// boundaries.
func TestDashboardXDPOff(t *testing.T) {
	reason := "XDP off: cannot attach to eth0: operation not permitted (run stoad as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)"
	words := map[string]bool{}
	for _, w := range strings.Fields(strings.TrimPrefix(reason, "XDP off: ")) {
		words[w] = true
	}
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			m := newTestModel(size[0], size[1])
			s := sample(1)
			s.XDP = &api.XDPStats{Mode: "off", Fallback: true, Reason: reason, PassedRate: 24}
			send(m, common.StatsMsg{Sample: s})
			out := screen(t, m)
			mustContain(t, out, "xdp off (userspace limiter)", "mode off · userspace limiter", "conn/s 24.0")
			if strings.Contains(out, "pass/s") || strings.Contains(out, "XDP off:") {
				t.Errorf("XDP off should not read as passing packets:\n%s", out)
			}
			// The reason's lines in the panel: whole words only, the last
			// one marked with … when the reason did not fit.
			lines := strings.Split(out, "\n")
			start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "mode off") })
			shown := 0
			for _, l := range lines[start+1:] {
				cell := strings.TrimSpace(l[:min(len(l), xdpWidth(size[0]))])
				if strings.HasPrefix(cell, "conn/s") {
					break
				}
				for _, w := range strings.Fields(cell) {
					if !words[w] && !words[strings.TrimSuffix(w, "…")] {
						t.Errorf("reason cut inside a word: %q in %q\n%s", w, cell, out)
					}
					shown++
				}
			}
			if shown < 6 {
				t.Errorf("the panel shows only %d words of the reason:\n%s", shown, out)
			}
		})
	}
}

func TestDashboardWideTerminal(t *testing.T) {
	m := newTestModel(120, 40)
	send(m, common.StatsMsg{Sample: sample(1)})
	out := screen(t, m)
	mustContain(t, out, "TOTAL", "2XX/S", "4XX/S", "P50", "Recent events", "mode generic", "pass/s 1.2k", "3 tools",
		"total 10.6k", "198.51.100.7")
	send(m, key("enter"))
	mustContain(t, screen(t, m), "last 1s", "req/s", "UPSTREAMS")
}
