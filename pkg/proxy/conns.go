package proxy

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// connLimiter caps concurrent connections per source address (slowloris
// and connection floods from one client cannot pin the gateway's memory
// or goroutines) and counts active connections. The cap is read from the
// live revision on every accept.
type connLimiter struct {
	max    func() int
	total  atomic.Int64
	shards [64]connShard
}

type connShard struct {
	mu sync.Mutex
	n  map[netip.Addr]int
}

func newConnLimiter(max func() int) *connLimiter {
	c := &connLimiter{max: max}
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
		return &trackedConn{Conn: conn, c: l.c, a: a}, nil
	}
}

type trackedConn struct {
	net.Conn
	c    *connLimiter
	a    netip.Addr
	once sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() { t.c.release(t.a) })
	return t.Conn.Close()
}
