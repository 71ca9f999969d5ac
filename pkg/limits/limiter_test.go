package limits

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an injectable monotonic clock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(int64(time.Hour)) // not 0: a real clock is rarely at its origin
	return c
}

func (c *fakeClock) Now() int64              { return c.ns.Load() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestLimiter(t testing.TB, opts Options) (*Limiter, *fakeClock) {
	t.Helper()
	c := newFakeClock()
	opts.Clock = c.Now
	return New(opts), c
}

func TestBurstThenSteady(t *testing.T) {
	l, c := newTestLimiter(t, Options{})
	lim := LimitFrom(10, time.Second, 5)
	k := Key{Kind: KindConsumer, A: 1}
	for i := range 5 {
		d := l.Allow(k, lim)
		if !d.Allowed || d.Remaining != int64(4-i) {
			t.Fatalf("burst request %d: %+v", i, d)
		}
	}
	d := l.Allow(k, lim)
	if d.Allowed || d.RetryAfter != 100*time.Millisecond || d.Remaining != 0 || d.Reset != 500*time.Millisecond {
		t.Fatalf("6th request: %+v", d)
	}
	// Steady state: one request per interval.
	for i := range 20 {
		c.Advance(100 * time.Millisecond)
		if d := l.Allow(k, lim); !d.Allowed {
			t.Fatalf("steady request %d rejected: %+v", i, d)
		}
		if d := l.Allow(k, lim); d.Allowed {
			t.Fatalf("steady extra %d admitted: %+v", i, d)
		}
	}
}

func TestRetryAfterIsExact(t *testing.T) {
	lims := []Limit{
		LimitFrom(10, time.Second, 3),
		LimitFrom(1000, time.Minute, 0),
		LimitFrom(7, time.Hour, 2),
		LimitFrom(1, 24*time.Hour, 1),
		{Rate: 3, Burst: 1},
	}
	for _, lim := range lims {
		l, c := newTestLimiter(t, Options{})
		k := Key{Kind: KindTool, A: 9}
		for range 50 {
			d := l.Allow(k, lim)
			if d.Allowed {
				continue
			}
			if d.RetryAfter <= 0 {
				t.Fatalf("%+v: rejected without RetryAfter: %+v", lim, d)
			}
			c.Advance(d.RetryAfter - 1)
			if d2 := l.Allow(k, lim); d2.Allowed {
				t.Fatalf("%+v: admitted 1ns before RetryAfter: %+v", lim, d2)
			}
			c.Advance(1)
			if d2 := l.Allow(k, lim); !d2.Allowed {
				t.Fatalf("%+v: rejected at RetryAfter %v: %+v", lim, d.RetryAfter, d2)
			}
		}
	}
}

func TestResetMeansFull(t *testing.T) {
	l, c := newTestLimiter(t, Options{})
	lim := LimitFrom(100, time.Minute, 10)
	k := Key{Kind: KindTenant, A: 3}
	var d Decision
	for range 7 {
		d = l.Allow(k, lim)
	}
	if d.Remaining != 3 || d.Reset != 7*600*time.Millisecond {
		t.Fatalf("after 7: %+v", d)
	}
	c.Advance(d.Reset)
	if p := l.Peek(k, lim); p.Remaining != 10 || p.Reset != 0 || !p.Allowed {
		t.Fatalf("after Reset elapsed: %+v", p)
	}
}

func TestPeekDoesNotCharge(t *testing.T) {
	l, _ := newTestLimiter(t, Options{})
	lim := LimitFrom(1, time.Second, 1)
	k := Key{Kind: KindSource, A: 1}
	for range 3 {
		if d := l.Peek(k, lim); !d.Allowed || d.Remaining != 1 {
			t.Fatalf("peek: %+v", d)
		}
		if d := l.AllowN(k, lim, 0); !d.Allowed {
			t.Fatalf("AllowN(0): %+v", d)
		}
	}
	if l.Len() != 0 {
		t.Fatalf("peek stored state: Len = %d", l.Len())
	}
	l.Allow(k, lim)
	if d := l.Peek(k, lim); d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("peek after charge: %+v", d)
	}
}

func TestAllowN(t *testing.T) {
	l, c := newTestLimiter(t, Options{})
	lim := LimitFrom(10, time.Second, 10)
	k := Key{Kind: KindConsumer, A: 5}
	if d := l.AllowN(k, lim, 11); d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("n > burst: %+v", d)
	}
	if d := l.AllowN(k, lim, 7); !d.Allowed || d.Remaining != 3 {
		t.Fatalf("7: %+v", d)
	}
	d := l.AllowN(k, lim, 4)
	if d.Allowed || d.Remaining != 3 || d.RetryAfter != 100*time.Millisecond {
		t.Fatalf("4 of 3: %+v", d)
	}
	c.Advance(d.RetryAfter)
	if d := l.AllowN(k, lim, 4); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("4 after RetryAfter: %+v", d)
	}
}

func TestZeroLimitAdmitsWithoutState(t *testing.T) {
	l, _ := newTestLimiter(t, Options{})
	for range 100 {
		if d := l.Allow(Key{A: 1}, Limit{}); !d.Allowed || d.Limit != 0 {
			t.Fatalf("zero limit: %+v", d)
		}
	}
	if l.Len() != 0 {
		t.Fatalf("Len = %d", l.Len())
	}
}

func TestKeysAreIndependent(t *testing.T) {
	l, _ := newTestLimiter(t, Options{Shards: 1}) // one shard: all share a map
	lim := LimitFrom(1, time.Hour, 1)
	addr := netip.MustParseAddr("192.0.2.7")
	keys := []Key{
		{Kind: KindTenant, A: 1},
		{Kind: KindTool, A: 1},
		{Kind: KindTenant, A: 1, B: 1},
		{Kind: KindTenant, B: 1},
		AddrKey(KindSource, addr),
		AddrKey(KindSource, netip.MustParseAddr("192.0.2.8")),
		StringKey(KindConsumer, "alice"),
		StringKey(KindConsumer, "bob"),
		StringKey(KindTenant, "alice"),
	}
	for _, k := range keys {
		if d := l.Allow(k, lim); !d.Allowed {
			t.Fatalf("%+v shares a bucket with an earlier key", k)
		}
	}
	if d := l.Allow(AddrKey(KindSource, netip.AddrFrom16(addr.As16())), lim); d.Allowed {
		t.Fatal("IPv4-mapped address is a different key from its IPv4 form")
	}
	if d := l.Allow(BytesKey(KindConsumer, []byte("alice")), lim); d.Allowed {
		t.Fatal("BytesKey differs from StringKey")
	}
	if got := AddrKey(KindSource, addr).Addr(); got != addr {
		t.Fatalf("Addr() = %v, want %v", got, addr)
	}
}

func TestLimitChange(t *testing.T) {
	k := Key{Kind: KindTool, A: 77}
	t.Run("tightened applies at once", func(t *testing.T) {
		l, c := newTestLimiter(t, Options{})
		loose, tight := LimitFrom(1000, time.Second, 1000), LimitFrom(1, time.Second, 2)
		for range 10 {
			l.Allow(k, loose)
		}
		// 10ms of debt fits the tight bucket (2s): one more tight request fits.
		if d := l.Allow(k, tight); !d.Allowed {
			t.Fatalf("first tight request: %+v", d)
		}
		if d := l.Allow(k, tight); d.Allowed {
			t.Fatalf("second tight request (bucket now 1.01s of 2s): %+v", d)
		}
		c.Advance(time.Second)
		if d := l.Allow(k, tight); !d.Allowed {
			t.Fatalf("after 1s: %+v", d)
		}
	})
	t.Run("tightened keeps the debt in time", func(t *testing.T) {
		l, c := newTestLimiter(t, Options{})
		loose, tight := LimitFrom(100, time.Second, 100), LimitFrom(1, time.Minute, 1)
		for range 200 {
			l.Allow(k, loose) // 1s of debt
		}
		d := l.Allow(k, tight) // 1s used of a 1min bucket that needs 1min free
		if d.Allowed || d.RetryAfter != time.Second {
			t.Fatalf("tight on exhausted: %+v", d)
		}
		c.Advance(time.Second)
		if d := l.Allow(k, tight); !d.Allowed {
			t.Fatalf("after the debt: %+v", d)
		}
		if d := l.Allow(k, tight); d.Allowed || d.RetryAfter != time.Minute {
			t.Fatalf("then the tight limit: %+v", d)
		}
	})
	t.Run("loosened carries no long lockout", func(t *testing.T) {
		l, c := newTestLimiter(t, Options{})
		daily, fast := LimitFrom(1, 24*time.Hour, 1), LimitFrom(100, time.Second, 10)
		l.Allow(k, daily)
		if d := l.Allow(k, daily); d.Allowed || d.RetryAfter != 24*time.Hour {
			t.Fatalf("daily: %+v", d)
		}
		d := l.Allow(k, fast)
		if d.Allowed || d.RetryAfter != 10*time.Millisecond {
			t.Fatalf("loosened: want a wait of one new interval, got %+v", d)
		}
		c.Advance(10 * time.Millisecond)
		if d := l.Allow(k, fast); !d.Allowed {
			t.Fatalf("loosened after one interval: %+v", d)
		}
		c.Advance(100 * time.Millisecond)
		for i := range 10 {
			if d := l.Allow(k, fast); !d.Allowed {
				t.Fatalf("loosened burst %d: %+v", i, d)
			}
		}
	})
	t.Run("zero limit then limit again", func(t *testing.T) {
		l, _ := newTestLimiter(t, Options{})
		lim := LimitFrom(1, time.Second, 1)
		l.Allow(k, lim)
		if d := l.Allow(k, Limit{}); !d.Allowed {
			t.Fatalf("limit removed: %+v", d)
		}
		if d := l.Allow(k, lim); d.Allowed {
			t.Fatalf("limit restored keeps the debt: %+v", d)
		}
	})
}

func TestResetKey(t *testing.T) {
	l, _ := newTestLimiter(t, Options{})
	lim := LimitFrom(1, time.Hour, 1)
	k := Key{Kind: KindSource, A: 4}
	l.Allow(k, lim)
	l.Reset(k)
	if d := l.Allow(k, lim); !d.Allowed {
		t.Fatalf("after Reset: %+v", d)
	}
}

func TestSweep(t *testing.T) {
	l, c := newTestLimiter(t, Options{IdleTTL: 10 * time.Second, Shards: 4})
	fast := LimitFrom(1, time.Second, 1)
	slow := LimitFrom(1, time.Hour, 1)
	for i := range 100 {
		l.Allow(Key{Kind: KindSource, A: uint64(i)}, fast)
		l.Allow(Key{Kind: KindConsumer, A: uint64(i)}, slow)
	}
	if l.Len() != 200 {
		t.Fatalf("Len = %d, want 200", l.Len())
	}
	c.Advance(5 * time.Second) // fast buckets full for 4s < IdleTTL
	l.Sweep()
	if l.Len() != 200 {
		t.Fatalf("after 5s: Len = %d, want 200", l.Len())
	}
	c.Advance(6 * time.Second) // fast buckets full for 10s
	l.Sweep()
	if l.Len() != 100 {
		t.Fatalf("after 11s: Len = %d, want 100", l.Len())
	}
	// Slow keys are still in debt and must keep it.
	if d := l.Allow(Key{Kind: KindConsumer, A: 3}, slow); d.Allowed {
		t.Fatalf("swept key in debt: %+v", d)
	}
	c.Advance(time.Hour + 10*time.Second)
	l.Sweep()
	if l.Len() != 0 {
		t.Fatalf("after an hour: Len = %d", l.Len())
	}
}

func TestSweepShrinksTables(t *testing.T) {
	l, c := newTestLimiter(t, Options{Shards: 1, IdleTTL: time.Second})
	lim := LimitFrom(1, time.Second, 1)
	for i := range 5000 {
		l.Allow(Key{A: uint64(i)}, lim)
	}
	if n := len(l.shards[0].t.slots); n < 5000*4/3 {
		t.Fatalf("table has %d slots for 5000 keys", n)
	}
	c.Advance(3 * time.Second)
	l.Allow(Key{A: 1 << 40}, lim)
	l.Sweep()
	if l.Len() != 1 || len(l.shards[0].t.slots) != minSlots {
		t.Fatalf("Len = %d, slots = %d, want 1, %d", l.Len(), len(l.shards[0].t.slots), minSlots)
	}
	if d := l.Allow(Key{A: 1 << 40}, lim); d.Allowed {
		t.Fatalf("the surviving key lost its state: %+v", d)
	}
}

func TestMaxKeysBound(t *testing.T) {
	const maxKeys = 1000
	l, c := newTestLimiter(t, Options{Shards: 8, MaxKeys: maxKeys})
	lim := LimitFrom(1, time.Hour, 2) // every key stays in debt
	for i := range 100_000 {
		l.Allow(Key{Kind: KindSource, A: uint64(i)}, lim)
		if i%997 == 0 {
			c.Advance(time.Millisecond)
		}
	}
	if n := l.Len(); n > maxKeys || n < maxKeys*9/10 {
		t.Fatalf("Len = %d, want close to but not above %d", n, maxKeys)
	}
	// A hot key that keeps being used is charged on every request; even when
	// evicted it cannot take more than one extra burst per eviction.
	hot := Key{Kind: KindConsumer, A: 1}
	admitted := 0
	for range 100 {
		if l.Allow(hot, lim).Allowed {
			admitted++
		}
	}
	if admitted != 2 {
		t.Fatalf("hot key admitted %d of 100 with burst 2", admitted)
	}
}

func TestStartStop(t *testing.T) {
	l, c := newTestLimiter(t, Options{IdleTTL: time.Millisecond})
	l.Allow(Key{A: 1}, LimitFrom(1, time.Millisecond, 1))
	c.Advance(time.Second)
	l.Stop() // without Start: no-op
	l.Start(time.Millisecond)
	l.Start(time.Millisecond) // second Start: no-op
	deadline := time.Now().Add(10 * time.Second)
	for l.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	l.Stop()
	l.Stop()
	if l.Len() != 0 {
		t.Fatal("background sweep did not drop the idle key")
	}
}

func TestClockOutOfRange(t *testing.T) {
	var now atomic.Int64
	l := New(Options{Clock: now.Load})
	lim := LimitFrom(1, 24*time.Hour, 3)
	for _, ts := range []int64{-1 << 63, -1, 0, 1 << 62, 1<<63 - 1} {
		now.Store(ts)
		for range 5 {
			d := l.Allow(Key{A: 1}, lim)
			if d.Remaining < 0 || d.Reset < 0 || (!d.Allowed && d.RetryAfter <= 0) {
				t.Fatalf("clock %d: %+v", ts, d)
			}
		}
	}
}

func TestShardsRoundUp(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, 256}, {1, 1}, {3, 4}, {256, 256}, {300, 512}} {
		if got := len(New(Options{Shards: tt.in}).shards); got != tt.want {
			t.Errorf("Shards %d: got %d shards, want %d", tt.in, got, tt.want)
		}
	}
}

// TestOldClockReadingsNeverRefund feeds the limiter clock readings that lag
// (as when a goroutine reads the clock, is descheduled, and takes the lock
// after others have charged the key): they may only make it stricter.
func TestOldClockReadingsNeverRefund(t *testing.T) {
	var real int64 = int64(time.Hour)
	calls := 0
	l := New(Options{Clock: func() int64 {
		calls++
		if calls%2 == 0 {
			return real - int64(400*time.Millisecond)
		}
		return real
	}})
	lim := LimitFrom(10, time.Second, 5)
	k := Key{Kind: KindTenant, A: 1}
	admitted := 0
	const steps = 1000 // 10s in 10ms steps
	for range steps {
		real += int64(10 * time.Millisecond)
		for range 3 {
			if l.Allow(k, lim).Allowed {
				admitted++
			}
		}
	}
	if max := 5 + steps/10 + 1; admitted > max {
		t.Fatalf("admitted %d, more than %d", admitted, max)
	}
	if admitted < 90 {
		t.Fatalf("admitted only %d", admitted)
	}
}
