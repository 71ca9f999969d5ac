//go:build linux

package xdp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stoa-gateway/stoa/pkg/netnstest"
)

// Traffic generators for the end-to-end tests and the drop-rate benchmark.
// They run only inside namespaces a test created, and stop by themselves
// after a duration or a packet count, whichever comes first.

const maxFloodPackets = 20_000_000

// synFlood sends TCP SYNs with random source ports from a raw socket made in
// ns.
type synFlood struct {
	fd       int
	src, dst netip.Addr
	dport    uint16
}

func newSYNFlood(ns *netnstest.NS, src, dst netip.Addr, dport uint16) (*synFlood, error) {
	f := &synFlood{src: src, dst: dst, dport: dport}
	err := ns.Do(func() (err error) {
		f.fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		return err
	})
	return f, err
}

func (f *synFlood) close() { unix.Close(f.fd) }

// run floods for d and returns how many packets the kernel took.
func (f *synFlood) run(d time.Duration) int {
	pkt := make([]byte, 40)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], 40)
	pkt[8] = 64
	pkt[9] = unix.IPPROTO_TCP
	s, dd := f.src.As4(), f.dst.As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], dd[:])
	binary.BigEndian.PutUint16(pkt[10:], checksum(pkt[:20], 0))
	tcp := pkt[20:]
	binary.BigEndian.PutUint16(tcp[2:], f.dport)
	tcp[12] = 5 << 4
	tcp[13] = flagSYN
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	pseudo := uint32(s[0])<<8 + uint32(s[1]) + uint32(s[2])<<8 + uint32(s[3]) +
		uint32(dd[0])<<8 + uint32(dd[1]) + uint32(dd[2])<<8 + uint32(dd[3]) + unix.IPPROTO_TCP + 20
	to := &unix.SockaddrInet4{Addr: dd}

	sent := 0
	end := time.Now().Add(d)
	for i := 0; sent < maxFloodPackets; i++ {
		if i%1024 == 0 && time.Now().After(end) {
			break
		}
		binary.BigEndian.PutUint16(tcp[0:], uint16(1024+i%60000))
		binary.BigEndian.PutUint32(tcp[4:], uint32(i)*2654435761)
		tcp[16], tcp[17] = 0, 0
		binary.BigEndian.PutUint16(tcp[16:], checksum(tcp, pseudo))
		if unix.Sendto(f.fd, pkt, 0, to) == nil {
			sent++
		}
	}
	return sent
}

func checksum(b []byte, initial uint32) uint16 {
	sum := initial
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// udpFlood sends small UDP datagrams to dst from a socket made in ns.
func udpFlood(ns *netnstest.NS, dst netip.AddrPort, d time.Duration) (int, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = net.Dial("udp", dst.String())
		return err
	})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	payload := make([]byte, 18)
	sent := 0
	end := time.Now().Add(d)
	for i := 0; sent < maxFloodPackets; i++ {
		if i%1024 == 0 && time.Now().After(end) {
			break
		}
		// ICMP port unreachable replies make some writes fail; keep going.
		if _, err := c.Write(payload); err == nil {
			sent++
		}
	}
	return sent, nil
}
