package xdp

import (
	"encoding/binary"
	"net/netip"
)

// Packet builders for the program tests: each returns a complete Ethernet
// frame. Checksums are left zero; the program never reads them.

const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86DD
	etherARP  = 0x0806
	ether1Q   = 0x8100
	ether1AD  = 0x88A8

	protoHop    = 0
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoRoute  = 43
	protoFrag   = 44
	protoESP    = 50
	protoAH     = 51
	protoICMPv6 = 58
	protoNoNext = 59
	protoDstOpt = 60

	flagSYN = 0x02
	flagACK = 0x10
)

// frame describes a packet to build.
type frame struct {
	vlans   []uint16 // TPIDs of VLAN tags, outermost first
	src     netip.Addr
	dst     netip.Addr
	proto   uint8
	ipOpts  []byte   // IPv4 options (padded to 4 bytes by the caller)
	ext     [][]byte // IPv6 extension headers, each complete except byte 0 (next header), filled in
	extType []uint8  // their types
	fragOff uint16   // IPv4: offset in 8-byte units; IPv6: same, in the fragment header
	more    bool     // more fragments
	sport   uint16
	dport   uint16
	flags   uint8  // TCP flags
	l4      []byte // overrides the generated L4 header and payload
	payload []byte
}

func (f frame) bytes() []byte {
	b := make([]byte, 12, 128) // MACs left zero
	ether := uint16(etherIPv4)
	if f.src.Is6() {
		ether = etherIPv6
	}
	for _, tpid := range f.vlans {
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, 42) // TCI: VLAN 42
	}
	b = binary.BigEndian.AppendUint16(b, ether)

	l4 := f.l4
	if l4 == nil {
		switch f.proto {
		case protoTCP:
			l4 = make([]byte, 20)
			binary.BigEndian.PutUint16(l4[0:], f.sport)
			binary.BigEndian.PutUint16(l4[2:], f.dport)
			l4[12] = 5 << 4
			l4[13] = f.flags
		case protoUDP:
			l4 = make([]byte, 8)
			binary.BigEndian.PutUint16(l4[0:], f.sport)
			binary.BigEndian.PutUint16(l4[2:], f.dport)
			binary.BigEndian.PutUint16(l4[4:], uint16(8+len(f.payload)))
		default:
			l4 = []byte{8, 0, 0, 0, 0, 0, 0, 0} // ICMP echo request
		}
		l4 = append(l4, f.payload...)
	}

	if f.src.Is4() {
		ihl := 20 + len(f.ipOpts)
		ip := make([]byte, 20, ihl)
		ip[0] = 4<<4 | byte(ihl/4)
		binary.BigEndian.PutUint16(ip[2:], uint16(ihl+len(l4)))
		frag := f.fragOff & 0x1FFF
		if f.more {
			frag |= 0x2000
		}
		binary.BigEndian.PutUint16(ip[6:], frag)
		ip[8] = 64
		ip[9] = f.proto
		s, d := f.src.As4(), f.dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		ip = append(ip, f.ipOpts...)
		return append(append(b, ip...), l4...)
	}

	ip := make([]byte, 40)
	ip[0] = 6 << 4
	next := f.proto
	if len(f.extType) > 0 {
		next = f.extType[0]
	}
	ip[6] = next
	ip[7] = 64
	s, d := f.src.As16(), f.dst.As16()
	copy(ip[8:], s[:])
	copy(ip[24:], d[:])
	var exts []byte
	for i, h := range f.ext {
		h = append([]byte(nil), h...)
		if i+1 < len(f.extType) {
			h[0] = f.extType[i+1]
		} else {
			h[0] = f.proto
		}
		exts = append(exts, h...)
	}
	binary.BigEndian.PutUint16(ip[4:], uint16(len(exts)+len(l4)))
	return append(append(append(b, ip...), exts...), l4...)
}

// optsHdr is a hop-by-hop, routing or destination options header of n 8-byte
// units, filled with PadN.
func optsHdr(units int) []byte {
	h := make([]byte, units*8)
	h[1] = byte(units - 1)
	h[2], h[3] = 1, byte(units*8-4) // PadN covering the rest
	return h
}

// ahHdr is an authentication header with a 12-byte ICV (24 bytes in all).
func ahHdr() []byte {
	h := make([]byte, 24)
	h[1] = 24/4 - 2
	return h
}

// fragHdr is an IPv6 fragment header.
func fragHdr(offset uint16, more bool) []byte {
	h := make([]byte, 8)
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(h[2:], v)
	return h
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}
