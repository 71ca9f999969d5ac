package limits

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestAllowAllNoPartialCharge(t *testing.T) {
	l, c := newTestLimiter(t, Options{})
	tenant, tool := Key{Kind: KindTenant, A: 1}, Key{Kind: KindTool, A: 1}
	consumer := StringKey(KindConsumer, "alice")
	keys := []Key{tenant, tool, consumer}
	lims := []Limit{LimitFrom(100, time.Second, 100), LimitFrom(10, time.Second, 10), LimitFrom(1, time.Second, 2)}

	for i := range 2 {
		if d := l.AllowAll(keys, lims); !d.Allowed {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	for range 5 { // the consumer limit rejects; nothing else may be charged
		d := l.AllowAll(keys, lims)
		if d.Allowed || d.Index != 2 || d.Limit != 1 || d.RetryAfter != time.Second {
			t.Fatalf("rejected request: %+v", d)
		}
	}
	if d := l.Peek(tenant, lims[0]); d.Remaining != 98 {
		t.Fatalf("tenant charged by rejected requests: remaining %d, want 98", d.Remaining)
	}
	if d := l.Peek(tool, lims[1]); d.Remaining != 8 {
		t.Fatalf("tool charged by rejected requests: remaining %d, want 8", d.Remaining)
	}
	c.Advance(time.Second)
	if d := l.AllowAll(keys, lims); !d.Allowed {
		t.Fatalf("after RetryAfter: %+v", d)
	}
}

func TestAllowAllMostRestrictive(t *testing.T) {
	l, _ := newTestLimiter(t, Options{})
	a, b, c := Key{A: 1}, Key{A: 2}, Key{A: 3}
	lims := []Limit{LimitFrom(10, time.Second, 10), LimitFrom(100, time.Second, 3), LimitFrom(1000, time.Second, 50)}
	d := l.AllowAll([]Key{a, b, c}, lims)
	if !d.Allowed || d.Index != 1 || d.Remaining != 2 || d.Limit != 100 {
		t.Fatalf("admitted: want the fewest remaining (index 1), got %+v", d)
	}
	// Both a (1/min) and b (1/s) reject: report the longer wait.
	l2, _ := newTestLimiter(t, Options{})
	lims = []Limit{LimitFrom(1, time.Second, 1), LimitFrom(1, time.Minute, 1), LimitFrom(10, time.Second, 10)}
	l2.AllowAll([]Key{a, b, c}, lims)
	d = l2.AllowAll([]Key{a, b, c}, lims)
	if d.Allowed || d.Index != 1 || d.RetryAfter != time.Minute {
		t.Fatalf("rejected: want the longest RetryAfter (index 1), got %+v", d)
	}
}

func TestAllowAllSkipsZeroLimits(t *testing.T) {
	l, _ := newTestLimiter(t, Options{})
	keys := []Key{{A: 1}, {A: 2}}
	if d := l.AllowAll(keys, []Limit{{}, {}}); !d.Allowed || d.Limit != 0 {
		t.Fatalf("all unlimited: %+v", d)
	}
	d := l.AllowAll(keys, []Limit{{}, LimitFrom(1, time.Second, 1)})
	if !d.Allowed || d.Index != 1 {
		t.Fatalf("one limited: %+v", d)
	}
	if d := l.AllowAll(nil, nil); !d.Allowed {
		t.Fatalf("no keys: %+v", d)
	}
	if l.Len() != 1 {
		t.Fatalf("Len = %d, want 1", l.Len())
	}
}

func TestAllowAllDuplicateKey(t *testing.T) {
	l, _ := newTestLimiter(t, Options{})
	k := Key{A: 1}
	lim := LimitFrom(10, time.Second, 3)
	if d := l.AllowAll([]Key{k, k}, []Limit{lim, lim}); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("first pair: %+v", d)
	}
	if d := l.AllowAll([]Key{k, k}, []Limit{lim, lim}); d.Allowed {
		t.Fatalf("second pair fits 1 of 2: %+v", d)
	}
	if d := l.Peek(k, lim); d.Remaining != 1 {
		t.Fatalf("rejected pair charged: %+v", d)
	}
}

func TestAllowAllManyKeys(t *testing.T) {
	l, _ := newTestLimiter(t, Options{Shards: 4})
	var keys []Key
	var lims []Limit
	for i := range 40 { // more than maxStackKeys, and shards shared
		keys = append(keys, Key{A: uint64(i)})
		lims = append(lims, LimitFrom(1, time.Second, 1))
	}
	if d := l.AllowAll(keys, lims); !d.Allowed {
		t.Fatalf("first: %+v", d)
	}
	if d := l.AllowAll(keys, lims); d.Allowed {
		t.Fatalf("second: %+v", d)
	}
	if l.Len() != 40 {
		t.Fatalf("Len = %d", l.Len())
	}
}

func TestAllowAllLengthMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	New(Options{}).AllowAll([]Key{{}}, nil)
}

func TestAllowAllClampSticksWhenRejected(t *testing.T) {
	l, c := newTestLimiter(t, Options{})
	a, b := Key{A: 1}, Key{A: 2}
	daily := LimitFrom(1, 24*time.Hour, 1)
	l.Allow(a, daily)
	l.Allow(a, daily)
	// Reload: a's limit is now 10/s. b rejects (burst used), a's clamp must
	// still be stored so that a is not locked out for a day.
	fast, bLim := LimitFrom(10, time.Second, 1), LimitFrom(1, time.Second, 1)
	l.Allow(b, bLim)
	if d := l.AllowAll([]Key{a, b}, []Limit{fast, bLim}); d.Allowed {
		t.Fatalf("b should reject: %+v", d)
	}
	c.Advance(100 * time.Millisecond)
	if d := l.Allow(a, fast); !d.Allowed {
		t.Fatalf("a locked out by its old limit: %+v", d)
	}
}

// TestAllowAllConcurrentExact runs overlapping AllowAll calls from many
// goroutines with a frozen clock: exactly the tightest burst may pass, no
// call may deadlock, and no key may be charged by rejected calls.
func TestAllowAllConcurrentExact(t *testing.T) {
	l, _ := newTestLimiter(t, Options{Shards: 8})
	shared := Key{Kind: KindTenant, A: 1}
	const workers, perWorker, sharedBurst = 8, 200, 300
	sharedLim := LimitFrom(1, time.Hour, sharedBurst)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := Key{Kind: KindConsumer, A: uint64(w)}
			tool := Key{Kind: KindTool, A: uint64(w % 3)}
			// Alternate key order so that lock order must not follow it.
			for i := range perWorker {
				keys := []Key{shared, own, tool}
				if i%2 == 1 {
					keys = []Key{tool, own, shared}
				}
				lims := []Limit{sharedLim, LimitFrom(1, time.Hour, 1000), LimitFrom(1, time.Hour, 1000)}
				if i%2 == 1 {
					lims = []Limit{lims[2], lims[1], lims[0]}
				}
				if l.AllowAll(keys, lims).Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got != sharedBurst {
		t.Fatalf("admitted %d, want exactly %d", got, sharedBurst)
	}
	// Every admitted call charged its own key once; rejected calls none.
	var charged int64
	for w := range workers {
		d := l.Peek(Key{Kind: KindConsumer, A: uint64(w)}, LimitFrom(1, time.Hour, 1000))
		charged += 1000 - d.Remaining
	}
	if charged != sharedBurst {
		t.Fatalf("consumer keys charged %d times, want %d", charged, sharedBurst)
	}
}
