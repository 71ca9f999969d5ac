//go:build !linux

package daemon

import (
	"errors"
	"net"
)

// peerCred is only implemented on Linux; elsewhere the LocalAPI relies on
// the socket's file permissions alone.
func peerCred(c net.Conn) (uid, gid uint32, pid int32, err error) {
	return 0, 0, 0, errors.New("peer credentials are not supported on this OS")
}
