package xdprt

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
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
		}, esc: escalation{after: 50, within: time.Minute, block: 10 * time.Minute, v4Bits: 32, v6Bits: 64}},
		{name: "escalation prefixes", listen: ":80", x: &spec.XDPConfig{Enabled: true,
			Escalation: &spec.Escalation{After: 3, Within: spec.MustDuration("1m"), Block: spec.MustDuration("1m"), IPv4PrefixLength: 24, IPv6PrefixLength: 56}},
			want: xdp.Config{Interfaces: []string{"lo"}, Mode: xdp.ModeAuto, Count: xdp.CountPackets, Ports: []uint16{80}},
			esc:  escalation{after: 3, within: time.Minute, block: time.Minute, v4Bits: 24, v6Bits: 56}},
		{name: "escalation prefix too wide", listen: ":80", x: &spec.XDPConfig{Enabled: true,
			Escalation: &spec.Escalation{After: 3, Within: spec.MustDuration("1m"), Block: spec.MustDuration("1m"), IPv6PrefixLength: 8}},
			err: "spec.xdp.escalation: prefix lengths"},
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
	evl, _, r, _ := newTestRuntimeIn(t, t.TempDir())
	return evl, r
}

// newTestRuntimeIn is newTestRuntime on the store in dir, which also
// keeps its blocks; stop stops the runtime and closes the store (also
// done when the test ends), as a stoad exiting would.
func newTestRuntimeIn(t *testing.T, dir string) (evl *events.Log, st store.Store, r *Runtime, stop func()) {
	t.Helper()
	st, err := boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	evl = events.NewLog(st, log)
	r = New(Options{Listen: "127.0.0.1:8080", Events: evl, Metrics: prometheus.NewRegistry(), Log: log, Store: st})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			r.Stop(context.Background())
			st.Close()
		})
	}
	t.Cleanup(stop)
	return evl, st, r, stop
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

// TestXDPEscalationPrefix: IPv6 sources are counted and blocked per /64
// by default, so moving to another address of the same /64 neither
// restarts the count nor escapes the block; the prefix lengths are
// configurable for both families.
func TestXDPEscalationPrefix(t *testing.T) {
	addr := netip.MustParseAddr
	for _, tc := range []struct {
		name      string
		pol       escalation
		srcs      []string // the rejections, in order
		want      string   // the block made, "" for none
		inside    string   // another address the block must cover
		outside   string   // an address it must not
		wantCount int      // blocks after the rejections
	}{
		{name: "IPv6 /64 by default", pol: escalation{after: 5, within: time.Minute, block: time.Hour},
			srcs: []string{"2001:db8:5::1", "2001:db8:5::2", "2001:db8:5::3:4", "2001:db8:5:0:ffff::9", "2001:db8:5::1"},
			want: "2001:db8:5::/64", inside: "2001:db8:5::77", outside: "2001:db8:5:1::1", wantCount: 1},
		{name: "IPv6 other /64s count apart", pol: escalation{after: 3, within: time.Minute, block: time.Hour},
			srcs:      []string{"2001:db8:5::1", "2001:db8:5:1::1", "2001:db8:5:2::1", "2001:db8:5:3::1"},
			wantCount: 0},
		{name: "IPv6 /128 when configured", pol: escalation{after: 2, within: time.Minute, block: time.Hour, v4Bits: 32, v6Bits: 128},
			srcs: []string{"2001:db8:5::1", "2001:db8:5::2", "2001:db8:5::1"},
			want: "2001:db8:5::1/128", inside: "2001:db8:5::1", outside: "2001:db8:5::2", wantCount: 1},
		{name: "IPv4 /32 by default", pol: escalation{after: 2, within: time.Minute, block: time.Hour},
			srcs: []string{"198.51.100.1", "198.51.100.2", "::ffff:198.51.100.1"},
			want: "198.51.100.1/32", inside: "198.51.100.1", outside: "198.51.100.2", wantCount: 1},
		{name: "IPv4 /24 when configured", pol: escalation{after: 3, within: time.Minute, block: time.Hour, v4Bits: 24, v6Bits: 64},
			srcs: []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"},
			want: "198.51.100.0/24", inside: "198.51.100.200", outside: "198.51.101.1", wantCount: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r := newTestRuntime(t)
			r.swap(&xdpPlan{esc: tc.pol})
			for _, s := range tc.srcs {
				r.OnReject(addr(s))
			}
			bs := r.l.Blocks()
			if len(bs) != tc.wantCount || (tc.want != "" && bs[0].Prefix.String() != tc.want) {
				t.Fatalf("blocks %+v, want %d: %s", bs, tc.wantCount, tc.want)
			}
			if tc.want == "" {
				return
			}
			if v := r.l.Fallback().Allow(addr(tc.inside)); v != xdp.RejectBlock {
				t.Errorf("%s inside the block: %v", tc.inside, v)
			}
			if v := r.l.Fallback().Allow(addr(tc.outside)); v == xdp.RejectBlock {
				t.Errorf("%s outside the block was blocked", tc.outside)
			}
			// Lifting the block resets its count: after-1 rejections later
			// nothing is blocked again.
			if err := r.l.Unblock(bs[0].Prefix); err != nil {
				t.Fatal(err)
			}
			for range tc.pol.after - 1 {
				r.OnReject(addr(tc.inside))
			}
			if bs := r.l.Blocks(); len(bs) != 0 {
				t.Fatalf("blocked again before the threshold: %+v", bs)
			}
		})
	}
}

// TestXDPBlocksSurviveRestart: runtime blocks are kept in the store and
// put back, with their expiry and reason, by the next stoad on the same
// state; lifted and expired ones are not.
func TestXDPBlocksSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	evl, _, r, stop := newTestRuntimeIn(t, dir)
	r.swap(&xdpPlan{esc: escalation{after: 1, within: time.Minute, block: 400 * time.Millisecond}})
	block := func(cidr string, dur time.Duration, reason string) {
		t.Helper()
		pfx := netip.MustParsePrefix(cidr)
		if _, err := r.attributed(blockOrigin{prefix: pfx, added: true, by: "operator", actor: "test"},
			func() error { return r.l.Block(pfx, dur, reason) }); err != nil {
			t.Fatal(err)
		}
	}
	block("198.51.100.7/32", time.Hour, "stuffing")
	block("203.0.113.0/24", time.Hour, "lifted")
	r.OnReject(netip.MustParseAddr("2001:db8:6::1")) // escalated for 400ms
	if err := r.l.Unblock(netip.MustParsePrefix("203.0.113.0/24")); err != nil {
		t.Fatal(err)
	}
	want := map[string]xdp.Block{}
	for _, b := range r.l.Blocks() {
		want[b.Prefix.String()] = b
	}
	if len(want) != 2 {
		t.Fatalf("blocks before the restart: %+v", want)
	}
	waitEvents(t, evl, 4, "xdp.block", "xdp.unblock")
	stop()
	time.Sleep(500 * time.Millisecond) // the escalation's block expires while stoad is down

	evl2, st2, r2, _ := newTestRuntimeIn(t, dir)
	r2.swap(&xdpPlan{})
	if err := r2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := r2.l.Blocks()
	if len(got) != 1 || got[0].Prefix.String() != "198.51.100.7/32" || got[0].Reason != "stuffing" ||
		// The expiry comes back from its stored wall-clock time: compare
		// wall clocks (monotonic readings differ), to the millisecond.
		got[0].Until.Round(0).Sub(want["198.51.100.7/32"].Until.Round(0)).Abs() > time.Millisecond {
		t.Fatalf("blocks after the restart: %+v, want %+v", got, want["198.51.100.7/32"])
	}
	if v := r2.l.Fallback().Allow(netip.MustParseAddr("198.51.100.7")); v != xdp.RejectBlock {
		t.Fatalf("restored block not enforced: %v", v)
	}
	evs := waitEvents(t, evl2, 4, "xdp.block") // three from the first run
	if len(evs) != 4 || evs[3].Data["by"] != "restore" || evs[3].Data["source"] != "198.51.100.7/32" {
		t.Fatalf("restore event: %+v", evs)
	}
	// The expired escalation and the lifted block are gone from the store.
	var keys []string
	err := st2.View(context.Background(), func(tx store.Tx) error {
		return tx.Meta().List(context.Background(), store.MetaXDPBlocks, func(k string, _ []byte) error {
			keys = append(keys, k)
			return nil
		})
	})
	if err != nil || !reflect.DeepEqual(keys, []string{"198.51.100.7/32"}) {
		t.Fatalf("stored blocks: %q %v", keys, err)
	}
}

// TestXDPRestoreSkipsBadEntries: an unreadable or malformed stored block is
// logged and dropped; it does not stop the rest from being restored.
func TestXDPRestoreSkipsBadEntries(t *testing.T) {
	dir := t.TempDir()
	_, st, _, stop := newTestRuntimeIn(t, dir)
	future, _ := json.Marshal(storedBlock{Until: time.Now().Add(time.Hour).UTC(), Reason: "ok"})
	ctx := context.Background()
	err := st.Update(ctx, func(tx store.Tx) error {
		for k, v := range map[string][]byte{"not a cidr": future, "198.51.100.0/24": []byte("{"), "2001:db8::/48": future} {
			if err := tx.Meta().Put(ctx, store.MetaXDPBlocks, k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	_, _, r2, _ := newTestRuntimeIn(t, dir)
	r2.swap(&xdpPlan{})
	if err := r2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r2.l.Blocks(); len(got) != 1 || got[0].Prefix.String() != "2001:db8::/48" {
		t.Fatalf("blocks: %+v", got)
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
