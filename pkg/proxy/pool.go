package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// upstreamReadBuffer is the read buffer of an upstream connection; a
// response head must fit in it (16 KiB, as before).
const upstreamReadBuffer = 16 << 10

// upConn is a keep-alive connection to an upstream, with the state the
// proxy keeps across the requests it carries: its read buffer and the read
// deadline set last (re-arming a deadline costs a timer update, so a close
// enough one is kept; see setReadDeadline).
type upConn struct {
	net.Conn
	pool *connPool
	br   *bufio.Reader
	// readDL is the read deadline set last, in Unix nanoseconds (0: none).
	readDL int64
	// lastUse is when the connection went back to the pool (Unix ns).
	lastUse int64
}

// setReadDeadline makes reads fail after at most d. A deadline already set
// between d-slack and d is kept: the read then gets slightly less than its
// full time (at most slack less, slack = 1/16 of the time left, at most a
// second) and no timer is touched. A deadline later than d is never kept.
func (c *upConn) setReadDeadline(now, d int64) error {
	if old := c.readDL; old != 0 && old <= d && d-old <= deadlineSlack(d-now) {
		return nil
	}
	c.readDL = d
	return c.Conn.SetReadDeadline(time.Unix(0, d))
}

// SetReadDeadline is net.Conn's, recorded so setReadDeadline knows it.
func (c *upConn) SetReadDeadline(t time.Time) error {
	c.readDL = 0
	if !t.IsZero() {
		c.readDL = t.UnixNano()
	}
	return c.Conn.SetReadDeadline(t)
}

// writeAheadIdle bounds how long a connection may have been idle for its
// next request to be written by the read that waits for the answer
// (sysConn.writeAhead). Such a read does not see what the upstream sent
// unasked between the end of its last answer and the read: HTTP/1.1
// upstreams send nothing unasked but a close, and a close after seconds of
// idleness, not within a few milliseconds of an answer; a closed
// connection resets the write, which the read does see. Under load a
// pooled connection is reused within microseconds, so nearly every request
// has its request written ahead; an idle one writes first and reads as any
// read does.
const writeAheadIdle = int64(10 * time.Millisecond)

// send writes a request whose answer is read next from br, under a read
// deadline already set (setReadDeadline): the request may be written by
// that read (sysConn.writeAhead), when nothing can be waiting in the
// socket: nothing is buffered, the last read(2) found no more than it
// took, and the connection came back to the pool within writeAheadIdle.
// A fresh connection (lastUse 0) writes first: its upstream may have
// written first (a greeting, a refusal).
func (c *upConn) send(b []byte, now int64) error {
	if s, ok := c.Conn.(*sysConn); ok && s.drained && c.lastUse != 0 &&
		now-c.lastUse < writeAheadIdle && c.br.Buffered() == 0 {
		s.writeAhead(b)
		return nil
	}
	_, err := c.Write(b)
	return err
}

// deadlineSlack is how much earlier than asked an already set deadline may
// fire for a wait of d: 1/16 of it, at most a second.
func deadlineSlack(d int64) int64 {
	return min(d/16, int64(time.Second))
}

// connPool is one upstream's keep-alive connections: at most max open,
// idle ones reused newest first and closed after idleConnDuration. When
// max are open, a caller waits (up to its timeout) for one to come back.
type connPool struct {
	addr    string
	tls     *tls.Config // nil: plain TCP
	connect time.Duration
	// dial opens a TCP connection to addr (tests dial in memory).
	dial func(addr string) (net.Conn, error)
	// bufSize is the read buffer's size (0: upstreamReadBuffer).
	bufSize int

	mu      sync.Mutex
	idle    []*upConn
	open    int
	max     int
	waiters []chan *upConn // FIFO; a nil delivery is a free slot to dial
	closed  bool
}

func newConnPool(addr string, tlsConfig *tls.Config, connect time.Duration) *connPool {
	dialer := &fasthttp.TCPDialer{Concurrency: 0, DNSCacheDuration: time.Minute}
	return &connPool{
		addr: addr, tls: tlsConfig, connect: connect, max: maxConnsPerUpstream,
		dial: func(a string) (net.Conn, error) { return dialer.DialTimeout(a, connect) },
	}
}

// acquire returns an idle connection, or a new one, waiting at most
// timeout for a free slot when max connections are open.
func (p *connPool) acquire(timeout time.Duration) (*upConn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fasthttp.ErrConnectionClosed
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	if p.open < p.max {
		p.open++
		p.mu.Unlock()
		return p.dialConn()
	}
	ch := make(chan *upConn, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case c := <-ch:
		if c == nil {
			return p.dialConn()
		}
		return c, nil
	case <-t.C:
	}
	p.mu.Lock()
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return nil, fasthttp.ErrNoFreeConns
		}
	}
	p.mu.Unlock()
	// Delivered while timing out: use it.
	if c := <-ch; c != nil {
		return c, nil
	}
	return p.dialConn()
}

// dialConn opens a connection in a slot already counted in open.
func (p *connPool) dialConn() (*upConn, error) {
	conn, err := p.dial(p.addr)
	if err == nil && p.tls != nil {
		conn, err = p.handshake(conn)
	}
	if err != nil {
		p.drop()
		return nil, err
	}
	size := p.bufSize
	if size == 0 {
		size = upstreamReadBuffer
	}
	conn = newSysConn(conn)
	return &upConn{Conn: conn, pool: p, br: bufio.NewReaderSize(conn, size)}, nil
}

// handshake runs the TLS handshake within the connect timeout: a stalled
// upstream is a connect failure, not a request that never ends.
func (p *connPool) handshake(conn net.Conn) (net.Conn, error) {
	tc := tls.Client(conn, p.tls)
	_ = tc.SetDeadline(time.Now().Add(p.connect))
	if err := tc.Handshake(); err != nil {
		conn.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fasthttp.ErrDialTimeout
		}
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// release returns a connection whose exchange ended cleanly to the pool.
func (p *connPool) release(c *upConn) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.closeConn(c)
		return
	}
	c.lastUse = time.Now().UnixNano()
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- c
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// closeConn closes a connection that cannot be reused.
func (p *connPool) closeConn(c *upConn) {
	_ = c.Conn.Close()
	p.drop()
}

// drop gives up one open slot: to the first waiter (who dials), or back.
func (p *connPool) drop() {
	p.mu.Lock()
	if len(p.waiters) > 0 && !p.closed {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- nil
		return
	}
	p.open--
	p.mu.Unlock()
}

// evictIdle closes connections idle since before cutoff (Unix ns); with
// close, every idle connection, and the pool takes no more.
func (p *connPool) evictIdle(cutoff int64, close bool) {
	p.mu.Lock()
	if close {
		p.closed = true
	}
	var stale []*upConn
	keep := p.idle[:0]
	for _, c := range p.idle {
		if close || c.lastUse < cutoff {
			stale = append(stale, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.open -= len(stale)
	p.mu.Unlock()
	for _, c := range stale {
		_ = c.Conn.Close()
	}
}

// writerPool holds the buffered writers of requests written by fasthttp
// (the path for requests the fast path does not take).
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
