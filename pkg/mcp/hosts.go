package mcp

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

// DNS-rebinding defence. A page on evil.example.com whose DNS name is
// re-pointed at the gateway's address makes the browser send requests that
// carry Host: evil.example.com (and, for POST, Origin: http://evil.example.com).
// So the Host names the endpoint answers to are a closed list where that
// list is knowable:
//
//   - loopback listens (127.0.0.1, [::1], localhost): always enforced; the
//     loopback names localhost, 127.0.0.1 and [::1] are allowed, plus the
//     configured names;
//   - any other listen (0.0.0.0 behind a load balancer, a LAN address):
//     enforced only when names are configured (Options.AllowedHosts), since
//     the names clients use are not knowable otherwise — the choice of the
//     official SDKs, which protect localhost servers only;
//   - the unix socket: not enforced (no browser opens unix sockets).
//
// Wherever the check runs, the IP literal of the address the connection
// arrived on, and the host of Options.ResourceURL, are allowed too: a
// rebinding attack cannot produce an IP-literal Host. The port is not
// compared: rebinding keeps the port, and SSH tunnels or port mappings
// legitimately change it.
//
// A Host that passed the list (a "trusted" Host) also makes same-origin
// browser requests acceptable without listing their Origin: the page was
// served by this very name.

// hostPolicy is the compiled allowed-host list.
type hostPolicy struct {
	names    map[string]bool // lower-case, no trailing dot; IPs in canonical form
	loopback bool            // the TCP listener is on a loopback address
}

var loopbackNames = []string{"localhost", "127.0.0.1", "::1"}

func newHostPolicy(allowed []string, resourceURL string, loopback bool) hostPolicy {
	p := hostPolicy{names: map[string]bool{}, loopback: loopback}
	for _, h := range allowed {
		if n, ok := canonicalHostName(h); ok {
			p.names[n] = true
		} else if n, _, ok := splitHost([]byte(h)); ok {
			p.names[n] = true // a name given with a port
		}
	}
	if i := strings.Index(resourceURL, "://"); i >= 0 {
		rest := resourceURL[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		if n, _, ok := splitHost([]byte(rest)); ok {
			p.names[n] = true
		}
	}
	return p
}

// enforced reports whether the Host check refuses requests on this
// connection.
func (p *hostPolicy) enforced(ctx *fasthttp.RequestCtx, configured bool) bool {
	if isUnixConn(ctx) {
		return false
	}
	return p.loopback || configured
}

// trusted reports whether name (canonical) is an allowed Host name for a
// request on ctx's connection.
func (p *hostPolicy) trusted(ctx *fasthttp.RequestCtx, name string) bool {
	if p.names[name] {
		return true
	}
	if p.loopback || isUnixConn(ctx) {
		for _, l := range loopbackNames {
			if name == l {
				return true
			}
		}
	}
	if ta, ok := ctx.LocalAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok && a.Unmap().WithZone("").String() == name {
			return true
		}
	}
	return false
}

func isUnixConn(ctx *fasthttp.RequestCtx) bool {
	_, ok := ctx.LocalAddr().(*net.UnixAddr)
	return ok
}

// checkHost validates the Host header. trusted reports whether the Host is
// on the allowed list (whether or not the list is enforced here); err is
// set when the request must be refused.
func (s *Server) checkHost(ctx *fasthttp.RequestCtx) (trusted bool, err *rpcError) {
	raw := ctx.Request.Header.Host()
	enforce := s.hosts.enforced(ctx, len(s.opts.AllowedHosts) > 0)
	name, ok := s.hostName(raw)
	if ok {
		trusted = s.hosts.trusted(ctx, name)
	}
	if !enforce || trusted {
		return trusted, nil
	}
	if len(raw) == 0 {
		return false, &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeInvalidRequest,
			message: "Bad Request: missing Host header"}
	}
	if !ok {
		return false, &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeInvalidRequest,
			message: "Bad Request: malformed Host header"}
	}
	return false, &rpcError{status: fasthttp.StatusForbidden, code: rpc.CodeInvalidRequest,
		message: "Forbidden: Host " + quoteParam(truncateUTF8(raw, 255)) + " is not one this gateway answers to " +
			"(add it to the Gateway's spec.mcp.allowedHosts)"}
}

// hostSplit is splitHost's answer for one Host value.
type hostSplit struct {
	raw, name string
	ok        bool
}

// hostName is splitHost's name for raw. Clients repeat their Host, so the
// last answer is kept and an equal value is answered by one comparison,
// without splitHost's allocations (its string, an IP's canonical form).
func (s *Server) hostName(raw []byte) (string, bool) {
	if m := s.lastHost.Load(); m != nil && m.raw == string(raw) {
		return m.name, m.ok
	}
	name, _, ok := splitHost(raw)
	s.lastHost.Store(&hostSplit{raw: string(raw), name: name, ok: ok})
	return name, ok
}

// splitHost parses a Host header value (host[:port], [v6][:port]) into the
// canonical lower-case name without trailing dot (IPs in canonical form)
// and the port ("" when absent).
func splitHost(raw []byte) (name, port string, ok bool) {
	h := string(raw)
	if h == "" {
		return "", "", false
	}
	if h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", "", false
		}
		a, err := netip.ParseAddr(h[1:end])
		if err != nil || !a.Is6() {
			return "", "", false
		}
		rest := h[end+1:]
		if rest != "" {
			if rest[0] != ':' || !validPort(rest[1:]) {
				return "", "", false
			}
			port = rest[1:]
		}
		return a.Unmap().WithZone("").String(), port, true
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !validPort(h[i+1:]) {
			return "", "", false // also refuses bare IPv6 literals
		}
		h, port = h[:i], h[i+1:]
		if strings.IndexByte(h, ':') >= 0 {
			return "", "", false // an IPv6 literal must be bracketed
		}
	}
	n, ok := canonicalHostName(h)
	return n, port, ok
}

// canonicalHostName lower-cases a DNS name or IPv4 literal and drops one
// trailing dot (the FQDN spelling of the same name).
func canonicalHostName(h string) (string, bool) {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return "", false
	}
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return a.Unmap().WithZone("").String(), true
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", false
		}
	}
	return strings.ToLower(h), true
}

func validPort(p string) bool {
	if p == "" {
		return true // "host:" — RFC 3986 allows an empty port
	}
	if len(p) > 5 {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535 && p[0] != '+' && p[0] != '-'
}

// sameOrigin reports whether origin (scheme://host[:port]) names the same
// host and port as the request's Host. The scheme is not compared: TLS may
// end at a load balancer in front of stoad, so the connection's scheme says
// nothing about the page's. A Host without port matches an origin on its
// scheme's default port.
func sameOrigin(origin, host []byte) bool {
	o := string(origin)
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok {
		return false
	}
	scheme = strings.ToLower(scheme)
	def := ""
	switch scheme {
	case "http":
		def = "80"
	case "https":
		def = "443"
	default:
		return false
	}
	if strings.ContainsAny(rest, "/?#@") {
		return false
	}
	on, op, ok1 := splitHost([]byte(rest))
	hn, hp, ok2 := splitHost(host)
	if !ok1 || !ok2 || on != hn {
		return false
	}
	if op == "" {
		op = def
	}
	if hp == "" {
		return op == def
	}
	return strings.TrimLeft(op, "0") == strings.TrimLeft(hp, "0")
}
