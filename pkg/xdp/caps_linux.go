//go:build linux

package xdp

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Capability numbers from include/uapi/linux/capability.h.
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capBPF      = 39
)

// missingCapabilities names the capabilities this process lacks to load and
// attach XDP programs, or returns "" when it has them (or cannot tell).
func missingCapabilities() string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return ""
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	var missing []string
	// Before Linux 5.8 there is no CAP_BPF and CAP_SYS_ADMIN stands in.
	if !has(capBPF) && !has(capSysAdmin) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(capNetAdmin) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("need %s (running as uid %d)", strings.Join(missing, " and "), os.Geteuid())
}
