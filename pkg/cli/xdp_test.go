package cli

import (
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
)

func TestDataValue(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{float64(1234567), "1234567"},
		{1.5, "1.5"},
		{"generic", "generic"},
		{true, "true"},
		{[]any{"s-c", "s-a"}, "s-c, s-a"},
		{[]any{float64(8080)}, "8080"},
		{map[string]any{"passed": float64(3e6), "dropped_rate": float64(12)}, "dropped_rate=12 passed=3000000"},
		{nil, "<nil>"},
	} {
		if got := dataValue(tc.in); got != tc.want {
			t.Errorf("dataValue(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func xdpStatusCases() []cmdCase {
	return []cmdCase{
		{name: "attached", formats: formats(shapeObject), calls: []string{"XDPStatus()"},
			out: []string{"mode:         native", "interfaces:   eth0 (native)", "ports:        8080, 8443", "per source:   100/s, burst 200, counting packets",
				"deny:         203.0.113.0/24", "escalation:   after 5 rejections within 1m0s, block for 10m0s",
				"packets:      passed 1000, dropped 10 (rate 7, deny 3, block 0)", "blocks:       1 in force", "top sources:  198.51.100.7"}},
		{name: "off with the userspace fallback", setup: func(t *testing.T, fa *clitest.FakeAPI) {
			fa.XDP = api.XDPStatus{Enabled: true, Fallback: true, Mode: "off", Reason: "no CAP_BPF", Ports: []int{8080},
				FallbackCounters: api.XDPCounters{Passed: 50, DroppedDeny: 2}}
		}, out: []string{"mode:         off (userspace fallback at accept time)", "reason:       no CAP_BPF", "connections:  accepted 50, rejected 2"}},
		{name: "disabled", setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.XDP = api.XDPStatus{Reason: "no Gateway spec enables xdp"} },
			out: []string{"mode:     off", "reason:   no Gateway spec enables xdp"}, notOut: []string{"interfaces:"}},
		{name: "unreachable", fail: failAll("XDPStatus", errUnreachable), code: ExitUnreachable},
		{name: "stray argument", args: []string{"eth0"}, code: ExitFailure, flagErr: true},
	}
}

func xdpBlocksCases() []cmdCase {
	return []cmdCase{
		{name: "in force", formats: formats(shapeList), out: []string{"SOURCE", "198.51.100.7/32   test     2026-05-04 12:10:00   10m0s"}, calls: []string{"XDPBlocks()"}},
		{name: "none", setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.Blocks.Items = nil },
			errOut: []string{"no blocks in force; block a source with: stoa xdp block CIDR --for 10m"}},
		{name: "forbidden", fail: failAll("XDPBlocks", errForbidden), code: ExitForbidden},
		{name: "stray argument", args: []string{"all"}, code: ExitFailure, flagErr: true},
	}
}

func xdpBlockCases() []cmdCase {
	return []cmdCase{
		{name: "block", args: []string{"198.51.100.9", "--for", "10m", "--reason", "stuffing"}, formats: formats(shapeObject),
			out: []string{"blocked 198.51.100.9/32 until 2026-05-04 12:10:00"}, calls: []string{"XDPBlock({CIDR:198.51.100.9 For:10m Reason:stuffing})"}},
		{name: "bad prefix", args: []string{"not-an-ip", "--for", "10m"}, code: ExitFailure,
			fail:   failAll("XDPBlock", &api.Error{Code: api.CodeBadRequest, Message: `block "not-an-ip": want an IP address or CIDR`}),
			errOut: []string{`stoa: block "not-an-ip": want an IP address or CIDR`}},
		{name: "xdp off", args: []string{"198.51.100.9", "--for", "10m"}, code: ExitUnreachable, fail: failAll("XDPBlock", errShutdown)},
		{name: "no duration", args: []string{"198.51.100.9"}, code: ExitFailure, flagErr: true, errOut: []string{"--for is required, e.g. --for 10m"}},
		{name: "no source", args: []string{"--for", "10m"}, code: ExitFailure, flagErr: true, errOut: []string{"accepts 1 arg(s), received 0"}},
	}
}

func xdpUnblockCases() []cmdCase {
	return []cmdCase{
		{name: "unblock", args: []string{"198.51.100.7"}, formats: formats(shapeObject), out: []string{"unblocked 198.51.100.7/32"},
			calls: []string{`XDPUnblock("198.51.100.7")`}},
		{name: "not blocked", args: []string{"198.51.100.8"}, errOut: []string{"198.51.100.8/32 was not blocked; list blocks with: stoa xdp blocks"}},
		{name: "not blocked as json", args: []string{"198.51.100.8", "-o", "json"}, out: []string{`"removed": false`}},
		{name: "unreachable", args: []string{"198.51.100.7"}, fail: failAll("XDPUnblock", errUnreachable), code: ExitUnreachable},
		{name: "no source", code: ExitFailure, flagErr: true},
		{name: "two sources", args: []string{"198.51.100.7", "198.51.100.8"}, code: ExitFailure, flagErr: true},
	}
}
