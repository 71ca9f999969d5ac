package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// redirectMap maps redirect targets that name the upstream itself back to
// the gateway route, as nginx's `proxy_redirect default` does: the
// upstream's origin and base path become the client's origin and the route
// prefix. Other origins, paths outside the base and relative references
// (which already resolve against the gateway URL) are left alone.
type redirectMap struct {
	upTLS  bool
	upHost string // host[:port] the upstream is addressed by
	upBase string // escaped base path, no trailing slash ("" for none)
	prefix []byte // escaped route prefix, no trailing slash ("" for "/")
	// scheme and host are the gateway's origin as the client sees it; with
	// no usable host, absolute targets become absolute paths.
	scheme, host []byte
}

// mapURL appends the gateway's form of target to dst, or reports false when
// target is not the upstream's.
func (m *redirectMap) mapURL(dst, target []byte) ([]byte, bool) {
	v := target
	var (
		path      []byte // path, query and fragment
		authority []byte
		absolute  bool // scheme://authority
		schemeRel bool // //authority
	)
	switch {
	case len(v) == 0:
		return dst, false
	case bytes.HasPrefix(v, []byte("//")):
		authority, path = splitAuthority(v[2:])
		schemeRel = true
	case v[0] == '/':
		path = v
	default:
		i := bytes.Index(v, []byte("://"))
		if i <= 0 || !validScheme(v[:i]) {
			return dst, false // a relative reference, or another scheme
		}
		want := "http"
		if m.upTLS {
			want = "https"
		}
		if !bytes.EqualFold(v[:i], []byte(want)) {
			return dst, false
		}
		authority, path = splitAuthority(v[i+3:])
		absolute = true
	}
	if (absolute || schemeRel) && !sameAuthority(authority, []byte(m.upHost), m.upTLS) {
		return dst, false
	}
	end := len(path)
	if i := bytes.IndexAny(path, "?#"); i >= 0 {
		end = i
	}
	p, tail := path[:end], path[end:]
	var rest []byte
	switch base := []byte(m.upBase); {
	case len(base) == 0:
		rest = p
	case bytes.Equal(p, base):
	case len(p) > len(base) && bytes.HasPrefix(p, base) && p[len(base)] == '/':
		rest = p[len(base):]
	default:
		return dst, false
	}
	if (absolute || schemeRel) && validHost(m.host) {
		if absolute {
			dst = append(append(dst, m.scheme...), ':')
		}
		dst = append(append(dst, "//"...), m.host...)
	}
	dst = append(append(dst, m.prefix...), rest...)
	if len(m.prefix)+len(rest) == 0 {
		dst = append(dst, '/')
	}
	return append(dst, tail...), true
}

// mapRefresh maps the URL in a Refresh value ("5; url=...").
func (m *redirectMap) mapRefresh(dst, v []byte) ([]byte, bool) {
	i := bytes.IndexAny(v, ";,")
	if i < 0 {
		return dst, false
	}
	j := i + 1
	for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
		j++
	}
	if len(v)-j < 4 || !bytes.EqualFold(v[j:j+3], []byte("url")) {
		return dst, false
	}
	j += 3
	for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
		j++
	}
	if j >= len(v) || v[j] != '=' {
		return dst, false
	}
	j++
	for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
		j++
	}
	url, closing := v[j:], []byte(nil)
	if len(url) > 0 && (url[0] == '\'' || url[0] == '"') {
		q := url[0]
		j++
		url = url[1:]
		if k := bytes.IndexByte(url, q); k >= 0 {
			url, closing = url[:k], url[k:]
		}
	}
	start := len(dst)
	dst = append(dst, v[:j]...)
	dst, ok := m.mapURL(dst, url)
	if !ok {
		return dst[:start], false
	}
	return append(dst, closing...), true
}

// splitAuthority splits "host:port/path?q" after "//" into the authority
// and the rest.
func splitAuthority(v []byte) (authority, rest []byte) {
	if i := bytes.IndexAny(v, "/?#"); i >= 0 {
		return v[:i], v[i:]
	}
	return v, nil
}

// sameAuthority compares two host[:port] forms, case-insensitively and
// with the scheme's default port filled in. Userinfo never matches.
func sameAuthority(a, b []byte, tls bool) bool {
	if bytes.IndexByte(a, '@') >= 0 {
		return false
	}
	ah, ap := splitHostPort(a, tls)
	bh, bp := splitHostPort(b, tls)
	return len(ah) > 0 && bytes.EqualFold(ah, bh) && bytes.Equal(ap, bp)
}

func splitHostPort(a []byte, tls bool) (host, port []byte) {
	host = a
	if i := bytes.LastIndexByte(a, ':'); i >= 0 && bytes.IndexByte(a[i:], ']') < 0 {
		host, port = a[:i], a[i+1:]
	}
	if len(port) == 0 {
		port = []byte("80")
		if tls {
			port = []byte("443")
		}
	}
	return host, port
}

func validScheme(s []byte) bool {
	for i, c := range s {
		switch {
		case 'a' <= c|0x20 && c|0x20 <= 'z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return len(s) > 0
}

// rewriteRedirects applies the redirect map to the response's Location and
// Refresh fields, with the client's origin as the request carries it to
// the upstream (X-Forwarded-Proto/-Host, which setForwarded wrote: the
// peer's own for ordinary clients, a trusted proxy's otherwise).
func rewriteRedirects(ctx *fasthttp.RequestCtx, r *Route, u *upstream) {
	h := &ctx.Response.Header
	loc, refresh := h.Peek(fasthttp.HeaderLocation), h.Peek("Refresh")
	if len(loc) == 0 && len(refresh) == 0 {
		return
	}
	var pbuf [256]byte
	m := redirectMap{
		upTLS: u.tls, upHost: u.host, upBase: u.base,
		prefix: appendEscapedPath(pbuf[:0], []byte(r.Prefix)),
		host:   ctx.Request.Header.Peek(hdrXFHost),
	}
	if i := bytes.IndexByte(m.host, ','); i >= 0 {
		m.host = bytes.TrimSpace(m.host[:i])
	}
	switch proto := ctx.Request.Header.Peek(hdrXFProto); {
	case bytes.EqualFold(proto, []byte("https")):
		m.scheme = []byte("https")
	case bytes.EqualFold(proto, []byte("http")):
		m.scheme = []byte("http")
	default:
		m.scheme = []byte(scheme(ctx))
	}
	var buf [512]byte
	if len(loc) > 0 {
		if out, ok := m.mapURL(buf[:0], loc); ok {
			h.SetBytesV(fasthttp.HeaderLocation, out)
		}
	}
	if len(refresh) > 0 {
		if out, ok := m.mapRefresh(buf[:0], refresh); ok {
			h.SetBytesV("Refresh", out)
		}
	}
}
