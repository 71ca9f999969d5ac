//go:build linux

package e2e

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stoa-gateway/stoa/pkg/netnstest"
)

// xdpSYNFlood sends TCP SYNs with varying source ports from a test
// namespace to an address in a test namespace: it never sends from the host
// namespace. It sends either from a raw socket, through the namespace's
// stack, or as Ethernet frames through a netnstest.Feeder, which delivers
// them to the receiving veth as XDP frames the way a NIC driver would. It
// stops after a duration, a packet cap, or Stop, whichever comes first.
type xdpSYNFlood struct {
	fd       int               // raw socket; -1 with a feeder
	feeder   *netnstest.Feeder // nil with a raw socket
	eth      [14]byte          // the frames' Ethernet header (feeder only)
	src, dst netip.Addr
	dport    uint16
	stop     atomic.Bool
	// PPS, when set, paces the flood to about that many packets per
	// second, in batches every millisecond (a flood reaches a server
	// spread out, not in bursts); 0 sends as fast as possible.
	PPS int
	// Attempts counts sendto calls in the last Run, refused ones included
	// (a packet dropped on the way out fails its sendto).
	Attempts int
}

const xdpMaxFloodPackets = 50_000_000

func newXDPSYNFlood(ns *netnstest.NS, src, dst netip.Addr, dport uint16) (*xdpSYNFlood, error) {
	f := &xdpSYNFlood{fd: -1, src: src, dst: dst, dport: dport}
	err := ns.Do(func() (err error) {
		f.fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		return err
	})
	return f, err
}

// newXDPFrameFlood floods through fd, as frames from srcMAC to dstMAC (the
// receiving veth's address).
func newXDPFrameFlood(fd *netnstest.Feeder, dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, dport uint16) *xdpSYNFlood {
	f := &xdpSYNFlood{fd: -1, feeder: fd, src: src, dst: dst, dport: dport}
	copy(f.eth[0:6], dstMAC)
	copy(f.eth[6:12], srcMAC)
	binary.BigEndian.PutUint16(f.eth[12:], 0x0800)
	return f
}

func (f *xdpSYNFlood) Close() {
	if f.fd >= 0 {
		unix.Close(f.fd)
	}
}

// Stop ends a run early.
func (f *xdpSYNFlood) Stop() { f.stop.Store(true) }

// Run floods for d and returns how many packets the kernel accepted.
func (f *xdpSYNFlood) Run(d time.Duration) int {
	frame := make([]byte, 14+40)
	copy(frame, f.eth[:])
	pkt := frame[14:]
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], 40)
	pkt[8] = 64
	pkt[9] = unix.IPPROTO_TCP
	s, dd := f.src.As4(), f.dst.As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], dd[:])
	binary.BigEndian.PutUint16(pkt[10:], xdpChecksum(pkt[:20], 0))
	tcp := pkt[20:]
	binary.BigEndian.PutUint16(tcp[2:], f.dport)
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	pseudo := uint32(s[0])<<8 + uint32(s[1]) + uint32(s[2])<<8 + uint32(s[3]) +
		uint32(dd[0])<<8 + uint32(dd[1]) + uint32(dd[2])<<8 + uint32(dd[3]) + unix.IPPROTO_TCP + 20
	to := &unix.SockaddrInet4{Addr: dd}

	sent := 0
	f.Attempts = 0
	start := time.Now()
	end := start.Add(d)
	batch := 1024
	if f.PPS > 0 {
		batch = max(1, f.PPS/1000)
	}
	for i := 0; sent < xdpMaxFloodPackets; i++ {
		if i%batch == 0 {
			if f.stop.Load() || time.Now().After(end) {
				break
			}
			if f.PPS > 0 {
				// Sleep until this batch is due.
				due := start.Add(time.Duration(float64(i) / float64(f.PPS) * float64(time.Second)))
				if w := time.Until(due); w > 0 {
					time.Sleep(w)
				}
			}
		}
		binary.BigEndian.PutUint16(tcp[0:], uint16(1024+i%60000))
		binary.BigEndian.PutUint32(tcp[4:], uint32(i)*2654435761)
		tcp[16], tcp[17] = 0, 0
		binary.BigEndian.PutUint16(tcp[16:], xdpChecksum(tcp, pseudo))
		var err error
		if f.feeder != nil {
			err = f.feeder.Send(frame)
		} else {
			err = unix.Sendto(f.fd, pkt, 0, to)
		}
		if err == nil {
			sent++
		}
		f.Attempts = i + 1
	}
	return sent
}

func xdpChecksum(b []byte, initial uint32) uint16 {
	sum := initial
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
