package limits

import (
	"math/bits"
	"math/rand/v2"
	"sync"
	"time"
)

// Options configures a Limiter. The zero value is usable.
type Options struct {
	// Shards is the number of independently locked shards, rounded up to a
	// power of two; default 256.
	Shards int
	// Clock returns monotonic nanoseconds, any origin ≥ 0, below 2^62;
	// default: time since New. A coarse cached clock is fine (a reading
	// that lags only makes a decision stricter). Tests inject a fake clock.
	Clock func() int64
	// IdleTTL is how long a key is kept after its bucket is full again.
	// Dropping a full bucket loses nothing (a missing key is a full bucket),
	// so this only trades memory for less churn; default 1 minute.
	IdleTTL time.Duration
	// MaxKeys bounds the number of keys held: each shard holds at most
	// MaxKeys/Shards (at least 1); default 1<<20. A key takes one 32-byte
	// slot in a table kept between 3/8 and 3/4 full, so 1<<20 keys take at
	// most 64 MiB. A full shard evicts before it inserts: a sampled key
	// whose bucket is full if there is one (lossless), otherwise the
	// sampled key with the least debt, which then starts over with a full
	// bucket — a bounded over-admission only a flood of new keys can cause.
	MaxKeys int
}

// Limiter is a sharded GCRA rate limiter. It is safe for concurrent use;
// Allow takes one shard mutex and does not allocate once the key exists.
type Limiter struct {
	shards   []shard
	mask     uint64
	seed     uint64
	clock    func() int64
	idle     int64
	perShard int

	life sync.Mutex // guards stop and done
	stop chan struct{}
	done chan struct{}
}

// shard is one lock and its table: 64 bytes, one cache line, so that
// neighbouring shards do not share one.
type shard struct {
	mu sync.Mutex
	t  table
}

const (
	defaultShards  = 256
	defaultIdleTTL = time.Minute
	defaultMaxKeys = 1 << 20
	evictSamples   = 8
)

// New returns a Limiter configured by opts.
func New(opts Options) *Limiter {
	n := opts.Shards
	if n <= 0 {
		n = defaultShards
	}
	n = 1 << bits.Len(uint(n-1)) // next power of two
	if opts.IdleTTL <= 0 {
		opts.IdleTTL = defaultIdleTTL
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = defaultMaxKeys
	}
	if opts.Clock == nil {
		base := time.Now()
		opts.Clock = func() int64 { return int64(time.Since(base)) }
	}
	l := &Limiter{
		shards:   make([]shard, n),
		mask:     uint64(n - 1),
		seed:     rand.Uint64() | 1,
		clock:    opts.Clock,
		idle:     int64(opts.IdleTTL),
		perShard: max(1, opts.MaxKeys/n),
	}
	for i := range l.shards {
		l.shards[i].t = newTable(minSlots)
	}
	return l
}

// now reads the clock, clamped to the range the arithmetic is safe for.
//
// Callers read it before taking a shard lock, so a reading may be older
// than a TAT another goroutine has just stored. GCRA only gets stricter
// with an old reading, with one exception the slot's meta rules out: a
// debt larger than the bucket also arises when a limit was changed to a
// smaller bucket, and is then clamped — which must not happen merely
// because the reading is old, or tokens would be handed back. Hence the
// clamp applies only when the stored capacity differs from the limit's.
func (l *Limiter) now() int64 { return max(0, min(l.clock(), maxClock-1)) }

// Allow checks and charges one request against key's limit.
func (l *Limiter) Allow(key Key, lim Limit) Decision { return l.AllowN(key, lim, 1) }

// AllowN checks n requests (a batch, or a weighted call) against key's
// limit and charges all n if they fit. n ≤ 0 is Peek. n above the limit's
// burst is never admitted; RetryAfter then says when the bucket is full.
// The zero Limit admits everything and keeps no state.
func (l *Limiter) AllowN(key Key, lim Limit, n int) Decision {
	p, ok := lim.params()
	if !ok {
		return Decision{Allowed: true}
	}
	if n <= 0 {
		return l.peek(key, p)
	}
	now := l.now()
	h := key.mix(l.seed)
	s := &l.shards[h&l.mask]
	meta := makeMeta(key.Kind, p.cap)
	s.mu.Lock()
	i, found := s.t.find(key, h)
	var tat int64
	changed := false
	if found {
		tat, changed = s.t.slots[i].tat, s.t.slots[i].meta != meta
	}
	d, nt, write := p.decide(tat, now, int64(n), changed)
	switch {
	case write && found:
		s.t.slots[i].tat, s.t.slots[i].meta = nt, meta
	case write:
		l.insert(s, key, h, meta, nt, now)
	}
	s.mu.Unlock()
	return d
}

// insert stores key's state, adding the key if it is not there: evicting
// one entry first if the shard is at its bound, growing the table if it is
// too loaded. Called with s.mu held.
func (l *Limiter) insert(s *shard, key Key, h, meta uint64, tat, now int64) {
	i, found := s.t.find(key, h)
	if !found {
		if s.t.n >= l.perShard {
			s.t.evictOne(now, l.seed)
			i, _ = s.t.find(key, h)
		} else if s.t.full() {
			s.t.resize(2*len(s.t.slots), l.seed)
			i, _ = s.t.find(key, h)
		}
		s.t.n++
	}
	s.t.slots[i] = slot{a: key.A, b: key.B, meta: meta, tat: tat}
}

// Peek reports what Allow would decide now, without charging.
func (l *Limiter) Peek(key Key, lim Limit) Decision {
	p, ok := lim.params()
	if !ok {
		return Decision{Allowed: true}
	}
	return l.peek(key, p)
}

func (l *Limiter) peek(key Key, p params) Decision {
	now := l.now()
	h := key.mix(l.seed)
	s := &l.shards[h&l.mask]
	s.mu.Lock()
	var tat int64
	if i, found := s.t.find(key, h); found {
		tat = s.t.slots[i].tat
	}
	s.mu.Unlock()
	return p.peek(tat, now)
}

// Reset forgets key: its bucket is full again.
func (l *Limiter) Reset(key Key) {
	h := key.mix(l.seed)
	s := &l.shards[h&l.mask]
	s.mu.Lock()
	if i, found := s.t.find(key, h); found {
		s.t.remove(i, l.seed)
	}
	s.mu.Unlock()
}

// Len returns the number of keys held.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.t.n
		s.mu.Unlock()
	}
	return n
}

// Sweep drops keys whose bucket has been full for IdleTTL, one shard at a
// time, and shrinks a shard's table when it is less than 1/8 full. Start
// runs it periodically.
func (l *Limiter) Sweep() {
	before := l.now() - l.idle
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.t.sweep(before, l.seed)
		if len(s.t.slots) > minSlots && s.t.n*8 < len(s.t.slots) {
			s.t.resize(max(minSlots, 2*s.t.n), l.seed)
		}
		s.mu.Unlock()
	}
}

// Start runs Sweep every interval (≤0: IdleTTL) in a goroutine until Stop.
// Starting a started Limiter does nothing.
func (l *Limiter) Start(every time.Duration) {
	if every <= 0 {
		every = time.Duration(l.idle)
	}
	l.life.Lock()
	defer l.life.Unlock()
	if l.stop != nil {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	l.stop, l.done = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				l.Sweep()
			}
		}
	}()
}

// Stop ends the goroutine Start began and waits for it. It is safe to call
// more than once, and without Start.
func (l *Limiter) Stop() {
	l.life.Lock()
	stop, done := l.stop, l.done
	l.stop, l.done = nil, nil
	l.life.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}
