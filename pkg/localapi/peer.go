package localapi

import (
	"fmt"
	"net"
	"net/http"
	"os/user"
	"slices"
	"strconv"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/unixsock"
)

// Peer is who makes a request: on the unix socket a local process known
// by its kernel credentials; served over HTTPS, a token's subject.
type Peer struct {
	// Actor is how the peer appears in revisions, events and the audit
	// trail.
	Actor string
	// Unix holds a unix-socket peer's credentials (nil for other peers).
	Unix *UnixCred
}

// UnixCred are the credentials the kernel recorded for the process at
// the other end of a unix socket when it connected.
type UnixCred struct {
	UID, GID uint32
	PID      int32
	User     string // the UID's user name, when it has one
}

// Identity names the peer of each request. Conn runs once per connection
// (a unix socket's peer credentials are read there); Request runs per
// request with Conn's answer (where a bearer token would be checked).
type Identity interface {
	Conn(c net.Conn) Peer
	Request(r *http.Request, conn Peer) (Peer, error)
}

// Authorizer decides whether p may use a route that needs perm. It runs
// before the route's handler.
type Authorizer interface {
	Authorize(p Peer, perm Permission) error
}

// UnixPeers identifies peers by the unix socket's peer credentials
// (SO_PEERCRED).
type UnixPeers struct{}

// Conn reads c's peer credentials; a peer the kernel cannot tell about
// gets a UID no one has.
func (UnixPeers) Conn(c net.Conn) Peer {
	cred := UnixCred{UID: ^uint32(0)}
	if uid, gid, pid, err := unixsock.PeerCred(c); err == nil {
		cred = UnixCred{UID: uid, GID: gid, PID: pid}
		if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
			cred.User = u.Username
		}
	}
	actor := fmt.Sprintf("uid %d", cred.UID)
	if cred.User != "" {
		actor = fmt.Sprintf("%s (uid %d)", cred.User, cred.UID)
	}
	return Peer{Actor: actor, Unix: &cred}
}

// Request is the connection's peer: every request on a connection comes
// from the same process.
func (UnixPeers) Request(_ *http.Request, conn Peer) (Peer, error) { return conn, nil }

// SocketOwners admits root, the daemon's own user, and members of the
// group GID (--socket-group). The socket's mode already restricts who
// can connect; this is the second, independent check. It grants every
// permission.
type SocketOwners struct {
	GID string // numeric; empty: no group
}

// Authorize implements Authorizer.
func (o SocketOwners) Authorize(p Peer, _ Permission) error {
	c := p.Unix
	if c == nil {
		return apiError(api.CodeForbidden, "only local processes may use this socket", "")
	}
	if unixsock.Trusted(c.UID) {
		return nil
	}
	if o.GID != "" {
		if strconv.Itoa(int(c.GID)) == o.GID {
			return nil
		}
		if u, err := user.LookupId(strconv.Itoa(int(c.UID))); err == nil {
			if gids, err := u.GroupIds(); err == nil && slices.Contains(gids, o.GID) {
				return nil
			}
		}
	}
	return apiError(api.CodeForbidden, fmt.Sprintf("uid %d may not use this stoad", c.UID),
		"run stoa as the daemon's user or root, or start stoad with --socket-group")
}
