//go:build linux

package netnstest

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// A Feeder delivers frames to the far end of a veth the way a NIC driver
// hands received frames to its XDP program: as XDP frames, never built into
// socket buffers.
//
// Why it is needed: a veth in native XDP mode runs its program in its own
// NAPI poll, but traffic that a namespace's network stack sends over the
// pair arrives there as socket buffers, which veth first copies into a page
// (their heads are not page fragments) — so native XDP on veth fed by a
// stack costs about what generic XDP does. Only frames that another XDP
// program redirects into the veth (ndo_xdp_xmit) reach its peer's program
// without ever being a socket buffer. The Feeder is that other program: in
// its namespace it adds a veth pair, name and name+"x"; frames written to
// name (Send) arrive at name+"x", whose native XDP program redirects every
// one of them out of target. They reach target's peer — in another
// namespace, say a server's veth — as XDP frames.
//
// The kernel's requirement for redirected frames (drivers/net/veth.c,
// veth_xdp_xmit): the receiving veth (target's peer) must have NAPI enabled,
// which it has while a native XDP program is attached to it or while GRO is
// on (Linux 5.13 and later). Otherwise the frames are dropped on the way
// out of target (counted as its TX drops). A receiver running XDP in generic
// mode, or none, therefore needs SetGRO(peer, true) in its namespace.
type Feeder struct {
	name string
	fd   int
	ctrl *ebpf.Map // [0]: 0 forwards, 1 drops
	to   unix.SockaddrLinklayer
}

// NewFeeder sets up a Feeder in ns that forwards to the interface target
// (in ns too). It is torn down when the test ends, with ns at the latest.
func NewFeeder(t testing.TB, ns *NS, name, target string) *Feeder {
	t.Helper()
	if len(name)+1 > unix.IFNAMSIZ-1 {
		t.Fatalf("netns: feeder name %q: at most %d characters", name, unix.IFNAMSIZ-2)
	}
	ns.IP("link", "add", name, "type", "veth", "peer", "name", name+"x")
	ns.IP("link", "set", name, "up")
	ns.IP("link", "set", name+"x", "up")

	f := &Feeder{name: name, fd: -1}
	var in, out, tgt *net.Interface
	if err := ns.Do(func() (err error) {
		if in, err = net.InterfaceByName(name); err != nil {
			return err
		}
		if out, err = net.InterfaceByName(name + "x"); err != nil {
			return err
		}
		tgt, err = net.InterfaceByName(target)
		return err
	}); err != nil {
		t.Fatalf("netns: feeder %s: %v", name, err)
	}

	ctrl, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatalf("netns: feeder %s: control map: %v", name, err)
	}
	t.Cleanup(func() { ctrl.Close() })
	f.ctrl = ctrl
	// The program: if ctrl[0] is 1 return XDP_DROP, else
	// bpf_redirect(target, 0). Both paths do the same lookup, so a
	// dropping feeder costs what a forwarding one does up to the redirect.
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "stoat_feeder",
		Type: ebpf.XDP,
		Instructions: asm.Instructions{
			asm.StoreImm(asm.R10, -4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, ctrl.FD()),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "forward"),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
			asm.JEq.Imm(asm.R1, 0, "forward"),
			asm.Mov.Imm(asm.R0, 1), // XDP_DROP
			asm.Return(),
			asm.Mov.Imm(asm.R1, int32(tgt.Index)).WithSymbol("forward"),
			asm.Mov.Imm(asm.R2, 0),
			asm.FnRedirect.Call(),
			asm.Return(),
		},
		License: "GPL",
	})
	if err != nil {
		t.Fatalf("netns: feeder %s: load program: %v", name, err)
	}
	defer prog.Close() // the link holds it
	var l link.Link
	if err := ns.Do(func() (err error) {
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: out.Index, Flags: link.XDPDriverMode})
		return err
	}); err != nil {
		t.Fatalf("netns: feeder %s: attach to %s: %v", name, name+"x", err)
	}
	t.Cleanup(func() { l.Close() })

	if err := ns.Do(func() (err error) {
		f.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatalf("netns: feeder %s: packet socket: %v", name, err)
	}
	t.Cleanup(func() { unix.Close(f.fd) })
	f.to = unix.SockaddrLinklayer{Ifindex: in.Index, Halen: 6}
	return f
}

// Send writes one Ethernet frame (destination MAC first) to the feeder.
func (f *Feeder) Send(frame []byte) error {
	copy(f.to.Addr[:6], frame[:6])
	return unix.Sendto(f.fd, frame, 0, &f.to)
}

// Drop makes the feeder drop what it is sent (true) instead of forwarding
// it: what is left is the sender's own cost, a baseline for measurements.
func (f *Feeder) Drop(drop bool) error {
	v := uint32(0)
	if drop {
		v = 1
	}
	return f.ctrl.Put(uint32(0), v)
}

// HardwareAddr returns the MAC address of dev in ns.
func (n *NS) HardwareAddr(dev string) net.HardwareAddr {
	n.t.Helper()
	var mac net.HardwareAddr
	if err := n.Do(func() error {
		ifc, err := net.InterfaceByName(dev)
		if err == nil {
			mac = ifc.HardwareAddr
		}
		return err
	}); err != nil {
		n.t.Fatalf("netns: %s in %s: %v", dev, n.Name, err)
	}
	return mac
}

// SetGRO turns GRO on or off for dev in the namespace (ethtool -K dev gro
// on|off, through the ethtool ioctl, so no ethtool binary is needed). On a
// veth, GRO on also enables NAPI, which lets it receive XDP frames
// redirected into its peer (see Feeder).
func (n *NS) SetGRO(dev string, on bool) {
	n.t.Helper()
	v := ethtoolValue{cmd: unix.ETHTOOL_SGRO}
	if on {
		v.data = 1
	}
	if err := n.Do(func() error { return ethtoolIoctl(dev, &v) }); err != nil {
		n.t.Fatalf("netns: set gro %v on %s in %s: %v", on, dev, n.Name, err)
	}
}

type ethtoolValue struct{ cmd, data uint32 }

// ifreqData is struct ifreq with ifr_data: a name and a pointer.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

func ethtoolIoctl(dev string, v *ethtoolValue) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var ifr ifreqData
	if len(dev) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long", dev)
	}
	copy(ifr.name[:], dev)
	ifr.data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(v)
	if errno != 0 {
		return errno
	}
	return nil
}
