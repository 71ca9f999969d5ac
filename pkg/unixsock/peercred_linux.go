//go:build linux

package unixsock

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// PeerCred returns the uid, gid and pid of the process at the other end of
// a unix socket connection (SO_PEERCRED), as the kernel recorded them at
// connect time.
func PeerCred(c net.Conn) (uid, gid uint32, pid int32, err error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, 0, 0, fmt.Errorf("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, 0, err
	}
	var cred *unix.Ucred
	var serr error
	err = raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil {
		return 0, 0, 0, err
	}
	if serr != nil {
		return 0, 0, 0, serr
	}
	return cred.Uid, cred.Gid, cred.Pid, nil
}
