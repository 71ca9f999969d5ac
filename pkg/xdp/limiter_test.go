//go:build linux

package xdp

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/stoa-gateway/stoa/pkg/netnstest"
)

// requireRootBPF skips unless the test can load XDP programs and make
// network namespaces.
func requireRootBPF(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("xdp: needs root and BPF: running as uid %d", os.Geteuid())
	}
	k, err := loadKernel()
	if err != nil {
		t.Skipf("xdp: needs root and BPF: %v", err)
	}
	k.close()
	netnstest.Require(t)
}

// newLimiterIn returns a Limiter whose Apply runs inside ns, closed when the
// test ends.
func newLimiterIn(t *testing.T, ns *netnstest.NS) (*Limiter, func(Config) error) {
	t.Helper()
	l := New(nil)
	t.Cleanup(func() { l.Close() })
	return l, func(cfg Config) error { return ns.Do(func() error { return l.Apply(cfg) }) }
}

func (l *Limiter) linkID(t *testing.T, iface string) uint32 {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.links[iface]
	if a == nil {
		t.Fatalf("%s not attached", iface)
	}
	info, err := a.link.Info()
	if err != nil {
		t.Fatal(err)
	}
	return uint32(info.ID)
}

// verdict runs one frame through the Limiter's loaded program.
func (l *Limiter) verdict(t *testing.T, pkt []byte) uint32 {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	ret, err := l.k.program().Run(&ebpf.RunOptions{Data: pkt})
	if err != nil {
		t.Fatal(err)
	}
	return ret
}

func TestApplyUpdatesInPlace(t *testing.T) {
	requireRootBPF(t)
	ns := netnstest.New(t)
	ns.IdleLink("d0")
	ns.IdleLink("d1")
	l, apply := newLimiterIn(t, ns)

	cfg := Config{Interfaces: []string{"d0"}, Mode: ModeGeneric, Ports: []uint16{8080}, Deny: prefixes("198.51.100.0/24")}
	if err := apply(cfg); err != nil {
		t.Fatal(err)
	}
	st := l.Status()
	if !st.Enabled || !st.Attached || st.Fallback || st.Mode != ModeGeneric || len(st.Interfaces) != 1 || st.Reason != "" {
		t.Fatalf("status after first apply: %+v", st)
	}
	if !ns.XDPAttached("d0") {
		t.Fatal("ip link show d0: no xdp")
	}
	d0 := l.linkID(t, "d0")
	if got := l.verdict(t, tcp4(denied4, 8080).bytes()); got != xdpDrop {
		t.Fatalf("denied source: %s", verdictName(got))
	}

	// New deny list and ports, same interface: maps change, the link stays.
	cfg.Deny, cfg.Ports = prefixes("2001:db8:bad::/48"), []uint16{9090}
	if err := apply(cfg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		pkt  []byte
		want uint32
	}{
		{"old deny, old port", tcp4(denied4, 8080).bytes(), xdpPass},
		{"old deny, new port", tcp4(denied4, 9090).bytes(), xdpPass},
		{"new deny, old port", tcp6(denied6, 8080).bytes(), xdpPass},
		{"new deny, new port", tcp6(denied6, 9090).bytes(), xdpDrop},
	} {
		if got := l.verdict(t, c.pkt); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, verdictName(got), verdictName(c.want))
		}
	}
	if l.linkID(t, "d0") != d0 {
		t.Fatal("d0 re-attached for a map-only change")
	}

	// A second interface attaches alone; auto mode on veth gets native.
	cfg.Interfaces, cfg.Mode = []string{"d0", "d1"}, ModeAuto
	if err := apply(cfg); err != nil {
		t.Fatal(err)
	}
	if l.linkID(t, "d0") != d0 {
		t.Fatal("d0 re-attached when d1 was added")
	}
	d1 := l.linkID(t, "d1")
	if st := l.Status(); !st.Attached || st.Mode != ModeMixed || len(st.Interfaces) != 2 || st.Interfaces[1] != (IfaceStatus{"d1", ModeNative}) {
		t.Fatalf("status with two interfaces: %+v", st)
	}

	// A failing apply (unknown interface) changes nothing: no new deny
	// entry, no new port, no attachment left behind, d0 and d1 untouched.
	bad := cfg
	bad.Interfaces = []string{"d0", "d1", "nope0"}
	bad.Deny = prefixes("2001:db8:bad::/48", "198.51.100.0/24")
	bad.Ports = []uint16{9090, 8080}
	if err := apply(bad); err == nil || !strings.Contains(err.Error(), "nope0") {
		t.Fatalf("apply with a missing interface: %v", err)
	}
	if got := l.verdict(t, tcp4(denied4, 9090).bytes()); got != xdpPass {
		t.Fatalf("deny entry of a failed apply is in force")
	}
	if got := l.verdict(t, tcp6(denied6, 8080).bytes()); got != xdpPass {
		t.Fatalf("port of a failed apply is in force")
	}
	if got := l.verdict(t, tcp6(denied6, 9090).bytes()); got != xdpDrop {
		t.Fatalf("previous config lost after a failed apply")
	}
	if l.linkID(t, "d0") != d0 || l.linkID(t, "d1") != d1 {
		t.Fatal("a failed apply re-attached")
	}
	if err := apply(Config{Rate: -1}); err == nil {
		t.Fatal("negative rate accepted")
	}

	// Dropping d0 detaches d0 only.
	cfg.Interfaces = []string{"d1"}
	if err := apply(cfg); err != nil {
		t.Fatal(err)
	}
	if ns.XDPAttached("d0") || !ns.XDPAttached("d1") || l.linkID(t, "d1") != d1 {
		t.Fatal("removing d0 touched the wrong interface")
	}

	// No interfaces: XDP off, the fallback takes over.
	if err := apply(Config{Rate: 5}); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); st.Enabled || st.Attached || !st.Fallback || st.Reason == "" {
		t.Fatalf("status with no interfaces: %+v", st)
	}
	if ns.XDPAttached("d1") {
		t.Fatal("d1 still attached with no interfaces configured")
	}

	if err := apply(cfg); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if ns.XDPAttached("d0") || ns.XDPAttached("d1") {
		t.Fatal("xdp left attached after Close")
	}
	if err := apply(cfg); err == nil {
		t.Fatal("apply after Close succeeded")
	}
}

func TestBlocksInKernel(t *testing.T) {
	requireRootBPF(t)
	ns := netnstest.New(t)
	ns.IdleLink("d0")
	l, apply := newLimiterIn(t, ns)
	l.sweepEvery = 20 * time.Millisecond

	type event struct {
		b     Block
		added bool
	}
	events := make(chan event, 16)
	l.OnBlockChange(func(b Block, added bool) { events <- event{b, added} })

	// A block made before the program is loaded reaches the kernel on load.
	if err := l.Block(netip.MustParsePrefix("203.0.113.0/24"), time.Hour, "flood"); err != nil {
		t.Fatal(err)
	}
	if err := apply(Config{Interfaces: []string{"d0"}, Mode: ModeGeneric, Ports: []uint16{8080}}); err != nil {
		t.Fatal(err)
	}
	if got := l.verdict(t, tcp4(good4, 8080).bytes()); got != xdpDrop {
		t.Fatalf("blocked before load: %s", verdictName(got))
	}

	// A narrow block that expires inside a wide one keeps blocking.
	if err := l.Block(netip.MustParsePrefix("203.0.113.9/32"), 30*time.Millisecond, "burst"); err != nil {
		t.Fatal(err)
	}
	if err := l.Block(netip.MustParsePrefix("2001:db8:900d::9/128"), 30*time.Millisecond, "burst"); err != nil {
		t.Fatal(err)
	}
	if got := l.verdict(t, tcp6(good6, 8080).bytes()); got != xdpDrop {
		t.Fatalf("ipv6 block: %s", verdictName(got))
	}
	if n := len(l.Blocks()); n != 3 {
		t.Fatalf("%d blocks, want 3", n)
	}
	time.Sleep(60 * time.Millisecond)
	if got := l.verdict(t, tcp6(good6, 8080).bytes()); got != xdpPass {
		t.Fatalf("expired ipv6 block: %s", verdictName(got))
	}
	if got := l.verdict(t, tcp4(good4, 8080).bytes()); got != xdpDrop {
		t.Fatalf("expired /32 inside a live /24: %s", verdictName(got))
	}

	// The sweeper removes the expired blocks and says so.
	deadline := time.After(5 * time.Second)
	removed := 0
	for removed < 2 {
		select {
		case e := <-events:
			if !e.added {
				removed++
				if e.b.Reason != "burst" {
					t.Fatalf("removed %+v", e.b)
				}
			}
		case <-deadline:
			t.Fatal("expired blocks were not swept")
		}
	}
	if st := l.Status(); st.Blocks != 1 {
		t.Fatalf("status blocks %d, want 1", st.Blocks)
	}
	l.mu.Lock()
	n := 0
	var key xdplimiterStoaLpmKey
	var val uint64
	it := l.k.objs.Blocks.Iterate()
	for it.Next(&key, &val) {
		n++
	}
	l.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d entries in the kernel's block trie, want 1", n)
	}

	if err := l.Unblock(netip.MustParsePrefix("203.0.113.0/24")); err != nil {
		t.Fatal(err)
	}
	if got := l.verdict(t, tcp4(good4, 8080).bytes()); got != xdpPass {
		t.Fatalf("after unblock: %s", verdictName(got))
	}
	if err := l.Block(netip.MustParsePrefix("203.0.113.9/32"), 0, ""); err == nil {
		t.Fatal("block for 0s accepted")
	}
}

// plant attaches prog to iface in generic mode through rtnetlink, the way
// pre-bpf_link loaders did, so that it outlives its loader.
func plant(t *testing.T, ns *netnstest.NS, iface string, prog *ebpf.Program) {
	t.Helper()
	plantIn(t, ns, iface, prog, ModeGeneric)
}

// plantIn is plant in the given mode (native or generic).
func plantIn(t *testing.T, ns *netnstest.NS, iface string, prog *ebpf.Program, m Mode) {
	t.Helper()
	flags := uint32(unix.XDP_FLAGS_SKB_MODE)
	if m == ModeNative {
		flags = unix.XDP_FLAGS_DRV_MODE
	}
	err := ns.Do(func() error {
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		return setXDPNetlink(ifc.Index, prog.FD(), flags)
	})
	if err != nil {
		t.Fatalf("plant xdp program: %v", err)
	}
	if !ns.XDPAttached(iface) {
		t.Fatal("planted program not attached")
	}
}

// TestReplacesStaleProgram plants a stale stoa program in one mode and
// applies in the other: the kernel allows only one mode per interface, so
// the stale one must be found and removed whichever mode it holds.
func TestReplacesStaleProgram(t *testing.T) {
	requireRootBPF(t)
	for _, c := range []struct{ stale, apply Mode }{{ModeGeneric, ModeNative}, {ModeNative, ModeGeneric}} {
		t.Run(string(c.stale)+" to "+string(c.apply), func(t *testing.T) { replacesStale(t, c.stale, c.apply) })
	}
}

func replacesStale(t *testing.T, staleMode, mode Mode) {
	ns := netnstest.New(t)
	ns.IdleLink("d0")

	// An earlier stoad attached through netlink, then died: its program
	// stays attached with nobody holding it.
	old, err := loadKernel()
	if err != nil {
		t.Fatal(err)
	}
	plantIn(t, ns, "d0", old.program(), staleMode)
	oldInfo, _ := old.program().Info()
	oldID, _ := oldInfo.ID()
	old.close()

	l, apply := newLimiterIn(t, ns)
	if err := apply(Config{Interfaces: []string{"d0"}, Mode: mode, Ports: []uint16{8080}}); err != nil {
		t.Fatalf("apply over a stale program: %v", err)
	}
	var hook xdpHook
	_ = ns.Do(func() error {
		ifc, _ := net.InterfaceByName("d0")
		hook, err = queryXDP(ifc.Index)
		return err
	})
	got, other := hook.skbProg, hook.drvProg
	if mode == ModeNative {
		got, other = other, got
	}
	if got == 0 || got == uint32(oldID) || other != 0 {
		t.Fatalf("after apply the hook holds %+v (stale was %d)", hook, oldID)
	}
	if st := l.Status(); st.Mode != mode {
		t.Fatalf("status: %+v", st)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if ns.XDPAttached("d0") {
		t.Fatal("xdp left attached after Close")
	}
}

func TestRefusesForeignProgram(t *testing.T) {
	requireRootBPF(t)
	ns := netnstest.New(t)
	ns.IdleLink("d0")
	foreign, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "other_fw",
		Type:         ebpf.XDP,
		License:      "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	plant(t, ns, "d0", foreign)
	foreign.Close()

	l, apply := newLimiterIn(t, ns)
	err = apply(Config{Interfaces: []string{"d0"}, Mode: ModeGeneric})
	if err == nil || !strings.Contains(err.Error(), `"other_fw"`) || !strings.Contains(err.Error(), "xdp off") {
		t.Fatalf("apply over a foreign program: %v", err)
	}
	if !ns.XDPAttached("d0") {
		t.Fatal("the foreign program was removed")
	}
	if st := l.Status(); st.Attached {
		t.Fatalf("status: %+v", st)
	}
}

func TestRefusesLiveLimiter(t *testing.T) {
	requireRootBPF(t)
	for _, m := range []Mode{ModeNative, ModeGeneric} {
		t.Run(string(m), func(t *testing.T) {
			ns := netnstest.New(t)
			ns.IdleLink("d0")
			cfg := Config{Interfaces: []string{"d0"}, Mode: m}
			_, apply1 := newLimiterIn(t, ns)
			if err := apply1(cfg); err != nil {
				t.Fatal(err)
			}
			// A second Limiter, in either mode, must not take it over.
			for _, m2 := range []Mode{ModeNative, ModeGeneric, ModeAuto} {
				_, apply2 := newLimiterIn(t, ns)
				if err := apply2(Config{Interfaces: []string{"d0"}, Mode: m2}); err == nil || !strings.Contains(err.Error(), "another stoad") {
					t.Fatalf("second limiter (%s) on the same interface: %v", m2, err)
				}
			}
		})
	}
}
