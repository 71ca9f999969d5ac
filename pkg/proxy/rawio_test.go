package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection: the first
// wrapped by newSysConn.
func tcpPair(t *testing.T) (*sysConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	s, ok := newSysConn(c).(*sysConn)
	if !ok {
		t.Fatalf("newSysConn(%T) did not wrap a TCP connection", c)
	}
	t.Cleanup(func() { s.Close(); peer.Close() })
	return s, peer
}

func TestSysConnReadsAndWrites(t *testing.T) {
	s, peer := tcpPair(t)
	if _, err := s.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "ping" {
		t.Fatalf("peer read %q, %v", got, err)
	}
	// A read waits for the bytes (parks, then reads).
	go func() {
		time.Sleep(20 * time.Millisecond)
		peer.Write([]byte("pong"))
	}()
	buf := make([]byte, 16)
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	// The end of the stream is io.EOF, as net's Read reports it.
	peer.Close()
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v; want 0, io.EOF", n, err)
	}
}

func TestSysConnDeadlineIsATimeout(t *testing.T) {
	s, _ := tcpPair(t)
	_ = s.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := s.Read(make([]byte, 8))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v; want a timeout", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("read past its deadline: %#v; want a *net.OpError for read", err)
	}
	if got := classify(ioError(err)); got != failTimeout {
		t.Fatalf("classify(%v) = %v, want failTimeout", err, got)
	}
	// A deadline already passed fails a write-ahead read before it writes.
	s.writeAhead([]byte("GET / HTTP/1.1\r\n\r\n"))
	_, err = s.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("write-ahead past the deadline: %v; want a timeout of the write", err)
	}
}

func TestSysConnClosedWhileWaiting(t *testing.T) {
	s, _ := tcpPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a connection closed under it: %v; want net.ErrClosed", err)
	}
}

func TestSysConnWriteAhead(t *testing.T) {
	s, peer := tcpPair(t)
	// The peer answers every request it reads; the answer is read by the
	// same call that wrote the request.
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := peer.Read(buf)
			if err != nil {
				return
			}
			peer.Write(bytes.ToUpper(buf[:n]))
		}
	}()
	buf := make([]byte, 64)
	for _, req := range []string{"one", "two", "three"} {
		s.writeAhead([]byte(req))
		n, err := s.Read(buf)
		if err != nil || string(buf[:n]) != string(bytes.ToUpper([]byte(req))) {
			t.Fatalf("write-ahead %q: read %q, %v", req, buf[:n], err)
		}
	}
}

// A request larger than the socket's buffers cannot be written whole
// before the wait: the rest is written waiting for room, then the answer
// read.
func TestSysConnWriteAheadLargerThanTheBuffers(t *testing.T) {
	s, peer := tcpPair(t)
	big := bytes.Repeat([]byte("x"), 16<<20)
	go func() {
		time.Sleep(20 * time.Millisecond) // let the buffers fill first
		got, err := io.ReadAll(io.LimitReader(peer, int64(len(big))))
		if err != nil || len(got) != len(big) {
			peer.Close()
			return
		}
		peer.Write([]byte("done"))
	}()
	_ = s.SetDeadline(time.Now().Add(30 * time.Second))
	s.writeAhead(big)
	buf := make([]byte, 8)
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "done" {
		t.Fatalf("read %q, %v; want the answer to all 16 MiB", buf[:n], err)
	}
}

// A write-ahead to a peer that has closed fails with the reset its
// kernel answers the write with, and does not wait for an answer that
// cannot come: whether the close was a reset (the write fails) or a FIN
// seen before the read began (the poller's readiness for it is forgotten;
// the reset that follows the write wakes the wait).
func TestSysConnWriteAheadToAClosedPeer(t *testing.T) {
	for _, reset := range []bool{true, false} {
		s, peer := tcpPair(t)
		if reset {
			peer.(*net.TCPConn).SetLinger(0)
		}
		peer.Close()
		time.Sleep(20 * time.Millisecond)
		_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
		s.writeAhead([]byte("GET / HTTP/1.1\r\n\r\n"))
		start := time.Now()
		_, err := s.Read(make([]byte, 8))
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) && err != io.EOF {
			t.Fatalf("reset=%v: write-ahead to a closed peer: %v after %v; want ECONNRESET, EPIPE or EOF", reset, err, time.Since(start))
		}
	}
}

func TestNewSysConnLeavesOtherConnectionsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c := newSysConn(a); c != a {
		t.Fatalf("newSysConn wrapped a %T", a)
	}
	defer func(v bool) { rawIO = v }(rawIO)
	rawIO = false
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if w := newSysConn(c); w != c {
		t.Fatal("newSysConn wrapped a connection with raw I/O off")
	}
}

// A pooled connection whose last read drained its socket and that came
// back to the pool within writeAheadIdle has its request written by the
// read of the answer; any other (fresh from the dialer, idle for longer,
// bytes possibly left in the socket) writes at once.
func TestUpConnSendWritesAheadOnlyWhenNothingCanBeWaiting(t *testing.T) {
	s, peer := tcpPair(t)
	c := &upConn{Conn: s, br: bufio.NewReaderSize(s, 256)}
	// Every wait here has a deadline: a request held back that should
	// not be, or an answer not seen, fails the test instead of hanging it.
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	// held reports whether the request sent last has not reached the peer.
	// One expected to be held is looked for briefly (its absence is the
	// point); one expected to have been written is waited for as long as
	// a busy machine needs to deliver it.
	held := func(expect bool) bool {
		wait := 10 * time.Second
		if expect {
			wait = 20 * time.Millisecond
		}
		_ = peer.SetReadDeadline(time.Now().Add(wait))
		n, _ := io.ReadFull(peer, make([]byte, 3))
		_ = peer.SetReadDeadline(time.Time{})
		return n == 0
	}
	now := time.Now().UnixNano()
	for _, tc := range []struct {
		lastUse int64
		drained bool
		ahead   bool
	}{
		{0, false, false}, // fresh from the dialer
		{0, true, false},
		{now - 2*writeAheadIdle, true, false},
		{now - writeAheadIdle/2, false, false}, // the last read filled its buffer
		{now - writeAheadIdle/2, true, true},
	} {
		c.lastUse, s.drained = tc.lastUse, tc.drained
		if err := c.send([]byte("req"), now); err != nil {
			t.Fatal(err)
		}
		if got := held(tc.ahead); got != tc.ahead {
			t.Fatalf("lastUse %v ago, drained %v: request held for the read = %v, want %v",
				time.Duration(now-tc.lastUse), tc.drained, got, tc.ahead)
		}
		if tc.ahead {
			// The peer answers only what it has read: the request,
			// written by the Peek below.
			got := make(chan string, 1)
			go func() {
				b := make([]byte, 3)
				_, err := io.ReadFull(peer, b)
				got <- fmt.Sprintf("%s %v", b, err)
				peer.Write([]byte("ok"))
			}()
			if b, err := c.br.Peek(2); err != nil || string(b) != "ok" {
				t.Fatalf("answer %q, %v", b, err)
			}
			if r := <-got; r != "req <nil>" {
				t.Fatalf("the peer read %q, want the request", r)
			}
			c.br.Discard(2)
		}
	}
}

// The class of the hang that had write-ahead reverted: readiness that came
// before a write-ahead read began is discarded when the read begins, so
// bytes already in the socket are not read until something else arrives.
// Here the last read leaves a byte behind (it asked for one, two had
// come, and the poller reported them once, to that read): the next
// request must not be written ahead, and the byte is read at once.
func TestUpConnSendDoesNotWriteAheadOverBytesLeftInTheSocket(t *testing.T) {
	s, peer := tcpPair(t)
	c := &upConn{Conn: s, br: bufio.NewReaderSize(s, 256)}
	_ = s.SetReadDeadline(time.Now().Add(2 * time.Second))
	go func() {
		time.Sleep(20 * time.Millisecond) // the read below parks first
		peer.Write([]byte("ab"))
	}()
	if n, err := s.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("first read: %d, %v", n, err)
	}
	time.Sleep(20 * time.Millisecond) // the poller has long seen the bytes
	c.lastUse = time.Now().UnixNano()
	if err := c.send([]byte("req"), c.lastUse); err != nil {
		t.Fatal(err)
	}
	// Nothing more comes from the peer: only the byte left over answers.
	if b, err := c.br.Peek(1); err != nil || string(b) != "b" {
		t.Fatalf("read after the request: %q, %v; want the byte already there", b, err)
	}
}

// Two Reads at once (net.Conn allows it) each get their own bytes: every
// byte the peer sent is read exactly once, and the race detector sees no
// shared state. Likewise two Writes at once: every write arrives whole.
func TestSysConnTwoReadsOrTwoWritesAtOnce(t *testing.T) {
	s, peer := tcpPair(t)
	_ = s.SetDeadline(time.Now().Add(30 * time.Second))
	_ = peer.SetDeadline(time.Now().Add(30 * time.Second))
	const total = 1 << 20
	go func() {
		chunk := bytes.Repeat([]byte("x"), 4096)
		for n := 0; n < total; n += len(chunk) {
			if _, err := peer.Write(chunk); err != nil {
				return
			}
		}
		peer.(*net.TCPConn).CloseWrite()
	}()
	counts := make(chan int, 2)
	for range 2 {
		go func() {
			buf, n := make([]byte, 512), 0
			for {
				k, err := s.Read(buf)
				if bytes.Count(buf[:k], []byte("x")) != k {
					counts <- -1
					return
				}
				n += k
				if err != nil {
					counts <- n
					return
				}
			}
		}()
	}
	if got := <-counts + <-counts; got != total {
		t.Fatalf("two readers read %d bytes in all, want %d", got, total)
	}

	const lines = 2000
	read := make(chan error, 1)
	go func() {
		br := bufio.NewReader(peer)
		for i := 0; i < 2*lines; i++ {
			l, err := br.ReadString('\n')
			if err != nil || (l != "line-a\n" && l != "line-b\n") {
				read <- fmt.Errorf("line %d: %q, %v", i, l, err)
				return
			}
		}
		read <- nil
	}()
	wrote := make(chan error, 2)
	for _, l := range []string{"line-a\n", "line-b\n"} {
		go func() {
			for range lines {
				if _, err := s.Write([]byte(l)); err != nil {
					wrote <- err
					return
				}
			}
			wrote <- nil
		}()
	}
	for range 2 {
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
}

// A Read and a Write may run at once (a hijacked stream's reader and
// writer): neither disturbs the other's state.
func TestSysConnReadAndWriteAtOnce(t *testing.T) {
	s, peer := tcpPair(t)
	go io.Copy(peer, peer) // echo
	const n = 2000
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 7)
		for i := 0; i < n; i++ {
			if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "line-x\n" {
				done <- fmt.Errorf("read %d: %q, %v", i, buf, err)
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < n; i++ {
		if k, err := s.Write([]byte("line-x\n")); err != nil || k != 7 {
			t.Fatalf("write %d: %d, %v", i, k, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
