package xdp

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// AcceptLimiter is the userspace fallback for when XDP cannot run: it
// enforces the deny list, the blocks and the per-source token bucket when a
// connection is accepted, closing rejected connections at once (with a
// reset, so they leave no TIME_WAIT behind). It counts connections, whatever
// Config.Count says, and ignores Config.Ports and Interfaces: the listeners
// it wraps are the protected ports. Safe for concurrent use.
type AcceptLimiter struct {
	mu      sync.Mutex
	step    time.Duration
	tol     time.Duration
	deny    prefixTable[struct{}]
	buckets map[netip.Addr]*acceptBucket
	start   time.Time
	now     func() time.Time // injectable for tests
	blocks  *blockSet
	// gate, when set, turns enforcement off while it returns false (the
	// Limiter's fallback is dormant while XDP is in force).
	gate func() bool

	passed, droppedRate, droppedDeny, droppedBlock atomic.Uint64
}

type acceptBucket struct {
	tat             time.Duration // since start
	passed, dropped uint64
}

// NewAcceptLimiter returns a fallback limiter enforcing cfg. A cfg that
// Config.Validate rejects limits nothing until Update accepts a valid one.
func NewAcceptLimiter(cfg Config) *AcceptLimiter {
	a := &AcceptLimiter{
		buckets: make(map[netip.Addr]*acceptBucket),
		start:   time.Now(),
		now:     time.Now,
		blocks:  &blockSet{},
	}
	_ = a.Update(cfg)
	return a
}

// Update replaces the limiter's config; buckets and blocks are kept. An
// invalid cfg is an error and changes nothing.
func (a *AcceptLimiter) Update(cfg Config) error {
	s, err := cfg.settings()
	if err != nil {
		return err
	}
	var deny prefixTable[struct{}]
	for _, p := range s.deny {
		deny.set(p, struct{}{})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.step, a.tol, a.deny = s.step, s.tolerance, deny
	return nil
}

// Verdict is what the accept-time limiter decided about a connection.
type Verdict int

// Verdicts.
const (
	Accept Verdict = iota
	RejectRate
	RejectDeny
	RejectBlock
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case RejectRate:
		return "reject_rate"
	case RejectDeny:
		return "reject_deny"
	case RejectBlock:
		return "reject_block"
	}
	return "unknown"
}

// Allow decides about one connection from addr and takes a token if it is
// accepted.
func (a *AcceptLimiter) Allow(addr netip.Addr) Verdict {
	addr = canonicalAddr(addr)
	now := a.now()
	a.mu.Lock()
	v := a.decideLocked(addr, now)
	a.mu.Unlock()
	switch v {
	case Accept:
		a.passed.Add(1)
	case RejectRate:
		a.droppedRate.Add(1)
	case RejectDeny:
		a.droppedDeny.Add(1)
	case RejectBlock:
		a.droppedBlock.Add(1)
	}
	return v
}

func (a *AcceptLimiter) decideLocked(addr netip.Addr, now time.Time) Verdict {
	if a.deny.contains(addr) {
		return RejectDeny
	}
	if a.blocks.blocked(addr, now) {
		return RejectBlock
	}
	if a.step == 0 {
		return Accept
	}
	t := now.Sub(a.start)
	b := a.buckets[addr]
	if b == nil {
		a.makeRoomLocked(t)
		b = &acceptBucket{}
		a.buckets[addr] = b
	}
	// The same GCRA as the kernel's take_token.
	base := max(b.tat, t)
	if base-t > a.tol {
		b.dropped++
		return RejectRate
	}
	b.tat = base + a.step
	b.passed++
	return Accept
}

// makeRoomLocked keeps the bucket table within maxSources. When it is full
// it first forgets sources whose bucket has refilled (forgetting them
// changes nothing), then, if a flood of sources keeps it full, arbitrary
// ones, like the kernel's LRU. It frees a sixteenth of the table at a time
// so that a flood of new sources costs O(1) per connection, amortized.
func (a *AcceptLimiter) makeRoomLocked(t time.Duration) {
	if len(a.buckets) < maxSources {
		return
	}
	for k, b := range a.buckets {
		if b.tat <= t {
			delete(a.buckets, k)
		}
	}
	for k := range a.buckets {
		if len(a.buckets) <= maxSources-maxSources/16 {
			break
		}
		delete(a.buckets, k)
	}
}

// TopSources returns up to n sources with the most rejections for rate (then
// the most connections accepted).
func (a *AcceptLimiter) TopSources(n int) []SourceStat {
	a.mu.Lock()
	out := make([]SourceStat, 0, len(a.buckets))
	for addr, b := range a.buckets {
		out = append(out, SourceStat{Addr: addr, Passed: b.passed, Dropped: b.dropped})
	}
	a.mu.Unlock()
	sortSources(out)
	return out[:min(n, len(out))]
}

func (a *AcceptLimiter) trackedSources() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.buckets)
}

// Block rejects connections from p for d.
func (a *AcceptLimiter) Block(p netip.Prefix, d time.Duration, reason string) error {
	b, err := newBlock(p, d, reason, a.now())
	if err != nil {
		return err
	}
	a.blocks.put(b)
	return nil
}

// Unblock lifts the block on p (as given to Block). Unblocking a prefix that
// is not blocked is not an error.
func (a *AcceptLimiter) Unblock(p netip.Prefix) error {
	cp, err := canonicalPrefix(p)
	if err != nil {
		return err
	}
	a.blocks.remove(cp)
	return nil
}

// Blocks returns the blocks in force.
func (a *AcceptLimiter) Blocks() []Block { return a.blocks.list(a.now(), true) }

// Counters reports connections accepted and rejected, in Counters' fields.
func (a *AcceptLimiter) Counters() Counters {
	return Counters{
		Passed:       a.passed.Load(),
		DroppedRate:  a.droppedRate.Load(),
		DroppedDeny:  a.droppedDeny.Load(),
		DroppedBlock: a.droppedBlock.Load(),
	}
}

// Wrap returns a listener whose Accept only returns connections the limiter
// accepts; it closes the others itself.
func (a *AcceptLimiter) Wrap(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, lim: a}
}

type limitedListener struct {
	net.Listener
	lim *AcceptLimiter
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.lim.gate != nil && !l.lim.gate() {
			return c, nil
		}
		addr, ok := remoteAddr(c)
		if !ok || l.lim.Allow(addr) == Accept {
			return c, nil
		}
		reject(c)
	}
}

// remoteAddr returns the peer's IP address, if the connection has one.
func remoteAddr(c net.Conn) (netip.Addr, bool) {
	switch ra := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return ra.AddrPort().Addr(), true
	case *net.UDPAddr:
		return ra.AddrPort().Addr(), true
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}

// reject closes c, with a reset for TCP.
func reject(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
