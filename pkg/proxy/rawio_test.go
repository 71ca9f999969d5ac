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

// A pooled connection used within writeAheadIdle has its request written
// by the read of the answer; one idle for longer (its peer may have closed
// it meanwhile) writes at once, as a fresh one does.
func TestUpConnSendWritesAheadOnlyWhenRecentlyUsed(t *testing.T) {
	s, peer := tcpPair(t)
	c := &upConn{Conn: s, br: bufio.NewReaderSize(s, 256)}
	now := time.Now().UnixNano()
	pending := func() bool {
		_ = peer.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, _ := peer.Read(make([]byte, 64))
		return n == 0
	}
	for _, tc := range []struct {
		lastUse int64
		ahead   bool
	}{
		{0, false}, // never used: fresh from the dialer
		{now - 2*writeAheadIdle, false},
		{now - writeAheadIdle/2, true},
	} {
		c.lastUse = tc.lastUse
		if err := c.send([]byte("req"), now); err != nil {
			t.Fatal(err)
		}
		if got := pending(); got != tc.ahead {
			t.Fatalf("lastUse %v ago: request held for the read = %v, want %v", time.Duration(now-tc.lastUse), got, tc.ahead)
		}
		if tc.ahead {
			go func() { peer.Read(make([]byte, 64)); peer.Write([]byte("ok")) }()
			if b, err := c.br.Peek(2); err != nil || string(b) != "ok" {
				t.Fatalf("answer %q, %v", b, err)
			}
			c.br.Discard(2)
		}
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
