//go:build linux

package xdp

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/netnstest"
)

// e2eNet is the end-to-end topology: a server namespace with one veth to a
// client namespace and one to an attacker namespace.
//
//	client  c0 198.18.1.2 ── s-c 198.18.1.1  server  s-a 198.18.2.1 ── a0 198.18.2.2  attacker
//	                                                   2001:db8:2::1     2001:db8:2::2
type e2eNet struct {
	server, client, attacker *netnstest.NS
}

var (
	serverC  = netip.MustParseAddr("198.18.1.1")
	clientIP = netip.MustParseAddr("198.18.1.2")
	serverA  = netip.MustParseAddr("198.18.2.1")
	attackIP = netip.MustParseAddr("198.18.2.2")
	serverA6 = netip.MustParseAddr("2001:db8:2::1")
	attack6  = netip.MustParseAddr("2001:db8:2::2")
)

func newE2ENet(t testing.TB) *e2eNet {
	n := &e2eNet{server: netnstest.New(t), client: netnstest.New(t), attacker: netnstest.New(t)}
	netnstest.Veth(t, n.server, "s-c", []string{"198.18.1.1/24"}, n.client, "c0", []string{"198.18.1.2/24"})
	netnstest.Veth(t, n.server, "s-a", []string{"198.18.2.1/24", "2001:db8:2::1/64"}, n.attacker, "a0", []string{"198.18.2.2/24", "2001:db8:2::2/64"})
	return n
}

// serveHTTP runs a small HTTP server on port 8080 in the server namespace
// until the test ends.
func (n *e2eNet) serveHTTP(t testing.TB) {
	ln, err := n.server.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
}

// clientRun makes n paced HTTP requests from the client namespace and
// returns how many succeeded.
func (n *e2eNet) clientRun(count int, every time.Duration) (ok int, errs []error) {
	c := n.client.HTTPClient(5 * time.Second)
	defer c.CloseIdleConnections()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := range count {
		<-tick.C
		resp, err := c.Get(fmt.Sprintf("http://%s:8080/r/%d", serverC, i))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "ok" {
			errs = append(errs, fmt.Errorf("request %d: %q %v", i, body, err))
			continue
		}
		ok++
	}
	return ok, errs
}

// TestEndToEnd runs the Limiter on veths between namespaces in native
// (driver) mode and in generic mode: a client keeps working through a SYN
// flood that is dropped for rate; runtime block and unblock; an in-place
// deny list for IPv4 and IPv6; frames arriving as XDP frames (as from a
// NIC) rather than socket buffers; metrics; and Close detaches.
func TestEndToEnd(t *testing.T) {
	requireRootBPF(t)
	for _, mode := range []Mode{ModeNative, ModeGeneric} {
		t.Run(string(mode), func(t *testing.T) { endToEnd(t, mode) })
	}
}

func endToEnd(t *testing.T, mode Mode) {
	n := newE2ENet(t)
	n.serveHTTP(t)

	l, apply := newLimiterIn(t, n.server)
	var events []string
	var evMu sync.Mutex
	l.OnBlockChange(func(b Block, added bool) {
		evMu.Lock()
		defer evMu.Unlock()
		events = append(events, fmt.Sprintf("%s %v", b.Prefix, added))
	})
	cfg := Config{
		Interfaces: []string{"s-c", "s-a"},
		Mode:       mode,
		Rate:       1000,
		Burst:      2000,
		Count:      CountPackets,
		Ports:      []uint16{8080},
	}
	if err := apply(cfg); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); !st.Attached || st.Mode != mode {
		t.Fatalf("status: %+v", st)
	}
	linkC, linkA := l.linkID(t, "s-c"), l.linkID(t, "s-a")

	// Phase 1: a SYN flood from the attacker while the client works.
	syn, err := newSYNFlood(n.attacker, attackIP, serverA, 8080)
	if err != nil {
		t.Fatal(err)
	}
	defer syn.close()
	var sent int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sent = syn.run(4 * time.Second) }()
	ok, errs := n.clientRun(300, 10*time.Millisecond)
	wg.Wait()
	c1 := l.Status().Counters
	t.Logf("phase 1: attacker sent %d SYNs; client %d/300 ok; counters %+v", sent, ok, c1)
	if ok < 297 {
		t.Errorf("client success %d/300 under flood, want >= 99%%; errors: %v", ok, errs)
	}
	if c1.DroppedRate < 1000 {
		t.Errorf("%d packets dropped for rate, want many", c1.DroppedRate)
	}
	top := l.TopSources(2)
	if len(top) == 0 || top[0].Addr != attackIP || top[0].Dropped == 0 {
		t.Errorf("top sources %+v, want the attacker first", top)
	}
	for _, s := range top {
		if s.Addr == clientIP && s.Dropped > 0 {
			t.Errorf("client had %d packets dropped", s.Dropped)
		}
	}

	flood := func(d time.Duration) Counters {
		t.Helper()
		before := l.Status().Counters
		if _, err := udpFlood(n.attacker, netip.AddrPortFrom(serverA, 8080), d); err != nil {
			t.Fatal(err)
		}
		after := l.Status().Counters
		return Counters{
			Passed:       after.Passed - before.Passed,
			DroppedRate:  after.DroppedRate - before.DroppedRate,
			DroppedDeny:  after.DroppedDeny - before.DroppedDeny,
			DroppedBlock: after.DroppedBlock - before.DroppedBlock,
		}
	}

	// Phase 2: block the attacker at runtime; its packets drop as blocked,
	// none for rate, and the client is unaffected.
	if err := l.Block(netip.PrefixFrom(attackIP, 32), time.Minute, "test"); err != nil {
		t.Fatal(err)
	}
	d := flood(time.Second)
	t.Logf("phase 2 (blocked): %+v", d)
	if d.DroppedBlock < 1000 || d.DroppedRate != 0 || d.Passed > 10 {
		t.Errorf("blocked attacker: %+v", d)
	}
	if ok, errs := n.clientRun(10, 10*time.Millisecond); ok != 10 {
		t.Errorf("client while attacker blocked: %d/10 (%v)", ok, errs)
	}

	// Phase 3: unblock; the bucket limits it again.
	if err := l.Unblock(netip.PrefixFrom(attackIP, 32)); err != nil {
		t.Fatal(err)
	}
	d = flood(time.Second)
	t.Logf("phase 3 (unblocked): %+v", d)
	if d.DroppedBlock != 0 || d.DroppedRate < 1000 {
		t.Errorf("unblocked attacker: %+v", d)
	}

	// Phase 4: deny the attacker's networks in place, IPv4 and IPv6; no
	// interface is re-attached.
	cfg.Deny = prefixes("198.18.2.0/24", "2001:db8:2::/64")
	if err := apply(cfg); err != nil {
		t.Fatal(err)
	}
	if l.linkID(t, "s-c") != linkC || l.linkID(t, "s-a") != linkA {
		t.Fatal("a deny list change re-attached the program")
	}
	d = flood(time.Second)
	t.Logf("phase 4 (denied): %+v", d)
	if d.DroppedDeny < 1000 || d.DroppedRate != 0 {
		t.Errorf("denied attacker: %+v", d)
	}
	before := l.Status().Counters.DroppedDeny
	if _, err := udpFlood(n.attacker, netip.AddrPortFrom(serverA6, 8080), 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := l.Status().Counters.DroppedDeny - before; got < 100 {
		t.Errorf("denied IPv6 attacker: %d dropped", got)
	}

	// Phase 5: the attacker's SYNs arrive as XDP frames, the way a NIC
	// driver hands them over, instead of as socket buffers from its stack
	// (netnstest.Feeder). s-a needs NAPI to take redirected frames: native
	// mode's program gives it that; generic mode needs GRO on.
	if mode == ModeGeneric {
		n.server.SetGRO("s-a", true)
	}
	feeder := netnstest.NewFeeder(t, n.attacker, "fd0", "a0")
	synFrame := frame{src: attackIP, dst: serverA, proto: protoTCP, sport: 40000, dport: 8080, flags: flagSYN}.bytes()
	copy(synFrame[0:6], n.server.HardwareAddr("s-a"))
	copy(synFrame[6:12], n.attacker.HardwareAddr("a0"))
	before = l.Status().Counters.DroppedDeny
	// The frames are processed in the receiving veth's NAPI poll, after
	// Send returns, and veth drops a redirected frame when that veth's ring
	// (256 frames) is full — which a busy machine, slow to run the poll,
	// reaches in one burst of 2048. So the frames go in batches of 64, each
	// once the program has seen the one before (a busy machine can take a
	// while): every frame must reach the program, and be dropped there.
	const frames = 2048
	var got uint64
	for sent := 0; sent < frames; {
		for range 64 {
			if err := feeder.Send(synFrame); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if got = l.Status().Counters.DroppedDeny - before; got >= uint64(sent) {
				break
			}
		}
		if got < uint64(sent) {
			break
		}
	}
	if got < frames {
		t.Errorf("denied SYN frames: %d of %d dropped", got, frames)
	}

	// Metrics reflect all of it.
	m := gatherMetrics(t, l)
	if m[`stoa_xdp_packets_total{action="dropped_rate"}`] < 2000 || m[`stoa_xdp_packets_total{action="dropped_block"}`] < 1000 ||
		m[`stoa_xdp_packets_total{action="dropped_deny"}`] < 1000 || m[`stoa_xdp_packets_total{action="passed"}`] < 300 {
		t.Errorf("packet metrics: %v", m)
	}
	if m["stoa_xdp_attached"] != 1 || m["stoa_xdp_active_blocks"] != 0 || m["stoa_xdp_tracked_sources"] < 2 {
		t.Errorf("gauges: %v", m)
	}

	evMu.Lock()
	if strings.Join(events, ",") != "198.18.2.2/32 true,198.18.2.2/32 false" {
		t.Errorf("block events %q", events)
	}
	evMu.Unlock()

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ifc := range []string{"s-c", "s-a"} {
		if n.server.XDPAttached(ifc) {
			t.Errorf("%s: xdp still attached after Close", ifc)
		}
	}
}

// gatherMetrics scrapes the Limiter's collector into "name{label=value}" ->
// value.
func gatherMetrics(t *testing.T, l *Limiter) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(l.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range m.GetLabel() {
				key += fmt.Sprintf("{%s=%q}", lp.GetName(), lp.GetValue())
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
