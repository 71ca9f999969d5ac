package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// echoUpstream is a raw upstream that answers every request 200 with the
// request line it read as the body, whatever the request looks like (so a
// strict upstream parser never masks what the gateway sent).
func echoUpstream(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					cl := 0
					for {
						h, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if h == "\r\n" {
							break
						}
						if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "Content-Length") {
							cl, _ = strconv.Atoi(strings.TrimSpace(v))
						}
					}
					if _, err := io.CopyN(io.Discard, br, int64(cl)); err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Upstream: echo\r\nContent-Length: "+strconv.Itoa(len(line))+"\r\n\r\n"+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// fuzzRoutes are the routes of the request fuzzer's proxy: prefix, host,
// and the upstream base path that identifies the route in the echo.
var fuzzRoutes = []struct{ tenant, name, prefix, host, base string }{
	{"acme", "billing-api", "/acme/billing-api", "", "/r0"},
	{"acme", "billing-v2", "/acme/billing-api/v2", "", "/r1"},
	{"globex", "weather-api", "/globex/weather-api", "", "/r2"},
	{"acme", "custom", "/api", "", "/r3"},
	{"acme", "root", "", "h.example", "/r4"},
	{"acme", "keyed", "/acme/keyed", "", "/r5"},
}

// fuzzEnv starts a proxy on an in-memory listener in front of the echo
// upstream.
func fuzzEnv(f *testing.F) (*testEnv, *fasthttputil.InmemoryListener) {
	up := echoUpstream(f)
	var specs strings.Builder
	specs.WriteString(tenant("acme", "") + tenant("globex", "") + consumers +
		gateway("limits: {maxRequestLineBytes: 2048, maxHeaders: 30, maxBodyBytes: 4096}"))
	for _, r := range fuzzRoutes {
		route := "route: {pathPrefix: '" + r.prefix + "/'"
		if r.host != "" {
			route += ", host: " + r.host
		}
		extra := route + "}"
		if r.name == "keyed" {
			extra += "\nauth: {type: apiKey}"
		}
		specs.WriteString(tool(r.tenant, r.name, "http://"+up+r.base, extra))
	}
	mem := fasthttputil.NewInmemoryListener()
	e := newEnv(f, specs.String(), func(o *Options) {
		o.MaxHeaderBytes = 4096
		o.WrapListener = func(tcp net.Listener) net.Listener {
			tcp.Close()
			return mem
		}
	})
	return e, mem
}

// FuzzServeRequest feeds raw bytes to the real handler and checks that it
// never panics, always answers with valid HTTP, answers with JSON when it
// refuses, and never routes by anything but the normalised path.
func FuzzServeRequest(f *testing.F) {
	for _, s := range []string{
		"GET /acme/billing-api/invoices/1?x=1 HTTP/1.1\r\nHost: gw\r\n\r\n",
		"GET /acme/billing-api/../../globex/weather-api/x HTTP/1.1\r\nHost: gw\r\n\r\n",
		"GET /acme/billing-api%2f..%2f..%2fglobex%2fweather-api HTTP/1.1\r\nHost: gw\r\n\r\n",
		"GET /acme/billing-api/v2x HTTP/1.1\r\nHost: gw\r\n\r\n",
		"GET /anything HTTP/1.1\r\nHost: H.Example:80\r\n\r\n",
		"GET /acme/keyed/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: stoa_sk_x\r\n\r\n",
		"POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET /api/%0d%0aX:%20y HTTP/1.1\r\nHost: gw\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\n",
		"GET /api/x HTTP/1.1\r\nHost: gw\r\nX_Stoa_Tenant: x\r\n\r\n",
		"GET /api/x HTTP/1.0\r\n\r\n",
		"GET http://other.example/api/x HTTP/1.1\r\nHost: gw\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n",
		"GET /acme/billing-api/" + strings.Repeat("a", 2100) + " HTTP/1.1\r\nHost: gw\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	for _, s := range requestShapes {
		f.Add([]byte(s))
	}
	_, mem := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, raw []byte) { serveAndCheck(t, mem, raw) })
}

// requestShapes are the request shapes of the strict request-side rules
// (docs/proxy.md, "HTTP hygiene"): Host and target userinfo, versions,
// line ends, folds, framing, chunks, trailers, Expect and forwarding
// headers. Seeds of FuzzServeRequest and FuzzWireFraming.
var requestShapes = []string{
	"GET /api/x HTTP/1.1\r\nHost: admin:pw@gw\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost: %61dmin@gw\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost: gw,evil\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost: gw:99999\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost:\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost: gw\r\nHost: gw\r\n\r\n",
	"GET http://u:p@gw/api/x HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET http://gw/api/x HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET https://other/api/x HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET ftp://gw/api/x HTTP/1.1\r\nHost: gw\r\n\r\n",
	"CONNECT gw:443 HTTP/1.1\r\nHost: gw:443\r\n\r\n",
	"GET /api/x HTTP/3.9\r\nHost: gw\r\n\r\n",
	"GET /api/x HTTP/2.0\r\nHost: gw\r\n\r\n",
	"GET /api/x HTTP/0.9\r\nHost: gw\r\n\r\n",
	"GET /api/x HTTP/1.1x\r\nHost: gw\r\n\r\n",
	"GET /api/x http/1.1\r\nHost: gw\r\n\r\n",
	"GET /api/x\r\n\r\n",
	"GET /api/x HTTP/1.1\nHost: gw\n\n",
	"GET /api/x HTTP/1.1\r\nHost: gw\r\n\n",
	"\nGET /api/x HTTP/1.1\r\nHost: gw\r\n\r\n",
	"\r\nGET /api/x HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n 2\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n\t2\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: identity\r\n\r\nhello",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x00b\r\nhello\r\n0\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x01\r\nhello\r\n0\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"q\"\r\nhello\r\n0\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Stoa-Tenant: evil\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhelloGET /api/y HTTP/1.1\nHost: gw\n\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n",
	"POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nExpect: 200-ok\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost: gw\r\nX-Forwarded-Port: 1\r\nX-Forwarded-Prefix: /admin\r\nTrue-Client-IP: 1.2.3.4\r\nHTTP2-Settings: x\r\nProxy: http://evil\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost: gw\r\nX_Api_Key: k\r\n\r\n",
	"GET /api/x HTTP/1.1\r\nHost: gw\r\nX-Forwarded_Port: 1\r\n\r\n",
}

// FuzzServePath is FuzzServeRequest with well-formed requests built from a
// fuzzed request target, Host and one extra header, so that most inputs
// are routed and the normalisation and forwarding checks run.
func FuzzServePath(f *testing.F) {
	for _, s := range []string{
		"/acme/billing-api/invoices/1?x=1", "/acme/billing-api/../../globex/weather-api/x",
		"/acme/billing-api%2F..%2F..%2Fglobex%2Fweather-api/x", "/acme/billing-api/v2/./a/../b", "//api///x//",
		"/api/%00%0d%0a%20%25%3F%23", "/acme/billing%2Dapi/v2%2fx", "/acme/keyed/x", "/%2e%2e/api/x", "/api?%2F..",
	} {
		f.Add(s, "gw", "X-Api-Key: stoa_sk_x")
	}
	f.Add("/x/y", "h.example:80", "X-Forwarded-For: 1.2.3.4")
	_, mem := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, target, host, header string) {
		for _, s := range []string{target, host, header} {
			if strings.ContainsAny(s, "\r\n") {
				return
			}
		}
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \t") {
			return
		}
		raw := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n"
		if header != "" {
			raw += header + "\r\n"
		}
		serveAndCheck(t, mem, []byte(raw+"\r\n"))
	})
}

// serveAndCheck sends raw on an in-memory connection and checks the
// answer (see FuzzServeRequest).
func serveAndCheck(t *testing.T, mem *fasthttputil.InmemoryListener, raw []byte) {
	// Our own parse of the same bytes: the expected normalised path,
	// and whether the server has a whole request to answer.
	var req fasthttp.Request
	perr := req.Read(bufio.NewReader(bytes.NewReader(raw)))
	incomplete := perr != nil && (errors.Is(perr, io.EOF) || errors.Is(perr, io.ErrUnexpectedEOF) || strings.Contains(perr.Error(), "EOF"))

	c, err := mem.DialWithLocalAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wait := 2 * time.Second
	if incomplete {
		wait = 20 * time.Millisecond
	}
	_ = c.SetDeadline(time.Now().Add(wait))
	go c.Write(raw)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err == nil && resp.StatusCode == http.StatusContinue {
		// Expect: 100-continue, and nothing refused it before the body:
		// the final answer follows.
		resp, err = http.ReadResponse(br, nil)
	}
	if err != nil {
		if perr == nil {
			t.Fatalf("no valid response to a parseable request: %v\n%q", err, raw)
		}
		return // incomplete or closed without answer: nothing to check
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp.Header.Get("X-Upstream") == "" {
		if perr == nil && string(req.Header.RequestURI()) == "*" && resp.StatusCode == http.StatusNoContent {
			return // OPTIONS *, answered by the gateway
		}
		// The gateway's own answer: a JSON error.
		if resp.StatusCode < 400 {
			t.Fatalf("gateway answered %d without the upstream:\n%q", resp.StatusCode, raw)
		}
		var m map[string]any
		if json.Unmarshal(body, &m) != nil || m["error"] == nil {
			t.Fatalf("gateway %d with a non-JSON body %q for\n%q", resp.StatusCode, body, raw)
		}
		return
	}
	if perr != nil {
		return
	}
	// Routed: the echo names the upstream base, i.e. the route.
	line := string(body)
	_, target, _ := strings.Cut(line, " ")
	target, _, _ = strings.Cut(target, " ")
	fwdPath, _, _ := strings.Cut(target, "?")
	path := string(req.URI().Path())
	host := strings.ToLower(string(req.Header.Host()))
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	want := -1
	for _, hostPass := range []bool{true, false} {
		best := -1
		for i, r := range fuzzRoutes {
			if (r.host != "") != hostPass || (hostPass && r.host != host) {
				continue
			}
			if refMatch(path, r.prefix) && (best < 0 || len(r.prefix) > len(fuzzRoutes[best].prefix)) {
				best = i
			}
		}
		if best >= 0 {
			want = best
			break
		}
	}
	if want < 0 {
		t.Fatalf("routed %q (host %q) although no route matches; upstream got %q", path, host, line)
	}
	r := fuzzRoutes[want]
	if !strings.HasPrefix(fwdPath, r.base) {
		t.Fatalf("path %q (host %q) routed to upstream %q, want route %s (%s)", path, host, fwdPath, r.name, r.base)
	}
	// The forwarded path is the base plus the rest of the normalised
	// path, escaped.
	dec, err := url.PathUnescape(fwdPath)
	if err != nil {
		t.Fatalf("upstream path %q is not validly escaped: %v", fwdPath, err)
	}
	if rest := path[len(r.prefix):]; dec != r.base+rest {
		t.Fatalf("forwarded %q (decoded %q), want %q", fwdPath, dec, r.base+rest)
	}
	for _, c := range []byte(target) {
		if c <= ' ' || c >= 0x7f {
			t.Fatalf("unescaped byte %q in the upstream request target %q", c, target)
		}
	}
}

// refHeaderClass is the documented header classification, written
// plainly: name lower-cased with '_' read as '-'.
func refHeaderClass(folded string) string {
	switch folded {
	case "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "upgrade":
		return "hop"
	case "http2-settings", "proxy":
		return "drop"
	case "expect":
		return "expect"
	case "x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host":
		return "gw"
	case "forwarded", "x-forwarded", "x-real-ip", "true-client-ip", "x-client-ip", "client-ip", "x-cluster-client-ip",
		"cf-connecting-ip", "cf-connecting-ipv6", "fastly-client-ip", "fly-client-ip", "x-originating-ip", "x-remote-ip",
		"x-remote-addr", "x-proxyuser-ip", "x-host", "x-original-url", "x-rewrite-url":
		return "addr"
	case "authorization", "x-api-key":
		return "cred"
	case "host", "content-length", "transfer-encoding", "content-type":
		return "framing"
	}
	switch {
	case strings.HasPrefix(folded, "x-forwarded-"):
		return "xf"
	case strings.HasPrefix(folded, "x-stoa-"):
		return "stoa"
	case len(folded) > len("-client-ip") && strings.HasSuffix(folded, "-client-ip"):
		return "addr"
	}
	return ""
}

// FuzzHeaders checks the single-pass header scan and the stripping of
// hop-by-hop, gateway, forwarding and client-address headers, for
// ordinary and trusted peers, against straightforward reference code.
func FuzzHeaders(f *testing.F) {
	for _, s := range []string{
		"Connection: keep-alive, X-A\r\nX-A: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n",
		"X-Stoa-Tenant: x\r\nx-stoa-consumer: y\r\nX-Stoa-A: 1\r\nX-Stoa-B: 1\r\nX-Stoa-C: 1\r\nX-Stoa-D: 1\r\nX-Stoa-E: 1\r\nX-Stoa-F: 1\r\nX-Stoa-G: 1\r\nX-Stoa-H: 1\r\nX-Stoa-I: 1\r\n",
		"X_Stoa_Tenant: x\r\n",
		"X_Forwarded_For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\nX-Forwarded-For: 9.9.9.9\r\n",
		"Authorization: Bearer a\r\nauthorization: Bearer b\r\nX-Api-Key: k\r\n",
		"X Y: 1\r\n",
		"Connection: Content-Length, Host, Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n",
		"Forwarded: for=1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\nProxy-Authorization: Basic x\r\n",
		"X-Request-Id: a\r\nX-Request-Id: b\r\n",
		"X-Forwarded-Port: 1\r\nX-Forwarded-Prefix: /a\r\nx-forwarded-anything: 1\r\nX-Forwarded: for=x\r\n",
		"True-Client-IP: 1\r\nCF-Connecting-IP: 1\r\nAkamai-Client-IP: 1\r\nX-Original-URL: /admin\r\nX-Host: evil\r\n",
		"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nProxy: http://evil\r\nExpect: 100-continue\r\n",
		"X_Api_Key: k\r\nX-Api_Key: k\r\n",
		"X-Forwarded_Port: 1\r\n",
		"Keep_Alive: 1\r\nContent_Length: 5\r\n",
		strings.Repeat("X-Forwarded-Port: 1\r\n", 20) + strings.Repeat("X-Real-Ip: 1\r\n", 9),
	} {
		f.Add(s, "X-Stoa-", true)
	}
	f.Add("", "x-forwarded-for", false)
	f.Fuzz(func(t *testing.T, block, name string, prefix bool) {
		// foldEq against a reference.
		want := strings.ToLower(name)
		fold := strings.ToLower(strings.ReplaceAll(block, "_", "-"))
		refEq := fold == want
		if prefix {
			refEq = strings.HasPrefix(fold, want)
		}
		if ascii(want) && ascii(block) && foldEq([]byte(block), []byte(want), prefix) != refEq {
			t.Fatalf("foldEq(%q, %q, %v) = %v", block, want, prefix, !refEq)
		}
		if ascii(name) {
			if got, ref := classifyHeader([]byte(name)), refHeaderClass(strings.ToLower(strings.ReplaceAll(name, "_", "-"))); (got == hcOther) != (ref == "") {
				t.Fatalf("classifyHeader(%q) = %d, reference %q", name, got, ref)
			}
		}

		raw := "GET / HTTP/1.1\r\nHost: gw\r\n" + block + "\r\n\r\n"
		// What the framing check refuses (obs-fold, a bare LF) never
		// reaches fasthttp's parser; scanHeaders reads the fields as
		// received (AllInOrder), which for such a block can differ from
		// what fasthttp folded them into.
		var w wireCheck
		if w.feed([]byte(raw)); w.fault != faultNone {
			return
		}
		var h fasthttp.RequestHeader
		if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			return
		}
		type field struct{ k, v string }
		var before []field
		for k, v := range h.All() {
			before = append(before, field{string(k), string(v)})
		}
		s := scanHeaders(&h)
		// Reference scan.
		bad, authz, apiKey := false, 0, 0
		gw := map[string]int{}
		for _, fl := range before {
			if strings.ContainsAny(fl.k, " \t") {
				bad = true
				continue
			}
			folded := strings.ToLower(strings.ReplaceAll(fl.k, "_", "-"))
			class := refHeaderClass(folded)
			if class != "" && strings.Contains(fl.k, "_") {
				bad = true
				continue
			}
			switch {
			case folded == "authorization":
				authz++
			case folded == "x-api-key":
				apiKey++
			case class == "gw":
				gw[folded]++
			}
		}
		if s.count != len(before) || s.bad != bad || s.credHeaders != max(authz, apiKey) {
			t.Fatalf("scan %+v; reference count=%d bad=%v cred=%d for %q", s, len(before), bad, max(authz, apiKey), before)
		}
		if s.bad {
			return // refused with 400 before anything is stripped
		}
		conn := h.Peek("Connection")
		var named []string
		for rest := append([]byte(nil), conn...); len(rest) > 0; {
			var tok []byte
			tok, rest = nextToken(rest)
			if len(tok) > 0 {
				named = append(named, strings.ToLower(string(tok)))
			}
		}
		for _, trusted := range []bool{false, true} {
			var hh fasthttp.RequestHeader
			h.CopyTo(&hh)
			stripRequestHopByHop(&hh, &s, trusted)
			var after []field
			for k, v := range hh.All() {
				after = append(after, field{string(k), string(v)})
			}
			// removed reports whether the reference removes a field.
			removed := func(lk string) bool {
				switch refHeaderClass(lk) {
				case "hop", "drop", "expect", "stoa", "addr":
					return true
				case "xf":
					return !trusted
				case "gw":
					return gw[lk] > 1
				}
				for _, n := range named {
					if lk == n && !isEndToEndCritical([]byte(n)) {
						return true
					}
				}
				return false
			}
			seen := map[string]int{}
			for _, fl := range after {
				lk := strings.ToLower(fl.k)
				seen[lk]++
				if removed(lk) {
					t.Fatalf("trusted=%v: %s left: %q", trusted, fl.k, after)
				}
			}
			for _, n := range []string{"x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"} {
				if seen[n] > 1 {
					t.Fatalf("trusted=%v: %s repeated after stripping: %q", trusted, n, after)
				}
			}
			// Nothing else is touched.
			for _, fl := range before {
				lk := strings.ToLower(fl.k)
				if lk == "connection" || removed(lk) {
					continue
				}
				if seen[lk] == 0 {
					t.Fatalf("trusted=%v: end-to-end header %s dropped: before %q after %q", trusted, fl.k, before, after)
				}
			}
		}
	})
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzRouteLookup compares the allocation-free route table lookup with a
// naive longest-prefix scan. The input is a list of routes ("host prefix"
// per line, host "-" for none), then a line with the request's host and
// path.
func FuzzRouteLookup(f *testing.F) {
	for _, s := range []string{
		"- /acme/billing-api\n- /acme/billing-api/v2\n- /globex/weather-api\n- /api\nexample.com /\n- /acme/billing-apix\nx /acme/billing-api/v2/y",
		"- /a\n- /a/b\n- /a/b/c\nh /a/b/\n- /\nh /a/b/c/d",
		"- /a\n- /a/\n- /a//b\nx /a//b/",
		"h.example /\n- /x\nh.example /x",
		"- /\n- \nq /",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		lines := strings.Split(in, "\n")
		if len(lines) < 2 || len(lines) > 64 {
			return
		}
		reqHost, path, ok := strings.Cut(lines[len(lines)-1], " ")
		if !ok {
			return
		}
		// Lookups see normalised paths, as the handler gives them.
		var u fasthttp.URI
		u.SetPath(path)
		path = string(u.Path())
		if reqHost == "-" {
			reqHost = ""
		}
		tb := &table{hosts: map[string]*routeSet{}}
		for _, l := range lines[:len(lines)-1] {
			host, prefix, ok := strings.Cut(l, " ")
			// Prefixes as validation admits them.
			if !ok || (prefix != "" && !strings.HasPrefix(prefix, "/")) || strings.Contains(prefix, "//") || strings.Contains(prefix, "..") {
				continue
			}
			if host == "-" {
				host = ""
			}
			r := &Route{Tool: l, Prefix: strings.TrimSuffix(prefix, "/"), Host: strings.ToLower(host)}
			rs := tb.hosts[r.Host]
			if rs == nil {
				rs = &routeSet{byPrefix: map[string]*Route{}}
				tb.hosts[r.Host] = rs
			}
			if rs.byPrefix[r.Prefix] != nil {
				continue
			}
			rs.byPrefix[r.Prefix] = r
			tb.routes = append(tb.routes, r)
		}
		got := tb.lookup([]byte(reqHost), []byte(path))
		// Reference: the route set for the host first, then host-less
		// routes; in each the longest matching prefix.
		var want *Route
		for _, hosts := range [][]string{{reqHost}, {""}} {
			for _, r := range tb.routes {
				if r.Host != hosts[0] || !refMatch(path, r.Prefix) {
					continue
				}
				if want == nil || len(r.Prefix) > len(want.Prefix) {
					want = r
				}
			}
			if want != nil {
				break
			}
		}
		if got != want {
			name := func(r *Route) string {
				if r == nil {
					return "<nil>"
				}
				return r.Host + " " + r.Prefix
			}
			t.Fatalf("lookup(%q, %q) = %s, reference %s", reqHost, path, name(got), name(want))
		}
		if got != nil && !refMatch(path, got.Prefix) {
			t.Fatalf("route %q is not a prefix of %q", got.Prefix, path)
		}
	})
}

// refMatch is route matching as documented: prefix equals the path, or is
// followed in it by '/' (a trailing slash on the path is ignored), or is
// the root.
func refMatch(path, prefix string) bool {
	return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
}
