package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// RefusedError is a connection the SSRF guard refused: the destination
// resolved to an address webhooks may not reach.
type RefusedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s address (set allowPrivate: true on the Webhook to allow it)", e.Addr, e.Reason)
}

// CheckAddr returns a *RefusedError when a is not a public unicast
// address. The classification is spec.NonPublicAddr, the same that
// validation applies to literal addresses in Webhook URLs: loopback,
// private, link-local, unspecified, multicast, broadcast, shared
// (100.64/10), reserved, documentation and benchmarking ranges, and IPv6
// forms that carry such an IPv4 address (IPv4-mapped, NAT64, 6to4,
// Teredo).
func CheckAddr(a netip.Addr) error {
	if reason := spec.NonPublicAddr(a); reason != "" {
		return &RefusedError{Addr: a, Reason: reason}
	}
	return nil
}

// guardControl is a net.Dialer Control function: it runs after name
// resolution, on the exact address being connected to, so DNS answers
// (including rebinding between checks) cannot smuggle a private address.
func guardControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused to connect to %q: not an IP address", address)
	}
	return CheckAddr(ap.Addr())
}

// dialer returns the DialContext of outbound webhook connections; guarded
// dialers refuse non-public destinations.
func dialer(guarded bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if guarded {
		d.Control = guardControl
	}
	return d.DialContext
}
