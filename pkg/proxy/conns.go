package proxy

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// connLimiter caps concurrent connections per source address (slowloris
// and connection floods from one client cannot pin the gateway's memory
// or goroutines), counts active connections, and owns every client
// connection's read deadline. The cap and the timeouts are read from the
// live revision, so `stoa apply` changes them for connections already open.
type connLimiter struct {
	max      func() int
	timeouts func() connTimeouts
	total    atomic.Int64
	shards   [64]connShard
}

// connTimeouts are the live revision's client read timeouts.
type connTimeouts struct {
	header time.Duration // request line and header block, from the request's start
	read   time.Duration // the whole request, body included
	idle   time.Duration // a keep-alive connection waiting for its next request
}

type connShard struct {
	mu   sync.Mutex
	n    map[netip.Addr]int
	head *trackedConn // open connections, for refresh
}

func newConnLimiter(max func() int, timeouts func() connTimeouts) *connLimiter {
	c := &connLimiter{max: max, timeouts: timeouts}
	for i := range c.shards {
		c.shards[i].n = map[netip.Addr]int{}
	}
	return c
}

func (c *connLimiter) shard(a netip.Addr) *connShard {
	b := a.As16()
	return &c.shards[(b[15]^b[14]^b[13])&63]
}

func (c *connLimiter) acquire(a netip.Addr) bool {
	s := c.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[a] >= c.max() {
		return false
	}
	s.n[a]++
	c.total.Add(1)
	return true
}

func (c *connLimiter) release(a netip.Addr) {
	s := c.shard(a)
	s.mu.Lock()
	if s.n[a] <= 1 {
		delete(s.n, a)
	} else {
		s.n[a]--
	}
	s.mu.Unlock()
	c.total.Add(-1)
}

// link and unlink keep the shard's list of open connections.
func (c *connLimiter) link(t *trackedConn) {
	s := c.shard(t.a)
	s.mu.Lock()
	t.next = s.head
	if s.head != nil {
		s.head.prev = t
	}
	s.head = t
	s.mu.Unlock()
}

func (c *connLimiter) unlink(t *trackedConn) {
	s := c.shard(t.a)
	s.mu.Lock()
	if t.prev != nil {
		t.prev.next = t.next
	} else if s.head == t {
		s.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next = nil, nil
	s.mu.Unlock()
}

// refresh re-arms the read deadline of every open connection from the
// live timeouts: a revision that shortens readTimeout cuts a slow client
// that started under the old one (measured from its request's start, so a
// client already past the new bound is cut at once, with 408).
func (c *connLimiter) refresh() {
	to := c.timeouts()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for t := s.head; t != nil; t = t.next {
			t.mu.Lock()
			t.armLocked(to)
			t.mu.Unlock()
		}
		s.mu.Unlock()
	}
}

// closeIdle closes every connection that is not in a request (nor
// hijacked): Stop's way to end keep-alive connections.
func (c *connLimiter) closeIdle() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		var idle []*trackedConn
		for t := s.head; t != nil; t = t.next {
			if !t.busy.Load() && !t.hijacked.Load() {
				idle = append(idle, t)
			}
		}
		s.mu.Unlock()
		for _, t := range idle {
			// The raw connection: Close would unlink under the shard's
			// lock; the goroutine serving it does that when its read fails.
			_ = t.Conn.Close()
		}
	}
}

func (c *connLimiter) wrap(ln net.Listener) net.Listener { return &limitedListener{Listener: ln, c: c} }

type limitedListener struct {
	net.Listener
	c *connLimiter
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var a netip.Addr
		if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			a, _ = netip.AddrFromSlice(ta.IP)
			a = a.Unmap()
		}
		if !l.c.acquire(a) {
			conn.Close()
			continue
		}
		// Raw reads and writes (sysConn) for both the fast path and
		// fasthttp's server.
		t := &trackedConn{Conn: newSysConn(conn), c: l.c, a: a, phase: phaseHead, since: time.Now(), cur: 1}
		t.mu.Lock()
		t.armLocked(l.c.timeouts())
		t.mu.Unlock()
		l.c.link(t)
		return t, nil
	}
}

// Connection phases, for the read deadline.
const (
	phaseHead = iota // reading a request line and header block
	phaseBody        // header block complete: the rest of the request
	phaseIdle        // keep-alive, waiting for the next request
)

// trackedConn is a client connection. It owns its read deadline (fasthttp's
// own deadlines, fixed when the server started, are ignored), and checks
// the framing of each request as the bytes arrive (wireCheck).
//
// The deadline follows the connection's phase, driven by fasthttp's
// ConnState callbacks and by the framing check: from a request's start
// (the connection's opening for the first request, the first byte for
// later ones) the header block must arrive within limits.readHeaderTimeout
// and the whole request within limits.readTimeout; between requests
// limits.idleTimeout applies.
type trackedConn struct {
	net.Conn
	c    *connLimiter
	a    netip.Addr
	once sync.Once

	prev, next *trackedConn // the shard's list, under its mutex

	mu       sync.Mutex // since and deadline: refresh runs on other goroutines
	since    time.Time
	deadline time.Time // the read deadline set last

	// Touched only by the goroutine serving the connection (phase is
	// also read by refresh, under mu).
	phase uint8
	cur   int // the number of the request being read (1 = the first)
	wire  wireCheck
	// pending are bytes the fast path read and handed to fasthttp with
	// the connection (handoff); Read returns them first.
	pending []byte
	// busy: a request is being read or served (for drain).
	busy atomic.Bool

	// hijacked: the connection was handed to a hijack handler; deadlines
	// and reads pass straight through (set under mu).
	hijacked atomic.Bool
}

// armLocked sets the read deadline for the current phase.
func (t *trackedConn) armLocked(to connTimeouts) {
	if t.hijacked.Load() {
		return
	}
	var d time.Duration
	switch t.phase {
	case phaseHead:
		d = to.read
		if to.header > 0 && to.header < d {
			d = to.header
		}
	case phaseBody:
		d = to.read
	default:
		d = to.idle
	}
	var dl time.Time
	if d > 0 {
		dl = t.since.Add(d)
	}
	// A deadline already set a little before the one wanted is kept:
	// re-arming costs a timer update, and a keep-alive connection going
	// idle after every request would pay it each time. It fires at most
	// deadlineSlack early (1/16 of the timeout, at most a second); a later
	// one is never kept.
	if dl.Equal(t.deadline) || (!dl.IsZero() && !t.deadline.IsZero() && !t.deadline.After(dl) &&
		dl.Sub(t.deadline) <= time.Duration(deadlineSlack(int64(d)))) {
		return
	}
	t.deadline = dl
	_ = t.Conn.SetReadDeadline(dl)
}

func (t *trackedConn) setPhase(phase uint8, restart bool) {
	since := t.since
	if restart {
		since = time.Now()
	}
	t.setPhaseAt(phase, since)
}

// setPhaseAt moves the connection to phase, which began at since, and
// arms its read deadline.
func (t *trackedConn) setPhaseAt(phase uint8, since time.Time) {
	to := t.c.timeouts()
	t.mu.Lock()
	t.phase = phase
	t.since = since
	t.armLocked(to)
	t.mu.Unlock()
}

// handoff prepares the connection for fasthttp's server after the fast
// path: pending are bytes read but not served (fasthttp reads them first,
// through the framing check), and the request they begin started at
// start. For fasthttp it is a new connection: its first request is this
// one.
func (t *trackedConn) handoff(pending []byte, start time.Time) {
	t.pending = pending
	t.wire = wireCheck{}
	t.cur = 1
	t.busy.Store(false)
	t.setPhaseAt(phaseHead, start)
}

// Read hands fasthttp what wireCheck accepts. A refused request's bytes
// are withheld (but its first, see wireCheck.feed) and the next read
// returns the error, so fasthttp answers it at once through errorHandler
// instead of waiting for a terminator that never comes, and never serves
// it.
func (t *trackedConn) Read(p []byte) (int, error) {
	if t.hijacked.Load() {
		if len(t.pending) > 0 {
			n := copy(p, t.pending)
			t.pending = t.pending[n:]
			return n, nil
		}
		return t.Conn.Read(p)
	}
	if t.wire.fault != faultNone {
		return 0, wireError{t.wire.fault}
	}
	var n int
	var err error
	if len(t.pending) > 0 {
		n = copy(p, t.pending)
		t.pending = t.pending[n:]
	} else {
		n, err = t.Conn.Read(p)
	}
	if n > 0 {
		n = t.wire.feed(p[:n])
		if t.wire.fault != faultNone {
			if n == 0 {
				return 0, wireError{t.wire.fault}
			}
			err = nil // reported by the next read
		} else if t.phase == phaseHead && t.wire.heads >= t.cur {
			// The header block of the request being read is complete:
			// the rest of it has until readTimeout.
			t.setPhase(phaseBody, false)
		}
	}
	return n, err
}

// SetReadDeadline is ignored while trackedConn owns the read deadline,
// and passed on once the connection is hijacked.
func (t *trackedConn) SetReadDeadline(d time.Time) error {
	if t.hijacked.Load() {
		return t.Conn.SetReadDeadline(d)
	}
	return nil
}

// SetDeadline sets only the write deadline, except for the zero time:
// fasthttp clears both deadlines only to hand the connection to a hijack
// handler (MCP notification streams), which from then on owns the
// connection — its deadlines, and bytes that are no longer HTTP requests.
func (t *trackedConn) SetDeadline(d time.Time) error {
	if d.IsZero() && !t.hijacked.Load() {
		t.mu.Lock()
		t.hijacked.Store(true)
		t.deadline = time.Time{}
		t.mu.Unlock()
	}
	if t.hijacked.Load() {
		return t.Conn.SetDeadline(d)
	}
	return t.Conn.SetWriteDeadline(d)
}

// connState is fasthttp's ConnState hook: it moves a tracked connection
// between the idle and the request phases.
func (t *trackedConn) connState(st fasthttp.ConnState) {
	switch st {
	case fasthttp.StateActive:
		t.busy.Store(true)
		// A request has begun (its first byte is in). Its header block
		// may already be complete (wireCheck saw it in the same read).
		phase := uint8(phaseHead)
		if t.wire.heads >= t.cur {
			phase = phaseBody
		}
		// The first request's time runs from the accept.
		t.setPhase(phase, t.cur > 1)
	case fasthttp.StateIdle:
		t.busy.Store(false)
		t.cur++
		t.setPhase(phaseIdle, true)
	}
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.c.unlink(t)
		t.c.release(t.a)
	})
	return t.Conn.Close()
}

// connStateHook is the Server's ConnState: only tracked connections have
// phases.
func connStateHook(c net.Conn, st fasthttp.ConnState) {
	if t, ok := c.(*trackedConn); ok {
		t.connState(st)
	}
}
