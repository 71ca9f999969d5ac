package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedUpstream answers its n-th request (counted over all
// connections) with answers[n], or the last one, written in one piece, and
// records the connection each request came on, so a test can tell whether
// the proxy reused a connection after an answer.
type scriptedUpstream struct {
	Addr    string
	answers []string

	mu    sync.Mutex
	conns int   // connections accepted
	on    []int // connection number of each request
}

func newScriptedUpstream(t testing.TB, answers ...string) *scriptedUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &scriptedUpstream{Addr: ln.Addr().String(), answers: answers}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns++
			id := u.conns
			u.mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					u.mu.Lock()
					n := len(u.on)
					u.on = append(u.on, id)
					u.mu.Unlock()
					answer := u.answers[min(n, len(u.answers)-1)]
					if _, err := io.WriteString(c, answer); err != nil || strings.Contains(answer, "Connection: close") {
						return
					}
				}
			}()
		}
	}()
	return u
}

// connOf returns the connection number request n came on.
func (u *scriptedUpstream) connOf(t testing.TB, n int) int {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if n >= len(u.on) {
		t.Fatalf("upstream saw %d requests, want at least %d", len(u.on), n+1)
	}
	return u.on[n]
}

func (u *scriptedUpstream) requests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.on)
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// TestUpstreamFramingRefused: answers whose framing a proxy cannot trust
// (RFC 9112 §6.1, §6.3; RFC 9110 §8.6, §15.2) are a bad upstream — 502
// with the JSON body, and the connection they came on is closed, never
// reused (the next request opens a new one). Nothing of them reaches the
// client.
func TestUpstreamFramingRefused(t *testing.T) {
	cases := []struct {
		name, answer string
		method       string
	}{
		{"CL then TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", ""},
		{"TE then CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", ""},
		{"CL with space before colon and TE", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", ""},
		{"lower-case CL and TE", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", ""},
		{"duplicate differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", ""},
		{"duplicate equal CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", ""},
		{"CL list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!", ""},
		{"negative CL", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello", ""},
		{"signed CL", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", ""},
		{"hex CL", "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello", ""},
		{"non-numeric CL", "HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello", ""},
		{"CL overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nhello", ""},
		{"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello", ""},
		{"TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", ""},
		{"TE chunked, gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n", ""},
		{"TE identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello", ""},
		{"TE twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", ""},
		{"TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", ""},
		{"204 with CL and body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", ""},
		{"204 with CL, no body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", ""},
		{"204 with TE", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ""},
		{"204 with stray body", "HTTP/1.1 204 No Content\r\n\r\nhello", ""},
		{"304 with body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello", ""},
		{"HEAD answer with body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "HEAD"},
		{"100 with CL", "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ""},
		{"103 with TE", "HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ""},
		{"unsolicited 101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", ""},
		{"too many interim answers", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 11) + okAnswer, ""},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok", ""},
		{"obs-fold with tab", "HTTP/1.1 200 OK\r\nX-Folded: a\r\n\tb\r\nContent-Length: 2\r\n\r\nok", ""},
		{"obs-fold of CL", "HTTP/1.1 200 OK\r\nContent-Length:\r\n 2\r\n\r\nok", ""},
		{"bare LF everywhere", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", ""},
		{"bare LF in one field", "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nok", ""},
		{"bare LF ending the head", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok", ""},
		{"CR in a value", "HTTP/1.1 200 OK\r\nX-A: 1\r2\r\nContent-Length: 2\r\n\r\nok", ""},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: 1\x002\r\nContent-Length: 2\r\n\r\nok", ""},
		{"space in a field name", "HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 2\r\n\r\nok", ""},
		{"garbage status line", "HTTP/1.1 OK\r\nContent-Length: 2\r\n\r\nok", ""},
		{"not HTTP", "SSH-2.0-OpenSSH_9.6\r\n\r\n", ""},
		{"empty field name", "HTTP/1.1 200 OK\r\n: 1\r\nContent-Length: 2\r\n\r\nok", ""},
		{"separator in a field name", "HTTP/1.1 200 OK\r\nX(A): 1\r\nContent-Length: 2\r\n\r\nok", ""},
		{"field without colon", "HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 2\r\n\r\nok", ""},
		{"short CL body, closed", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newScriptedUpstream(t, c.answer, okAnswer)
			e := newEnv(t, tool("acme", "api", "http://"+up.Addr, "timeouts: {header: 5s}\ncircuitBreaker: {consecutiveFailures: 1000}"))
			method := c.method
			if method == "" {
				method = "GET"
			}
			start := time.Now()
			r := e.do(method, "/acme/api/x")
			if method == "HEAD" {
				// A HEAD answer has no body to carry the JSON.
				if r.Status != http.StatusBadGateway {
					t.Fatalf("status %d, want 502", r.Status)
				}
			} else {
				m := expectError(t, r, http.StatusBadGateway, "bad_gateway")
				if msg, _ := m["message"].(string); !strings.Contains(msg, "malformed") {
					t.Errorf("message %q, want it to say the answer was malformed", msg)
				}
				if strings.Contains(r.Body, "hello") {
					t.Errorf("the refused answer's body reached the client: %q", r.Body)
				}
			}
			// Refused at once, not after the header timeout.
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("refusal took %v: the proxy waited for more bytes", d)
			}
			if n := up.requests(); n != 1 {
				t.Fatalf("upstream saw %d requests, want 1 (no retry of a bad answer)", n)
			}
			if r := e.get("/acme/api/y"); r.Status != 200 || r.Body != "ok" {
				t.Fatalf("next request: %d %q", r.Status, r.Body)
			}
			if a, b := up.connOf(t, 0), up.connOf(t, 1); a == b {
				t.Fatalf("the connection that carried the bad answer was reused (conn %d)", a)
			}
		})
	}
}

// TestUpstreamFramingAccepted: the neighbours of the refused answers that
// are valid HTTP pass, and their connection is reused.
func TestUpstreamFramingAccepted(t *testing.T) {
	cases := []struct {
		name, answer, method string
		status               int
		body, cl             string
	}{
		{"CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET", 200, "hello", "5"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "GET", 200, "hello", ""},
		{"chunked with extension and trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", "GET", 200, "hello", ""},
		{"TE value case", "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "GET", 200, "hello", ""},
		{"100 then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET", 200, "hello", "5"},
		{"103 then 200", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET", 200, "hello", "5"},
		{"204 with CL 0", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", "GET", 204, "", ""},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", 204, "", ""},
		{"304 with CL of the representation", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\n", "GET", 304, "", ""},
		{"304 with TE", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 304, "", ""},
		{"HEAD with CL", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "HEAD", 200, "", "1000"},
		{"HEAD with TE", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD", 200, "", ""},
		{"CL 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", 200, "", "0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newScriptedUpstream(t, c.answer, okAnswer)
			e := newEnv(t, tool("acme", "api", "http://"+up.Addr, "timeouts: {header: 5s}"))
			start := time.Now()
			r := e.do(c.method, "/acme/api/x")
			if r.Status != c.status || r.Body != c.body {
				t.Fatalf("got %d %q, want %d %q", r.Status, r.Body, c.status, c.body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "" {
				t.Errorf("Content-Type %q added to an answer that had none", ct)
			}
			if c.cl != "" && r.Header.Get("Content-Length") != c.cl {
				t.Errorf("Content-Length %q, want %q", r.Header.Get("Content-Length"), c.cl)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("answer took %v: the proxy waited for a body that does not exist", d)
			}
			if r := e.get("/acme/api/y"); r.Status != 200 || r.Body != "ok" {
				t.Fatalf("next request: %d %q", r.Status, r.Body)
			}
			if a, b := up.connOf(t, 0), up.connOf(t, 1); a != b {
				t.Errorf("a valid answer's connection was not reused (conns %d, %d)", a, b)
			}
		})
	}
}

// TestCheckHead table-tests the raw head check alone.
func TestCheckHead(t *testing.T) {
	cases := []struct {
		head string
		ok   bool
		info headInfo
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, headInfo{cl: true, clNonZero: true}},
		{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, headInfo{cl: true}},
		{"HTTP/1.1 200 OK\r\nContent-Length:  0 \r\n\r\n", true, headInfo{cl: true}},
		{"HTTP/1.1 200 OK\r\nContent-Length: 00\r\n\r\n", true, headInfo{cl: true, clNonZero: true}},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, headInfo{te: true}},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false, headInfo{}},
		{"HTTP/1.1 200 OK\r\nCONTENT-LENGTH\t: 5\r\ntransfer-encoding: x\r\n\r\n", false, headInfo{}},
		{"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, headInfo{}},
		{"HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n", false, headInfo{}},
		{"HTTP/1.1 200 OK\r\nX-Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", true, headInfo{te: true}},
		{"HTTP/1.1 200 OK\r\n\r\n", true, headInfo{}},
	}
	for _, c := range cases {
		info, ok := checkHead([]byte(c.head))
		if ok != c.ok || (ok && info != c.info) {
			t.Errorf("checkHead(%q) = %+v, %v; want %+v, %v", c.head, info, ok, c.info, c.ok)
		}
	}
}
