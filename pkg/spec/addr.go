package spec

import (
	"net/netip"
	"strconv"
	"strings"
)

// Outbound connections that a spec controls (webhook deliveries) must not
// reach the gateway's own host or network (SSRF). NonPublicAddr is the one
// classification used both when a spec is validated (literal addresses in
// URLs) and when pkg/webhook connects (every resolved address), so the two
// can never disagree.

// Address ranges that are not public unicast, beyond what netip's
// predicates cover. Sources: the IANA IPv4 and IPv6 special-purpose
// address registries (RFC 6890 and successors).
var (
	v4ThisNet     = netip.MustParsePrefix("0.0.0.0/8")
	v4Shared      = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT (RFC 6598)
	v4IETF        = netip.MustParsePrefix("192.0.0.0/24")  // protocol assignments (DS-Lite, NAT64 discovery, ...)
	v4Relay6to4   = netip.MustParsePrefix("192.88.99.0/24")
	v4Benchmark   = netip.MustParsePrefix("198.18.0.0/15")
	v4Reserved    = netip.MustParsePrefix("240.0.0.0/4")
	v4Broadcast   = netip.MustParseAddr("255.255.255.255")
	v4Doc         = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")}
	v6Global      = netip.MustParsePrefix("2000::/3") // the only global unicast space
	v6Compat      = netip.MustParsePrefix("::/96")    // IPv4-compatible (deprecated)
	v6Translated  = netip.MustParsePrefix("::ffff:0:0:0/96")
	v6NAT64       = netip.MustParsePrefix("64:ff9b::/96")
	v6NAT64Local  = netip.MustParsePrefix("64:ff9b:1::/48") // local-use NAT64 (RFC 8215)
	v6Discard     = netip.MustParsePrefix("100::/64")
	v6Teredo      = netip.MustParsePrefix("2001::/32")
	v6IETF        = netip.MustParsePrefix("2001::/23")
	v6Benchmark   = netip.MustParsePrefix("2001:2::/48")
	v6Doc         = []netip.Prefix{netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("3fff::/20")}
	v6SixToFour   = netip.MustParsePrefix("2002::/16")
	v6SiteLocal   = netip.MustParsePrefix("fec0::/10")
	v6UniqueLocal = netip.MustParsePrefix("fc00::/7")
)

// NonPublicAddr returns why a is not a public unicast address — "loopback",
// "private", "link-local", "unspecified", "multicast", "broadcast", "shared
// (carrier-grade NAT)", "reserved", "documentation", "benchmarking",
// "site-local", "unique-local", or such a reason of an IPv4 address
// embedded in an IPv6 one ("NAT64-embedded loopback") — or "" when it is
// public. IPv4-mapped, IPv4-translated, NAT64, 6to4 and Teredo addresses
// are judged by the IPv4 address they carry, since that is where packets
// to them end up.
func NonPublicAddr(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.WithZone("")
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Is4() {
		return nonPublic4(a)
	}
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsInterfaceLocalMulticast():
		return "interface-local multicast"
	case a.IsMulticast():
		return "multicast"
	case v6Compat.Contains(a):
		return "IPv4-compatible (deprecated)"
	case v6Translated.Contains(a):
		return embedded("IPv4-translated", a, 12)
	case v6NAT64.Contains(a):
		return embedded("NAT64", a, 12)
	case v6NAT64Local.Contains(a):
		return "NAT64 local-use"
	case v6Discard.Contains(a):
		return "reserved (discard-only)"
	case v6SiteLocal.Contains(a):
		return "site-local"
	case v6UniqueLocal.Contains(a):
		return "private"
	case !v6Global.Contains(a):
		return "reserved"
	case v6SixToFour.Contains(a):
		return embedded("6to4", a, 2)
	case v6Teredo.Contains(a):
		// The server's address is in bits 32-63, the client's, inverted,
		// in the last 32 bits: packets go through both.
		if r := embedded("Teredo server", a, 4); r != "" {
			return r
		}
		b := a.As16()
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		if r := nonPublic4(client); r != "" {
			return "Teredo-embedded " + r
		}
		return ""
	case v6Benchmark.Contains(a):
		return "benchmarking"
	case v6IETF.Contains(a):
		return "reserved (IETF protocol assignment)"
	}
	for _, p := range v6Doc {
		if p.Contains(a) {
			return "documentation"
		}
	}
	return ""
}

// embedded judges the IPv4 address at byte offset off of the IPv6 a.
func embedded(what string, a netip.Addr, off int) string {
	b := a.As16()
	if r := nonPublic4(netip.AddrFrom4([4]byte(b[off : off+4]))); r != "" {
		return what + "-embedded " + r
	}
	return ""
}

func nonPublic4(a netip.Addr) string {
	switch {
	case a.IsUnspecified() || v4ThisNet.Contains(a):
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	case a == v4Broadcast:
		return "broadcast"
	case v4Shared.Contains(a):
		return "shared (carrier-grade NAT)"
	case v4Benchmark.Contains(a):
		return "benchmarking"
	case v4IETF.Contains(a) || v4Relay6to4.Contains(a) || v4Reserved.Contains(a):
		return "reserved"
	}
	for _, p := range v4Doc {
		if p.Contains(a) {
			return "documentation"
		}
	}
	return ""
}

// NonPublicHost returns why the host of a URL (as url.URL.Hostname gives
// it) names a non-public destination, or "" when it is a public address or
// a name to be resolved (and checked) at connect time. Besides literal
// addresses it catches "localhost" and its subdomains, and the numeric
// IPv4 forms resolvers accept (2130706433, 0x7f.1, 127.1, 0177.0.0.1).
func NonPublicHost(host string) string {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return "loopback"
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return NonPublicAddr(a)
	}
	if a, ok := parseLegacyIPv4(h); ok {
		return NonPublicAddr(a)
	}
	return ""
}

// parseLegacyIPv4 parses the inet_aton forms of an IPv4 address: one to
// four parts, each decimal, octal (leading 0) or hex (0x), the last part
// filling the remaining bytes.
func parseLegacyIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 || s == "" {
		return netip.Addr{}, false
	}
	var vals []uint64
	for _, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		base, digits := 10, p
		switch {
		case strings.HasPrefix(p, "0x"):
			base, digits = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		if digits == "" && base == 16 {
			return netip.Addr{}, false
		}
		if digits == "" {
			digits = "0"
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	var n uint64
	last := len(vals) - 1
	for i, v := range vals[:last] {
		if v > 0xFF {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
