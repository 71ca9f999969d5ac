package redislimit

import (
	"container/heap"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/limits"
)

// refiller holds the leases waiting for a background call: those a request
// found running low (queue) and those whose bucket was empty, due again
// when Redis said a token would be there (due).
type refiller struct {
	mu    sync.Mutex
	queue []*lease
	due   dueHeap
	wake  chan struct{}
}

func (r *refiller) init() { r.wake = make(chan struct{}, 1) }

// push queues ls, whose fetch marker the caller has set.
func (r *refiller) push(ls *lease) {
	r.mu.Lock()
	r.queue = append(r.queue, ls)
	r.mu.Unlock()
	r.signal()
}

// schedule queues ls for a refill at local time at.
func (r *refiller) schedule(ls *lease, at int64) {
	r.mu.Lock()
	heap.Push(&r.due, dueItem{at: at, ls: ls})
	r.mu.Unlock()
	r.signal()
}

func (r *refiller) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

type dueItem struct {
	at int64
	ls *lease
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// dueAt is when to ask again for a key Redis had no token for: when it
// said the next token would be there, plus a random part of the time the
// other data planes' tokens take. Data planes contending for one key then
// take turns instead of all asking at the same instant, when only one of
// them can win; the tokens they leave stay in the bucket for the next ask
// (a bucket below its burst loses nothing), so this costs no accuracy and
// saves most of the calls that would come back empty.
func (l *Limiter) dueAt(s limits.Shape, start int64, retry time.Duration) int64 {
	at := start + int64(retry)
	if n := l.peers(); n > 1 {
		at += rand.Int64N(int64(n-1)*int64(s.Interval) + 1)
	}
	return at
}

// batchSize bounds the keys of one background call, so that one call's
// time in Redis (which runs scripts one at a time) stays short.
const batchSize = 64

// refillLoop runs the background calls: queued refills, scheduled ones
// when due, and every half lease lifetime a sweep that returns unused
// tokens and drops idle leases.
func (l *Limiter) refillLoop() {
	defer l.wg.Done()
	sweep := time.NewTicker(l.ttl / 2)
	defer sweep.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []*lease
	for {
		batch = l.takeRefills(batch[:0])
		if len(batch) > 0 {
			for len(batch) > 0 {
				n := min(len(batch), batchSize)
				l.refillBatch(batch[:n])
				batch = batch[n:]
			}
			continue
		}
		wait := time.Hour
		l.refill.mu.Lock()
		if len(l.refill.due) > 0 {
			wait = time.Duration(l.refill.due[0].at - l.clock())
		}
		l.refill.mu.Unlock()
		timer.Reset(max(wait, 0))
		select {
		case <-l.ctx.Done():
			return
		case <-l.refill.wake:
		case <-timer.C:
		case <-sweep.C:
			l.sweep()
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// takeRefills moves the queued leases and the scheduled ones that are due
// into batch. A scheduled lease is refilled only if it still has demand
// and no call in flight; it then gets its fetch marker here.
func (l *Limiter) takeRefills(batch []*lease) []*lease {
	now := l.clock()
	var due []*lease
	l.refill.mu.Lock()
	batch = append(batch, l.refill.queue...)
	clear(l.refill.queue)
	l.refill.queue = l.refill.queue[:0]
	for len(l.refill.due) > 0 && l.refill.due[0].at <= now {
		due = append(due, heap.Pop(&l.refill.due).(dueItem).ls)
	}
	l.refill.mu.Unlock()
	for _, ls := range due {
		s := &l.shards[l.shardOf(ls.key)]
		s.mu.Lock()
		ls.scheduled = false
		if !ls.dead && ls.fetch == nil && ls.tokens == 0 {
			ls.size(now, l)
			if ls.busy(l) {
				ls.fetch = make(chan struct{})
				batch = append(batch, ls)
			}
		}
		s.mu.Unlock()
	}
	return batch
}

// refillBatch tops up the leases of batch in one call, each key on its own
// (a key whose bucket is empty does not hold up the others). Every lease
// in batch has its fetch marker set; it is cleared here.
func (l *Limiter) refillBatch(batch []*lease) {
	ops := make([]op, len(batch))
	res := make([]result, len(batch))
	down := l.down.Load()
	for i, ls := range batch {
		s := &l.shards[l.shardOf(ls.key)]
		s.mu.Lock()
		ops[i] = op{name: keyName(l.prefix, ls.key), shape: ls.shape, want: max(1, ls.want-ls.tokens), need: 1}
		s.mu.Unlock()
	}
	start := l.clock()
	var err error
	if !down {
		_, err = l.call(ops, false, res, false)
	}
	for i, ls := range batch {
		s := &l.shards[l.shardOf(ls.key)]
		s.mu.Lock()
		var wait time.Duration
		var sched bool
		if !down && err == nil {
			wait, sched = ls.apply(ops[i].shape, res[i], start, l)
		}
		if ch := ls.fetch; ch != nil {
			ls.fetch = nil
			close(ch)
		}
		s.mu.Unlock()
		if sched {
			l.refill.schedule(ls, l.dueAt(ops[i].shape, start, wait))
		}
	}
}

// sweep returns the tokens of leases unused for a lease lifetime and
// drops leases idle for idleTTL.
func (l *Limiter) sweep() {
	now := l.clock()
	var back []op
	var drop []*lease
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		drop = drop[:0]
		for _, sl := range s.t.slots {
			ls := sl.ls
			if ls == nil || ls.fetch != nil || ls.scheduled {
				continue
			}
			idle := time.Duration(now - ls.used)
			if ls.tokens > 0 && idle > l.ttl {
				back = append(back, op{name: keyName(l.prefix, ls.key), shape: ls.shape, want: -ls.tokens})
				ls.tokens = 0
			}
			if ls.tokens == 0 && idle > idleTTL {
				drop = append(drop, ls)
			}
		}
		for _, ls := range drop {
			ls.dead = true
			s.t.del(ls.key, hash(ls.key, l.seed), l.seed)
		}
		s.mu.Unlock()
	}
	l.giveBack(back)
}

// returnAll hands every unspent token back (on Close).
func (l *Limiter) returnAll() {
	var back []op
	l.eachLease(func(ls *lease) {
		if ls.tokens > 0 {
			back = append(back, op{name: keyName(l.prefix, ls.key), shape: ls.shape, want: -ls.tokens})
			ls.tokens = 0
		}
	})
	l.giveBack(back)
}

// eachLease calls fn for every lease, with its shard locked.
func (l *Limiter) eachLease(fn func(*lease)) {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for _, sl := range s.t.slots {
			if sl.ls != nil {
				fn(sl.ls)
			}
		}
		s.mu.Unlock()
	}
}

// giveBack returns tokens in batches. Returning is best effort: tokens
// that cannot be returned are lost to the fleet until their bucket
// refills, which only ever under-admits.
func (l *Limiter) giveBack(back []op) {
	if len(back) == 0 || l.down.Load() {
		return
	}
	res := make([]result, min(len(back), batchSize))
	for len(back) > 0 {
		n := min(len(back), batchSize)
		if _, err := l.callBackground(back[:n], res[:n]); err != nil {
			return
		}
		back = back[n:]
	}
}

// leaseState is for tests: the lease held for key.
func (l *Limiter) leaseState(k limits.Key) (tokens, want int64, ok bool) {
	h := hash(k, l.seed)
	s := &l.shards[h%nShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.t.get(k, h)
	if ls == nil {
		return 0, 0, false
	}
	return ls.tokens, ls.want, true
}
