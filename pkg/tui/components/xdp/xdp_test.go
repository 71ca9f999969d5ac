package xdp

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
	"github.com/stoa-gateway/stoa/pkg/tui/styles"
)

func TestPanel(t *testing.T) {
	c := common.New()
	c.Styles = styles.Plain()
	tests := []struct {
		name    string
		x       *api.XDPStats
		want    []string
		notWant []string
	}{
		{"not reported", nil, []string{"not reported by this stoad"}, nil},
		{"attached", &api.XDPStats{Mode: "native", Attached: true, PassedRate: 1500, DroppedRate: 20, Blocks: 1, TrackedSources: 3,
			TopSources: []api.XDPSource{{Addr: "203.0.113.9", Dropped: 12000}}}, []string{"mode native", "pass/s 1.5k", "drop/s 20.0", "blocks 1", "203.0.113.9", "12.0k dropped"}, []string{"conn/s"}},
		// XDP off with the userspace limiter standing in: connections it
		// accepted, never "passed" packets; the whole reason, in words.
		{"fallback", &api.XDPStats{Mode: "off", Fallback: true, PassedRate: 24, Reason: "XDP off: no CAP_BPF (run stoad as root or grant CAP_BPF and CAP_NET_ADMIN)"},
			[]string{"mode off · userspace limiter", "no CAP_BPF (run stoad as root\n", "\nor grant CAP_BPF and\n", "\nCAP_NET_ADMIN)\n", "conn/s 24.0  refused/s 0"},
			[]string{"pass/s", "XDP off:"}},
		{"disabled", &api.XDPStats{Mode: "off", Reason: "XDP off: disabled in the Gateway spec (set spec.xdp.enabled: true)"},
			[]string{"mode off\n", "disabled in the Gateway spec\n", "(set spec.xdp.enabled: true)\n", "blocks 0"},
			[]string{"pass/s", "conn/s", "userspace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(c)
			p.SetSize(30, 7)
			p.Update(common.StatsMsg{Sample: &api.StatsSample{XDP: tt.x}})
			out := ansi.Strip(p.View())
			trimmed := strings.ReplaceAll(out, " \n", "\n") // the panel pads lines
			for strings.Contains(trimmed, " \n") {
				trimmed = strings.ReplaceAll(trimmed, " \n", "\n")
			}
			for _, w := range tt.want {
				if !strings.Contains(trimmed, w) {
					t.Errorf("panel lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("panel shows %q:\n%s", w, out)
				}
			}
			for _, l := range strings.Split(out, "\n") {
				if ansi.StringWidth(l) > 30 {
					t.Errorf("line wider than the panel: %q", l)
				}
			}
		})
	}
}
