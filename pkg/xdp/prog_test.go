//go:build linux

package xdp

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// These tests drive the program with BPF_PROG_TEST_RUN on crafted frames.

const (
	xdpDrop = 1
	xdpPass = 2
)

// newTestKernel loads the program, or skips without root and BPF.
func newTestKernel(t *testing.T) *kernel {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("xdp: needs root and BPF: running as uid %d", os.Geteuid())
	}
	k, err := loadKernel()
	if err != nil {
		t.Skipf("xdp: needs root and BPF: %v", err)
	}
	t.Cleanup(func() { k.close() })
	return k
}

func (k *kernel) configure(t *testing.T, cfg Config, now time.Duration) {
	t.Helper()
	s, err := cfg.settings()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.writeConfig(s, uint64(now)); err != nil {
		t.Fatal(err)
	}
	for _, p := range s.ports {
		if err := k.putPort(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range s.deny {
		if err := k.putDeny(p); err != nil {
			t.Fatal(err)
		}
	}
}

func (k *kernel) setClock(t *testing.T, cfg Config, now time.Duration) {
	t.Helper()
	s, _ := cfg.settings()
	if err := k.writeConfig(s, uint64(now)); err != nil {
		t.Fatal(err)
	}
}

// run runs one frame and returns the verdict and which counters moved.
func (k *kernel) run(t *testing.T, pkt []byte) (uint32, Counters) {
	t.Helper()
	before, err := k.counters()
	if err != nil {
		t.Fatal(err)
	}
	ret, err := k.program().Run(&ebpf.RunOptions{Data: pkt})
	if err != nil {
		t.Fatalf("run %d-byte frame: %v", len(pkt), err)
	}
	after, err := k.counters()
	if err != nil {
		t.Fatal(err)
	}
	return ret, Counters{
		Passed:       after.Passed - before.Passed,
		DroppedRate:  after.DroppedRate - before.DroppedRate,
		DroppedDeny:  after.DroppedDeny - before.DroppedDeny,
		DroppedBlock: after.DroppedBlock - before.DroppedBlock,
		Other:        after.Other - before.Other,
		Fragments:    after.Fragments - before.Fragments,
		Malformed:    after.Malformed - before.Malformed,
	}
}

func verdictName(v uint32) string {
	switch v {
	case xdpDrop:
		return "DROP"
	case xdpPass:
		return "PASS"
	}
	return "?"
}

var (
	denied4 = mustAddr("198.51.100.7")
	denied6 = mustAddr("2001:db8:bad::7")
	good4   = mustAddr("203.0.113.9")
	good6   = mustAddr("2001:db8:900d::9")
	server4 = mustAddr("198.18.0.1")
	server6 = mustAddr("2001:db8:5::1")
)

var parseConfig = Config{
	Ports: []uint16{8080, 53},
	Deny:  []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:bad::/48")},
}

func tcp4(src netip.Addr, dport uint16) frame {
	return frame{src: src, dst: server4, proto: protoTCP, sport: 40000, dport: dport, flags: flagSYN}
}

func tcp6(src netip.Addr, dport uint16) frame {
	return frame{src: src, dst: server6, proto: protoTCP, sport: 40000, dport: dport, flags: flagSYN}
}

func withExt(f frame, types []uint8, hdrs ...[]byte) frame {
	f.extType, f.ext = types, hdrs
	return f
}

func TestProgramParsing(t *testing.T) {
	k := newTestKernel(t)
	k.configure(t, parseConfig, 0)

	// IPv4 options whose bytes read as port 8080 if the parser ignored IHL.
	trapOpts := []byte{1, 1, 0x1f, 0x90, 1, 1, 1, 0}

	drop := Counters{DroppedDeny: 1}
	pass := Counters{Passed: 1}
	other := Counters{Other: 1}
	frag := Counters{Fragments: 1}
	bad := Counters{Malformed: 1}

	tests := []struct {
		name string
		pkt  []byte
		want uint32
		cnt  Counters
	}{
		{"ipv4 tcp allowed", tcp4(good4, 8080).bytes(), xdpPass, pass},
		{"ipv4 tcp denied", tcp4(denied4, 8080).bytes(), xdpDrop, drop},
		{"ipv4 udp denied", frame{src: denied4, dst: server4, proto: protoUDP, dport: 53}.bytes(), xdpDrop, drop},
		{"ipv4 denied, other port", tcp4(denied4, 22).bytes(), xdpPass, other},
		{"ipv4 icmp denied", frame{src: denied4, dst: server4, proto: protoICMP}.bytes(), xdpPass, other},
		{"ipv4 options denied", func() []byte { f := tcp4(denied4, 8080); f.ipOpts = trapOpts; return f.bytes() }(), xdpDrop, drop},
		{"ipv4 options, real port unprotected", func() []byte { f := tcp4(denied4, 22); f.ipOpts = trapOpts; return f.bytes() }(), xdpPass, other},
		{"ipv4 max options", func() []byte { f := tcp4(denied4, 8080); f.ipOpts = make([]byte, 40); return f.bytes() }(), xdpDrop, drop},
		{"ipv4 first fragment denied", func() []byte { f := tcp4(denied4, 8080); f.more = true; return f.bytes() }(), xdpDrop, drop},
		{"ipv4 non-first fragment denied", func() []byte { f := tcp4(denied4, 8080); f.fragOff = 185; return f.bytes() }(), xdpPass, frag},
		{"ipv4 last fragment denied", func() []byte { f := tcp4(denied4, 8080); f.fragOff = 185; f.more = false; return f.bytes() }(), xdpPass, frag},
		{"ipv4 icmp fragment", frame{src: denied4, dst: server4, proto: protoICMP, fragOff: 10}.bytes(), xdpPass, frag},
		{"ipv4 version 5", func() []byte { b := tcp4(denied4, 8080).bytes(); b[14] = 5<<4 | 5; return b }(), xdpPass, bad},
		{"ipv4 ihl 4", func() []byte { b := tcp4(denied4, 8080).bytes(); b[14] = 4<<4 | 4; return b }(), xdpPass, bad},
		{"ipv4 ihl beyond frame", func() []byte { f := tcp4(denied4, 8080); f.l4 = []byte{}; b := f.bytes(); b[14] = 4<<4 | 15; return b }(), xdpPass, bad},
		{"802.1Q denied", func() []byte { f := tcp4(denied4, 8080); f.vlans = []uint16{ether1Q}; return f.bytes() }(), xdpDrop, drop},
		{"802.1ad denied", func() []byte { f := tcp6(denied6, 8080); f.vlans = []uint16{ether1AD}; return f.bytes() }(), xdpDrop, drop},
		{"802.1Q allowed", func() []byte { f := tcp4(good4, 8080); f.vlans = []uint16{ether1Q}; return f.bytes() }(), xdpPass, pass},
		{"QinQ (two tags) is not parsed", func() []byte { f := tcp4(denied4, 8080); f.vlans = []uint16{ether1AD, ether1Q}; return f.bytes() }(), xdpPass, other},
		{"arp", func() []byte { b := make([]byte, 42); b[12], b[13] = etherARP>>8, etherARP&0xff; return b }(), xdpPass, other},
		{"ipv6 tcp allowed", tcp6(good6, 8080).bytes(), xdpPass, pass},
		{"ipv6 tcp denied", tcp6(denied6, 8080).bytes(), xdpDrop, drop},
		{"ipv6 udp denied", frame{src: denied6, dst: server6, proto: protoUDP, dport: 53}.bytes(), xdpDrop, drop},
		{"ipv6 denied, other port", tcp6(denied6, 443).bytes(), xdpPass, other},
		{"ipv6 icmpv6", frame{src: denied6, dst: server6, proto: protoICMPv6}.bytes(), xdpPass, other},
		{"ipv6 version 4", func() []byte { b := tcp6(denied6, 8080).bytes(); b[14] = 4 << 4; return b }(), xdpPass, bad},
		{"ipv6 hop-by-hop", withExt(tcp6(denied6, 8080), []uint8{protoHop}, optsHdr(1)).bytes(), xdpDrop, drop},
		{"ipv6 routing", withExt(tcp6(denied6, 8080), []uint8{protoRoute}, optsHdr(3)).bytes(), xdpDrop, drop},
		{"ipv6 dstopts", withExt(tcp6(denied6, 8080), []uint8{protoDstOpt}, optsHdr(2)).bytes(), xdpDrop, drop},
		{"ipv6 ah", withExt(tcp6(denied6, 8080), []uint8{protoAH}, ahHdr()).bytes(), xdpDrop, drop},
		{"ipv6 first fragment", withExt(tcp6(denied6, 8080), []uint8{protoFrag}, fragHdr(0, true)).bytes(), xdpDrop, drop},
		{"ipv6 atomic fragment", withExt(tcp6(denied6, 8080), []uint8{protoFrag}, fragHdr(0, false)).bytes(), xdpDrop, drop},
		{"ipv6 non-first fragment", withExt(tcp6(denied6, 8080), []uint8{protoFrag}, fragHdr(181, true)).bytes(), xdpPass, frag},
		{"ipv6 all supported headers", withExt(tcp6(denied6, 8080),
			[]uint8{protoHop, protoDstOpt, protoRoute, protoFrag, protoAH, protoDstOpt},
			optsHdr(1), optsHdr(2), optsHdr(1), fragHdr(0, true), ahHdr(), optsHdr(1)).bytes(), xdpDrop, drop},
		{"ipv6 all supported headers, allowed", withExt(tcp6(good6, 8080),
			[]uint8{protoHop, protoDstOpt, protoRoute, protoFrag, protoAH, protoDstOpt},
			optsHdr(1), optsHdr(2), optsHdr(1), fragHdr(0, true), ahHdr(), optsHdr(1)).bytes(), xdpPass, pass},
		{"ipv6 8 headers", withExt(tcp6(denied6, 8080),
			[]uint8{protoHop, protoDstOpt, protoDstOpt, protoDstOpt, protoDstOpt, protoDstOpt, protoDstOpt, protoDstOpt},
			optsHdr(1), optsHdr(1), optsHdr(1), optsHdr(1), optsHdr(1), optsHdr(1), optsHdr(1), optsHdr(1)).bytes(), xdpDrop, drop},
		{"ipv6 9 headers is too many", withExt(tcp6(denied6, 8080),
			[]uint8{protoHop, protoDstOpt, protoDstOpt, protoDstOpt, protoDstOpt, protoDstOpt, protoDstOpt, protoDstOpt, protoDstOpt},
			optsHdr(1), optsHdr(1), optsHdr(1), optsHdr(1), optsHdr(1), optsHdr(1), optsHdr(1), optsHdr(1), optsHdr(1)).bytes(), xdpPass, other},
		{"ipv6 headers past 1024 bytes", withExt(tcp6(denied6, 8080),
			[]uint8{protoDstOpt, protoDstOpt, protoDstOpt, protoDstOpt, protoDstOpt},
			optsHdr(32), optsHdr(32), optsHdr(32), optsHdr(32), optsHdr(32)).bytes(), xdpPass, other},
		{"ipv6 esp", withExt(tcp6(denied6, 8080), []uint8{protoESP}, make([]byte, 16)).bytes(), xdpPass, other},
		{"ipv6 no next header", frame{src: denied6, dst: server6, proto: protoNoNext, l4: make([]byte, 8)}.bytes(), xdpPass, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, moved := k.run(t, tt.pkt)
			if got != tt.want || moved != tt.cnt {
				t.Errorf("verdict %s, counters %+v; want %s, %+v", verdictName(got), moved, verdictName(tt.want), tt.cnt)
			}
		})
	}
}

// TestProgramTruncated cuts frames at every length the kernel lets a test
// run (at least an Ethernet header): every cut passes, as malformed, while
// the whole frame, from a denied source, drops.
func TestProgramTruncated(t *testing.T) {
	k := newTestKernel(t)
	k.configure(t, parseConfig, 0)

	frames := map[string][]byte{
		"ipv4 tcp":     tcp4(denied4, 8080).bytes(),
		"ipv4 udp":     frame{src: denied4, dst: server4, proto: protoUDP, dport: 53}.bytes(),
		"ipv4 options": func() []byte { f := tcp4(denied4, 8080); f.ipOpts = make([]byte, 12); return f.bytes() }(),
		"vlan ipv4":    func() []byte { f := tcp4(denied4, 8080); f.vlans = []uint16{ether1Q}; return f.bytes() }(),
		"ipv6 tcp":     tcp6(denied6, 8080).bytes(),
		"vlan ipv6 udp": func() []byte {
			f := frame{src: denied6, dst: server6, proto: protoUDP, dport: 53}
			f.vlans = []uint16{ether1AD}
			return f.bytes()
		}(),
		"ipv6 ext headers": withExt(tcp6(denied6, 8080), []uint8{protoHop, protoRoute, protoFrag, protoAH, protoDstOpt}, optsHdr(1), optsHdr(2), fragHdr(0, false), ahHdr(), optsHdr(3)).bytes(),
	}
	for name, full := range frames {
		t.Run(name, func(t *testing.T) {
			if got, moved := k.run(t, full); got != xdpDrop || moved != (Counters{DroppedDeny: 1}) {
				t.Fatalf("whole frame: %s %+v, want DROP by deny", verdictName(got), moved)
			}
			for n := 14; n < len(full); n++ {
				got, moved := k.run(t, full[:n])
				if got != xdpPass || moved != (Counters{Malformed: 1}) {
					t.Errorf("%d of %d bytes: %s %+v, want PASS as malformed", n, len(full), verdictName(got), moved)
				}
			}
		})
	}
}

// TestProgramDenyFamilies checks that deny prefixes of one family never match
// the other: ::/0 denies all IPv6 and no IPv4, 0.0.0.0/0 the reverse.
func TestProgramDenyFamilies(t *testing.T) {
	tests := []struct {
		deny       string
		drop4      bool
		drop6      bool
		drop4Other bool
	}{
		{"::/0", false, true, false},
		{"0.0.0.0/0", true, false, true},
		{"::ffff:0:0/96", true, false, true}, // the IPv4-mapped spelling means all IPv4
		{"203.0.113.9/32", true, false, false},
		{"203.0.113.0/25", true, false, false},
		{"2001:db8:900d::/48", false, true, false},
	}
	newTestKernel(t) // skips without root and BPF
	for _, tt := range tests {
		t.Run(tt.deny, func(t *testing.T) {
			k := newTestKernel(t)
			k.configure(t, Config{Ports: []uint16{8080}, Deny: []netip.Prefix{netip.MustParsePrefix(tt.deny)}}, 0)
			check := func(pkt []byte, drop bool) {
				t.Helper()
				want := uint32(xdpPass)
				if drop {
					want = xdpDrop
				}
				if got, _ := k.run(t, pkt); got != want {
					t.Errorf("verdict %s, want %s", verdictName(got), verdictName(want))
				}
			}
			check(tcp4(good4, 8080).bytes(), tt.drop4)
			check(tcp6(good6, 8080).bytes(), tt.drop6)
			check(tcp4(mustAddr("203.0.113.200"), 8080).bytes(), tt.drop4Other)
		})
	}
}

func TestProgramBlockExpiry(t *testing.T) {
	k := newTestKernel(t)
	cfg := Config{Ports: []uint16{8080}}
	now := 1000 * time.Second
	k.configure(t, cfg, now)

	if err := k.putBlockAt(netip.MustParsePrefix("203.0.113.0/24"), uint64(now+time.Minute)); err != nil {
		t.Fatal(err)
	}
	pkt := tcp4(good4, 8080).bytes()
	if got, moved := k.run(t, pkt); got != xdpDrop || moved != (Counters{DroppedBlock: 1}) {
		t.Fatalf("blocked: %s %+v", verdictName(got), moved)
	}
	if got, _ := k.run(t, tcp4(good4, 22).bytes()); got != xdpPass {
		t.Fatalf("blocked source to an unprotected port: %s", verdictName(got))
	}
	if got, _ := k.run(t, tcp6(good6, 8080).bytes()); got != xdpPass {
		t.Fatalf("other source: %s", verdictName(got))
	}
	k.setClock(t, cfg, now+time.Minute-1)
	if got, _ := k.run(t, pkt); got != xdpDrop {
		t.Fatalf("1ns before expiry: %s", verdictName(got))
	}
	k.setClock(t, cfg, now+time.Minute)
	if got, moved := k.run(t, pkt); got != xdpPass || moved != (Counters{Passed: 1}) {
		t.Fatalf("at expiry: %s %+v", verdictName(got), moved)
	}
}

// TestProgramPortsBitmap: the ports bitmap protects exactly the listed
// ports, at the edges of its 64-bit words and of the port range too, and a
// port leaves it without disturbing the others.
func TestProgramPortsBitmap(t *testing.T) {
	k := newTestKernel(t)
	ports := []uint16{1, 63, 64, 127, 128, 8080, 65535}
	k.configure(t, Config{Ports: ports, Deny: prefixes("198.51.100.0/24")}, 0)
	for _, p := range ports {
		if got, moved := k.run(t, tcp4(denied4, p).bytes()); got != xdpDrop || moved != (Counters{DroppedDeny: 1}) {
			t.Errorf("protected port %d: %s %+v", p, verdictName(got), moved)
		}
	}
	for _, p := range []uint16{2, 62, 65, 126, 129, 8079, 8081, 65534} {
		if got, moved := k.run(t, tcp4(denied4, p).bytes()); got != xdpPass || moved != (Counters{Other: 1}) {
			t.Errorf("unprotected port %d: %s %+v", p, verdictName(got), moved)
		}
	}
	if err := k.deletePort(64); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.run(t, tcp4(denied4, 64).bytes()); got != xdpPass {
		t.Errorf("removed port 64 still protected")
	}
	if got, _ := k.run(t, tcp4(denied4, 63).bytes()); got != xdpDrop {
		t.Errorf("removing 64 unprotected 63")
	}
}

// TestProgramSkipsEmptyTries: the config's has-deny and has-blocks flags
// follow the tries (the program skips a trie without them), so a deny
// list or a block takes effect exactly while it has entries.
func TestProgramSkipsEmptyTries(t *testing.T) {
	k := newTestKernel(t)
	flags := func() uint32 {
		t.Helper()
		c, err := k.readConfig()
		if err != nil {
			t.Fatal(err)
		}
		return c.Flags & (flagHasDeny | flagHasBlocks)
	}
	cfg := Config{Ports: []uint16{8080}}
	now := 10 * time.Second
	k.configure(t, cfg, now)
	if f := flags(); f != 0 {
		t.Fatalf("flags with no deny list and no blocks: %b", f)
	}
	b1, b2 := netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:900d::/48")
	for _, p := range []netip.Prefix{b1, b2} {
		if err := k.putBlockAt(p, uint64(now+time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if f := flags(); f != flagHasBlocks {
		t.Fatalf("flags with blocks: %b", f)
	}
	if got, moved := k.run(t, tcp6(good6, 8080).bytes()); got != xdpDrop || moved != (Counters{DroppedBlock: 1}) {
		t.Fatalf("blocked: %s %+v", verdictName(got), moved)
	}
	// A config written while blocks are in force keeps the flag.
	cfg.Deny = prefixes("198.51.100.0/24")
	k.configure(t, cfg, now)
	if f := flags(); f != flagHasDeny|flagHasBlocks {
		t.Fatalf("flags with a deny list and blocks: %b", f)
	}
	if err := k.deleteBlock(b2); err != nil {
		t.Fatal(err)
	}
	if f := flags(); f != flagHasDeny|flagHasBlocks {
		t.Fatalf("flags with one block left: %b", f)
	}
	if got, _ := k.run(t, tcp4(good4, 8080).bytes()); got != xdpDrop {
		t.Fatalf("the remaining block not in force")
	}
	if err := k.deleteBlock(b1); err != nil {
		t.Fatal(err)
	}
	if f := flags(); f != flagHasDeny {
		t.Fatalf("flags with no blocks left: %b", f)
	}
	if got, _ := k.run(t, tcp4(good4, 8080).bytes()); got != xdpPass {
		t.Fatalf("unblocked source dropped")
	}
	if got, _ := k.run(t, tcp4(denied4, 8080).bytes()); got != xdpDrop {
		t.Fatalf("deny list not in force")
	}
	cfg.Deny = nil
	k.configure(t, cfg, now)
	if f := flags(); f != 0 {
		t.Fatalf("flags with neither: %b", f)
	}
}

func TestProgramTokenBucket(t *testing.T) {
	k := newTestKernel(t)
	cfg := Config{Ports: []uint16{8080}, Rate: 10, Burst: 3} // a token every 100ms
	now := 50 * time.Second
	k.configure(t, cfg, now)

	a := tcp4(good4, 8080).bytes()
	b := tcp6(good6, 8080).bytes()
	expect := func(pkt []byte, want ...uint32) {
		t.Helper()
		for i, w := range want {
			if got, _ := k.run(t, pkt); got != w {
				t.Fatalf("packet %d at %v: %s, want %s", i+1, now, verdictName(got), verdictName(w))
			}
		}
	}
	expect(a, xdpPass, xdpPass, xdpPass, xdpDrop, xdpDrop) // burst of 3
	expect(b, xdpPass, xdpPass, xdpPass, xdpDrop)          // sources are independent

	now += 99 * time.Millisecond
	k.setClock(t, cfg, now)
	expect(a, xdpDrop)
	now += time.Millisecond
	k.setClock(t, cfg, now)
	expect(a, xdpPass, xdpDrop) // one token refilled

	now += 250 * time.Millisecond
	k.setClock(t, cfg, now)
	expect(a, xdpPass, xdpPass, xdpDrop)

	now += time.Hour
	k.setClock(t, cfg, now)
	expect(a, xdpPass, xdpPass, xdpPass, xdpDrop) // never more than the burst

	// A denied or blocked packet takes no token and is not counted against
	// the source.
	src, err := k.sources()
	if err != nil {
		t.Fatal(err)
	}
	sortSources(src)
	want := []SourceStat{
		{Addr: good4, Passed: 9, Dropped: 6},
		{Addr: good6, Passed: 3, Dropped: 1},
	}
	if len(src) != 2 || src[0] != want[0] || src[1] != want[1] {
		t.Fatalf("sources %+v, want %+v", src, want)
	}

	c, _ := k.counters()
	if c.Passed != 12 || c.DroppedRate != 7 {
		t.Fatalf("counters %+v, want 12 passed and 7 dropped for rate", c)
	}
}

func TestProgramConnections(t *testing.T) {
	k := newTestKernel(t)
	cfg := Config{Ports: []uint16{8080}, Rate: 1, Burst: 1, Count: CountConnections}
	k.configure(t, cfg, time.Minute)

	syn := tcp4(good4, 8080)
	ack, synack, rst := syn, syn, syn
	ack.flags, synack.flags, rst.flags = flagACK, flagSYN|flagACK, 0x04
	udp := frame{src: good4, dst: server4, proto: protoUDP, dport: 8080}
	// A SYN split so that the first fragment holds only the ports.
	tiny := syn
	tiny.l4, tiny.more = []byte{0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 0}, true

	steps := []struct {
		name string
		f    frame
		want uint32
	}{
		{"first syn", syn, xdpPass},
		{"second syn", syn, xdpDrop},
		{"ack", ack, xdpPass},
		{"syn-ack", synack, xdpPass},
		{"rst", rst, xdpPass},
		{"udp", udp, xdpPass},
		{"syn in a tiny first fragment", tiny, xdpDrop},
		{"third syn", syn, xdpDrop},
	}
	for _, s := range steps {
		if got, _ := k.run(t, s.f.bytes()); got != s.want {
			t.Errorf("%s: %s, want %s", s.name, verdictName(got), verdictName(s.want))
		}
	}
	k.setClock(t, cfg, time.Minute+time.Second)
	if got, _ := k.run(t, syn.bytes()); got != xdpPass {
		t.Errorf("syn a second later: %s, want PASS", verdictName(got))
	}
	// A tiny first fragment that is not a fragment is just truncated.
	tiny.more = false
	if got, moved := k.run(t, tiny.bytes()); got != xdpPass || moved.Malformed != 1 {
		t.Errorf("truncated tcp: %s %+v, want PASS as malformed", verdictName(got), moved)
	}
}

func TestProgramNoRate(t *testing.T) {
	k := newTestKernel(t)
	k.configure(t, Config{Ports: []uint16{8080}}, time.Second)
	pkt := tcp4(good4, 8080).bytes()
	ret, err := k.program().Run(&ebpf.RunOptions{Data: pkt, Repeat: 1000})
	if err != nil || ret != xdpPass {
		t.Fatalf("run: %v %s", err, verdictName(ret))
	}
	if src, _ := k.sources(); len(src) != 0 {
		t.Fatalf("rate 0 tracked sources: %+v", src)
	}
}

// BenchmarkProgram measures the program alone (BPF_PROG_TEST_RUN), per
// frame, for a source that passes and one that is over its rate.
func BenchmarkProgram(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("xdp: needs root and BPF")
	}
	k, err := loadKernel()
	if err != nil {
		b.Skipf("xdp: needs root and BPF: %v", err)
	}
	defer k.close()
	s, _ := Config{Ports: []uint16{8080}, Rate: 1, Burst: 1}.settings()
	if err := k.writeConfig(s, 0); err != nil {
		b.Fatal(err)
	}
	_ = k.putPort(8080)
	for name, pkt := range map[string][]byte{
		"ipv4-over-rate": tcp4(good4, 8080).bytes(),
		"ipv6-ext-other": withExt(tcp6(good6, 443), []uint8{protoHop, protoFrag}, optsHdr(1), fragHdr(0, true)).bytes(),
	} {
		b.Run(name, func(b *testing.B) {
			_, d, err := k.program().Benchmark(pkt, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(d.Nanoseconds()), "ns/frame")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestMapSizesMatch keeps config.go's capacities in step with the program's.
func TestMapSizesMatch(t *testing.T) {
	spec, err := loadXdplimiter()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"sources": maxSources, "deny": maxPrefixes, "blocks": maxPrefixes} {
		if got := spec.Maps[name].MaxEntries; got != want {
			t.Errorf("map %s holds %d entries, config.go says %d", name, got, want)
		}
	}
	if p := spec.Maps["ports"]; p.MaxEntries != 1 || p.ValueSize != 65536/8 {
		t.Errorf("map ports: %d entries of %d bytes, want one bitmap of every port", p.MaxEntries, p.ValueSize)
	}
	if p := spec.Programs[progName]; p == nil {
		t.Errorf("no program named %s", progName)
	}
}
