//go:build linux

package xdp

import (
	"fmt"
	"net"
)

// checkHook reports whether attach would refuse the interface because of
// a program already on it (see clearStale, which this mirrors without
// removing anything).
func checkHook(name string) error {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("check xdp config: interface %s: %w", name, err)
	}
	hook, err := queryXDP(ifc.Index)
	if err != nil {
		return fmt.Errorf("check xdp config: %s: %w", name, err)
	}
	for id := range hook.programs() {
		prog := programName(id)
		if lid, ok := xdpLinkOn(ifc.Index, id); ok {
			return fmt.Errorf("check xdp config: %s: program %q (id %d) is attached there through bpf_link %d, held by a running process (is another stoad running?); inspect it with: bpftool net show dev %s",
				name, prog, id, lid, name)
		}
		if prog != progName {
			return fmt.Errorf("check xdp config: %s: another XDP program %q (id %d) is attached there and stoa will not replace it; remove it with: ip link set dev %s xdp off (or xdpgeneric off)",
				name, prog, id, name)
		}
	}
	return nil
}
