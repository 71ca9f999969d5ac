//go:build linux

package netnstest

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestVethPairTalks(t *testing.T) {
	a, b := New(t), New(t)
	Veth(t, a, "a0", []string{"198.18.0.1/24", "2001:db8::1/64"}, b, "b0", []string{"198.18.0.2/24", "2001:db8::2/64"})

	for _, addr := range []string{"198.18.0.2:7000", "[2001:db8::2]:7000"} {
		ln, err := b.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				_, _ = c.Write([]byte("hello"))
				c.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := a.DialContext(ctx, "tcp", addr)
		cancel()
		if err != nil {
			t.Fatalf("dial %s from %s: %v", addr, a.Name, err)
		}
		got, _ := io.ReadAll(c)
		c.Close()
		ln.Close()
		if string(got) != "hello" {
			t.Fatalf("read %q, want hello", got)
		}
	}
}

func TestDoRestoresNamespace(t *testing.T) {
	n := New(t)
	before, _ := os.Readlink("/proc/thread-self/ns/net")
	var inside string
	if err := n.Do(func() error {
		inside, _ = os.Readlink("/proc/thread-self/ns/net")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Readlink("/proc/thread-self/ns/net")
	if inside == before || after != before {
		t.Fatalf("namespaces: before %s, inside %s, after %s", before, inside, after)
	}
	if out := n.IP("link", "show"); !strings.Contains(out, "lo:") {
		t.Fatalf("ip link show in %s: %s", n.Name, out)
	}
}

// TestFeederNeedsNAPI sends UDP datagrams through a Feeder into a veth
// pair: they reach the far namespace's socket only while the receiving veth
// has NAPI (here: GRO on), and never while the Feeder drops.
func TestFeederNeedsNAPI(t *testing.T) {
	a, b := New(t), New(t)
	Veth(t, a, "a0", []string{"198.18.0.1/24"}, b, "b0", []string{"198.18.0.2/24"})
	f := NewFeeder(t, a, "fd0", "a0")
	pc, err := b.ListenPacket("udp4", "198.18.0.2:7001")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	frame := udpFrame(b.HardwareAddr("b0"), a.HardwareAddr("a0"), [4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}, 7001, []byte("via xdp"))

	received := func(want bool) {
		t.Helper()
		for range 3 {
			if err := f.Send(frame); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		buf := make([]byte, 64)
		_ = pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := pc.ReadFrom(buf)
		switch {
		case want && err != nil:
			t.Fatalf("nothing received: %v", err)
		case want && string(buf[:n]) != "via xdp":
			t.Fatalf("received %q", buf[:n])
		case !want && err == nil:
			t.Fatalf("received %q, want nothing", buf[:n])
		}
		for err == nil { // drain
			_ = pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, _, err = pc.ReadFrom(buf)
		}
	}
	received(false) // b0 has neither an XDP program nor GRO: no NAPI
	b.SetGRO("b0", true)
	received(true)
	if err := f.Drop(true); err != nil {
		t.Fatal(err)
	}
	received(false)
	if err := f.Drop(false); err != nil {
		t.Fatal(err)
	}
	received(true)
	b.SetGRO("b0", false)
	received(false)
}

// udpFrame builds an Ethernet/IPv4/UDP frame (UDP checksum 0: none).
func udpFrame(dst, src net.HardwareAddr, from, to [4]byte, port uint16, payload []byte) []byte {
	f := make([]byte, 14+20+8+len(payload))
	copy(f[0:], dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8] = 64
	ip[9] = 17
	copy(ip[12:], from[:])
	copy(ip[16:], to[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], port)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	return f
}
