package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// rawEnv is a proxy in front of a raw upstream at /acme/api.
func rawEnv(t *testing.T, upstreamResponse, extraSpecs string) (*testEnv, *rawUpstream) {
	up := newRawUpstream(t, upstreamResponse)
	return newEnv(t, tool("acme", "api", "http://"+up.Addr+"/base", "")+extraSpecs), up
}

// lastRaw is the last raw request the upstream read, head only.
func lastRaw(t *testing.T, up *rawUpstream) string {
	t.Helper()
	reqs := up.requests()
	if len(reqs) == 0 {
		t.Fatal("upstream received no request")
	}
	head, _, _ := strings.Cut(reqs[len(reqs)-1], "\r\n\r\n")
	return head
}

func TestHopByHopStrippedFromRequest(t *testing.T) {
	e, up := rawEnv(t, okResponse, "")
	head, _ := rawRoundTrip(t, e.addr, "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\n"+
		"Connection: close, X-Hop-A, x-hop-b, Content-Length\r\n"+
		"X-Hop-A: secret-a\r\nX-Hop-B: secret-b\r\n"+
		"Keep-Alive: timeout=300\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: websocket\r\n"+
		"Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nProxy-Authenticate: x\r\n"+
		"X-End-To-End: kept\r\nContent-Length: 5\r\n\r\nhello")
	if !strings.HasPrefix(head, "HTTP/1.1 200") {
		t.Fatalf("response %q", head)
	}
	reqs := up.requests()
	got := reqs[len(reqs)-1]
	names := headerNames(got)
	for _, h := range []string{"connection", "x-hop-a", "x-hop-b", "keep-alive", "te", "trailer", "upgrade",
		"proxy-authorization", "proxy-connection", "proxy-authenticate"} {
		if slices.Contains(names, h) {
			t.Errorf("upstream received hop-by-hop header %s:\n%s", h, got)
		}
	}
	if !slices.Contains(names, "x-end-to-end") {
		t.Errorf("end-to-end header dropped:\n%s", got)
	}
	// Connection cannot strip the framing: the body still arrives whole.
	if !strings.HasSuffix(got, "\r\n\r\nhello") || !strings.Contains(got, "Content-Length: 5") {
		t.Errorf("body or its framing lost upstream:\n%q", got)
	}
}

func TestHopByHopStrippedFromResponse(t *testing.T) {
	e, _ := rawEnv(t, "HTTP/1.1 200 OK\r\n"+
		"Connection: X-Up-Hop, x-up-other\r\nX-Up-Hop: internal\r\nX-Up-Other: internal\r\n"+
		"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTrailer: X-T\r\n"+
		"X-Kept: yes\r\nContent-Length: 2\r\n\r\nok", "")
	head, body := rawRoundTrip(t, e.addr, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	names := headerNames(head)
	for _, h := range []string{"x-up-hop", "x-up-other", "keep-alive", "proxy-authenticate", "proxy-connection", "upgrade", "trailer"} {
		if slices.Contains(names, h) {
			t.Errorf("client received hop-by-hop header %s:\n%s", h, head)
		}
	}
	if !slices.Contains(names, "x-kept") || body != "ok" {
		t.Errorf("response mangled:\n%s\n\n%s", head, body)
	}
	// The only Connection header is the proxy's own answer to the client.
	for _, l := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(strings.ToLower(l), "connection:") && !strings.EqualFold(l, "Connection: close") {
			t.Errorf("upstream's Connection header leaked: %q", l)
		}
	}
}

// TestUpstreamCloseNotPassedOn: an upstream closing its connection does not
// close the client's keep-alive connection, and a client's close does not
// close the upstream's.
func TestUpstreamCloseNotPassedOn(t *testing.T) {
	e, _ := rawEnv(t, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "")
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on one connection: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("request %d: status %d close=%v", i, resp.StatusCode, resp.Close)
		}
	}
}

func TestGatewayHeaderLookalikesRefused(t *testing.T) {
	e, up := rawEnv(t, okResponse, "")
	cases := []struct {
		name, header string
		status       int
	}{
		{"underscore tenant", "X_Stoa_Tenant: globex", 400},
		{"mixed underscore", "X-Stoa_Consumer: admin", 400},
		{"underscore any stoa header", "x_stoa_anything: 1", 400},
		{"underscore forwarded-for", "X_Forwarded_For: 1.2.3.4", 400},
		{"underscore forwarded-host", "X_Forwarded_Host: evil", 400},
		{"underscore forwarded-proto", "X_Forwarded_Proto: https", 400},
		{"underscore request id", "X_Request_Id: 1", 400},
		{"underscore real ip", "X_Real_IP: 1.2.3.4", 400},
		{"space in name", "X Stoa Tenant: globex", 400},
		{"tab in name", "X-Stoa\tTenant: globex", 400},
		{"space before colon", "X-Stoa-Tenant : globex", 400},
		{"underscore in an ordinary header is fine", "X_Custom_Thing: ok", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(up.requests())
			r := rawResponse(t, e.addr, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n"+c.header+"\r\nConnection: close\r\n\r\n")
			if c.status == 200 {
				if r.Status != 200 {
					t.Fatalf("status %d %q", r.Status, r.Body)
				}
				return
			}
			expectError(t, r, c.status, errBadRequest)
			if len(up.requests()) != n {
				t.Fatal("refused request reached the upstream")
			}
		})
	}
}

// TestForwardedHeaders: X-Forwarded-* are overwritten for ordinary peers
// and appended to for trusted proxies; repeated client copies never
// survive.
func TestForwardedHeaders(t *testing.T) {
	e, up := rawEnv(t, okResponse, "")
	spoof := "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n"
	send := func(extra string) map[string][]string {
		t.Helper()
		r := rawResponse(t, e.addr, "GET /acme/api/x HTTP/1.1\r\nHost: gw.example:8080\r\n"+extra+"Connection: close\r\n\r\n")
		if r.Status != 200 {
			t.Fatalf("status %d %q", r.Status, r.Body)
		}
		got := map[string][]string{}
		for _, l := range strings.Split(lastRaw(t, up), "\r\n")[1:] {
			k, v, _ := strings.Cut(l, ":")
			k = http.CanonicalHeaderKey(k)
			got[k] = append(got[k], strings.TrimSpace(v))
		}
		return got
	}
	check := func(name string, got map[string][]string, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if g := got[k]; len(g) != 1 || g[0] != v {
				t.Errorf("%s: upstream %s = %q, want [%q]", name, k, g, v)
			}
		}
	}
	untrusted := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "gw.example:8080"}
	check("untrusted, no headers", send(""), untrusted)
	check("untrusted, spoofed", send(spoof), untrusted)
	check("untrusted, spoofed twice", send(spoof+spoof), untrusted)
	check("untrusted, client request id", send("X-Request-Id: a\r\nX-Request-Id: b\r\n"), untrusted)
	if got := send("X-Request-Id: a\r\nX-Request-Id: b\r\n")["X-Request-Id"]; len(got) != 1 || got[0] == "a" || got[0] == "b" {
		t.Errorf("upstream X-Request-Id %q, want only the gateway's", got)
	}

	e.apply(tool("acme", "api", "http://"+up.Addr+"/base", "") + gateway("trustedProxies: [127.0.0.0/8, '::1']"))
	check("trusted, no headers", send(""), untrusted)
	check("trusted, appended", send(spoof), map[string]string{
		"X-Forwarded-For": "6.6.6.6, 127.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"})
}

// TestClientAddressForLimits: per-source limits key on the peer address
// unless the peer is a trusted proxy, so X-Forwarded-For cannot be used to
// dodge them.
func TestClientAddressForLimits(t *testing.T) {
	up := newUpstream(t, "u")
	limited := tenant("acme", "defaults: {perSource: {rate: 1/h, burst: 1}}") + tool("acme", "api", up.URL, "")
	e := newEnv(t, limited)
	status := func(xff string) int {
		return e.get("/acme/api/x", "X-Forwarded-For", xff).Status
	}
	if s := status("1.1.1.1"); s != 200 {
		t.Fatalf("first: %d", s)
	}
	if s := status("2.2.2.2"); s != 429 {
		t.Fatalf("untrusted peer dodged its per-source limit with X-Forwarded-For: %d", s)
	}
	e.apply(limited + gateway("trustedProxies: [127.0.0.1/32]"))
	for _, c := range []struct {
		xff  string
		want int
	}{{"3.3.3.3", 200}, {"3.3.3.3", 429}, {"4.4.4.4", 200}, {"4.4.4.4, 127.0.0.1", 429}, {"9.9.9.9, 5.5.5.5", 200}} {
		if s := status(c.xff); s != c.want {
			t.Fatalf("trusted proxy, client %q: %d, want %d", c.xff, s, c.want)
		}
	}
}

// TestContentLengthWithTransferEncoding: a request with both framings is
// refused (request smuggling); fasthttp alone would let chunked win.
func TestContentLengthWithTransferEncoding(t *testing.T) {
	e, up := rawEnv(t, okResponse, "")
	for _, raw := range []string{
		"POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n",
	} {
		head, body := rawRoundTrip(t, e.addr, raw)
		if !strings.HasPrefix(head, "HTTP/1.1 400 ") || !strings.Contains(body, `"bad_request"`) {
			t.Fatalf("CL+TE answered:\n%s\n\n%s", head, body)
		}
		if !strings.Contains(strings.ToLower(head), "connection: close") {
			t.Fatalf("connection kept open after an ambiguous request:\n%s", head)
		}
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("ambiguous request forwarded %d times", n)
	}
	// Chunked alone is fine, and re-framed upstream.
	head, _ := rawRoundTrip(t, e.addr, "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200") {
		t.Fatalf("chunked request: %s", head)
	}
	if got := up.requests()[0]; !strings.Contains(got, "Content-Length: 5\r\n") || strings.Contains(strings.ToLower(got), "transfer-encoding") {
		t.Fatalf("upstream framing:\n%q", got)
	}
}

func TestRequestLineTooLong(t *testing.T) {
	e, up := rawEnv(t, okResponse, gateway("limits: {maxRequestLineBytes: 1024}"))
	r := rawResponse(t, e.addr, "GET /acme/api/"+strings.Repeat("a", 1100)+" HTTP/1.1\r\nHost: gw\r\n\r\n")
	expectError(t, r, http.StatusRequestURITooLong, errURITooLong)
	r = rawResponse(t, e.addr, "GET /acme/api/x?q="+strings.Repeat("a", 1100)+" HTTP/1.1\r\nHost: gw\r\n\r\n")
	expectError(t, r, http.StatusRequestURITooLong, errURITooLong)
	if r := rawResponse(t, e.addr, "GET /acme/api/"+strings.Repeat("a", 900)+" HTTP/1.1\r\nHost: gw\r\n\r\n"); r.Status != 200 {
		t.Fatalf("line under the limit: %d", r.Status)
	}
	// A line longer than the whole header buffer cannot be told from an
	// oversized header block: 431 (documented).
	r = rawResponse(t, e.addr, "GET /acme/api/"+strings.Repeat("a", 20<<10)+" HTTP/1.1\r\nHost: gw\r\n\r\n")
	expectError(t, r, http.StatusRequestHeaderFieldsTooLarge, errHeaderTooLarge)
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want 1", n)
	}
}

func TestTooManyHeaders(t *testing.T) {
	e, up := rawEnv(t, okResponse, gateway("limits: {maxHeaders: 10}"))
	var b strings.Builder
	for i := 0; i < 10; i++ {
		b.WriteString("X-H" + strconv.Itoa(i) + ": v\r\n")
	}
	// Host + 10 = 11 fields.
	r := rawResponse(t, e.addr, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n"+b.String()+"\r\n")
	expectError(t, r, http.StatusRequestHeaderFieldsTooLarge, errHeaderTooLarge)
	r = rawResponse(t, e.addr, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n"+strings.SplitN(b.String(), "\r\n", 10)[9]+"\r\n")
	if r.Status != 200 {
		t.Fatalf("few headers: %d", r.Status)
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want 1", n)
	}
}

func TestHeaderBlockTooLarge(t *testing.T) {
	up := newRawUpstream(t, okResponse)
	e := newEnv(t, tool("acme", "api", "http://"+up.Addr, ""), func(o *Options) { o.MaxHeaderBytes = 4096 })
	for _, h := range []string{
		"X-Big: " + strings.Repeat("b", 5000) + "\r\n",
		strings.Repeat("X-Many: "+strings.Repeat("m", 90)+"\r\n", 50),
	} {
		r := rawResponse(t, e.addr, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n"+h+"\r\n")
		expectError(t, r, http.StatusRequestHeaderFieldsTooLarge, errHeaderTooLarge)
	}
	if r := rawResponse(t, e.addr, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-Small: "+strings.Repeat("s", 3000)+"\r\n\r\n"); r.Status != 200 {
		t.Fatalf("header under the limit: %d", r.Status)
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want 1", n)
	}
}

// TestBodyTooLargeBeforeRead sends only the headers of a request whose
// Content-Length is over the limit: the 413 must arrive without the body
// ever being sent.
func TestBodyTooLargeBeforeRead(t *testing.T) {
	e, up := rawEnv(t, okResponse, gateway("limits: {maxBodyBytes: 1024}"))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 10000000000\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer before the body was sent: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	expectError(t, response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}, http.StatusRequestEntityTooLarge, errBodyTooLarge)
	if !resp.Close {
		t.Error("connection left open after 413 (the unread body would be parsed as the next request)")
	}
	// Chunked bodies are bounded the same way while they are read.
	head, body := rawRoundTrip(t, e.addr, "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n"+strings.Repeat("x", 0x800)+"\r\n0\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 413") || !strings.Contains(body, errBodyTooLarge) {
		t.Fatalf("oversized chunked body:\n%s\n%s", head, body)
	}
	if r := rawResponse(t, e.addr, "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1024\r\n\r\n"+strings.Repeat("y", 1024)); r.Status != 200 {
		t.Fatalf("body at the limit: %d", r.Status)
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want 1", n)
	}
}

// TestSlowloris: a client trickling its headers is cut off by the read
// timeout, however steadily it trickles.
func TestSlowloris(t *testing.T) {
	t.Parallel()
	e, _ := rawEnv(t, okResponse, gateway("limits: {readTimeout: 1s}"))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	msg := "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-Slow: " + strings.Repeat("s", 1000)
	closed := make(chan time.Duration, 1)
	var answer []byte
	go func() {
		answer, _ = io.ReadAll(c) // returns when the server closes
		closed <- time.Since(start)
	}()
	for i := 0; i < len(msg); i++ {
		if _, err := c.Write([]byte{msg[i]}); err != nil {
			break // closed by the server
		}
		select {
		case d := <-closed:
			if d > 3*time.Second {
				t.Fatalf("slow client cut off only after %s (read timeout 1s)", d)
			}
			if !strings.HasPrefix(string(answer), "HTTP/1.1 408") || !strings.Contains(string(answer), `"request_timeout"`) {
				t.Fatalf("slow client answered %q", answer)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("slow client still connected after %s", time.Since(start))
}

// TestSlowBody: a client that sends its headers and then trickles (or
// withholds) the body gets 408 when the read timeout passes.
func TestSlowBody(t *testing.T) {
	t.Parallel()
	e, up := rawEnv(t, okResponse, gateway("limits: {readTimeout: 1s}"))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(5 * time.Second))
	io.WriteString(c, "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\nab")
	b, _ := io.ReadAll(c)
	if d := time.Since(start); d > 3*time.Second || !strings.HasPrefix(string(b), "HTTP/1.1 408") {
		t.Fatalf("after %s: %q", d, b)
	}
	if len(up.requests()) != 0 {
		t.Fatal("partial request forwarded")
	}
}

// TestConnectionCapPerSource: connection N+1 from one address is refused
// at accept, and refused connections cost no goroutine.
func TestConnectionCapPerSource(t *testing.T) {
	e, _ := rawEnv(t, okResponse, gateway("limits: {maxConnsPerSource: 4}"))
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The listener accepts in order: wait until all 4 are counted.
	waitFor(t, 5*time.Second, "4 connections tracked", func() bool { return e.p.conns.total.Load() == 4 })
	base := runtime.NumGoroutine()
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n\r\n")
		if n, err := c.Read(make([]byte, 64)); err == nil {
			t.Fatalf("connection over the cap answered: %d bytes", n)
		}
		c.Close()
	}
	if g := runtime.NumGoroutine(); g > base+20 {
		t.Fatalf("goroutines grew from %d to %d with refused connections", base, g)
	}
	// A held connection still works, and closing one frees a slot.
	_ = held[0].SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(held[0], "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(held[0]), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("held connection: %v", err)
	}
	held[1].Close()
	waitFor(t, 5*time.Second, "slot freed", func() bool { return e.p.conns.total.Load() == 3 })
	if r := rawResponse(t, e.addr, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"); r.Status != 200 {
		t.Fatalf("after a slot was freed: %d", r.Status)
	}
	if st := e.p.Status(); st.Data["connections"] == nil {
		t.Fatalf("status lacks connections: %v", st.Data)
	}
}

// TestIdleConnectionsBounded: many idle keep-alive connections from
// different sources are closed by the idle timeout, not kept forever.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	e, _ := rawEnv(t, okResponse, gateway("limits: {idleTimeout: 500ms, readTimeout: 500ms}"))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	start := time.Now()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("idle connection got data")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("idle connection closed after %s (idle timeout 500ms)", d)
	}
}
