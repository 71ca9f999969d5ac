//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// attachment is the program attached to one interface through a bpf_link.
// The link is never pinned: when stoad exits, however it exits, the kernel
// closes the link and detaches the program (docs/xdp.md, "Crashes").
type attachment struct {
	name    string
	ifindex int
	mode    Mode
	link    link.Link
}

func (a *attachment) detach() error {
	if err := a.link.Close(); err != nil {
		return fmt.Errorf("detach xdp from %s: %w", a.name, err)
	}
	return nil
}

func modeFlags(m Mode) link.XDPAttachFlags {
	switch m {
	case ModeNative:
		return link.XDPDriverMode
	case ModeGeneric:
		return link.XDPGenericMode
	}
	return 0
}

// attach attaches prog to the named interface in the wanted mode; auto tries
// native first and falls back to generic. A stale stoa program left on the
// interface by an earlier stoad is replaced first; anyone else's is not.
func attach(prog *ebpf.Program, name string, want Mode, warn func(msg string, args ...any)) (*attachment, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("attach xdp to %s: %w", name, err)
	}
	if err := clearStale(ifc, warn); err != nil {
		return nil, err
	}

	tries := []Mode{want}
	if want == ModeAuto {
		tries = []Mode{ModeNative, ModeGeneric}
	}
	var errs []error
	for _, m := range tries {
		lnk, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: modeFlags(m)})
		if err == nil {
			return &attachment{name: name, ifindex: ifc.Index, mode: m, link: lnk}, nil
		}
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, &unsupportedError{reason: fmt.Sprintf("need CAP_NET_ADMIN to attach to %s (running as uid %d)", name, os.Geteuid()), err: err}
		}
		if errors.Is(err, ebpf.ErrNotSupported) {
			return nil, &unsupportedError{reason: "kernel cannot attach XDP through bpf_link (needs Linux 5.9 or later)", err: err}
		}
		errs = append(errs, fmt.Errorf("%s mode: %w", m, err))
	}
	err = errors.Join(errs...)
	if want == ModeNative && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)) {
		return nil, &unsupportedError{reason: fmt.Sprintf("%s has no native XDP support (use mode auto or generic)", name), err: err}
	}
	return nil, fmt.Errorf("attach xdp to %s: %w", name, err)
}

// clearStale removes a stoa program that an earlier stoad attached through
// rtnetlink and left behind. Programs held by a bpf_link belong to a live
// process (links die with their last holder), and programs by another name
// are someone else's: both are reported, never replaced.
func clearStale(ifc *net.Interface, warn func(msg string, args ...any)) error {
	hook, err := queryXDP(ifc.Index)
	if err != nil {
		return fmt.Errorf("attach xdp to %s: %w", ifc.Name, err)
	}
	for id, flags := range hook.programs() {
		name := programName(id)
		if lid, ok := xdpLinkOn(ifc.Index, id); ok {
			return fmt.Errorf("attach xdp to %s: program %q (id %d) is attached there through bpf_link %d, held by a running process (is another stoad running?); inspect it with: bpftool net show dev %s",
				ifc.Name, name, id, lid, ifc.Name)
		}
		if name != progName {
			return fmt.Errorf("attach xdp to %s: another XDP program %q (id %d) is attached there and stoa will not replace it; remove it with: ip link set dev %s xdp off (or xdpgeneric off)",
				ifc.Name, name, id, ifc.Name)
		}
		if err := setXDPNetlink(ifc.Index, -1, flags); err != nil {
			return fmt.Errorf("attach xdp to %s: remove stale stoa program (id %d): %w", ifc.Name, id, err)
		}
		warn("xdp: removed stale stoa program left by an earlier stoad", "interface", ifc.Name, "prog_id", id)
	}
	return nil
}

// programName returns the name of a loaded program, or "?" when it cannot
// be read.
func programName(id uint32) string {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return "?"
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return "?"
	}
	return info.Name
}

// xdpLinkOn finds the bpf_link, if any, that holds program prog on the XDP
// hook of ifindex. Links are global while interface indexes are per network
// namespace, hence the program check.
func xdpLinkOn(ifindex int, prog uint32) (link.ID, bool) {
	var it link.Iterator
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != link.XDPType {
			continue
		}
		if x := info.XDP(); x != nil && int(x.Ifindex) == ifindex && uint32(info.Program) == prog {
			return info.ID, true
		}
	}
	return 0, false
}
