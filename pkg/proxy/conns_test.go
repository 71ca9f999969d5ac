package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// openConn is a client connection whose end (the server closing it) is
// reported on done with everything the server sent.
type openConn struct {
	c    net.Conn
	done chan string
}

func dialOpen(t *testing.T, addr string) *openConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	o := &openConn{c: c, done: make(chan string, 1)}
	return o
}

// watch reads until the server closes the connection, from br when given.
func (o *openConn) watch(br *bufio.Reader) {
	go func() {
		var r io.Reader = o.c
		if br != nil {
			r = br
		}
		b, _ := io.ReadAll(r)
		o.done <- string(b)
	}()
}

// trickle writes msg a byte at a time until the connection is closed or
// stop is closed.
func (o *openConn) trickle(msg string, every time.Duration, stop chan struct{}) {
	go func() {
		for i := 0; ; i = (i + 1) % len(msg) {
			if _, err := o.c.Write([]byte{msg[i]}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(every):
			}
		}
	}()
}

// TestLiveTimeoutsCutOpenConnections: a revision that shortens the read,
// header and idle timeouts applies to connections opened before it — a
// slowloris, a silent connection, a slow body and an idle keep-alive
// connection started under 60s timeouts are all cut once 1s ones are
// applied, measured from their request's start.
func TestLiveTimeoutsCutOpenConnections(t *testing.T) {
	t.Parallel()
	e, up := rawEnv(t, okResponse, gateway("limits: {readTimeout: 60s, readHeaderTimeout: 60s, idleTimeout: 60s}"))
	stop := make(chan struct{})
	defer close(stop)

	slowHead := dialOpen(t, e.addr)
	slowHead.watch(nil)
	slowHead.trickle("GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-Slow: "+strings.Repeat("s", 4000), 50*time.Millisecond, stop)

	silent := dialOpen(t, e.addr)
	silent.watch(nil)

	slowBody := dialOpen(t, e.addr)
	io.WriteString(slowBody.c, "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n")
	slowBody.watch(nil)
	slowBody.trickle(strings.Repeat("b", 1000), 50*time.Millisecond, stop)

	idle := dialOpen(t, e.addr)
	_ = idle.c.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(idle.c, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n\r\n")
	br := bufio.NewReader(idle.c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	idle.watch(br)

	waitFor(t, 10*time.Second, "4 connections tracked", func() bool { return e.p.conns.total.Load() == 4 })
	for name, o := range map[string]*openConn{"slow head": slowHead, "silent": silent, "slow body": slowBody, "idle": idle} {
		select {
		case got := <-o.done:
			t.Fatalf("%s connection closed under the 60s timeouts: %q", name, got)
		default:
		}
	}

	e.apply(tool("acme", "api", "http://"+up.Addr+"/base", "") + gateway("limits: {readTimeout: 1s, readHeaderTimeout: 1s, idleTimeout: 1s}"))
	for _, c := range []struct {
		name string
		o    *openConn
		want string // the start of what the server sends before closing
	}{
		{"slow head", slowHead, "HTTP/1.1 408"},
		{"silent", silent, "HTTP/1.1 408"},
		{"slow body", slowBody, "HTTP/1.1 408"},
		{"idle", idle, ""},
	} {
		select {
		case got := <-c.o.done:
			if !strings.HasPrefix(got, c.want) || (c.want == "" && got != "") {
				t.Errorf("%s connection: server sent %q before closing, want %q…", c.name, got, c.want)
			}
			if c.want != "" && !strings.Contains(got, `"request_timeout"`) {
				t.Errorf("%s connection: no JSON 408: %q", c.name, got)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s connection still open 15s after readTimeout/idleTimeout became 1s", c.name)
		}
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want 1", n)
	}
}

// TestReadHeaderTimeout: limits.readHeaderTimeout bounds the request line
// and header block; the body then has what is left of readTimeout.
func TestReadHeaderTimeout(t *testing.T) {
	t.Parallel()
	e, up := rawEnv(t, okResponse, gateway("limits: {readHeaderTimeout: 1s, readTimeout: 60s}"))
	stop := make(chan struct{})
	defer close(stop)
	slow := dialOpen(t, e.addr)
	slow.watch(nil)
	slow.trickle("GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-Slow: "+strings.Repeat("s", 4000), 50*time.Millisecond, stop)
	select {
	case got := <-slow.done:
		if !strings.HasPrefix(got, "HTTP/1.1 408") {
			t.Fatalf("slow header block answered %q", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("slow header block still read 15s after a 1s readHeaderTimeout")
	}

	// Headers at once, then a body that takes longer than the header
	// timeout: served.
	c := dialOpen(t, e.addr)
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c.c, "POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 30\r\nConnection: close\r\n\r\n")
	for i := 0; i < 30; i++ {
		time.Sleep(100 * time.Millisecond) // 3s in all, three header timeouts
		io.WriteString(c.c, "b")
	}
	resp, err := http.ReadResponse(bufio.NewReader(c.c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("slow body within readTimeout: %v %v", err, resp)
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want 1", n)
	}
}

// TestDeadlineFromRequestStart: a keep-alive connection's second request
// gets its own header timeout, counted from its first byte, not from the
// connection's opening.
func TestDeadlineFromRequestStart(t *testing.T) {
	t.Parallel()
	e, _ := rawEnv(t, okResponse, gateway("limits: {readHeaderTimeout: 2s, readTimeout: 2s, idleTimeout: 60s}"))
	c := dialOpen(t, e.addr)
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c.c)
	for i := 0; i < 2; i++ {
		if i > 0 {
			time.Sleep(3 * time.Second) // idle longer than the read timeout
		}
		io.WriteString(c.c, "GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %v %v", i, err, resp)
		}
		io.Copy(io.Discard, resp.Body)
	}
}

// TestHijackedConnectionOwnsItsDeadlines: a hijack handler (the MCP
// notification stream) outlives the read timeout, and its own read
// deadline — how it stops its reader — takes effect.
func TestHijackedConnectionOwnsItsDeadlines(t *testing.T) {
	t.Parallel()
	p := New(Options{Listen: "127.0.0.1:0"})
	p.Mount("/stream", func(ctx *fasthttp.RequestCtx) {
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
			gone := make(chan struct{})
			go func() {
				var b [16]byte
				for {
					if _, err := c.Read(b[:]); err != nil {
						close(gone)
						return
					}
				}
			}()
			for i := 0; i < 25; i++ { // 2.5s, over twice the read timeout
				select {
				case <-gone:
					io.WriteString(c, "reader stopped early\n")
					return
				case <-time.After(100 * time.Millisecond):
					io.WriteString(c, "tick\n")
				}
			}
			_ = c.SetReadDeadline(time.Unix(1, 0))
			<-gone
			io.WriteString(c, "done\n")
		})
	})
	swap, err := p.Prepare(snapshot(t, 1, gateway("limits: {readTimeout: 1s, readHeaderTimeout: 1s, idleTimeout: 1s}")))
	if err != nil {
		t.Fatal(err)
	}
	swap()
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: gw\r\n\r\n")
	b, _ := io.ReadAll(c)
	if got := string(b); strings.Count(got, "tick\n") != 25 || !strings.HasSuffix(got, "done\n") {
		t.Fatalf("hijacked stream: %q", got)
	}
}
