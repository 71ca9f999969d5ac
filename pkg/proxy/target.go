package proxy

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// Request-line, Host and framing checks that need no route: the handler
// runs them first, and the Expect handler runs them before it invites a
// body (so a request that will be refused is refused before its body is
// sent).

const msgBadHost = "invalid Host header (want host[:port], no user information)"

// supportedVersion: only HTTP/1.0 and HTTP/1.1 are proxied. fasthttp
// parses any "HTTP/d.d"; malformed versions ("HTTP/1.1x", "http/1.1", a
// missing version) never reach the handler (fasthttp refuses them: 400).
func supportedVersion(proto []byte) bool {
	return string(proto) == "HTTP/1.1" || string(proto) == "HTTP/1.0"
}

// regNameByte marks the bytes accepted in a Host's name: RFC 3986
// unreserved characters. Sub-delims and percent-escapes, which the RFC
// also allows in a reg-name, are refused: no DNS name has them, and they
// are where parsers disagree (",", ";", "%2e").
var regNameByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~" {
		t[c] = true
	}
	return
}()

// validHost reports whether b is a Host value the gateway accepts (RFC
// 3986 authority without userinfo): a name of unreserved characters (an
// IPv4 address is one), or an IPv6 address in brackets (no zone), then
// optionally ':' and a port of 1 to 5 digits up to 65535.
func validHost(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	var port []byte
	hasPort := false
	if b[0] == '[' {
		i := bytes.IndexByte(b, ']')
		if i < 0 || !validIPv6(b[1:i]) {
			return false
		}
		if rest := b[i+1:]; len(rest) > 0 {
			if rest[0] != ':' {
				return false
			}
			port, hasPort = rest[1:], true
		}
	} else {
		name := b
		if i := bytes.IndexByte(b, ':'); i >= 0 {
			name, port, hasPort = b[:i], b[i+1:], true
		}
		if len(name) == 0 {
			return false
		}
		for _, c := range name {
			if !regNameByte[c] {
				return false
			}
		}
	}
	if !hasPort {
		return true
	}
	if len(port) == 0 || len(port) > 5 {
		return false
	}
	v := 0
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
		v = v*10 + int(c-'0')
	}
	return v <= 65535
}

func validIPv6(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	for _, c := range b {
		if !(c == ':' || c == '.' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')) {
			return false
		}
	}
	a, err := netip.ParseAddr(string(b))
	return err == nil && a.Is6()
}

// checkTarget checks the request target against the Host header and
// returns why it is refused, or "". Origin-form ("/path") and
// asterisk-form ("*", OPTIONS only, enforced by fasthttp) pass.
// Absolute-form ("http://host/path") passes only when its scheme is http
// or https, it has no userinfo and its authority is the Host header's
// (ASCII case-insensitively): routing reads Host, and fasthttp would turn
// the target's userinfo into an upstream Authorization header.
// Authority-form (CONNECT) is not proxied.
func checkTarget(uri, host []byte) string {
	if len(uri) == 0 || uri[0] == '/' || (len(uri) == 1 && uri[0] == '*') {
		return ""
	}
	i := bytes.Index(uri, []byte("://"))
	if i < 0 {
		return "request target must be a path or an absolute http(s) URI (CONNECT is not proxied)"
	}
	if scheme := uri[:i]; !bytes.EqualFold(scheme, []byte("http")) && !bytes.EqualFold(scheme, []byte("https")) {
		return "request target scheme must be http or https"
	}
	auth := uri[i+3:]
	if j := bytes.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	if bytes.IndexByte(auth, '@') >= 0 {
		return "user information in the request target"
	}
	if !validHost(auth) {
		return "invalid host in the request target"
	}
	if !bytes.EqualFold(auth, host) {
		return "request target host does not match the Host header"
	}
	return ""
}

// checkRequest runs the checks that need neither a route nor the body,
// and returns the refusal (status, error code, message), or status 0.
// Framing (line ends, folds, Content-Length, Transfer-Encoding, chunks,
// trailers) was checked on the wire before fasthttp parsed the request
// (wireCheck).
func checkRequest(h *fasthttp.RequestHeader) (int, string, string) {
	if !supportedVersion(h.Protocol()) {
		return fasthttp.StatusHTTPVersionNotSupported, errVersion, "only HTTP/1.0 and HTTP/1.1 are supported"
	}
	host := h.Host()
	// HTTP/1.1 without Host is refused by fasthttp; HTTP/1.0 may omit it.
	if len(host) > 0 && !validHost(host) {
		return fasthttp.StatusBadRequest, errBadRequest, msgBadHost
	}
	if msg := checkTarget(h.RequestURI(), host); msg != "" {
		return fasthttp.StatusBadRequest, errBadRequest, msg
	}
	return 0, "", ""
}
