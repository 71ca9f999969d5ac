package xdp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeClock is a settable clock for the accept-time limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestAccept(t *testing.T, cfg Config) (*AcceptLimiter, *fakeClock) {
	t.Helper()
	a := NewAcceptLimiter(cfg)
	if err := a.Update(cfg); err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	a.now, a.start = clk.now, clk.t
	return a, clk
}

func TestAcceptLimiterBucket(t *testing.T) {
	a, clk := newTestAccept(t, Config{Rate: 10, Burst: 3})
	src, other := mustAddr("203.0.113.9"), mustAddr("2001:db8::9")
	expect := func(addr netip.Addr, want ...Verdict) {
		t.Helper()
		for i, w := range want {
			if got := a.Allow(addr); got != w {
				t.Fatalf("connection %d from %s: %s, want %s", i+1, addr, got, w)
			}
		}
	}
	expect(src, Accept, Accept, Accept, RejectRate)
	expect(other, Accept, Accept, Accept, RejectRate)
	clk.add(99 * time.Millisecond)
	expect(src, RejectRate)
	clk.add(time.Millisecond)
	expect(src, Accept, RejectRate)
	clk.add(time.Hour)
	expect(src, Accept, Accept, Accept, RejectRate)
	// An IPv4-mapped peer (dual-stack listener) is the same source.
	expect(mustAddr("::ffff:203.0.113.9"), RejectRate)

	if c := a.Counters(); c.Passed != 10 || c.DroppedRate != 6 {
		t.Fatalf("counters %+v", c)
	}
	top := a.TopSources(1)
	if len(top) != 1 || top[0] != (SourceStat{Addr: src, Passed: 7, Dropped: 5}) {
		t.Fatalf("top sources %+v", top)
	}
}

func TestAcceptLimiterDenyAndBlocks(t *testing.T) {
	a, clk := newTestAccept(t, Config{Deny: prefixes("198.51.100.0/24", "2001:db8:bad::/48")})
	tests := []struct {
		addr string
		want Verdict
	}{
		{"198.51.100.7", RejectDeny},
		{"::ffff:198.51.100.7", RejectDeny},
		{"198.51.101.7", Accept},
		{"2001:db8:bad:1::1", RejectDeny},
		{"2001:db8:bae::1", Accept},
	}
	for _, tt := range tests {
		if got := a.Allow(mustAddr(tt.addr)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.addr, got, tt.want)
		}
	}

	if err := a.Block(netip.MustParsePrefix("203.0.113.0/24"), time.Minute, "flood"); err != nil {
		t.Fatal(err)
	}
	if err := a.Block(netip.MustParsePrefix("203.0.113.9/32"), time.Second, "burst"); err != nil {
		t.Fatal(err)
	}
	if got := a.Allow(mustAddr("203.0.113.9")); got != RejectBlock {
		t.Fatalf("blocked: %s", got)
	}
	clk.add(2 * time.Second)
	if got := a.Allow(mustAddr("203.0.113.9")); got != RejectBlock {
		t.Fatalf("expired /32 inside a live /24: %s", got)
	}
	if n := len(a.Blocks()); n != 1 {
		t.Fatalf("%d active blocks, want 1", n)
	}
	if err := a.Unblock(netip.MustParsePrefix("203.0.113.0/24")); err != nil {
		t.Fatal(err)
	}
	if got := a.Allow(mustAddr("203.0.113.9")); got != Accept {
		t.Fatalf("after unblock: %s", got)
	}
	if err := a.Block(netip.Prefix{}, time.Second, ""); err == nil {
		t.Fatal("invalid prefix accepted")
	}
}

func TestAcceptLimiterUpdateKeepsBuckets(t *testing.T) {
	a, _ := newTestAccept(t, Config{Rate: 1, Burst: 1})
	src := mustAddr("203.0.113.9")
	if a.Allow(src) != Accept || a.Allow(src) != RejectRate {
		t.Fatal("burst of 1")
	}
	if err := a.Update(Config{Rate: -1}); err == nil {
		t.Fatal("invalid update accepted")
	}
	if a.Allow(src) != RejectRate {
		t.Fatal("invalid update changed the config")
	}
	if err := a.Update(Config{}); err != nil {
		t.Fatal(err)
	}
	if a.Allow(src) != Accept {
		t.Fatal("rate 0 still limits")
	}
}

func TestAcceptLimiterTableBounded(t *testing.T) {
	a, _ := newTestAccept(t, Config{Rate: 1, Burst: 1})
	var b [16]byte
	b[0] = 0x20
	for i := range maxSources + 100 {
		b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		a.Allow(netip.AddrFrom16(b))
	}
	if n := len(a.buckets); n > maxSources {
		t.Fatalf("%d buckets, more than %d", n, maxSources)
	}
}

// TestAcceptLimiterWrap drives a real listener on loopback: connections over
// the burst are closed at once, the rest are served.
func TestAcceptLimiterWrap(t *testing.T) {
	a := NewAcceptLimiter(Config{Rate: 0.001, Burst: 3})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := a.Wrap(raw)
	defer ln.Close()
	var served atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			_, _ = c.Write([]byte("ok"))
			c.Close()
		}
	}()

	var ok, rejected int
	for range 6 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if errors.Is(err, syscall.ECONNRESET) {
			rejected++ // reset before the dialer saw the handshake end
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		switch {
		case string(got) == "ok":
			ok++
		case len(got) == 0 && (err == nil || isReset(err)):
			rejected++
		default:
			t.Fatalf("read %q, %v", got, err)
		}
	}
	if ok != 3 || rejected != 3 || served.Load() != 3 {
		t.Fatalf("%d served, %d rejected (listener served %d); want 3 and 3", ok, rejected, served.Load())
	}
	if c := a.Counters(); c.Passed != 3 || c.DroppedRate != 3 {
		t.Fatalf("counters %+v", c)
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// TestAcceptLimiterConcurrent checks, under -race, that concurrent callers
// never get more than the burst out of one bucket.
func TestAcceptLimiterConcurrent(t *testing.T) {
	a := NewAcceptLimiter(Config{Rate: 0.001, Burst: 50})
	src := mustAddr("203.0.113.9")
	var accepted atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if a.Allow(src) == Accept {
					accepted.Add(1)
				}
				_ = a.Blocks()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			_ = a.Update(Config{Rate: 0.001, Burst: 50, Deny: prefixes("198.51.100.0/24")})
			_ = a.Block(netip.MustParsePrefix("198.51.100.0/24"), time.Minute, "")
		}
	}()
	wg.Wait()
	if n := accepted.Load(); n != 50 {
		t.Fatalf("%d accepted, want exactly the burst of 50", n)
	}
}

// TestLimiterWrapGate checks that a Limiter's wrapped listener enforces only
// while the fallback is in force.
func TestLimiterWrapGate(t *testing.T) {
	l := New(nil)
	defer l.Close()
	l.fallback.Update(Config{Deny: prefixes("127.0.0.0/8")})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.Wrap(raw)
	defer ln.Close()
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	dial := func() bool {
		c, err := net.Dial("tcp", raw.Addr().String())
		if errors.Is(err, syscall.ECONNRESET) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadAll(c)
		// Either way the server closed the connection, after the accept
		// loop had reported it if it accepted it.
		select {
		case <-accepted:
			return true
		default:
			return false
		}
	}
	if dial() {
		t.Fatal("fallback in force, denied peer accepted")
	}
	l.fbOn.Store(false) // as when XDP is attached
	if !dial() {
		t.Fatal("fallback dormant, peer rejected")
	}
}
