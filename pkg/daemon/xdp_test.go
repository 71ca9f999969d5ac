package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
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
			r := &xdpRuntime{d: &Daemon{cfg: &Config{Listen: tt.listen}}}
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
		p, err := parseSource(in)
		if err != nil || p.String() != want {
			t.Errorf("parseSource(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "nope", "fe80::1%eth0", "10.0.0.0/33"} {
		if _, err := parseSource(in); err == nil {
			t.Errorf("parseSource(%q) succeeded", in)
		}
	}
	if got := canonicalSource(netip.MustParsePrefix("::ffff:198.51.100.0/120")); got.String() != "198.51.100.0/24" {
		t.Errorf("canonicalSource = %s", got)
	}
}

// xdpTestDaemon is a daemon with the default runtimes (not started) and its
// xdp runtime. Nothing here attaches a program: the plans name no
// interfaces.
func xdpTestDaemon(t *testing.T) (*Daemon, *xdpRuntime) {
	t.Helper()
	cfg := &Config{StateDir: t.TempDir(), Socket: "/nonexistent.sock", Listen: "127.0.0.1:8080"}
	d, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Runtimes: DefaultRuntimes})
	if err != nil {
		t.Fatal(err)
	}
	var r *xdpRuntime
	for _, rt := range d.runtimes {
		if x, ok := rt.(*xdpRuntime); ok {
			r = x
		}
	}
	if r == nil {
		t.Fatal("DefaultRuntimes has no xdp runtime")
	}
	t.Cleanup(func() {
		r.Stop(context.Background())
		d.store.Close()
	})
	return d, r
}

// waitEvents waits until the store holds n events of the given types.
func waitEvents(t *testing.T, d *Daemon, n int, types ...string) []api.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, err := store.ReadEvents(context.Background(), d.store, 0, 0)
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
	d, r := xdpTestDaemon(t)
	r.swap(&xdpPlan{esc: escalation{after: 5, within: time.Second, block: 300 * time.Millisecond}})
	src := netip.MustParseAddr("198.51.100.9")
	for range 4 {
		r.onReject(src)
	}
	if len(r.l.Blocks()) != 0 {
		t.Fatal("blocked before the threshold")
	}
	r.onReject(src)
	bs := r.l.Blocks()
	if len(bs) != 1 || bs[0].Prefix.String() != "198.51.100.9/32" || !strings.HasPrefix(bs[0].Reason, "escalated: 5 rejections in 1s") {
		t.Fatalf("blocks after escalation: %+v", bs)
	}
	// The accept-time fallback (XDP is off here) now rejects the source.
	if v := r.l.Fallback().Allow(src); v != xdp.RejectBlock {
		t.Fatalf("fallback verdict %v", v)
	}
	evs := waitEvents(t, d, 2, "xdp.block", "xdp.unblock")
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
		r.onReject(src)
	}
	if len(r.l.Blocks()) != 0 {
		t.Fatal("escalation still on after it was turned off")
	}
}

func TestXDPEscalationKeepsLongerBlock(t *testing.T) {
	_, r := xdpTestDaemon(t)
	r.swap(&xdpPlan{esc: escalation{after: 1, within: time.Second, block: time.Second}})
	if err := r.l.Block(netip.MustParsePrefix("198.51.100.0/24"), time.Hour, "operator"); err != nil {
		t.Fatal(err)
	}
	r.onReject(netip.MustParseAddr("198.51.100.9"))
	if bs := r.l.Blocks(); len(bs) != 1 || bs[0].Reason != "operator" {
		t.Fatalf("blocks: %+v", bs)
	}
}

func TestXDPBlockAPI(t *testing.T) {
	d, r := xdpTestDaemon(t)
	r.swap(&xdpPlan{})
	mux := http.NewServeMux()
	peer := Peer{UID: 0, User: "root"}
	for _, ext := range d.extensions {
		if strings.Contains(ext.Pattern, "/v1/xdp/") {
			h := ext.Handler
			mux.HandleFunc(ext.Pattern, func(w http.ResponseWriter, req *http.Request) {
				if err := h(w, req, peer); err != nil {
					WriteError(w, err)
				}
			})
		}
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path string, body any, out any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}

	var blk api.XDPBlock
	if code := call("POST", api.PathXDPBlocks, api.XDPBlockRequest{CIDR: "198.51.100.7", For: "10m", Reason: "stuffing"}, &blk); code != 200 {
		t.Fatalf("block: %d", code)
	}
	if blk.Source != "198.51.100.7/32" || blk.Reason != "stuffing" || blk.ExpiresInSeconds < 599 {
		t.Fatalf("block answer: %+v", blk)
	}
	if code := call("POST", api.PathXDPBlocks, api.XDPBlockRequest{CIDR: "2001:db8::/32", For: "1d"}, nil); code != 200 {
		t.Fatalf("block v6: %d", code)
	}
	for _, bad := range []api.XDPBlockRequest{{CIDR: "nope", For: "1m"}, {CIDR: "10.0.0.1"}, {CIDR: "10.0.0.1", For: "-1m"}, {CIDR: "10.0.0.1", For: "400d"}} {
		var e api.ErrorBody
		if code := call("POST", api.PathXDPBlocks, bad, &e); code != 400 || e.Error == nil || e.Error.Hint == "" {
			t.Errorf("block %+v: %d %+v", bad, code, e.Error)
		}
	}
	var list api.XDPBlockList
	call("GET", api.PathXDPBlocks, nil, &list)
	if len(list.Items) != 2 || list.Items[0].Source != "198.51.100.7/32" || list.Items[1].Source != "2001:db8::/32" ||
		!strings.Contains(list.Items[1].Reason, "blocked by root") {
		t.Fatalf("list: %+v", list)
	}

	var un api.XDPUnblockResponse
	call("POST", api.PathXDPUnblock, api.XDPUnblockRequest{CIDR: "198.51.100.7/32"}, &un)
	if !un.Removed || un.Source != "198.51.100.7/32" {
		t.Fatalf("unblock: %+v", un)
	}
	call("DELETE", api.PathXDPBlocks+"?cidr=2001:db8::/32", nil, &un)
	if !un.Removed {
		t.Fatalf("delete: %+v", un)
	}
	call("POST", api.PathXDPUnblock, api.XDPUnblockRequest{CIDR: "198.51.100.7"}, &un)
	if un.Removed {
		t.Fatalf("second unblock removed something: %+v", un)
	}

	evs := waitEvents(t, d, 4, "xdp.block", "xdp.unblock")
	var got []string
	for _, e := range evs {
		got = append(got, e.Type+" "+e.Data["source"].(string)+" "+e.Data["by"].(string)+" "+e.Data["actor"].(string))
	}
	want := []string{
		"xdp.block 198.51.100.7/32 operator root (uid 0)",
		"xdp.block 2001:db8::/32 operator root (uid 0)",
		"xdp.unblock 198.51.100.7/32 operator root (uid 0)",
		"xdp.unblock 2001:db8::/32 operator root (uid 0)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	var st api.XDPStatus
	call("GET", api.PathXDPStatus, nil, &st)
	if st.Enabled || st.Mode != "off" || !strings.Contains(st.Reason, "disabled in the Gateway spec") {
		t.Fatalf("status: %+v", st)
	}
}

func TestXDPStatusComponent(t *testing.T) {
	d, r := xdpTestDaemon(t)
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
	found := false
	for _, comp := range d.Status().Components {
		found = found || comp.Name == "xdp"
	}
	if !found {
		t.Fatal("stoa status has no xdp component")
	}
	rd := r.XDPStats()
	if rd.Mode != "off" || rd.Attached || rd.Fallback {
		t.Fatalf("stats reading: %+v", rd)
	}
}
