//go:build linux

package xdp

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// xdpHook is what rtnetlink reports about an interface's XDP hook: which
// program is attached in which mode, whether through a bpf_link or not.
type xdpHook struct {
	attached uint8  // XDP_ATTACHED_{NONE,DRV,SKB,HW,MULTI}
	skbProg  uint32 // generic
	drvProg  uint32 // native
	hwProg   uint32 // offloaded
}

// XDP_ATTACHED_* from include/uapi/linux/if_link.h.
const (
	xdpAttachedNone = 0
	xdpAttachedDrv  = 1
	xdpAttachedSkb  = 2
	xdpAttachedHw   = 3
	xdpAttachedMult = 4
)

// programs lists the attached program ids with the XDP_FLAGS_* mode flag
// that addresses each.
func (h xdpHook) programs() map[uint32]uint32 {
	out := make(map[uint32]uint32)
	if h.skbProg != 0 {
		out[h.skbProg] = unix.XDP_FLAGS_SKB_MODE
	}
	if h.drvProg != 0 {
		out[h.drvProg] = unix.XDP_FLAGS_DRV_MODE
	}
	if h.hwProg != 0 {
		out[h.hwProg] = unix.XDP_FLAGS_HW_MODE
	}
	return out
}

// queryXDP asks rtnetlink about the XDP hook of one interface.
func queryXDP(ifindex int) (xdpHook, error) {
	tab, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return xdpHook{}, fmt.Errorf("query xdp: dump links: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(tab)
	if err != nil {
		return xdpHook{}, fmt.Errorf("query xdp: parse links: %w", err)
	}
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		info := (*syscall.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
		if int(info.Index) != ifindex {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			return xdpHook{}, fmt.Errorf("query xdp: parse link attributes: %w", err)
		}
		for _, a := range attrs {
			if a.Attr.Type&^unix.NLA_F_NESTED == unix.IFLA_XDP {
				return parseXDPAttr(a.Value), nil
			}
		}
		return xdpHook{}, nil
	}
	return xdpHook{}, fmt.Errorf("query xdp: interface index %d: %w", ifindex, unix.ENODEV)
}

func parseXDPAttr(b []byte) xdpHook {
	var h xdpHook
	var single uint32
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		t := binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(b) {
			break
		}
		v := b[4:l]
		switch {
		case t == unix.IFLA_XDP_ATTACHED && len(v) >= 1:
			h.attached = v[0]
		case t == unix.IFLA_XDP_PROG_ID && len(v) >= 4:
			single = binary.NativeEndian.Uint32(v)
		case t == unix.IFLA_XDP_SKB_PROG_ID && len(v) >= 4:
			h.skbProg = binary.NativeEndian.Uint32(v)
		case t == unix.IFLA_XDP_DRV_PROG_ID && len(v) >= 4:
			h.drvProg = binary.NativeEndian.Uint32(v)
		case t == unix.IFLA_XDP_HW_PROG_ID && len(v) >= 4:
			h.hwProg = binary.NativeEndian.Uint32(v)
		}
		adv := (l + 3) &^ 3
		if adv > len(b) {
			break
		}
		b = b[adv:]
	}
	// With a single program attached the kernel reports only PROG_ID and
	// the mode in ATTACHED.
	switch h.attached {
	case xdpAttachedSkb:
		h.skbProg = max(h.skbProg, single)
	case xdpAttachedDrv:
		h.drvProg = max(h.drvProg, single)
	case xdpAttachedHw:
		h.hwProg = max(h.hwProg, single)
	}
	return h
}

// setXDPNetlink attaches (fd >= 0) or detaches (fd == -1) an XDP program the
// pre-bpf_link way, through rtnetlink. stoa itself only uses this to remove
// a stale program; tests use it to plant one.
func setXDPNetlink(ifindex, fd int, flags uint32) error {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("set xdp: netlink socket: %w", err)
	}
	defer unix.Close(s)
	if err := unix.Bind(s, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("set xdp: bind netlink: %w", err)
	}

	attr := func(t uint16, v []byte) []byte {
		b := make([]byte, (4+len(v)+3)&^3)
		binary.NativeEndian.PutUint16(b[0:2], uint16(4+len(v)))
		binary.NativeEndian.PutUint16(b[2:4], t)
		copy(b[4:], v)
		return b
	}
	u32 := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	nested := append(attr(unix.IFLA_XDP_FD, u32(uint32(int32(fd)))), attr(unix.IFLA_XDP_FLAGS, u32(flags))...)
	xdp := attr(unix.IFLA_XDP|unix.NLA_F_NESTED, nested)

	ifi := make([]byte, unix.SizeofIfInfomsg)
	ifi[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(ifi[4:8], uint32(int32(ifindex)))

	body := append(ifi, xdp...)
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:4], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(msg[4:6], unix.RTM_SETLINK)
	binary.NativeEndian.PutUint16(msg[6:8], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:12], 1)
	msg = append(msg, body...)

	if err := unix.Sendto(s, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("set xdp: send: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(s, buf, 0)
		if err != nil {
			return fmt.Errorf("set xdp: receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("set xdp: parse reply: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data[0:4])); code != 0 {
				return fmt.Errorf("set xdp: %w", syscall.Errno(-code))
			}
			return nil
		}
	}
}
