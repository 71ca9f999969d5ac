package xdprt

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
	"github.com/stoa-gateway/stoa/pkg/xdp"
)

func TestXDPCompile(t *testing.T) {
	pfx := netip.MustParsePrefix
	tests := []struct {
		name   string
		listen string
		x      *spec.XDPConfig
		want   xdp.Config
		esc    escalation
		err    string
	}{
		{name: "absent", x: nil},
		{name: "disabled", x: &spec.XDPConfig{Enabled: false, Interfaces: []string{"eth0"}}},
		{name: "defaults", listen: "127.0.0.1:8080", x: &spec.XDPConfig{Enabled: true},
			want: xdp.Config{Interfaces: []string{"lo"}, Mode: xdp.ModeAuto, Count: xdp.CountPackets, Ports: []uint16{8080}}},
		{name: "full", listen: "[::]:443", x: &spec.XDPConfig{
			Enabled: true, Interfaces: []string{"eth0", "eth1"}, Mode: "generic", Count: "connections",
			PerSource: &spec.RateLimit{Rate: spec.MustRate("2000/s"), Burst: 4000}, Ports: []int{443, 8443},
			Deny:       []string{"203.0.113.0/24", "2001:db8::1", "198.51.100.7/24"},
			Escalation: &spec.Escalation{After: 50, Within: spec.MustDuration("1m"), Block: spec.MustDuration("10m")},
		}, want: xdp.Config{
			Interfaces: []string{"eth0", "eth1"}, Mode: xdp.ModeGeneric, Count: xdp.CountConnections,
			Rate: 2000, Burst: 4000, Ports: []uint16{443, 8443},
			Deny: []netip.Prefix{pfx("203.0.113.0/24"), pfx("2001:db8::1/128"), pfx("198.51.100.0/24")},
		}, esc: escalation{after: 50, within: time.Minute, block: 10 * time.Minute}},
		{name: "per minute", listen: ":8080", x: &spec.XDPConfig{Enabled: true, PerSource: &spec.RateLimit{Rate: spec.MustRate("120/min")}},
			want: xdp.Config{Interfaces: []string{"lo"}, Mode: xdp.ModeAuto, Count: xdp.CountPackets, Ports: []uint16{8080}, Rate: 2, Burst: 2}},
		{name: "ephemeral listen", listen: "127.0.0.1:0", x: &spec.XDPConfig{Enabled: true}, err: "no fixed port"},
		{name: "ephemeral listen, ports given", listen: "127.0.0.1:0", x: &spec.XDPConfig{Enabled: true, Ports: []int{80}},
			want: xdp.Config{Interfaces: []string{"lo"}, Mode: xdp.ModeAuto, Count: xdp.CountPackets, Ports: []uint16{80}}},
		{name: "bad mode", listen: ":80", x: &spec.XDPConfig{Enabled: true, Mode: "turbo"}, err: "mode"},
		{name: "bad deny", listen: ":80", x: &spec.XDPConfig{Enabled: true, Deny: []string{"10.0.0.300/8"}}, err: "spec.xdp.deny"},
		{name: "bad escalation", listen: ":80", x: &spec.XDPConfig{Enabled: true, Escalation: &spec.Escalation{After: 3, Within: spec.MustDuration("-1m"), Block: spec.MustDuration("1m")}},
			err: "escalation.within"},
		{name: "escalation off", listen: ":80", x: &spec.XDPConfig{Enabled: true, Escalation: &spec.Escalation{After: 0}},
			want: xdp.Config{Interfaces: []string{"lo"}, Mode: xdp.ModeAuto, Count: xdp.CountPackets, Ports: []uint16{80}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Runtime{listen: tt.listen}
			// The runtime compiles defaulted specs, as state.New gives it.
			gw := &spec.GatewaySpec{XDP: tt.x}
			spec.Default(&spec.Object{Kind: spec.KindGateway, Spec: gw})
			p, err := r.compile(gw)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.cfg, tt.want) || p.esc != tt.esc {
				t.Fatalf("got %+v %+v\nwant %+v %+v", p.cfg, p.esc, tt.want, tt.esc)
			}
			if p.enabled != (tt.x != nil && tt.x.Enabled) {
				t.Fatalf("enabled = %v", p.enabled)
			}
		})
	}
}

func TestParseSource(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7":            "198.51.100.7/32",
		" 198.51.100.7/24 ":       "198.51.100.0/24",
		"2001:db8::1":             "2001:db8::1/128",
		"2001:db8:1:2::/48":       "2001:db8:1::/48",
		"::ffff:198.51.100.0/120": "::ffff:198.51.100.0/120",
	} {
		p, err := ParseSource(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseSource(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "nope", "fe80::1%eth0", "10.0.0.0/33"} {
		if _, err := ParseSource(in); err == nil {
			t.Errorf("ParseSource(%q) succeeded", in)
		}
	}
	if got := CanonicalSource(netip.MustParsePrefix("::ffff:198.51.100.0/120")); got.String() != "198.51.100.0/24" {
		t.Errorf("canonicalSource = %s", got)
	}
}

// newTestRuntime is a runtime on a fresh store (events go to its log).
// Nothing here attaches a program: the plans name no interfaces.
func newTestRuntime(t *testing.T) (*events.Log, *Runtime) {
	t.Helper()
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	evl := events.NewLog(st, log)
	r := New(Options{Listen: "127.0.0.1:8080", Events: evl, Metrics: prometheus.NewRegistry(), Log: log})
	t.Cleanup(func() {
		r.Stop(context.Background())
		st.Close()
	})
	return evl, r
}

// waitEvents waits until the log holds n events of the given types.
func waitEvents(t *testing.T, l *events.Log, n int, types ...string) []api.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, err := l.Read(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []api.Event
		for _, e := range evs {
			for _, typ := range types {
				if e.Type == typ {
					got = append(got, e)
				}
			}
		}
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestXDPEscalation(t *testing.T) {
	evl, r := newTestRuntime(t)
	r.swap(&xdpPlan{esc: escalation{after: 5, within: time.Second, block: 300 * time.Millisecond}})
	src := netip.MustParseAddr("198.51.100.9")
	for range 4 {
		r.OnReject(src)
	}
	if len(r.l.Blocks()) != 0 {
		t.Fatal("blocked before the threshold")
	}
	r.OnReject(src)
	bs := r.l.Blocks()
	if len(bs) != 1 || bs[0].Prefix.String() != "198.51.100.9/32" || !strings.HasPrefix(bs[0].Reason, "escalated: 5 rejections in 1s") {
		t.Fatalf("blocks after escalation: %+v", bs)
	}
	// The accept-time fallback (XDP is off here) now rejects the source.
	if v := r.l.Fallback().Allow(src); v != xdp.RejectBlock {
		t.Fatalf("fallback verdict %v", v)
	}
	evs := waitEvents(t, evl, 2, "xdp.block", "xdp.unblock")
	if len(evs) != 2 {
		t.Fatalf("events: %+v", evs)
	}
	b, u := evs[0], evs[1]
	if b.Type != "xdp.block" || b.Data["by"] != "escalation" || b.Data["source"] != "198.51.100.9/32" || b.Data["rejections"] != float64(5) {
		t.Errorf("block event: %+v", b)
	}
	if u.Type != "xdp.unblock" || u.Data["by"] != "expiry" || !strings.Contains(u.Message, "cool-down over") {
		t.Errorf("unblock event: %+v", u)
	}

	// A changed policy rebuilds the Escalator; turning it off stops it.
	r.swap(&xdpPlan{})
	for range 20 {
		r.OnReject(src)
	}
	if len(r.l.Blocks()) != 0 {
		t.Fatal("escalation still on after it was turned off")
	}
}

func TestXDPEscalationKeepsLongerBlock(t *testing.T) {
	_, r := newTestRuntime(t)
	r.swap(&xdpPlan{esc: escalation{after: 1, within: time.Second, block: time.Second}})
	if err := r.l.Block(netip.MustParsePrefix("198.51.100.0/24"), time.Hour, "operator"); err != nil {
		t.Fatal(err)
	}
	r.OnReject(netip.MustParseAddr("198.51.100.9"))
	if bs := r.l.Blocks(); len(bs) != 1 || bs[0].Reason != "operator" {
		t.Fatalf("blocks: %+v", bs)
	}
}

// TestXDPOperatorBlocks: an operator's block and unblock are events
// naming the operator; a duration out of range is refused.
func TestXDPOperatorBlocks(t *testing.T) {
	evl, r := newTestRuntime(t)
	r.swap(&xdpPlan{})
	pfx := netip.MustParsePrefix("198.51.100.7/32")
	for _, d := range []time.Duration{0, -time.Minute, 367 * 24 * time.Hour} {
		if err := r.Block(pfx, d, "x", "root (uid 0)"); !errors.Is(err, ErrBadDuration) {
			t.Errorf("Block for %s: %v", d, err)
		}
	}
	if err := r.Block(pfx, 10*time.Minute, "stuffing", "root (uid 0)"); err != nil {
		t.Fatal(err)
	}
	if bs := r.Blocks(); len(bs) != 1 || bs[0].Prefix != pfx || bs[0].Reason != "stuffing" {
		t.Fatalf("blocks: %+v", bs)
	}
	// An IPv4-mapped prefix names the same block.
	if removed, err := r.Unblock(netip.MustParsePrefix("::ffff:198.51.100.7/128"), "root (uid 0)"); err != nil || !removed {
		t.Fatalf("unblock: %v %v", removed, err)
	}
	if removed, _ := r.Unblock(pfx, "root (uid 0)"); removed {
		t.Fatal("a second unblock removed something")
	}
	evs := waitEvents(t, evl, 2, "xdp.block", "xdp.unblock")
	if len(evs) != 2 || evs[0].Data["by"] != "operator" || evs[0].Data["actor"] != "root (uid 0)" ||
		evs[1].Type != "xdp.unblock" || !strings.Contains(evs[1].Message, "by root (uid 0)") {
		t.Fatalf("events: %+v", evs)
	}
}

func TestXDPStatusComponent(t *testing.T) {
	_, r := newTestRuntime(t)
	if c := r.Status(); c.State != "off" || !strings.Contains(c.Detail, "no configuration") {
		t.Fatalf("before a revision: %+v", c)
	}
	r.swap(&xdpPlan{})
	c := r.Status()
	if c.Name != "xdp" || c.State != "off" || !strings.Contains(c.Detail, "spec.xdp.enabled") {
		t.Fatalf("disabled: %+v", c)
	}
	if _, ok := c.Data["connections"]; !ok { // the fallback still enforces blocks
		t.Fatalf("no counters: %+v", c.Data)
	}
	rd := r.XDPStats()
	if rd.Mode != "off" || rd.Attached || rd.Fallback {
		t.Fatalf("stats reading: %+v", rd)
	}
}
