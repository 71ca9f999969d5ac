package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
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

var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")
	ietf      = netip.MustParsePrefix("192.0.0.0/24")
	benchmark = netip.MustParsePrefix("198.18.0.0/15")
	reserved  = netip.MustParsePrefix("240.0.0.0/4")
	siteLocal = netip.MustParsePrefix("fec0::/10")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// CheckAddr returns a *RefusedError when a is not a public unicast
// address: loopback, private (RFC 1918, fc00::/7), link-local,
// unspecified, multicast, shared (100.64/10), reserved, or an IPv6 form
// embedding one of those (IPv4-mapped, NAT64, 6to4).
func CheckAddr(a netip.Addr) error {
	a = a.Unmap()
	reason := ""
	switch {
	case !a.IsValid():
		reason = "invalid"
	case a.IsLoopback():
		reason = "loopback"
	case a.IsPrivate():
		reason = "private"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		reason = "link-local"
	case a.IsUnspecified() || (a.Is4() && thisNet.Contains(a)):
		reason = "unspecified"
	case a.IsMulticast() || a.IsInterfaceLocalMulticast():
		reason = "multicast"
	case a.Is4() && (cgnat.Contains(a)):
		reason = "shared (carrier-grade NAT)"
	case a.Is4() && (ietf.Contains(a) || benchmark.Contains(a) || reserved.Contains(a)):
		reason = "reserved"
	case siteLocal.Contains(a):
		reason = "site-local"
	case nat64.Contains(a):
		b := a.As16()
		if err := CheckAddr(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); err != nil {
			reason = "NAT64-embedded " + err.(*RefusedError).Reason
		}
	case sixToFour.Contains(a):
		b := a.As16()
		if err := CheckAddr(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); err != nil {
			reason = "6to4-embedded " + err.(*RefusedError).Reason
		}
	}
	if reason == "" {
		return nil
	}
	return &RefusedError{Addr: a, Reason: reason}
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
