//go:build linux

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/netnstest"
)

// xdpNet is the topology of the XDP end-to-end tests: stoad and the
// example upstreams in a server namespace, with one veth pair to each of a
// legitimate client, an attacker and an HTTP client that hammers past its
// L7 limit.
//
//	client  c0 198.18.1.2 ── s-c 198.18.1.1 ┐
//	attacker a0 198.18.2.2 ── s-a 198.18.2.1 ├ server: stoad on :8080, upstreams on 127.0.0.1:9001
//	hammer  h0 198.18.3.2 ── s-h 198.18.3.1 ┘
type xdpNet struct {
	server, client, attacker, hammer *netnstest.NS
	feeder                           *netnstest.Feeder // see frameFlood
}

var (
	xdpServerC  = netip.MustParseAddr("198.18.1.1")
	xdpClientIP = netip.MustParseAddr("198.18.1.2")
	xdpServerA  = netip.MustParseAddr("198.18.2.1")
	xdpAttackIP = netip.MustParseAddr("198.18.2.2")
	xdpServerH  = netip.MustParseAddr("198.18.3.1")
	xdpHammerIP = netip.MustParseAddr("198.18.3.2")
)

func newXDPNet(t *testing.T, withAttackers bool) *xdpNet {
	t.Helper()
	n := &xdpNet{server: netnstest.New(t), client: netnstest.New(t)}
	netnstest.Veth(t, n.server, "s-c", []string{"198.18.1.1/24"}, n.client, "c0", []string{"198.18.1.2/24"})
	if withAttackers {
		n.attacker, n.hammer = netnstest.New(t), netnstest.New(t)
		netnstest.Veth(t, n.server, "s-a", []string{"198.18.2.1/24"}, n.attacker, "a0", []string{"198.18.2.2/24"})
		netnstest.Veth(t, n.server, "s-h", []string{"198.18.3.1/24"}, n.hammer, "h0", []string{"198.18.3.2/24"})
	}
	return n
}

// frameFlood returns a SYN flood from the attacker that reaches s-a as XDP
// frames, the way a NIC hands frames to its driver's XDP program, rather
// than as socket buffers built by the attacker's stack (netnstest.Feeder).
// s-a gets GRO, hence NAPI, which veth needs to take redirected frames when
// no native XDP program is attached to it (generic mode, XDP off).
func (n *xdpNet) frameFlood(t *testing.T) *xdpSYNFlood {
	t.Helper()
	if n.feeder == nil {
		n.server.SetGRO("s-a", true)
		n.feeder = netnstest.NewFeeder(t, n.attacker, "fd0", "a0")
	}
	return newXDPFrameFlood(n.feeder, n.server.HardwareAddr("s-a"), n.attacker.HardwareAddr("a0"), xdpAttackIP, xdpServerA, 8080)
}

// xdpStockURL is shop/stock's route as seen through veth addr.
func xdpStockURL(addr netip.Addr, sku string) string {
	return fmt.Sprintf("http://%s:8080/shop/stock/items/%s", addr, sku)
}

// xdpToolSpecs serves the example inventory API twice: as shop/stock for
// the legitimate client (no per-source limit), and as lab/probe, whose
// tenant allows each source 20 requests a second (the hammer's).
const xdpToolSpecs = `apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata:
  name: shop
spec:
  displayName: Shop
---
apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata:
  name: lab
spec:
  defaults:
    perSource: {rate: 20/s, burst: 20}
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: stock
  namespace: shop
spec:
  protocol: rest
  upstream: http://127.0.0.1:9001/inventory
  auth: {type: none}
  operations:
    - name: get_stock
      method: GET
      path: /items/{sku}
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: probe
  namespace: lab
spec:
  protocol: rest
  upstream: http://127.0.0.1:9001/inventory
  auth: {type: none}
  operations:
    - name: get_stock
      method: GET
      path: /items/{sku}
`

func xdpGatewaySpec(xdp string) string {
	return "apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  xdp:\n" + xdp + "---\n" + xdpToolSpecs
}

// TestXDPGateway runs the real stoad with XDP on the server's veths, once
// in native (driver) mode and once in generic mode, and checks, in order: a
// legitimate client keeps ≥ 99 % success while a SYN flood is dropped in
// XDP; a flood arriving as XDP frames (as from a NIC) is dropped too; an
// HTTP client hammering past its L7 limit is escalated into the kernel
// block list, times out, and is let back in after the cool-down, with
// xdp.block/xdp.unblock events; runtime block and unblock from the CLI; a
// revision XDP could not apply is rejected; status and metrics; a crash and
// a restart; and SIGTERM leaves no program attached.
func TestXDPGateway(t *testing.T) {
	requireXDP(t)
	for _, mode := range []string{"native", "generic"} {
		t.Run(mode, func(t *testing.T) { xdpGatewayIn(t, mode) })
	}
}

func xdpGatewayIn(t *testing.T, mode string) {
	n := newXDPNet(t, true)
	xdpStartUpstreams(t, n.server)
	d := NewDaemon(t)
	d.Listen, d.Ops = "0.0.0.0:8080", "127.0.0.1:9090"
	xdpStartIn(d, n.server, filepath.Join(binDir, "stoad"))

	r := xdpApply(t, d, xdpGatewaySpec(`    enabled: true
    interfaces: [s-c, s-a, s-h]
    mode: `+mode+`
    perSource: {rate: 1000/s, burst: 2000}
    count: packets
    escalation: {after: 30, within: 10s, block: 5s}
`))
	expect(t, r, 0, "apply gateway with xdp")
	st := xdpStatusOf(t, d)
	if !st.Enabled || !st.Attached || st.Mode != mode || st.Fallback || len(st.Interfaces) != 3 ||
		len(st.Ports) != 1 || st.Ports[0] != 8080 || st.PerSource == nil || st.PerSource.Burst != 2000 || st.Escalation == nil {
		t.Fatalf("xdp status after apply: %+v", st)
	}
	for _, ifc := range []string{"s-c", "s-a", "s-h"} {
		if !n.server.XDPAttached(ifc) {
			t.Fatalf("%s: no XDP program attached", ifc)
		}
	}

	for _, ifc := range st.Interfaces {
		if ifc.Mode != mode {
			t.Fatalf("%s attached in %q mode, want %s: %+v", ifc.Name, ifc.Mode, mode, st)
		}
	}
	t.Run("flood", func(t *testing.T) { xdpFloodPhase(t, d, n) })
	t.Run("frames", func(t *testing.T) { xdpFramePhase(t, d, n) })
	t.Run("escalation", func(t *testing.T) { xdpEscalationPhase(t, d, n) })
	t.Run("runtime block", func(t *testing.T) { xdpRuntimeBlockPhase(t, d, n) })

	// A revision XDP cannot apply is rejected as a whole; XDP keeps going.
	r = xdpApply(t, d, xdpGatewaySpec("    enabled: true\n    interfaces: [s-c, nope0]\n    mode: "+mode+"\n"))
	expect(t, r, 3, "apply gateway naming a missing interface")
	if !strings.Contains(r.Stderr, "nope0") {
		t.Errorf("rejection should name the interface:\n%s", r)
	}
	if st := xdpStatusOf(t, d); !st.Attached || len(st.Interfaces) != 3 || st.Escalation == nil {
		t.Errorf("a rejected revision changed XDP: %+v", st)
	}

	// stoa status shows the mode, the interfaces and the counters.
	r = d.Stoa("status")
	expect(t, r, 0, "stoa status")
	t.Logf("stoa status:\n%s", r.Stdout)
	if r := d.Stoa("xdp", "status"); r.Code == 0 {
		t.Logf("stoa xdp status:\n%s", r.Stdout)
		if !strings.Contains(r.Stdout, "block for 5s, per IPv4 /32 and IPv6 /64") {
			t.Errorf("stoa xdp status lacks the escalation prefixes:\n%s", r.Stdout)
		}
	}
	for _, want := range []string{"xdp", mode + " on s-c, s-a, s-h", "packets:", "dropped_rate=", "trackedSources:"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("stoa status lacks %q:\n%s", want, r.Stdout)
		}
	}
	metrics := xdpScrape(t, n.server, "http://127.0.0.1:9090/metrics")
	for _, want := range []string{`stoa_xdp_packets_total{action="dropped_rate"}`, `stoa_xdp_packets_total{action="dropped_block"}`, "stoa_xdp_attached 1", "stoa_xdp_tracked_sources"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A crash (SIGKILL) leaves nothing attached either: the bpf_links die
	// with the process. The restarted stoad attaches again from its stored
	// revision, and puts back the runtime blocks with their expiry.
	expect(t, d.Stoa("xdp", "block", "198.18.2.0/24", "--for", "10m", "--reason", "kept across restarts"), 0, "stoa xdp block")
	before := xdpBlocksOf(t, d)
	d.Kill()
	noXDPLeft(t, n.server, "s-c", "s-a", "s-h")
	xdpStartIn(d, n.server, filepath.Join(binDir, "stoad"))
	if st := xdpStatusOf(t, d); !st.Attached || st.Mode != mode || st.Escalation == nil {
		t.Fatalf("after a crash and restart: %+v", st)
	}
	after := xdpBlocksOf(t, d)
	if len(before) != 1 || len(after) != 1 || after[0].Source != "198.18.2.0/24" || after[0].Reason != "kept across restarts" ||
		!after[0].Until.Equal(before[0].Until) {
		t.Fatalf("runtime blocks before the crash %+v, after the restart %+v", before, after)
	}

	// SIGTERM: a clean exit, and nothing left attached.
	d.Stop()
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("stoad exited %d after SIGTERM", code)
	}
	noXDPLeft(t, n.server, "s-c", "s-a", "s-h")
}

func xdpFloodPhase(t *testing.T, d *Daemon, n *xdpNet) {
	before := xdpStatusOf(t, d).Counters
	syn, err := newXDPSYNFlood(n.attacker, xdpAttackIP, xdpServerA, 8080)
	if err != nil {
		t.Fatal(err)
	}
	defer syn.Close()
	var sent int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sent = syn.Run(10 * time.Second) }()

	c := n.client.HTTPClient(5 * time.Second)
	defer c.CloseIdleConnections()
	const total = 300
	ok := 0
	var errs []string
	tick := time.NewTicker(10 * time.Millisecond)
	for i := range total {
		<-tick.C
		code, err := xdpGet(c, xdpStockURL(xdpServerC, fmt.Sprint("sku-", i)))
		if code == http.StatusOK {
			ok++
		} else if len(errs) < 5 {
			errs = append(errs, fmt.Sprintf("request %d: %d %v", i, code, err))
		}
	}
	tick.Stop()
	syn.Stop()
	wg.Wait()

	st := xdpStatusOf(t, d)
	dropped := st.Counters.DroppedRate - before.DroppedRate
	t.Logf("attacker sent %d SYNs; client %d/%d ok; dropped for rate %d; top sources %+v", sent, ok, total, dropped, st.TopSources)
	if ok*100 < total*99 {
		t.Errorf("client success %d/%d under flood, want >= 99%%: %v", ok, total, errs)
	}
	if dropped < 1000 {
		t.Errorf("only %d packets dropped for rate in XDP", dropped)
	}
	if len(st.TopSources) == 0 || st.TopSources[0].Addr != xdpAttackIP.String() || st.TopSources[0].Dropped == 0 {
		t.Errorf("top sources %+v, want the attacker first", st.TopSources)
	}
	for _, s := range st.TopSources {
		if s.Addr == xdpClientIP.String() && s.Dropped > 0 {
			t.Errorf("the client had %d packets dropped", s.Dropped)
		}
	}
}

// xdpFramePhase floods SYNs that reach s-a as XDP frames (netnstest.Feeder)
// rather than as socket buffers from the attacker's stack: the path a NIC
// driver gives native XDP. They must be dropped for rate and counted.
func xdpFramePhase(t *testing.T, d *Daemon, n *xdpNet) {
	before := xdpStatusOf(t, d).Counters
	f := n.frameFlood(t)
	defer f.Close()
	sent := f.Run(time.Second)
	st := xdpStatusOf(t, d)
	dropped := st.Counters.DroppedRate - before.DroppedRate
	t.Logf("attacker sent %d SYN frames; dropped for rate %d, passed %d", sent, dropped, st.Counters.Passed-before.Passed)
	if sent < 5000 || dropped < uint64(sent)/2 {
		t.Errorf("%d of %d SYN frames dropped for rate in XDP, want most", dropped, sent)
	}
}

func xdpEscalationPhase(t *testing.T, d *Daemon, n *xdpNet) {
	before := xdpStatusOf(t, d).Counters
	hc := &http.Client{Timeout: 400 * time.Millisecond, Transport: &http.Transport{DialContext: n.hammer.DialContext, MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	url := fmt.Sprintf("http://%s:8080/lab/probe/items/hammer", xdpServerH)
	var ok, limited, timeouts int
	var other []string
	start := time.Now()
	for time.Since(start) < 8*time.Second && timeouts < 3 {
		code, err := xdpGet(hc, url)
		switch {
		case code == http.StatusOK:
			ok++
		case code == http.StatusTooManyRequests:
			limited++
		case err != nil && xdpIsTimeout(err):
			timeouts++
		default:
			if len(other) < 5 {
				other = append(other, fmt.Sprintf("%d %v", code, err))
			}
		}
	}
	t.Logf("hammer: %d ok, %d limited (429), %d timeouts, other %v, in %v", ok, limited, timeouts, other, time.Since(start).Round(time.Millisecond))
	if ok == 0 || limited < 30 || timeouts < 3 {
		t.Fatalf("want 200s, then >= 30 429s, then timeouts once blocked in the kernel")
	}
	blocks := xdpBlocksOf(t, d)
	var blk *api.XDPBlock
	for i := range blocks {
		if blocks[i].Source == xdpHammerIP.String()+"/32" {
			blk = &blocks[i]
		}
	}
	if blk == nil || !strings.HasPrefix(blk.Reason, "escalated: ") || blk.ExpiresInSeconds <= 0 {
		t.Fatalf("blocks after escalation: %+v", blocks)
	}
	if st := xdpStatusOf(t, d); st.Counters.DroppedBlock <= before.DroppedBlock {
		t.Errorf("no packets dropped for the block: %+v", st.Counters)
	}

	// After the cool-down the sweeper lifts the block and the hammer is
	// served again.
	if !xdpEventually(10*time.Second, func() bool { return len(xdpBlocksOf(t, d)) == 0 }) {
		t.Fatalf("block not lifted after the cool-down: %+v", xdpBlocksOf(t, d))
	}
	hc.CloseIdleConnections()
	fresh := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: n.hammer.DialContext, DisableKeepAlives: true}}
	if code, err := xdpGet(fresh, url); code != http.StatusOK {
		t.Errorf("hammer after the cool-down: %d %v", code, err)
	}

	evs := xdpEventsOf(t, d)
	var sawBlock, sawUnblock bool
	for _, e := range evs {
		if e.Data["source"] != xdpHammerIP.String()+"/32" {
			continue
		}
		switch {
		case e.Type == "xdp.block" && e.Data["by"] == "escalation":
			sawBlock = true
		case e.Type == "xdp.unblock" && e.Data["by"] == "expiry":
			sawUnblock = sawBlock
		}
	}
	if !sawBlock || !sawUnblock {
		t.Errorf("want xdp.block (escalation) then xdp.unblock (expiry) for the hammer; events: %+v", evs)
	}
}

func xdpRuntimeBlockPhase(t *testing.T, d *Daemon, n *xdpNet) {
	fresh := func(timeout time.Duration) *http.Client {
		return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: n.client.DialContext, DisableKeepAlives: true}}
	}
	url := xdpStockURL(xdpServerC, "runtime")
	before := xdpStatusOf(t, d).Counters
	r := d.Stoa("xdp", "block", xdpClientIP.String(), "--for", "1m", "--reason", "e2e runtime block")
	expect(t, r, 0, "stoa xdp block")
	if !strings.Contains(r.Stdout, "blocked 198.18.1.2/32 until") {
		t.Errorf("block output: %s", r)
	}
	r = d.Stoa("xdp", "blocks")
	expect(t, r, 0, "stoa xdp blocks")
	t.Logf("stoa xdp blocks:\n%s", r.Stdout)
	if !strings.Contains(r.Stdout, "198.18.1.2/32") || !strings.Contains(r.Stdout, "e2e runtime block") {
		t.Errorf("blocks table:\n%s", r)
	}
	if code, err := xdpGet(fresh(time.Second), url); err == nil || !xdpIsTimeout(err) {
		t.Errorf("blocked client got %d %v, want a timeout", code, err)
	}
	if st := xdpStatusOf(t, d); st.Counters.DroppedBlock <= before.DroppedBlock {
		t.Errorf("blocked client's packets not counted: %+v", st.Counters)
	}
	r = d.Stoa("xdp", "unblock", xdpClientIP.String())
	expect(t, r, 0, "stoa xdp unblock")
	if code, err := xdpGet(fresh(3*time.Second), url); code != http.StatusOK {
		t.Errorf("unblocked client got %d %v", code, err)
	}
	r = d.Stoa("xdp", "unblock", xdpClientIP.String())
	expect(t, r, 0, "unblock again")
	if !strings.Contains(r.Stderr, "was not blocked") {
		t.Errorf("second unblock: %s", r)
	}
	// The runtime announces blocks from its own loop: look until both
	// events are there.
	var block, unblock bool
	for deadline := time.Now().Add(15 * time.Second); !(block && unblock) && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, e := range xdpEventsOf(t, d) {
			if e.Data["source"] == "198.18.1.2/32" && e.Data["by"] == "operator" {
				block = block || e.Type == "xdp.block" && e.Data["reason"] == "e2e runtime block"
				unblock = unblock || e.Type == "xdp.unblock"
			}
		}
	}
	if !block || !unblock {
		t.Errorf("operator block/unblock events missing (block %v, unblock %v)", block, unblock)
	}
}

// TestXDPAutoMode applies mode auto (the default) to a veth, which has
// native XDP, and to lo, which has only generic: stoad tries native first
// and falls back per interface, and both `stoa xdp status` and `stoa
// status` say what each interface got. A restart gets the same again.
func TestXDPAutoMode(t *testing.T) {
	requireXDP(t)
	n := newXDPNet(t, false)
	xdpStartUpstreams(t, n.server)
	d := NewDaemon(t)
	d.Listen, d.Ops = "0.0.0.0:8080", "127.0.0.1:9090"
	xdpStartIn(d, n.server, filepath.Join(binDir, "stoad"))
	expect(t, xdpApply(t, d, xdpGatewaySpec("    enabled: true\n    interfaces: [s-c, lo]\n")), 0, "apply gateway, mode auto")

	check := func(when string) {
		t.Helper()
		st := xdpStatusOf(t, d)
		got := map[string]string{}
		for _, ifc := range st.Interfaces {
			got[ifc.Name] = ifc.Mode
		}
		if !st.Attached || st.Mode != "mixed" || got["s-c"] != "native" || got["lo"] != "generic" {
			t.Fatalf("%s: xdp status %+v, want s-c native and lo generic (mixed)", when, st)
		}
		if !strings.Contains(n.server.IP("link", "show", "dev", "s-c"), "xdp ") || !strings.Contains(n.server.IP("link", "show", "dev", "lo"), "xdpgeneric") {
			t.Fatalf("%s: ip link disagrees:\n%s%s", when, n.server.IP("link", "show", "dev", "s-c"), n.server.IP("link", "show", "dev", "lo"))
		}
		r := d.Stoa("xdp", "status")
		expect(t, r, 0, "stoa xdp status")
		if !strings.Contains(r.Stdout, "mixed") || !strings.Contains(r.Stdout, "s-c (native), lo (generic)") {
			t.Errorf("%s: stoa xdp status:\n%s", when, r.Stdout)
		}
		r = d.Stoa("status")
		expect(t, r, 0, "stoa status")
		if !strings.Contains(r.Stdout, "mixed on s-c (native), lo (generic)") {
			t.Errorf("%s: stoa status:\n%s", when, r.Stdout)
		}
	}
	check("after apply")
	// The client still gets through, over the natively attached veth.
	if code, err := xdpGet(n.client.HTTPClient(5*time.Second), xdpStockURL(xdpServerC, "auto")); code != http.StatusOK {
		t.Fatalf("client through s-c: %d %v", code, err)
	}
	d.Kill()
	noXDPLeft(t, n.server, "s-c", "lo")
	xdpStartIn(d, n.server, filepath.Join(binDir, "stoad"))
	check("after a restart")
	d.Stop()
}

// TestXDPFallbackUnprivileged runs stoad as nobody, without capabilities:
// stoad keeps serving, `stoa status` says why XDP is off, and the
// accept-time fallback enforces the per-source limit.
func TestXDPFallbackUnprivileged(t *testing.T) {
	requireXDP(t)
	n := newXDPNet(t, false)
	xdpStartUpstreams(t, n.server)

	d, bin := xdpNobodyDaemon(t)
	d.Listen, d.Ops = "0.0.0.0:8080", "127.0.0.1:9090"
	xdpStartIn(d, n.server, bin, xdpDropPrivileges...)

	r := xdpApply(t, d, xdpGatewaySpec("    enabled: true\n    interfaces: [s-c]\n    perSource: {rate: 5/s, burst: 5}\n"))
	expect(t, r, 0, "apply gateway as nobody")
	r = d.Stoa("status")
	expect(t, r, 0, "stoa status")
	t.Logf("stoa status as nobody:\n%s", r.Stdout)
	for _, want := range []string{"XDP off: need CAP_BPF and CAP_NET_ADMIN (running as uid 65534)", "userspace fallback", "5/s connections per source"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("stoa status lacks %q:\n%s", want, r.Stdout)
		}
	}
	st := xdpStatusOf(t, d)
	if st.Attached || !st.Fallback || st.Mode != "off" || !strings.Contains(st.Reason, "CAP_BPF") {
		t.Fatalf("xdp status as nobody: %+v", st)
	}
	if n.server.XDPAttached("s-c") {
		t.Fatal("an unprivileged stoad attached XDP")
	}

	// 30 new connections at once: the bucket (5, +5/s) admits a handful;
	// the rest are reset at accept time.
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: n.client.DialContext, DisableKeepAlives: true}}
	ok, failed := 0, 0
	for i := range 30 {
		resp, err := c.Get(xdpStockURL(xdpServerC, fmt.Sprint("fb-", i)))
		if err != nil {
			failed++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
		}
	}
	st = xdpStatusOf(t, d)
	t.Logf("fallback: %d ok, %d refused; counters %+v", ok, failed, st.FallbackCounters)
	if ok < 5 || ok > 15 || failed < 15 {
		t.Errorf("accept-time limit 5/s burst 5: %d ok, %d refused", ok, failed)
	}
	if st.FallbackCounters.DroppedRate < 15 || st.FallbackCounters.Passed < 5 {
		t.Errorf("fallback counters: %+v", st.FallbackCounters)
	}
	d.Stop()
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("stoad exited %d after SIGTERM", code)
	}
}
