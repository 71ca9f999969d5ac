package redislimit

import (
	"math/rand/v2"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/limits"
)

// TestLeaseTableMatchesMap drives random puts and deletes through the
// table and a Go map and requires the same contents after every step,
// across growth and shrinking.
func TestLeaseTableMatchesMap(t *testing.T) {
	const seed = 0x1234567
	rng := rand.New(rand.NewPCG(1, 2))
	tb := newLeaseTable(minLeaseSlots)
	ref := map[limits.Key]*lease{}
	keyOf := func() limits.Key {
		// Few distinct keys, so that deletes hit and clusters form.
		return limits.Key{Kind: limits.Kind(rng.IntN(3)), A: uint64(rng.IntN(200)), B: uint64(rng.IntN(2))}
	}
	for step := range 20000 {
		k := keyOf()
		h := hash(k, seed)
		if rng.IntN(2) == 0 {
			if ref[k] == nil {
				ls := &lease{key: k}
				ref[k] = ls
				tb.put(k, h, ls, seed)
			}
		} else {
			delete(ref, k)
			tb.del(k, h, seed)
		}
		if tb.n != len(ref) {
			t.Fatalf("step %d: table holds %d, map %d", step, tb.n, len(ref))
		}
		if step%500 == 0 {
			for k, ls := range ref {
				if got := tb.get(k, hash(k, seed)); got != ls {
					t.Fatalf("step %d: get(%v) = %p, want %p", step, k, got, ls)
				}
			}
		}
	}
	for k := range ref {
		tb.del(k, hash(k, seed), seed)
	}
	if tb.n != 0 || len(tb.slots) != minLeaseSlots {
		t.Fatalf("emptied table: n %d, %d slots", tb.n, len(tb.slots))
	}
}

// TestMaxKeysBound: past MaxKeys, idle leases (holding nothing) make room,
// so a flood of distinct sources cannot grow lease state without bound.
func TestMaxKeysBound(t *testing.T) {
	l := New(Options{Conn: Conn{Addr: closedAddr(t)}, MaxKeys: 256})
	defer l.Close()
	for i := range 5000 {
		k := limits.Key{Kind: limits.KindSource, A: uint64(i)}
		s := &l.shards[hash(k, l.seed)%nShards]
		s.mu.Lock()
		ls := l.leaseFor(s, k, hash(k, l.seed), limits.Shape{Interval: 1, Burst: 1, Capacity: 1, Count: 1}, int64(i))
		ls.used = int64(i)
		s.mu.Unlock()
	}
	if n := l.Status().Keys; n > 256+nShards {
		t.Fatalf("%d keys held, bound 256", n)
	}
}
