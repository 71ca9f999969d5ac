package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// FuzzUpstreamResponse feeds raw upstream answers to roundTrip (the real
// pool, over an in-memory connection) and checks that it never panics,
// never passes on an interim answer, refuses what a naive reading of the
// first head says must be refused (CL with TE, obs-fold, bare LF), and
// that a body it streams ends within the cap.
func FuzzUpstreamResponse(f *testing.F) {
	for _, s := range []string{
		okAnswer,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("x", 70000),
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, answer []byte, head bool) {
		ln := fasthttputil.NewInmemoryListener()
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
				return
			}
			_, _ = c.Write(answer)
		}()
		u := &upstream{host: "up", pool: &connPool{
			addr: "up", dial: func(string) (net.Conn, error) { return ln.Dial() },
			max: 1, bufSize: 4096,
		}}
		defer u.pool.evictIdle(0, true)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://up/x")
		if head {
			req.Header.SetMethod("HEAD")
		}
		const limit = 1 << 16
		// Everything below must end by itself: the upstream has closed.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic("roundTrip or its body stream hangs on " + strconvQuote(answer))
			}
		}()
		err := u.roundTrip(req, resp, time.Now().Add(2*time.Second), time.Second, &exchangeOpts{maxBytes: limit, idle: time.Second})
		ref := naiveHead(answer)
		if err != nil {
			return
		}
		if code := resp.StatusCode(); code < 200 {
			t.Fatalf("interim answer %d passed on", code)
		}
		if ref.refuse {
			t.Fatalf("answer passed on, but its first head has %s: %q", ref.why, answer)
		}
		if resp.IsBodyStream() {
			n, _ := io.Copy(io.Discard, resp.BodyStream())
			if n > limit {
				t.Fatalf("streamed %d bytes past the cap of %d", n, limit)
			}
			_ = resp.CloseBodyStream()
		} else if len(resp.Body()) > limit {
			t.Fatalf("buffered %d bytes past the cap of %d", len(resp.Body()), limit)
		}
	})
}

func strconvQuote(b []byte) string { return strconv.Quote(string(b)) }

// naiveHead reads the first head of a raw answer line by line.
type naiveVerdict struct {
	refuse bool
	why    string
}

func naiveHead(raw []byte) naiveVerdict {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(raw)
	}
	h := raw[:end]
	for i, c := range h {
		if c == '\n' && (i == 0 || h[i-1] != '\r') {
			return naiveVerdict{true, "a bare LF"}
		}
	}
	lines := strings.Split(string(h), "\r\n")
	cl, te := false, false
	for _, l := range lines[1:] {
		if l != "" && (l[0] == ' ' || l[0] == '\t') {
			return naiveVerdict{true, "an obs-fold"}
		}
		name, _, _ := strings.Cut(l, ":")
		name = strings.ToLower(strings.TrimRight(name, " \t"))
		cl = cl || name == "content-length"
		te = te || name == "transfer-encoding"
	}
	if cl && te {
		return naiveVerdict{true, "Content-Length and Transfer-Encoding"}
	}
	return naiveVerdict{}
}

// FuzzRedirectMap checks the Location mapping never panics and that what
// it writes is a path on the gateway or a URL of the client's origin,
// never the upstream's.
func FuzzRedirectMap(f *testing.F) {
	for _, s := range []string{"/billing/x", "http://10.0.0.5:9001/billing/x?q#f", "//10.0.0.5:9001/billing", "x/y", "http://u@10.0.0.5:9001/", "HTTP://10.0.0.5:9001"} {
		f.Add(s, "/billing", "api.example.com")
	}
	f.Fuzz(func(t *testing.T, target, base, host string) {
		m := redirectMap{upHost: "10.0.0.5:9001", upBase: base, prefix: []byte("/acme/api"), scheme: []byte("https"), host: []byte(host)}
		out, ok := m.mapURL(nil, []byte(target))
		if !ok {
			if len(out) != 0 {
				t.Fatalf("refused mapping wrote %q", out)
			}
			return
		}
		s := string(out)
		gw := "https://" + host + "/acme/api"
		if !strings.HasPrefix(s, "/acme/api") && !(validHost([]byte(host)) && (strings.HasPrefix(s, gw) || strings.HasPrefix(s, "//"+host+"/acme/api"))) {
			t.Fatalf("mapURL(%q) = %q: not on the gateway route", target, s)
		}
		if !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "https://") {
			t.Fatalf("mapURL(%q) = %q", target, s)
		}
		if _, err := io.WriteString(io.Discard, s); err != nil {
			t.Fatal(err)
		}
	})
}
