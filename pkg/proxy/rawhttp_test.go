package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Raw HTTP helpers: an upstream whose exact response bytes a test
// controls, and clients that send bytes net/http would refuse to.

// rawUpstream answers every request with a fixed raw HTTP response (so a
// test controls the exact response bytes) and records the raw requests
// (request line, headers and body, byte for byte).
type rawUpstream struct {
	Addr string
	ln   net.Listener
	mu   sync.Mutex
	seen []string
}

func newRawUpstream(t testing.TB, resp string) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{Addr: ln.Addr().String(), ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// The proxy sends the next request only after our answer,
				// so the tee holds exactly one raw request at a time.
				var raw bytes.Buffer
				br := bufio.NewReader(io.TeeReader(c, &raw))
				for {
					_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					u.mu.Lock()
					u.seen = append(u.seen, raw.String())
					u.mu.Unlock()
					raw.Reset()
					if _, err := io.WriteString(c, resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return u
}

func (u *rawUpstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// rawExchange writes raw bytes to the proxy on a fresh connection and reads
// one response.
func rawExchange(t testing.TB, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write raw request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response to raw request: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// rawResponse adapts a raw exchange to the response type.
func rawResponse(t testing.TB, addr, raw string) response {
	t.Helper()
	resp, body := rawExchange(t, addr, raw)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// rawRoundTrip writes raw bytes on a fresh connection and returns
// everything the proxy sends back until it closes the connection (send
// "Connection: close"), split into head and body.
func rawRoundTrip(t testing.TB, addr, raw string) (head, body string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write raw request: %v", err)
	}
	b, err := io.ReadAll(c)
	if err != nil && len(b) == 0 {
		t.Fatalf("read raw response: %v", err)
	}
	head, body, _ = strings.Cut(string(b), "\r\n\r\n")
	return head, body
}

// headerLines returns the lower-cased header names of a raw head.
func headerNames(head string) []string {
	var out []string
	for _, l := range strings.Split(head, "\r\n")[1:] {
		if k, _, ok := strings.Cut(l, ":"); ok {
			out = append(out, strings.ToLower(strings.TrimSpace(k)))
		}
	}
	return out
}
