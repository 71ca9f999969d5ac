package daemon

import (
	"net"

	"github.com/stoa-gateway/stoa/pkg/unixsock"
)

// peerListener wraps the MCP unix socket's listener: every accepted
// connection carries its peer's credentials (SO_PEERCRED, read once) and
// whether the LocalAPI would trust that peer (root or stoad's own user).
type peerListener struct{ net.Listener }

// peerConn is an accepted MCP socket connection.
type peerConn struct {
	net.Conn
	peer    Peer
	trusted bool
}

func (l peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc := &peerConn{Conn: c, peer: Peer{UID: ^uint32(0)}}
	if uid, gid, pid, err := unixsock.PeerCred(c); err == nil {
		pc.peer = Peer{UID: uid, GID: gid, PID: pid}
		// The same check as the LocalAPI's, without --socket-group: the MCP
		// socket is always 0600.
		pc.trusted = unixsock.Trusted(uid)
	}
	return pc, nil
}
