package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
)

// recordingUpstream is a raw upstream that records every request it reads
// (head and Content-Length body, as bytes) and answers each with the bytes
// of answer(), whatever they are.
type recordingUpstream struct {
	ln     net.Listener
	mu     sync.Mutex
	got    [][]byte
	answer []byte
}

func newRecordingUpstream(t testing.TB) *recordingUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &recordingUpstream{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(c)
		}
	}()
	return u
}

func (u *recordingUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var req bytes.Buffer
		cl := 0
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			req.Write(line)
			if k, v, ok := strings.Cut(string(line), ":"); ok && strings.EqualFold(k, "Content-Length") {
				cl, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if string(line) == "\r\n" {
				break
			}
		}
		if _, err := io.CopyN(&req, br, int64(cl)); err != nil {
			return
		}
		u.mu.Lock()
		u.got = append(u.got, req.Bytes())
		answer := u.answer
		u.mu.Unlock()
		if _, err := c.Write(answer); err != nil {
			return
		}
	}
}

// take returns the requests recorded since the last call.
func (u *recordingUpstream) take() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	got := u.got
	u.got = nil
	return got
}

func (u *recordingUpstream) setAnswer(b []byte) {
	u.mu.Lock()
	u.answer = b
	u.mu.Unlock()
}

// equivEnv is a proxy with its own recording upstream.
type equivEnv struct {
	e  *testEnv
	up *recordingUpstream
}

// equivSpecs are the routes of the equivalence test: open, keyed with a
// rate limit, keyed forwarding credentials, an upstream credential, a
// host route.
func equivSpecs(up string) string {
	// Unanswered exchanges end quickly.
	const to = "\ntimeouts: {header: 300ms, total: 1s}"
	return tenant("acme", "") + consumers +
		gateway("limits: {maxRequestLineBytes: 2048, maxHeaders: 30, maxBodyBytes: 4096, readHeaderTimeout: 2s, readTimeout: 2s}") +
		tool("acme", "open", "http://"+up+"/r0", "route: {pathPrefix: /open}"+to) +
		tool("acme", "keyed", "http://"+up+"/r1", "route: {pathPrefix: /keyed}\nauth: {type: apiKey}\nrateLimit: 100000/s"+to) +
		tool("acme", "fwd", "http://"+up, "route: {pathPrefix: /fwd}\nauth: {type: apiKey, forwardCredentials: true}"+to) +
		tool("acme", "ua", "http://"+up+"/r3", "route: {pathPrefix: /ua}\nupstreamAuth: {header: X-Upstream-Key, secretRef: {env: STOA_TEST_UPSTREAM_KEY}}"+to) +
		tool("acme", "hosted", "http://"+up+"/r4", "route: {pathPrefix: /h, host: api.example}"+to)
}

// newEquivEnvs starts two proxies with the same routes and keys, one on
// the fast path (with fasthttp for the rest), one on fasthttp's path only.
func newEquivEnvs(t testing.TB) (fast, slow equivEnv, key string) {
	t.Setenv("STOA_TEST_UPSTREAM_KEY", "up-secret")
	key, rec, err := auth.GenerateKey(auth.KeyOptions{Tenant: "acme", Consumer: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(slowOnly bool) equivEnv {
		up := newRecordingUpstream(t)
		e := newEnv(t, equivSpecs(up.ln.Addr().String()))
		e.p.slowOnly.Store(slowOnly)
		ix, err := auth.NewKeyIndex([]auth.KeyRecord{rec})
		if err != nil {
			t.Fatal(err)
		}
		e.auth.SetKeys(ix)
		return equivEnv{e, up}
	}
	return mk(false), mk(true), key
}

// exchangeRaw sends raw on a new connection and returns the first answer
// (normalised) and what the upstream received meanwhile.
func (ee equivEnv) exchangeRaw(t testing.TB, raw []byte, head bool) (answer string, upstream []string) {
	t.Helper()
	c, err := net.Dial("tcp", ee.e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	// An incomplete request ends here: the proxies see the end of the
	// stream rather than wait for their read timeout.
	_ = c.(*net.TCPConn).CloseWrite()
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	for err == nil && resp.StatusCode < 200 {
		resp, err = http.ReadResponse(br, &http.Request{Method: method})
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer: %v", err)
		}
		answer = "no answer (" + err.Error() + ")"
	} else {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer = normAnswer(resp, body, err)
	}
	for _, r := range ee.up.take() {
		upstream = append(upstream, normRequest(r))
	}
	return answer, upstream
}

var (
	reqIDValue = regexp.MustCompile(`[0-9a-f]{20}`)
)

// normAnswer renders a client response for comparison: status, the
// fields (names lower-cased, values trimmed, sorted by name with each
// name's values in order) without the per-request ones (Date, the request
// id's value, RateLimit-Remaining/-Reset), and the body with request ids
// blanked.
func normAnswer(resp *http.Response, body []byte, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", resp.Status)
	names := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range resp.Header[k] {
			switch strings.ToLower(k) {
			case "date", "ratelimit-remaining", "ratelimit-reset":
				v = "*"
			case "x-request-id":
				v = reqIDValue.ReplaceAllString(v, "ID")
			}
			fmt.Fprintf(&b, "%s: %s\n", strings.ToLower(k), strings.TrimSpace(v))
		}
	}
	fmt.Fprintf(&b, "\n%s", reqIDValue.ReplaceAllString(string(body), "ID"))
	if err != nil {
		fmt.Fprintf(&b, "\n(body error: %v)", err)
	}
	return b.String()
}

// normRequest renders a request an upstream received for comparison: the
// request line, the fields as normAnswer renders them, the body.
func normRequest(raw []byte) string {
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	fields := lines[1:]
	for i, f := range fields {
		k, v, _ := strings.Cut(f, ":")
		k = strings.ToLower(k)
		v = strings.TrimSpace(v)
		if k == "x-request-id" {
			v = reqIDValue.ReplaceAllString(v, "ID")
		}
		fields[i] = k + ": " + v
	}
	slices.SortStableFunc(fields, func(a, b string) int {
		ka, _, _ := strings.Cut(a, ":")
		kb, _, _ := strings.Cut(b, ":")
		return strings.Compare(ka, kb)
	})
	return lines[0] + "\n" + strings.Join(fields, "\n") + "\n\n" + string(body)
}

// equivAnswers are upstream answers for the equivalence test: plain ones
// the fast path passes on, and the ones it leaves to fasthttp.
var equivAnswers = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
	"HTTP/1.1 200 OK\r\nServer: up\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nX-Request-Id: theirs\r\nX-Lower: v\r\nx-dup: 1\r\nX-Dup: 2\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: s\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nRateLimit-Limit: 1\r\nRateLimit-Remaining: 0\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 201 Created\r\nLocation: /r0/items/1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 302 Found\r\nLocation: http://UP/r1/x\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 02\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
	"HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom",
	"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Type: a\r\nContent-Type: b\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nSet-Cookie: a=b; Path=/; HttpOnly\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-Tab:\tv\t\r\nX-Obs: caf\xc3\xa9\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
	"HTTP/1.1 200 OK\r\n\r\nuntil close",
}

// equivRequests are client requests for the equivalence test; $KEY is
// replaced by a valid API key.
var equivRequests = []string{
	"GET /open/x?q=1 HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET /open HTTP/1.1\r\nHost: gw:8080\r\nUser-Agent: t\r\nAccept: */*\r\nx-lower: a\r\nX-Dup: 1\r\nX-Dup: 2\r\nCookie: s=1\r\n\r\n",
	"GET /open/ HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
	"GET /open/a/b HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
	"HEAD /open/x HTTP/1.1\r\nHost: gw\r\n\r\n",
	"POST /open/x HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
	"POST /open/x HTTP/1.1\r\nHost: gw\r\n\r\n",
	"DELETE /open/x HTTP/1.1\r\nHost: gw\r\n\r\n",
	"OPTIONS /open HTTP/1.1\r\nHost: gw\r\n\r\n",
	"PUT /open/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Port: 1\r\nX-Real-IP: 1.2.3.4\r\nAkamai-Client-IP: 1\r\nForwarded: for=x\r\nX-Stoa-Tenant: evil\r\nX-Request-Id: mine\r\nProxy: x\r\nHTTP2-Settings: x\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: stoa_sk_notreally\r\nAuthorization: Basic dXNlcjpwdw==\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer stoa_sk_abc\r\n\r\n",
	"GET /keyed/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $KEY\r\n\r\n",
	"GET /keyed/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer $KEY\r\n\r\n",
	"GET /keyed/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: stoa_sk_wrong\r\n\r\n",
	"GET /keyed/x HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET /fwd/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $KEY\r\n\r\n",
	"GET /ua/x HTTP/1.1\r\nHost: gw\r\nX-Upstream-Key: mine\r\nx-upstream-key: mine2\r\n\r\n",
	"GET /h/x HTTP/1.1\r\nHost: API.example:443\r\n\r\n",
	"GET /nowhere HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET /open//x/./y/../z HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET /open/%41 HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET /open/x?a=%20&b=c#frag HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET /open/x HTTP/1.0\r\nHost: gw\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nTE: trailers\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nX_Custom: 1\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nX-Tab:\ta\tb\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc",
	"POST /open/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nHost: gw\r\n\r\n",
	"GET /open/x HTTP/1.1\r\n\r\n",
	"GET /mcp HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nCookie: a=\"q\"\r\nCookie: b=2;c; =d;e=\x01\r\nCookie: \r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nUser-Agent: a\r\nUser-Agent: b\r\nContent-Type: x\r\nContent-Type: y\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nUser-Agent:\r\nContent-Type: \r\n\r\n",
}

// FuzzFastPathEquivalence sends the same request, answered upstream by the
// same bytes, through a proxy on the fast path and one on fasthttp's path
// only, and requires that the upstream received the same request (request
// line, fields, body) and the client the same answer (status, fields,
// body) from both — up to the order and case of field names, the request
// id, Date and the timing-dependent RateLimit values.
func FuzzFastPathEquivalence(f *testing.F) {
	for i, r := range equivRequests {
		f.Add([]byte(r), []byte(equivAnswers[i%len(equivAnswers)]))
	}
	for i, a := range equivAnswers {
		f.Add([]byte(equivRequests[i%3]), []byte(a))
		f.Add([]byte(equivRequests[4]), []byte(a)) // HEAD
		f.Add([]byte(equivRequests[13]), []byte(a))
	}
	fast, slow, key := newEquivEnvs(f)
	f.Fuzz(func(t *testing.T, req, answer []byte) {
		req = bytes.ReplaceAll(req, []byte("$KEY"), []byte(key))
		head := bytes.HasPrefix(req, []byte("HEAD "))
		var got [2]string
		var ups [2][]string
		for i, ee := range []equivEnv{fast, slow} {
			ee.up.setAnswer(bytes.ReplaceAll(answer, []byte("UP"), []byte(ee.up.ln.Addr().String())))
			got[i], ups[i] = ee.exchangeRaw(t, req, head)
			got[i] = strings.ReplaceAll(got[i], ee.up.ln.Addr().String(), "UP")
			for j := range ups[i] {
				ups[i][j] = strings.ReplaceAll(ups[i][j], ee.up.ln.Addr().String(), "UP")
			}
		}
		if !slices.Equal(ups[0], ups[1]) {
			t.Errorf("upstream received (fast path):\n%q\n(fasthttp path):\n%q", ups[0], ups[1])
		}
		if got[0] != got[1] {
			t.Errorf("client got (fast path):\n%s\n(fasthttp path):\n%s", got[0], got[1])
		}
	})
}

// FuzzFastHead checks parseFastHead against fasthttp's request parser and
// the framing check: whatever the fast path takes, both accept too, and
// read the same method, normalised path, query, Host, credentials and
// fields from it. The fast path may only ever take less.
func FuzzFastHead(f *testing.F) {
	for _, r := range equivRequests {
		f.Add([]byte(r))
	}
	for _, r := range requestShapes {
		f.Add([]byte(r))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var h fastHead
		n := parseFastHead(raw, &h)
		if n <= 0 {
			return
		}
		head := raw[:n]
		var w wireCheck
		if w.feed(head) != len(head) || w.fault != faultNone || w.heads != 1 {
			t.Fatalf("the framing check refuses a head the fast path takes: %q (%v)", head, w.fault)
		}
		var req fasthttp.Request
		if err := req.Header.Read(bufio.NewReader(bytes.NewReader(head))); err != nil {
			t.Fatalf("fasthttp refuses a head the fast path takes: %q: %v", head, errorClass(err))
		}
		fh := &req.Header
		if status, _, msg := checkRequest(fh); status != 0 {
			t.Fatalf("checkRequest refuses %q: %d %s", head, status, msg)
		}
		// Nor would serveRequest's header checks refuse it (a mounted
		// path's request skips them: serveMount).
		if sc := scanHeaders(fh); sc.bad || sc.expect || sc.credHeaders > 1 || sc.count > h.nf {
			t.Fatalf("scanHeaders refuses %q: %+v (fast path: %d fields)", head, sc, h.nf)
		}
		if uri := fh.RequestURI(); len(uri)+len(fh.Method())+10 > h.line-len(" HTTP/1.1")+10 {
			t.Fatalf("request line of %q longer for fasthttp (%d) than for the fast path (%d)", head, len(uri)+len(fh.Method()), h.line)
		}
		if got := string(fh.Method()); got != string(h.method) {
			t.Errorf("method %q, fasthttp %q", h.method, got)
		}
		if got := string(req.URI().Path()); got != string(h.path) {
			t.Errorf("path %q, fasthttp normalises it to %q", h.path, got)
		}
		if got := string(req.URI().QueryString()); got != string(h.query) {
			t.Errorf("query %q, fasthttp %q", h.query, got)
		}
		if got := string(fh.Host()); got != string(h.host) {
			t.Errorf("host %q, fasthttp %q", h.host, got)
		}
		if got := string(fh.Peek("Authorization")); got != string(h.authz) {
			t.Errorf("authorization %q, fasthttp %q", h.authz, got)
		}
		if got := string(fh.Peek("X-Api-Key")); got != string(h.apiKey) {
			t.Errorf("api key %q, fasthttp %q", h.apiKey, got)
		}
		if got := int64(fh.ContentLength()); got != max(h.cl, 0) && !(h.cl < 0 && got == -2) {
			t.Errorf("content length %d, fasthttp %d", h.cl, got)
		}
		if fh.ConnectionClose() != h.close {
			t.Errorf("close %v, fasthttp %v", h.close, fh.ConnectionClose())
		}
		// Every field the fast path forwards is one fasthttp has, with the
		// same value, in the same order among fields of its name.
		want := map[string][]string{}
		for k, v := range fh.AllInOrder() {
			want[strings.ToLower(string(k))] = append(want[strings.ToLower(string(k))], string(v))
		}
		got := map[string][]string{}
		for i := 0; i < h.nf; i++ {
			fl := &h.fields[i]
			name := strings.ToLower(string(h.block[fl.start:fl.nameEnd]))
			got[name] = append(got[name], string(trimOWSBytes(h.block[fl.nameEnd+1:fl.end])))
		}
		delete(want, "connection") // fasthttp keeps "close" as a flag
		delete(got, "connection")
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("fields of %q:\nfast path %v\nfasthttp  %v", head, got, want)
		}

		// A request repeating the header block (another request line) is
		// read from what the first parse kept, and reads the same.
		first := fmt.Sprintf("%q %q %q %d %v %v %v", h.host, h.authz, h.apiKey, h.cl, h.close, h.contentType, h.fields[:h.nf])
		again := append([]byte("DELETE /other?x HTTP/1.1\r\n"), raw[h.line+2:]...)
		gen := h.gen
		if n2 := parseFastHead(again, &h); n2 <= 0 || !h.repeat || h.gen != gen {
			t.Fatalf("repeated block of %q not recognised: %d %v", head, n2, h.repeat)
		}
		if got := fmt.Sprintf("%q %q %q %d %v %v %v", h.host, h.authz, h.apiKey, h.cl, h.close, h.contentType, h.fields[:h.nf]); got != first {
			t.Errorf("repeated block reads\n%s\nfirst read\n%s", got, first)
		}
		if string(h.method) != "DELETE" || string(h.path) != "/other" || string(h.query) != "x" {
			t.Errorf("request line of the repeat: %q %q %q", h.method, h.path, h.query)
		}
	})
}

// TestFastPathTaken pins which requests the fast path serves: a plain one
// reaches the upstream with the client's own field lines (case kept),
// others go through fasthttp (which canonicalises names).
func TestFastPathTaken(t *testing.T) {
	fast, _, _ := newEquivEnvs(t)
	fast.up.setAnswer([]byte(equivAnswers[0]))
	for _, tc := range []struct {
		req  string
		fast bool
	}{
		{"GET /open/x HTTP/1.1\r\nHost: gw\r\nx-lower: a\r\n\r\n", true},
		{"POST /open/x HTTP/1.1\r\nHost: gw\r\nx-lower: a\r\nContent-Length: 2\r\n\r\nab", true},
		{"GET /open/x HTTP/1.1\r\nHost: gw\r\nx-lower: a\r\nExpect: 100-continue\r\n\r\n", false},
		{"GET /open/x HTTP/1.0\r\nHost: gw\r\nx-lower: a\r\n\r\n", false},
		{"GET /open//x HTTP/1.1\r\nHost: gw\r\nx-lower: a\r\n\r\n", false},
		{"GET /open/x HTTP/1.1\r\nHost: gw\r\nx-lower: a\r\nX_Under: 1\r\n\r\n", false},
		{"GET /open/x HTTP/1.1\r\nHost: gw\r\nx-lower: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
	} {
		c, err := net.Dial("tcp", fast.e.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, tc.req)
		// The final answer: a 100 Continue comes before the upstream has
		// the request.
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		for err == nil && resp.StatusCode < 200 {
			resp, err = http.ReadResponse(br, nil)
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.req, err)
		}
		resp.Body.Close()
		c.Close()
		got := fast.up.take()
		if len(got) != 1 {
			t.Fatalf("%q: upstream got %d requests", tc.req, len(got))
		}
		if fast := bytes.Contains(got[0], []byte("\r\nx-lower: a\r\n")); fast != tc.fast {
			t.Errorf("%q: fast path %v, want %v; upstream got %q", tc.req, fast, tc.fast, got[0])
		}
	}
}

// TestCookiesForwardedVerbatim: Cookie fields reach the upstream as the
// client sent them, on both paths (fasthttp would parse and rewrite them
// into one field when its header is walked with All).
func TestCookiesForwardedVerbatim(t *testing.T) {
	fast, slow, _ := newEquivEnvs(t)
	req := "GET /open/x HTTP/1.1\r\nHost: gw\r\nCookie: a=\"q\"\r\nX-A: 1\r\nCookie: b=2;c; =d\r\n\r\n"
	for _, ee := range []equivEnv{fast, slow} {
		ee.up.setAnswer([]byte(equivAnswers[0]))
		_, got := ee.exchangeRaw(t, []byte(req), false)
		if len(got) != 1 || !strings.Contains(got[0], "\ncookie: a=\"q\"\ncookie: b=2;c; =d\n") {
			t.Errorf("upstream got %q", got)
		}
	}
}

// FuzzRespField checks the word-compare classification of response field
// names against plain case-insensitive comparison.
func FuzzRespField(f *testing.F) {
	for _, l := range respFields {
		for _, n := range l {
			f.Add(n.name)
			f.Add(strings.ToUpper(n.name))
			f.Add(n.name[:len(n.name)/2] + "X" + n.name[len(n.name)/2+1:])
		}
	}
	f.Add("ratelimiXXXemaining")
	f.Add("ratelimit-remainingX")
	f.Add("x")
	f.Fuzz(func(t *testing.T, name string) {
		if name == "" {
			return
		}
		for i := 0; i < len(name); i++ {
			if !tokenChar[name[i]] {
				return // names are tokens by then
			}
		}
		want := rfOther
		for _, l := range respFields {
			for _, n := range l {
				if strings.EqualFold(name, n.name) {
					want = n.class
				}
			}
		}
		if got := respField([]byte(name)); got != want {
			t.Errorf("respField(%q) = %d, want %d", name, got, want)
		}
	})
}

func TestAppendUint(t *testing.T) {
	for _, v := range []uint64{0, 1, 9, 10, 99, 100, 101, 999, 1000, 123456789, 1<<63 - 1, 1<<64 - 1} {
		if got, want := string(appendUint([]byte("x"), v)), "x"+strconv.FormatUint(v, 10); got != want {
			t.Errorf("appendUint(%d) = %q, want %q", v, got, want)
		}
	}
}

// TestFastRouteFollowsHeaderBlock: the route kept for a repeated header
// block is the one of that block's Host. A head that is parsed again once
// its body has arrived repeats its own block, not the one of the request
// before it; with another Host it must not get that request's route.
func TestFastRouteFollowsHeaderBlock(t *testing.T) {
	fast, _, _ := newEquivEnvs(t)
	tab := fast.e.p.table.Load()
	fc := &fastConn{p: fast.e.p}
	parse := func(raw string) {
		t.Helper()
		if n := parseFastHead([]byte(raw), &fc.h); n <= 0 {
			t.Fatalf("fast path refuses %q: %d", raw, n)
		}
	}
	parse("GET /h/x HTTP/1.1\r\nHost: api.example\r\n\r\n")
	hosted := fc.route(tab)
	if hosted == nil || hosted.Tool != "hosted" {
		t.Fatalf("route for Host api.example: %v", hosted)
	}
	// The same block again: the same route, from what was kept.
	parse("GET /h/x HTTP/1.1\r\nHost: api.example\r\n\r\n")
	if r := fc.route(tab); r != hosted {
		t.Fatalf("repeated block: route %v", r)
	}
	// Another Host, its head read before its body and again after it.
	other := "POST /h/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n"
	parse(other)
	parse(other + "ok")
	if !fc.h.repeat {
		t.Fatal("a head parsed again is not recognised as a repeat")
	}
	if r := fc.route(tab); r != nil {
		t.Fatalf("Host gw got the route of Host api.example's request before it: %v", r.Tool)
	}
	// And back: the first Host has its route again.
	parse("GET /h/x HTTP/1.1\r\nHost: api.example\r\n\r\n")
	if r := fc.route(tab); r != hosted {
		t.Fatalf("route for Host api.example after Host gw: %v", r)
	}
}

// seqFirst are complete keep-alive requests that open a connection in
// FuzzFastPathSequence, before the fuzzed one; $KEY is a valid API key.
var seqFirst = []string{
	"GET /open/x HTTP/1.1\r\nHost: gw\r\n\r\n",
	"GET /h/x HTTP/1.1\r\nHost: api.example\r\n\r\n",
	"GET /keyed/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $KEY\r\n\r\n",
	"POST /open/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\nab",
	"GET /fwd/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: $KEY\r\n\r\n",
	"GET /nowhere HTTP/1.1\r\nHost: gw\r\n\r\n",
	// Hop-by-hop fields other than Connection keep the connection open,
	// however they are spelled or whatever their value says.
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nKeep-Alive: close\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nkeep-alive: timeout=5\r\nTE: close\r\n\r\n",
	"GET /open/x HTTP/1.1\r\nHost: gw\r\nProxy-Connection: close\r\n\r\n",
}

// exchangeSeq sends first on a new connection and reads its answer, then
// sends raw in two writes (split there) and reads the answer to that. It
// returns both answers (normalised) and what the upstream received for
// each. Between the writes it waits a little, so that the proxy usually
// reads a head before its body arrives (a timing the test does not rely
// on: it only makes the path of a head parsed twice likelier).
func (ee equivEnv) exchangeSeq(t testing.TB, first, raw []byte, split int, head bool) (answers [2]string, ups [2][]string) {
	t.Helper()
	c, err := net.Dial("tcp", ee.e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	read := func(method string) (string, bool) {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		for err == nil && resp.StatusCode < 200 {
			resp, err = http.ReadResponse(br, &http.Request{Method: method})
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("no answer: %v", err)
			}
			return "no answer", false
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return normAnswer(resp, body, err), !resp.Close
	}
	take := func() (got []string) {
		for _, r := range ee.up.take() {
			got = append(got, normRequest(r))
		}
		return got
	}
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	answers[0], _ = read(http.MethodGet)
	ups[0] = take()
	split = min(split, len(raw))
	if _, err := c.Write(raw[:split]); err != nil {
		answers[1] = "write failed"
		return answers, ups
	}
	if split < len(raw) {
		time.Sleep(time.Millisecond)
		if _, err := c.Write(raw[split:]); err != nil {
			answers[1] = "write failed"
			return answers, ups
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	answers[1], _ = read(method)
	ups[1] = take()
	return answers, ups
}

// FuzzFastPathSequence is FuzzFastPathEquivalence for the second request
// on a keep-alive connection: what the fast path keeps from one request
// for the next (a repeated header block's fields, route and credential,
// the id block, the RateLimit line, a fasthttp context) must never make
// it answer or forward the second otherwise than fasthttp's path does.
func FuzzFastPathSequence(f *testing.F) {
	for i, first := range seqFirst {
		for j, r := range equivRequests {
			if (i+j)%3 == 0 {
				f.Add(uint8(i), []byte(r), uint8(len(r)/2), []byte(equivAnswers[(i+j)%len(equivAnswers)]))
			}
		}
		// The same header block again, under other request lines, and
		// another Host (or key) whose body comes after its head.
		_, block, _ := strings.Cut(first, "\r\n")
		for _, line := range []string{"GET /h/x HTTP/1.1", "GET /open/y HTTP/1.1", "DELETE /keyed/x HTTP/1.1", "GET /fwd/x HTTP/1.1"} {
			f.Add(uint8(i), []byte(line+"\r\n"+block), uint8(0), []byte(equivAnswers[0]))
		}
		other := "POST /h/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\nok"
		f.Add(uint8(i), []byte(other), uint8(len(other)-2), []byte(equivAnswers[0]))
		other = "POST /keyed/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: stoa_sk_wrong\r\nContent-Length: 2\r\n\r\nok"
		f.Add(uint8(i), []byte(other), uint8(len(other)-2), []byte(equivAnswers[1]))
	}
	fast, slow, key := newEquivEnvs(f)
	f.Fuzz(func(t *testing.T, which uint8, req []byte, split uint8, answer []byte) {
		first := []byte(strings.ReplaceAll(seqFirst[int(which)%len(seqFirst)], "$KEY", key))
		req = bytes.ReplaceAll(req, []byte("$KEY"), []byte(key))
		head := bytes.HasPrefix(req, []byte("HEAD "))
		var got [2][2]string
		var ups [2][2][]string
		for i, ee := range []equivEnv{fast, slow} {
			addr := ee.up.ln.Addr().String()
			ee.up.setAnswer(bytes.ReplaceAll(answer, []byte("UP"), []byte(addr)))
			got[i], ups[i] = ee.exchangeSeq(t, first, req, int(split), head)
			for k := range got[i] {
				got[i][k] = strings.ReplaceAll(got[i][k], addr, "UP")
				for j := range ups[i][k] {
					ups[i][k][j] = strings.ReplaceAll(ups[i][k][j], addr, "UP")
				}
			}
		}
		for k := range 2 {
			if !slices.Equal(ups[0][k], ups[1][k]) {
				t.Errorf("request %d: upstream received (fast path):\n%q\n(fasthttp path):\n%q", k+1, ups[0][k], ups[1][k])
			}
			if got[0][k] != got[1][k] {
				t.Errorf("request %d: client got (fast path):\n%s\n(fasthttp path):\n%s", k+1, got[0][k], got[1][k])
			}
		}
	})
}

// FuzzPlainHeadRepeat checks plainHead's memory of the last plain head: a
// head read after another one (the same or not, for a request of the same
// kind or not) gets the verdict and the client head that a connection
// which never saw the first one gives it.
func FuzzPlainHeadRepeat(f *testing.F) {
	for i, a := range equivAnswers {
		f.Add([]byte(a), []byte(a), false, false, false, false)
		f.Add([]byte(a), []byte(a), i%2 == 0, i%2 == 1, i%3 == 0, i%3 == 1)
		f.Add([]byte(equivAnswers[0]), []byte(a), false, false, true, true)
	}
	f.Add([]byte(equivAnswers[0]), []byte(strings.Replace(equivAnswers[0], "11", "12", 1)+"x"), false, false, false, false)
	f.Add([]byte(equivAnswers[10]), []byte(equivAnswers[10]), false, false, false, true)
	f.Add([]byte(equivAnswers[10]), []byte(equivAnswers[10]), false, false, true, false)
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, prev, head []byte, prevHead, isHead, prevLimited, limited bool) {
		o := exchangeOpts{maxBytes: 1 << 20}
		dec := func(lim bool) *limits.Decision {
			if lim {
				return &limits.Decision{Limit: 10, Remaining: 3, Reset: time.Second}
			}
			return &limits.Decision{}
		}
		id := []byte("0123456789abcdef0123")
		var seen fastConn
		seen.plainHead(prev, dec(prevLimited), id, prevHead, false, &o, 4096, now)
		got := seen.plainHead(head, dec(limited), id, isHead, false, &o, 4096, now)
		var fresh fastConn
		want := fresh.plainHead(head, dec(limited), id, isHead, false, &o, 4096, now)
		if got != want {
			t.Fatalf("after %q, %q reads %+v; on its own %+v", prev, head, got, want)
		}
		if got.ok && string(seen.out) != string(fresh.out) {
			t.Fatalf("after %q, %q gives\n%q\non its own\n%q", prev, head, seen.out, fresh.out)
		}
	})
}
