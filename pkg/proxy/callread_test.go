package proxy

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp/fasthttputil"
)

// callReading is what a Call makes of an upstream answer.
type callReading struct {
	err       bool
	code      int
	ct        string
	body      string
	bodyLen   int64
	truncated bool
	kept      bool // the connection went back to the pool
}

// readAnswer has an upstream send answer (then close) and reads it with
// read, over the real pool on an in-memory connection.
func readAnswer(t *testing.T, answer []byte, limit int, plain bool) (callReading, bool) {
	ln := fasthttputil.NewInmemoryListener()
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write(answer)
		c.Close()
	}()
	u := &upstream{host: "up", pool: &connPool{
		addr: "up", dial: func(string) (net.Conn, error) { return ln.Dial() },
		max: 1, bufSize: 4096,
	}}
	defer u.pool.evictIdle(0, true)
	c, err := u.pool.acquire(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := c.setReadDeadline(now.UnixNano(), now.Add(5*time.Second).UnixNano()); err != nil {
		t.Fatal(err)
	}
	o := &exchangeOpts{maxBytes: 1 << 16, idle: time.Second}
	var got callReading
	out := &CallResponse{}
	defer out.Release()
	if plain {
		err = u.readCall(c, &out.ans, false, o)
		if err == nil && out.ans.plain {
			a := &out.ans
			got = callReading{code: a.code, ct: contentTypeString(a.ct), bodyLen: a.cl, body: string(a.body)}
			if len(a.body) > limit {
				got.truncated, got.body = true, got.body[:limit+1]
			}
			got.kept = len(u.pool.idle) == 1
			return got, true
		}
		return got, false
	}
	resp := out.ans.response()
	if err = u.readResponse(c, resp, false, false, o); err != nil {
		return callReading{err: true}, false
	}
	stripResponseHopByHop(&resp.Header)
	got.code, got.ct = resp.StatusCode(), string(resp.Header.ContentType())
	if err := readCallBody(out, resp, limit); err != nil {
		return callReading{err: true}, false
	}
	got.body, got.bodyLen, got.truncated = string(out.Body), out.BodyLen, out.Truncated
	got.kept = len(u.pool.idle) == 1
	return got, false
}

// FuzzCallReadEquivalence: every upstream answer readCall takes as plain
// gives a Call what readResponse and readCallBody give it — status,
// Content-Type, body (cut at the call's limit), declared length — and
// leaves the connection in the pool exactly when they do.
func FuzzCallReadEquivalence(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"inStock\":4}",
		"HTTP/1.1 404 Not Found\r\nContent-Type:  text/plain ; charset=utf-8 \r\nContent-Length: 2\r\nDate: Mon, 07 Dec 2026 10:00:00 GMT\r\n\r\nno",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhelloextra",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Type: a\r\nContent-Type: b\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type:\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nno",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
		"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nContent-Length: 00\r\n\r\n",
		"HTTP/1.1 200 OK\r\ncontent-length:2\r\nCONTENT-TYPE:x/y\r\n\r\nok",
		"HTTP/1.1 201 \r\nContent-Length: 40\r\n\r\n0123456789012345678901234567890123456789",
		"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nConnection: Upgrade\r\nContent-Length: 2\r\n\r\nok",
	} {
		f.Add([]byte(s), 16)
	}
	f.Fuzz(func(t *testing.T, answer []byte, limit int) {
		if limit <= 0 || limit > 1<<16 {
			limit = 16
		}
		got, plain := readAnswer(t, answer, limit, true)
		if !plain {
			return // readResponse's, as before
		}
		want, _ := readAnswer(t, answer, limit, false)
		if got != want {
			t.Fatalf("answer %q:\nplain    %+v\nfasthttp %+v", answer, got, want)
		}
	})
}

// TestCallReadPlain: the answers of a real upstream are read as plain, a
// chunked one is not, and both reach the caller the same.
func TestCallReadPlain(t *testing.T) {
	up := newUpstream(t, "a")
	up.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush()
		}
		w.Write([]byte(`{"ok":true}`))
	})
	e := newEnv(t, tool("acme", "svc", up.URL, ""))
	for _, path := range []string{"/plain", "/chunked", "/plain"} {
		cr := &CallRequest{Tenant: "acme", Tool: "svc", Method: "GET", Path: []byte(path)}
		resp, err := e.p.Call(context.Background(), cr)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ans.plain != (path == "/plain") {
			t.Fatalf("%s: plain = %v", path, resp.ans.plain)
		}
		if resp.Status != 200 || resp.ContentType != "application/json" || string(resp.Body) != `{"ok":true}` {
			t.Fatalf("%s: %d %q %q", path, resp.Status, resp.ContentType, resp.Body)
		}
		resp.Release()
	}
}

func TestParseCallHeadRefuses(t *testing.T) {
	for _, h := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", // unfinished
		"HTTP/1.1 200 OK\r\n\r\n",                  // until close
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close, te\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: \x80\r\nContent-Length: 2\r\n\r\n",
	} {
		if _, ok := parseCallHead([]byte(h)); ok {
			t.Errorf("%q taken as plain", h)
		}
	}
	h, ok := parseCallHead([]byte("HTTP/1.1 404 Not Found\r\nContent-Type: \ttext/plain \r\nContent-Length: 12\r\n\r\n"))
	if !ok || h.code != 404 || string(h.ct) != "text/plain" || h.cl != 12 || h.close || h.n != 74 {
		t.Fatalf("%+v %v", h, ok)
	}
}
