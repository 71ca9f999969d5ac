package common

import (
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
)

func TestWrap(t *testing.T) {
	reason := "disabled in the Gateway spec (set spec.xdp.enabled: true)"
	for _, tc := range []struct {
		text     string
		width, n int
		want     []string
	}{
		{reason, 30, 3, []string{"disabled in the Gateway spec", "(set spec.xdp.enabled: true)"}},
		{reason, 30, 1, []string{"disabled in the Gateway spec…"}},
		{reason, 20, 2, []string{"disabled in the", "Gateway spec (set…"}},
		{"no CAP_BPF (run stoad as root or grant CAP_BPF and CAP_NET_ADMIN)", 30, 2,
			[]string{"no CAP_BPF (run stoad as root", "or grant CAP_BPF and…"}},
		{"short", 30, 2, []string{"short"}},
		{"supercalifragilistic word", 8, 2, []string{"superca…", "word"}},
		{"supercalifragilistic word", 8, 1, []string{"superca…"}},
		{"", 10, 2, nil},
	} {
		got := Wrap(tc.text, tc.width, tc.n)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Wrap(%q, %d, %d) = %q, want %q", tc.text, tc.width, tc.n, got, tc.want)
		}
		for _, l := range got {
			if Width(l) > tc.width {
				t.Errorf("line %q wider than %d", l, tc.width)
			}
		}
	}
}

func TestJoinWrapped(t *testing.T) {
	got := JoinWrapped([]string{"p50 1ms", "2xx/s 12.5", "4xx/s 0", "total 9000"}, "  ", 22)
	if want := "p50 1ms  2xx/s 12.5|4xx/s 0  total 9000"; strings.Join(got, "|") != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 tools", 1: "1 tool", 2: "2 tools"} {
		if got := Plural(n, "tool", "tools"); got != want {
			t.Errorf("Plural(%d) = %q", n, got)
		}
	}
}

func TestXDPSummary(t *testing.T) {
	for _, tc := range []struct {
		x    api.XDPStats
		want string
	}{
		{api.XDPStats{Mode: "native", Attached: true, PassedRate: 1500, DroppedRate: 20, Blocks: 1, TrackedSources: 3},
			"xdp native · 1.5k passed/s · 20.0 dropped/s · 1 block · 3 sources"},
		// Off with the userspace limiter in force: its figures are
		// connections it accepted, never "passed" packets.
		{api.XDPStats{Mode: "off", Fallback: true, PassedRate: 24, Reason: "XDP off: no CAP_BPF"},
			"xdp off (userspace limiter) · 24.0 conn/s accepted · 0 refused/s · 0 blocks · 0 sources"},
		{api.XDPStats{Mode: "off", Reason: "XDP off: disabled in the Gateway spec (set spec.xdp.enabled: true)"},
			"xdp off: disabled in the Gateway spec (set spec.xdp.enabled: true)"},
	} {
		if got := XDPSummary(&tc.x); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}
