//go:build linux

package xdp

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"
)

// FuzzProgram checks the program against refParse, a plain Go statement of
// the parsing rules in docs/xdp.md: for any frame, the verdict and the
// counter it moves must be the ones the rules give. Needs root; the seed
// corpus runs as a normal test.
func FuzzProgram(f *testing.F) {
	for _, fr := range []frame{
		tcp4(denied4, 8080),
		tcp6(denied6, 8080),
		{src: denied4, dst: server4, proto: protoUDP, dport: 53, vlans: []uint16{ether1Q}},
		withExt(tcp6(denied6, 8080), []uint8{protoHop, protoRoute, protoFrag, protoAH, protoDstOpt}, optsHdr(1), optsHdr(2), fragHdr(0, true), ahHdr(), optsHdr(1)),
		func() frame { f := tcp4(good4, 8080); f.ipOpts = make([]byte, 8); f.more = true; return f }(),
	} {
		f.Add(fr.bytes())
	}
	if os.Geteuid() != 0 {
		f.Skipf("xdp: needs root and BPF: running as uid %d", os.Geteuid())
	}
	k, err := loadKernel()
	if err != nil {
		f.Skipf("xdp: needs root and BPF: %v", err)
	}
	defer k.close()
	s, _ := parseConfig.settings()
	if err := k.writeConfig(s, 1); err != nil {
		f.Fatal(err)
	}
	for _, p := range s.ports {
		_ = k.putPort(p)
	}
	for _, p := range s.deny {
		_ = k.putDeny(p)
	}

	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) < 14 || len(pkt) > 3000 {
			return // BPF_PROG_TEST_RUN's limits, not the program's
		}
		got, moved := k.run(t, pkt)
		want, cnt := refVerdict(pkt, s)
		if got != want || moved != cnt {
			t.Fatalf("frame % x:\nprogram %s %+v\nrules   %s %+v", pkt, verdictName(got), moved, verdictName(want), cnt)
		}
	})
}

type refKind int

const (
	refLimit refKind = iota
	refOther
	refFragment
	refMalformed
)

// refVerdict applies the documented rules with the rate limit off.
func refVerdict(pkt []byte, s settings) (uint32, Counters) {
	kind, src, dport := refParse(pkt)
	switch kind {
	case refOther:
		return xdpPass, Counters{Other: 1}
	case refFragment:
		return xdpPass, Counters{Fragments: 1}
	case refMalformed:
		return xdpPass, Counters{Malformed: 1}
	}
	protected := false
	for _, p := range s.ports {
		protected = protected || p == dport
	}
	if !protected {
		return xdpPass, Counters{Other: 1}
	}
	for _, p := range s.deny {
		if p.Contains(src) {
			return xdpDrop, Counters{DroppedDeny: 1}
		}
	}
	return xdpPass, Counters{Passed: 1}
}

func refParse(b []byte) (refKind, netip.Addr, uint16) {
	be16 := func(i int) uint16 { return binary.BigEndian.Uint16(b[i:]) }
	if len(b) < 14 {
		return refMalformed, netip.Addr{}, 0
	}
	off, proto := 14, be16(12)
	if proto == ether1Q || proto == ether1AD {
		if len(b) < 18 {
			return refMalformed, netip.Addr{}, 0
		}
		off, proto = 18, be16(16)
	}
	switch proto {
	case etherIPv4:
		ip := off
		if len(b) < ip+20 || b[ip]>>4 != 4 || int(b[ip]&0xf)*4 < 20 {
			return refMalformed, netip.Addr{}, 0
		}
		frag := be16(ip + 6)
		if frag&0x1fff != 0 {
			return refFragment, netip.Addr{}, 0
		}
		if b[ip+9] != protoTCP && b[ip+9] != protoUDP {
			return refOther, netip.Addr{}, 0
		}
		src := netip.AddrFrom4([4]byte(b[ip+12 : ip+16]))
		l4 := ip + int(b[ip]&0xf)*4
		if l4 > len(b) {
			return refMalformed, src, 0
		}
		return refL4(b, l4, b[ip+9], frag&0x2000 != 0, src)
	case etherIPv6:
		ip := off
		if len(b) < ip+40 || b[ip]>>4 != 6 {
			return refMalformed, netip.Addr{}, 0
		}
		src := netip.AddrFrom16([16]byte(b[ip+8 : ip+24]))
		nh, rel, first := b[ip+6], 40, false
		for range 8 {
			if nh == protoTCP || nh == protoUDP {
				break
			}
			h := ip + rel
			if len(b) < h+8 {
				return refMalformed, src, 0
			}
			switch nh {
			case protoHop, protoRoute, protoDstOpt:
				nh, rel = b[h], rel+(int(b[h+1])+1)*8
			case protoAH:
				nh, rel = b[h], rel+(int(b[h+1])+2)*4
			case protoFrag:
				fo := be16(h + 2)
				if fo&0xfff8 != 0 {
					return refFragment, src, 0
				}
				first = fo&1 != 0
				nh, rel = b[h], rel+8
			default:
				return refOther, src, 0
			}
			if rel > 1024 {
				return refOther, src, 0
			}
		}
		if nh != protoTCP && nh != protoUDP {
			return refOther, src, 0
		}
		if ip+rel > len(b) {
			return refMalformed, src, 0
		}
		return refL4(b, ip+rel, nh, first, src)
	}
	return refOther, netip.Addr{}, 0
}

func refL4(b []byte, l4 int, proto uint8, first bool, src netip.Addr) (refKind, netip.Addr, uint16) {
	if proto == protoUDP {
		if len(b) < l4+8 {
			return refMalformed, src, 0
		}
		return refLimit, src, binary.BigEndian.Uint16(b[l4+2:])
	}
	if len(b) < l4+4 {
		return refMalformed, src, 0
	}
	if len(b) < l4+20 && !first {
		return refMalformed, src, 0
	}
	return refLimit, src, binary.BigEndian.Uint16(b[l4+2:])
}
