package limits

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type escalation struct {
	src   netip.Addr
	count int
}

// newTestEscalator returns an Escalator on a fake clock that records its
// callbacks.
func newTestEscalator(t testing.TB, opts EscalatorOptions) (*Escalator, *fakeClock, func() []escalation) {
	t.Helper()
	c := newFakeClock()
	var mu sync.Mutex
	var got []escalation
	opts.Clock = c.Now
	opts.OnEscalate = func(src netip.Addr, count int) {
		mu.Lock()
		got = append(got, escalation{src, count})
		mu.Unlock()
	}
	return NewEscalator(opts), c, func() []escalation {
		mu.Lock()
		defer mu.Unlock()
		return append([]escalation(nil), got...)
	}
}

func TestEscalatorThresholdAndOnce(t *testing.T) {
	e, c, calls := newTestEscalator(t, EscalatorOptions{After: 5, Within: 10 * time.Second, Block: time.Minute})
	src := netip.MustParseAddr("198.51.100.9")
	for i := range 4 {
		if e.Reject(src) {
			t.Fatalf("rejection %d escalated", i+1)
		}
		c.Advance(time.Second)
	}
	if !e.Reject(src) {
		t.Fatal("5th rejection did not escalate")
	}
	if got := calls(); len(got) != 1 || got[0].src != src || got[0].count != 5 {
		t.Fatalf("callbacks = %v", got)
	}
	// During the block: neither counted nor reported again.
	for range 100 {
		if e.Reject(src) {
			t.Fatal("escalated again during the block")
		}
	}
	c.Advance(time.Minute - time.Nanosecond)
	if e.Reject(src) {
		t.Fatal("escalated again just before the block ended")
	}
	c.Advance(time.Nanosecond)
	// The block is over: counting starts afresh.
	for range 4 {
		if e.Reject(src) {
			t.Fatal("escalated on stale counts after the block")
		}
	}
	if !e.Reject(src) {
		t.Fatal("did not escalate again after the block")
	}
	if got := calls(); len(got) != 2 {
		t.Fatalf("callbacks = %v, want 2", got)
	}
}

func TestEscalatorWindow(t *testing.T) {
	src := netip.MustParseAddr("2001:db8::7")
	tests := []struct {
		name string
		// rejections at these offsets (ms) from the first one
		at   []int
		want bool
	}{
		{"slow trickle never escalates", []int{0, 3000, 6000, 9000, 12000, 15000, 18000, 21000, 24000, 27000, 30000}, false},
		{"ten at once", []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, true},
		{"nine within, tenth long after", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 25000}, false},
		// Fixed windows [0,10s) and [10s,20s) would hold 6 and 5: a sliding
		// window of 10s over [0.5s,10.5s] holds 10.
		{"straddling a fixed window", []int{0, 9500, 9600, 9700, 9800, 9900, 10100, 10200, 10300, 10400, 10500}, true},
		{"steady at the threshold rate", []int{0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 12000, 13000}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, c, calls := newTestEscalator(t, EscalatorOptions{After: 10, Within: 10 * time.Second})
			start := c.Now()
			for _, ms := range tt.at {
				c.ns.Store(start + int64(ms)*int64(time.Millisecond))
				e.Reject(src)
			}
			if got := len(calls()) > 0; got != tt.want {
				t.Fatalf("escalated = %v, want %v (%v)", got, tt.want, calls())
			}
		})
	}
}

func TestEscalatorSameSource(t *testing.T) {
	e, _, calls := newTestEscalator(t, EscalatorOptions{After: 3})
	e.Reject(netip.MustParseAddr("192.0.2.1"))
	e.Reject(netip.MustParseAddr("::ffff:192.0.2.1"))
	e.Reject(netip.MustParseAddr("192.0.2.2"))
	if len(calls()) != 0 {
		t.Fatalf("escalated early: %v", calls())
	}
	e.Reject(netip.MustParseAddr("::ffff:192.0.2.1"))
	got := calls()
	if len(got) != 1 || got[0].src != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("callbacks = %v, want 192.0.2.1 (unmapped)", got)
	}
	e.Reject(netip.MustParseAddr("fe80::1%eth0"))
	e.Reject(netip.MustParseAddr("fe80::1%eth1"))
	e.Reject(netip.MustParseAddr("fe80::1"))
	if got := calls(); len(got) != 2 || got[1].src != netip.MustParseAddr("fe80::1") {
		t.Fatalf("zones: callbacks = %v", got)
	}
}

func TestEscalatorBoundedLRU(t *testing.T) {
	e, c, calls := newTestEscalator(t, EscalatorOptions{After: 50, MaxSources: 64, Shards: 4})
	hot := netip.MustParseAddr("203.0.113.1")
	for i := range 10_000 {
		e.Reject(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		if i%10 == 0 { // the hot source keeps being rejected
			e.Reject(hot)
		}
		c.Advance(time.Millisecond)
	}
	if n := e.Len(); n > 64 {
		t.Fatalf("Len = %d, want ≤ 64", n)
	}
	if got := calls(); len(got) != 1 || got[0].src != hot {
		t.Fatalf("callbacks = %v, want the hot source once (kept while recently used)", got)
	}
}

func TestEscalatorDisabled(t *testing.T) {
	var nilEsc *Escalator
	src := netip.MustParseAddr("192.0.2.1")
	if nilEsc.Reject(src) || nilEsc.Len() != 0 {
		t.Fatal("nil Escalator acted")
	}
	nilEsc.Forget(src)
	e, _, calls := newTestEscalator(t, EscalatorOptions{After: 0})
	for range 100 {
		e.Reject(src)
	}
	if len(calls()) != 0 || e.Len() != 0 {
		t.Fatal("disabled Escalator acted")
	}
}

func TestEscalatorForgetAndReentrantCallback(t *testing.T) {
	var e *Escalator
	var fired atomic.Int32
	e = NewEscalator(EscalatorOptions{After: 2, OnEscalate: func(src netip.Addr, _ int) {
		fired.Add(1)
		e.Forget(src) // calling back in must not deadlock
	}})
	src := netip.MustParseAddr("192.0.2.1")
	for range 6 {
		e.Reject(src)
	}
	if fired.Load() != 3 {
		t.Fatalf("fired %d times, want 3 (Forget clears the block)", fired.Load())
	}
}

func TestEscalatorConcurrentOnce(t *testing.T) {
	var fired atomic.Int32
	e := NewEscalator(EscalatorOptions{After: 100, Within: time.Hour, Block: time.Hour, MaxSources: 1000,
		OnEscalate: func(netip.Addr, int) { fired.Add(1) }})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				e.Reject(netip.MustParseAddr("192.0.2.99"))
				e.Reject(netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", w, i%200)))
			}
		}()
	}
	wg.Wait()
	if fired.Load() != 1 {
		t.Fatalf("fired %d times, want 1", fired.Load())
	}
	if e.Len() > 1000 {
		t.Fatalf("Len = %d", e.Len())
	}
}
