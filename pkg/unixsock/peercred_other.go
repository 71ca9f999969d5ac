//go:build !linux

package unixsock

import (
	"errors"
	"net"
)

// PeerCred is only implemented on Linux; elsewhere the LocalAPI relies on
// the socket's file permissions alone.
func PeerCred(c net.Conn) (uid, gid uint32, pid int32, err error) {
	return 0, 0, 0, errors.New("peer credentials are not supported on this OS")
}
