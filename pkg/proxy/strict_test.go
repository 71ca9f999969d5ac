package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Request-side hygiene: what the gateway refuses before routing (Host,
// request target, version, framing) and what it rewrites (forwarding and
// client-address headers). Every case is checked at the upstream: what it
// actually received, or that it received nothing.

// keyedRawEnv is a proxy with an API-key route /acme/api in front of a raw
// upstream, and a valid key.
func keyedRawEnv(t *testing.T, extraSpecs string) (*testEnv, *rawUpstream, string) {
	up := newRawUpstream(t, okResponse)
	e := newEnv(t, tenant("acme", "")+consumers+tool("acme", "api", "http://"+up.Addr+"/base", "auth: {type: apiKey}")+extraSpecs)
	return e, up, e.addKey("acme", "shop", nil)
}

// refused sends raw on a fresh connection and checks the gateway's JSON
// error with status and a message containing msg, the closed connection,
// and that the upstream received nothing.
func refused(t *testing.T, e *testEnv, up *rawUpstream, raw string, status int, msg string) {
	t.Helper()
	n := len(up.requests())
	head, body := rawRoundTrip(t, e.addr, raw)
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head+"\r\n\r\n"+body)), nil)
	if err != nil {
		t.Fatalf("no valid answer (%v) to\n%q:\n%s", err, raw, head)
	}
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	code := errBadRequest
	switch status {
	case http.StatusHTTPVersionNotSupported:
		code = errVersion
	case http.StatusExpectationFailed:
		code = errExpectation
	case http.StatusRequestEntityTooLarge:
		code = errBodyTooLarge
	}
	m := expectError(t, r, status, code)
	if s, _ := m["message"].(string); !strings.Contains(s, msg) {
		t.Errorf("message %q, want it to say %q (request %q)", s, msg, raw)
	}
	if id := r.Header.Get("X-Request-Id"); id == "" || m["requestId"] != id {
		t.Errorf("request id %q in the body, %q in the header", m["requestId"], id)
	}
	if !resp.Close {
		t.Errorf("connection left open after a refused request %q", raw)
	}
	if got := len(up.requests()); got != n {
		t.Fatalf("refused request reached the upstream: %q", up.requests()[n:])
	}
}

// upstreamFields parses the head of the last raw request the upstream
// received into lower-cased names and their values.
func upstreamFields(t *testing.T, up *rawUpstream) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, l := range strings.Split(lastRaw(t, up), "\r\n")[1:] {
		k, v, _ := strings.Cut(l, ":")
		k = strings.ToLower(strings.TrimSpace(k))
		out[k] = append(out[k], strings.TrimSpace(v))
	}
	return out
}

// TestHostHeaderStrict: nothing in a Host header can become an upstream
// credential; a Host outside host[:port] is refused before routing.
func TestHostHeaderStrict(t *testing.T) {
	e, up, key := keyedRawEnv(t, "")
	for _, host := range []string{
		// userinfo, in every spelling fasthttp would turn into Basic auth
		"admin:pw@x", "admin@x", "@x", ":pw@x", "a@b@c", "x@", "%61dmin:pw@x", "user:pass@gw:8080", "admin:pw@[::1]",
		// bytes outside reg-name / IPv4 / [IPv6]
		"x y", "x,y", "x;y", "x/y", `x\y`, "x?y", "x#y", "x%2ey", "x!y", "x$y", "x'y", "x(y)", "x*y", "x+y", "x=y", `x"y`, "x<y>", "x\x80y", "x&y",
		// brackets and ports
		"[::1", "[::1]x", "[fe80::1%25eth0]", "[v1.fe]", "[1.2.3.4]", "[]", "[gw]", "::1",
		"x:", "x:abc", "x:99999", "x:123456", "x:-1", "x:+80", "x:8 0", ":80", "x::80", "x:80:80",
	} {
		t.Run("refused "+host, func(t *testing.T) {
			refused(t, e, up, "GET /acme/api/x HTTP/1.1\r\nHost: "+host+"\r\nX-Api-Key: "+key+"\r\n\r\n", 400, "Host")
		})
	}
	for _, host := range []string{"gw", "GW.Example", "gw:8080", "gw:0", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:8080",
		"[2001:DB8::1]:443", "a_b-c~d.example", "xn--bcher-kva.example."} {
		t.Run("accepted "+host, func(t *testing.T) {
			r := rawResponse(t, e.addr, "GET /acme/api/x HTTP/1.1\r\nHost: "+host+"\r\nX-Api-Key: "+key+"\r\nConnection: close\r\n\r\n")
			if r.Status != 200 {
				t.Fatalf("status %d %q", r.Status, r.Body)
			}
			got := upstreamFields(t, up)
			if len(got["authorization"]) != 0 || len(got["x-api-key"]) != 0 {
				t.Fatalf("credential upstream: %q", lastRaw(t, up))
			}
			if xfh := got["x-forwarded-host"]; len(xfh) != 1 || xfh[0] != host {
				t.Fatalf("X-Forwarded-Host %q, want %q", xfh, host)
			}
		})
	}
}

// TestHostHeaderPresence: HTTP/1.1 needs exactly one non-empty Host;
// HTTP/1.0 may omit it.
func TestHostHeaderPresence(t *testing.T) {
	e, up, key := keyedRawEnv(t, "")
	for name, raw := range map[string]string{
		"missing":          "GET /acme/api/x HTTP/1.1\r\nX-Api-Key: " + key + "\r\n\r\n",
		"empty":            "GET /acme/api/x HTTP/1.1\r\nHost:\r\nX-Api-Key: " + key + "\r\n\r\n",
		"blank":            "GET /acme/api/x HTTP/1.1\r\nHost:   \r\nX-Api-Key: " + key + "\r\n\r\n",
		"twice":            "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nHost: gw\r\nX-Api-Key: " + key + "\r\n\r\n",
		"twice, differing": "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nhost: other\r\nX-Api-Key: " + key + "\r\n\r\n",
		"space before ':'": "GET /acme/api/x HTTP/1.1\r\nHost : gw\r\nX-Api-Key: " + key + "\r\n\r\n",
		"twin":             "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nHOST: admin:pw@x\r\nX-Api-Key: " + key + "\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) { refused(t, e, up, raw, 400, "") })
	}
	r := rawResponse(t, e.addr, "GET /acme/api/x HTTP/1.0\r\nX-Api-Key: "+key+"\r\n\r\n")
	if r.Status != 200 {
		t.Fatalf("HTTP/1.0 without Host: %d %q", r.Status, r.Body)
	}
}

// TestAbsoluteFormTarget: an absolute request target is accepted only
// when it names the Host, over http(s), without userinfo.
func TestAbsoluteFormTarget(t *testing.T) {
	e, up, key := keyedRawEnv(t, "")
	cred := "X-Api-Key: " + key + "\r\n"
	for _, c := range []struct{ name, raw, msg string }{
		{"userinfo", "GET http://admin:pw@gw/acme/api/x HTTP/1.1\r\nHost: gw\r\n" + cred + "\r\n", "user information"},
		{"user only", "GET http://admin@gw/acme/api/x HTTP/1.1\r\nHost: gw\r\n" + cred + "\r\n", "user information"},
		{"empty userinfo", "GET http://@gw/acme/api/x HTTP/1.1\r\nHost: gw\r\n" + cred + "\r\n", "user information"},
		{"https userinfo", "GET https://a:b@gw/acme/api/x HTTP/1.1\r\nHost: gw\r\n" + cred + "\r\n", "user information"},
		{"other host", "GET http://other/acme/api/x HTTP/1.1\r\nHost: gw\r\n" + cred + "\r\n", "does not match"},
		{"other port", "GET http://gw:80/acme/api/x HTTP/1.1\r\nHost: gw\r\n" + cred + "\r\n", "does not match"},
		{"bad host", "GET http://g,w/acme/api/x HTTP/1.1\r\nHost: g,w\r\n" + cred + "\r\n", "Host"},
		{"other scheme", "GET ftp://gw/acme/api/x HTTP/1.1\r\nHost: gw\r\n" + cred + "\r\n", "scheme"},
		{"no Host, HTTP/1.0", "GET http://gw/acme/api/x HTTP/1.0\r\n" + cred + "\r\n", "does not match"},
		{"CONNECT", "CONNECT gw:443 HTTP/1.1\r\nHost: gw:443\r\n" + cred + "\r\n", "CONNECT"},
	} {
		t.Run(c.name, func(t *testing.T) { refused(t, e, up, c.raw, 400, c.msg) })
	}
	for _, raw := range []string{
		"GET http://gw/acme/api/x HTTP/1.1\r\nHost: gw\r\n" + cred + "Connection: close\r\n\r\n",
		"GET HTTP://GW/acme/api/x?q=1 HTTP/1.1\r\nHost: gw\r\n" + cred + "Connection: close\r\n\r\n",
		"GET https://gw:8443/acme/api/x HTTP/1.1\r\nHost: gw:8443\r\n" + cred + "Connection: close\r\n\r\n",
	} {
		if r := rawResponse(t, e.addr, raw); r.Status != 200 {
			t.Fatalf("%q: %d %q", raw, r.Status, r.Body)
		}
		if got := upstreamFields(t, up); len(got["authorization"]) != 0 {
			t.Fatalf("Authorization upstream for %q", raw)
		}
	}
	// Asterisk-form is about the server: answered, never forwarded as "/*".
	n0 := len(up.requests())
	if r := rawResponse(t, e.addr, "OPTIONS * HTTP/1.1\r\nHost: gw\r\n"+cred+"\r\n"); r.Status != 204 || len(up.requests()) != n0 {
		t.Fatalf("OPTIONS *: %d, upstream %d requests", r.Status, len(up.requests())-n0)
	}
	// A path that only looks like an authority stays a path.
	n := len(up.requests())
	if r := rawResponse(t, e.addr, "GET //admin:pw@gw/acme/api/x HTTP/1.1\r\nHost: gw\r\n"+cred+"\r\n"); r.Status != 404 || len(up.requests()) != n {
		t.Fatalf("//userinfo path: %d, upstream %d requests", r.Status, len(up.requests())-n)
	}
}

// TestHTTPVersion: only HTTP/1.0 and 1.1 are proxied (505 otherwise);
// a malformed version is a malformed request (400).
func TestHTTPVersion(t *testing.T) {
	e, up := rawEnv(t, okResponse, "")
	for _, v := range []string{"HTTP/3.9", "HTTP/2.0", "HTTP/1.7", "HTTP/0.9", "HTTP/9.9", "HTTP/1.2", "HTTP/0.0"} {
		t.Run(v, func(t *testing.T) {
			refused(t, e, up, "GET /acme/api/x "+v+"\r\nHost: gw\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1")
		})
	}
	for _, line := range []string{"GET /acme/api/x HTTP/1.1x", "GET /acme/api/x http/1.1", "GET /acme/api/x HTTP/1",
		"GET /acme/api/x HTTP/1.1.1", "GET /acme/api/x HTTP/ 1.1", "GET /acme/api/x HTTP/11", "GET /acme/api/x",
		"GET /acme/api/x HTTP/1.1 extra", "GET  /acme/api/x HTTP/1.1", "GET /acme/api/x  HTTP/1.1"} {
		t.Run(line, func(t *testing.T) {
			refused(t, e, up, line+"\r\nHost: gw\r\n\r\n", 400, "")
		})
	}
	for _, v := range []string{"HTTP/1.0", "HTTP/1.1"} {
		if r := rawResponse(t, e.addr, "GET /acme/api/x "+v+"\r\nHost: gw\r\nConnection: close\r\n\r\n"); r.Status != 200 {
			t.Fatalf("%s: %d %q", v, r.Status, r.Body)
		}
	}
}

// forwardingNames are client headers that claim something about the
// client or its path to the gateway.
var forwardingNames = []string{
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme",
	"X-Forwarded-Uri", "X-Forwarded-Anything-At-All", "x-forwarded-prefix", "X-FORWARDED-PORT",
}

var clientAddrNames = []string{
	"X-Forwarded", "Forwarded", "X-Real-IP", "True-Client-IP", "X-Client-IP", "Client-IP", "X-Cluster-Client-IP",
	"CF-Connecting-IP", "CF-Connecting-IPv6", "Fastly-Client-IP", "Fly-Client-IP", "Akamai-Client-IP", "X-Azure-Client-IP",
	"X-Originating-IP", "X-Remote-IP", "X-Remote-Addr", "X-ProxyUser-Ip", "X-Host", "X-Original-URL", "X-Rewrite-URL",
	"true-client-ip", "X-REAL-IP",
}

// TestForwardingHeadersRule: every X-Forwarded-*, Forwarded and
// client-address header is the gateway's to set. From an ordinary peer
// none of the client's reach the upstream (however many copies); from a
// trusted proxy the X-Forwarded-* family is kept (X-Forwarded-For
// appended to), the rest still removed.
func TestForwardingHeadersRule(t *testing.T) {
	limits := gateway("limits: {maxHeaders: 300}")
	e, up := rawEnv(t, okResponse, limits)
	var b strings.Builder
	for _, n := range append(append(append([]string{}, forwardingNames...), clientAddrNames...), "HTTP2-Settings", "Proxy", "http2-settings") {
		for i := 0; i < 3; i++ {
			b.WriteString(n + ": 6.6.6.6\r\n")
		}
	}
	for i := 0; i < 20; i++ {
		b.WriteString("X-Forwarded-Port: 666\r\n")
	}
	spoof := b.String() + "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n"
	send := func() map[string][]string {
		t.Helper()
		r := rawResponse(t, e.addr, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n"+spoof+"Connection: close\r\n\r\n")
		if r.Status != 200 {
			t.Fatalf("status %d %q", r.Status, r.Body)
		}
		return upstreamFields(t, up)
	}
	got := send()
	for _, n := range append(append(append([]string{}, forwardingNames...), clientAddrNames...), "HTTP2-Settings", "Proxy") {
		if v := got[strings.ToLower(n)]; len(v) != 0 {
			t.Errorf("untrusted peer: upstream received %s: %q", n, v)
		}
	}
	for k, want := range map[string]string{"x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http", "x-forwarded-host": "gw"} {
		if v := got[k]; len(v) != 1 || v[0] != want {
			t.Errorf("untrusted peer: upstream %s = %q, want [%q]", k, v, want)
		}
	}

	e.apply(tool("acme", "api", "http://"+up.Addr+"/base", "") + gateway("limits: {maxHeaders: 300}\ntrustedProxies: [127.0.0.0/8]"))
	got = send()
	for _, n := range []string{"x-forwarded-port", "x-forwarded-prefix", "x-forwarded-server", "x-forwarded-anything-at-all"} {
		if len(got[n]) == 0 {
			t.Errorf("trusted proxy: %s dropped", n)
		}
	}
	for _, n := range append(append([]string{}, clientAddrNames...), "HTTP2-Settings", "Proxy") {
		if v := got[strings.ToLower(n)]; len(v) != 0 {
			t.Errorf("trusted proxy: upstream received %s: %q", n, v)
		}
	}
	// Repeated X-Forwarded-For/-Proto/-Host copies are dropped even from
	// a trusted proxy; a single one is honoured (see TestForwardedHeaders).
	if v := got["x-forwarded-for"]; len(v) != 1 || v[0] != "6.6.6.6, 127.0.0.1" {
		t.Errorf("trusted proxy: X-Forwarded-For %q", v)
	}
}

// TestSpecialHeaderTwinsRefused: a name that reads as one the gateway
// treats specially once '_' is read as '-' — gateway, forwarding,
// client-address, credential, hop-by-hop and framing headers — is
// refused, in any case and with any mix of '_' and '-'. Some upstream
// stacks (CGI, WSGI, PHP) fold both into one variable.
func TestSpecialHeaderTwinsRefused(t *testing.T) {
	t.Setenv("STOA_TEST_UPSTREAM_KEY", "upstream-secret")
	e, up, key := keyedRawEnv(t, tool("acme", "custom", "http://127.0.0.1:1", "upstreamAuth: {header: X-Upstream-Key, secretRef: {env: STOA_TEST_UPSTREAM_KEY}}"))
	names := []string{"X-Api-Key", "X-Stoa-Tenant", "X-Request-Id", "X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Prefix",
		"X-Real-IP", "True-Client-IP", "CF-Connecting-IP", "Akamai-Client-IP", "X-Original-URL",
		"Proxy-Authorization", "Proxy-Connection", "Keep-Alive", "HTTP2-Settings", "Content-Length", "Transfer-Encoding", "Content-Type"}
	for _, n := range names {
		for _, twin := range []string{strings.ReplaceAll(n, "-", "_"), strings.Replace(n, "-", "_", 1),
			strings.ToLower(strings.ReplaceAll(n, "-", "_")), strings.ToUpper(strings.Replace(n, "-", "_", 1))} {
			t.Run(twin, func(t *testing.T) {
				refused(t, e, up, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: "+key+"\r\n"+twin+": v\r\n\r\n", 400, "header name")
			})
		}
	}
	// The per-route upstreamAuth header's twins too.
	for _, twin := range []string{"X_Upstream_Key", "x-upstream_key"} {
		if r := rawResponse(t, e.addr, "GET /acme/custom/x HTTP/1.1\r\nHost: gw\r\n"+twin+": client\r\n\r\n"); r.Status != 400 {
			t.Fatalf("%s: %d", twin, r.Status)
		}
	}
	// Underscores in other names are fine.
	if r := rawResponse(t, e.addr, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: "+key+"\r\nX_Custom_Thing: 1\r\nConnection: close\r\n\r\n"); r.Status != 200 {
		t.Fatalf("ordinary underscore name: %d %q", r.Status, r.Body)
	}
}

// TestUpstreamAuthHeaderNotRepeated: the client's copies of the header
// upstreamAuth sets are all replaced, not only the first.
func TestUpstreamAuthHeaderNotRepeated(t *testing.T) {
	t.Setenv("STOA_TEST_UPSTREAM_KEY", "upstream-secret")
	up := newRawUpstream(t, okResponse)
	e := newEnv(t, tool("acme", "custom", "http://"+up.Addr, "upstreamAuth: {header: X-Upstream-Key, secretRef: {env: STOA_TEST_UPSTREAM_KEY}}"))
	r := rawResponse(t, e.addr, "GET /acme/custom/x HTTP/1.1\r\nHost: gw\r\nX-Upstream-Key: a\r\nx-upstream-key: b\r\nX-UPSTREAM-KEY: c\r\nConnection: close\r\n\r\n")
	if r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	if got := upstreamFields(t, up)["x-upstream-key"]; len(got) != 1 || got[0] != "upstream-secret" {
		t.Fatalf("upstream X-Upstream-Key %q", got)
	}
}

// chunkedPost is a chunked POST to /acme/api with body as written.
func chunkedPost(extraHeaders, body string) string {
	return "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\n" + extraHeaders + "Transfer-Encoding: chunked\r\n\r\n" + body
}

// TestStrictFraming: line ends, folds, Content-Length, Transfer-Encoding,
// chunks and trailers are checked as the bytes arrive; a request that
// breaks a rule is answered 400 at once (never after the read timeout),
// never reaches the upstream, and closes the connection.
func TestStrictFraming(t *testing.T) {
	e, up := rawEnv(t, okResponse, "")
	for _, c := range []struct{ name, raw, msg string }{
		{"bare LF everywhere", "GET /acme/api/x HTTP/1.1\nHost: gw\n\n", "CRLF"},
		{"bare LF after request line", "GET /acme/api/x HTTP/1.1\nHost: gw\r\n\r\n", "CRLF"},
		{"bare LF after a field", "GET /acme/api/x HTTP/1.1\r\nHost: gw\nX-A: 1\r\n\r\n", "CRLF"},
		{"bare LF ends the block", "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n\n", "CRLF"},
		{"bare LF before the request", "\nGET /acme/api/x HTTP/1.1\r\nHost: gw\r\n\r\n", "CRLF"},
		{"CR CR LF", "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\r\n\r\n", ""},
		{"bare CR in a value", "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-A: a\rb\r\n\r\n", ""},
		{"NUL in a value", "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-A: a\x00b\r\n\r\n", ""},
		{"DEL in a value", "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-A: a\x7fb\r\n\r\n", ""},
		{"control character in a name", "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX\x01A: b\r\n\r\n", ""},
		{"NUL in the target", "GET /acme/api/x\x00 HTTP/1.1\r\nHost: gw\r\n\r\n", ""},
		{"obs-fold SP", "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n 2\r\n\r\n", "obs-fold"},
		{"obs-fold HTAB", "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n\t2\r\n\r\n", "obs-fold"},
		{"obs-fold of Host", "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n evil\r\n\r\n", "obs-fold"},
		{"obs-fold of Transfer-Encoding", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding"},
		{"space before the first field", "GET /acme/api/x HTTP/1.1\r\n Host: gw\r\n\r\n", "obs-fold"},
		{"TE identity", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: identity\r\n\r\nhello", "Transfer-Encoding"},
		{"TE gzip, chunked", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding"},
		{"TE chunked, identity", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", "Transfer-Encoding"},
		{"TE gzip", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", "Transfer-Encoding"},
		{"TE twice", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding"},
		{"TE empty", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding:\r\n\r\n0\r\n\r\n", "Transfer-Encoding"},
		{"TE padded past any value", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: " + strings.Repeat(" ", 40) + "chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding"},
		{"TE on HTTP/1.0", "POST /acme/api/x HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ""},
		{"CL and TE", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "both"},
		{"TE and CL", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n", "both"},
		{"CL twice", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "Content-Length"},
		{"CL list", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5, 5\r\n\r\nhello", "Content-Length"},
		{"CL signed", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: +5\r\n\r\nhello", "Content-Length"},
		{"CL hex", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 0x5\r\n\r\nhello", "Content-Length"},
		{"CL empty", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length:\r\n\r\n", "Content-Length"},
		{"CL huge", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1234567890123456789\r\n\r\n", "Content-Length"},
		{"chunk size trailing SP", chunkedPost("", "5 \r\nhello\r\n0\r\n\r\n"), "chunk size"},
		{"chunk size trailing HTAB", chunkedPost("", "5\t\r\nhello\r\n0\r\n\r\n"), "chunk size"},
		{"chunk size SP before ext", chunkedPost("", "5 ;a=b\r\nhello\r\n0\r\n\r\n"), "chunk size"},
		{"chunk size leading SP", chunkedPost("", " 5\r\nhello\r\n0\r\n\r\n"), "chunk size"},
		{"chunk size 0x", chunkedPost("", "0x5\r\nhello\r\n0\r\n\r\n"), "chunk size"},
		{"chunk size empty", chunkedPost("", ";a\r\nhello\r\n0\r\n\r\n"), "chunk size"},
		{"chunk size too long", chunkedPost("", "0000000000000005\r\nhello\r\n0\r\n\r\n"), "chunk size"},
		{"chunk size bare LF", chunkedPost("", "5\nhello\r\n0\r\n\r\n"), "chunk size"},
		{"chunk size bare CR", chunkedPost("", "5\rhello\r\n0\r\n\r\n"), "chunk size"},
		{"last chunk trailing SP", chunkedPost("", "5\r\nhello\r\n0 \r\n\r\n"), "chunk size"},
		{"NUL in extension", chunkedPost("", "5;a\x00b\r\nhello\r\n0\r\n\r\n"), "extension"},
		{"SOH in extension", chunkedPost("", "5;a=\x01\r\nhello\r\n0\r\n\r\n"), "extension"},
		{"DEL in extension", chunkedPost("", "5;a=\x7f\r\nhello\r\n0\r\n\r\n"), "extension"},
		{"LF in extension", chunkedPost("", "5;a\nb\r\nhello\r\n0\r\n\r\n"), "extension"},
		{"bare CR in extension", chunkedPost("", "5;a\rb\r\nhello\r\n0\r\n\r\n"), "chunk size"},
		{"NUL in last chunk extension", chunkedPost("", "5\r\nhello\r\n0;x\x00\r\n\r\n"), "extension"},
		{"extension too long", chunkedPost("", "5;"+strings.Repeat("a", 5000)+"\r\nhello\r\n0\r\n\r\n"), "extension"},
		{"data longer than size", chunkedPost("", "3\r\nhello\r\n0\r\n\r\n"), "CRLF"},
		{"data not followed by CRLF", chunkedPost("", "5\r\nhelloXY0\r\n\r\n"), "CRLF"},
		{"data followed by bare LF", chunkedPost("", "5\r\nhello\n0\r\n\r\n"), "CRLF"},
		{"trailer field", chunkedPost("", "5\r\nhello\r\n0\r\nX-Stoa-Tenant: globex\r\n\r\n"), "trailer"},
		{"trailer credential", chunkedPost("", "0\r\nX-Api-Key: stoa_sk_x\r\n\r\n"), "trailer"},
		{"trailer bare LF", chunkedPost("", "5\r\nhello\r\n0\r\n\n"), "CRLF"},
		{"trailer obs-fold", chunkedPost("", "5\r\nhello\r\n0\r\n x\r\n\r\n"), "obs-fold"},
	} {
		t.Run(c.name, func(t *testing.T) { refused(t, e, up, c.raw, 400, c.msg) })
	}
	// Valid framings pass, re-framed with Content-Length upstream.
	for _, c := range []struct{ name, body, want string }{
		{"chunked", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"chunked upper-case hex, leading zeros", "00A\r\n0123456789\r\n000\r\n\r\n", "0123456789"},
		{"extensions", "5;name=value;flag\r\nhello\r\n3;q=\"quoted; \\\"str\\\"\"\r\n!!!\r\n0;last=1\r\n\r\n", "hello!!!"},
		{"extension with BWS", "5;a = b ; c\r\nhello\r\n0\r\n\r\n", "hello"},
		{"empty body", "0\r\n\r\n", ""},
	} {
		t.Run("accepted "+c.name, func(t *testing.T) {
			head, _ := rawRoundTrip(t, e.addr, chunkedPost("Connection: close\r\n", c.body))
			if !strings.HasPrefix(head, "HTTP/1.1 200") {
				t.Fatalf("answer %q", head)
			}
			reqs := up.requests()
			if _, body, _ := strings.Cut(reqs[len(reqs)-1], "\r\n\r\n"); body != c.want {
				t.Fatalf("upstream body %q, want %q", body, c.want)
			}
		})
	}
	if r := rawResponse(t, e.addr, "\r\nGET /acme/api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"); r.Status != 200 {
		t.Fatalf("a CRLF before the request line (RFC 9112 §2.2): %d", r.Status)
	}
}

// TestStrictFramingPipelined: requests sent together are each checked
// from their own start; the ones before a broken request are served.
func TestStrictFramingPipelined(t *testing.T) {
	e, up := rawEnv(t, okResponse, "")
	for _, bad := range []string{
		"GET /acme/api/b HTTP/1.1\nHost: gw\n\n",
		"GET /acme/api/b HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n 2\r\n\r\n",
		chunkedPost("", "5 \r\nhello\r\n0\r\n\r\n"),
		"POST /acme/api/b HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: identity\r\n\r\n",
	} {
		n := len(up.requests())
		good := "POST /acme/api/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nGET /x\n\n\r\n" + // a body that looks like a bad head
			chunkedPost("", "3;x=y\r\n\n\n\n\r\n0\r\n\r\n") // chunk data that looks like bare LFs
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, good+bad)
		br := bufio.NewReader(c)
		var statuses []int
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			io.Copy(io.Discard, resp.Body)
			statuses = append(statuses, resp.StatusCode)
		}
		c.Close()
		if !slices.Equal(statuses, []int{200, 200, 400}) {
			t.Fatalf("pipelined good, good, %q: statuses %v", bad, statuses)
		}
		if got := len(up.requests()) - n; got != 2 {
			t.Fatalf("upstream got %d requests, want the 2 good ones", got)
		}
	}
}

// TestExpectContinue: a request that will be refused gets its answer
// instead of 100 Continue, so the client never sends its body; others are
// invited, and the upstream gets the whole body without Expect.
func TestExpectContinue(t *testing.T) {
	e, up := rawEnv(t, okResponse, gateway("limits: {maxBodyBytes: 1024}"))
	first := func(raw string) (*http.Response, *bufio.Reader, net.Conn) {
		t.Helper()
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, raw)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer before the body was sent: %v", err)
		}
		return resp, br, c
	}
	for _, c := range []struct {
		name, raw string
		status    int
	}{
		{"body over the limit", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1025\r\nExpect: 100-continue\r\n\r\n", 413},
		{"huge body", "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 10000000000\r\nexpect: 100-Continue\r\n\r\n", 413},
		{"bad Host", "POST /acme/api/x HTTP/1.1\r\nHost: a:b@gw\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 400},
		{"bad target", "POST http://other/acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, _, _ := first(c.raw)
			b, _ := io.ReadAll(resp.Body)
			expectError(t, response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}, c.status, map[int]string{413: errBodyTooLarge, 400: errBadRequest}[c.status])
			if !resp.Close {
				t.Error("connection left open (the body may be on its way)")
			}
		})
	}
	n := len(up.requests())
	// Within the limit: 100, then the body, then the upstream's answer.
	for _, c := range []struct{ name, head, body string }{
		{"length", "Content-Length: 5\r\n", "hello"},
		{"chunked", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"},
	} {
		resp, br, conn := first("POST /acme/api/x HTTP/1.1\r\nHost: gw\r\n" + c.head + "Expect: 100-continue\r\n\r\n")
		if resp.StatusCode != 100 {
			t.Fatalf("%s: first answer %d, want 100", c.name, resp.StatusCode)
		}
		io.WriteString(conn, c.body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: after the body: %v %v", c.name, err, resp)
		}
		reqs := up.requests()
		if got := reqs[len(reqs)-1]; !strings.HasSuffix(got, "\r\n\r\nhello") || strings.Contains(strings.ToLower(got), "expect:") {
			t.Fatalf("%s: upstream got %q", c.name, got)
		}
	}
	if got := len(up.requests()) - n; got != 2 {
		t.Fatalf("upstream got %d requests, want 2", got)
	}
	// A chunked body announced small but sent large is cut off as it is read.
	resp, br, conn := first(chunkedPost("Expect: 100-continue\r\n", ""))
	if resp.StatusCode != 100 {
		t.Fatalf("chunked: first answer %d", resp.StatusCode)
	}
	io.WriteString(conn, "800\r\n"+strings.Repeat("x", 0x800)+"\r\n0\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 413 {
		t.Fatalf("oversized chunked body after 100: %v %v", err, resp)
	}
	// Any other expectation cannot be met.
	refused(t, e, up, "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n", 417, "expectation")
}
