package limits

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// EscalatorOptions configures an Escalator. It mirrors the Gateway spec's
// xdp.escalation block (after, within, block).
type EscalatorOptions struct {
	// After is the number of rejections within Within that escalates a
	// source. After ≤ 0 disables the Escalator.
	After int
	// Within is the sliding window the rejections are counted in; default
	// 1 minute.
	Within time.Duration
	// Block is how long an escalated source is left alone (its rejections
	// are not counted and OnEscalate is not called again) — the XDP block's
	// cool-down. 0 means until Within has passed.
	Block time.Duration
	// MaxSources bounds how many sources are tracked (each shard holds at
	// most MaxSources/Shards); default 65536, about 6 MiB. When a shard is
	// full, its least recently rejected source is forgotten.
	MaxSources int
	// Shards is the number of independently locked shards, rounded up to a
	// power of two; default 16.
	Shards int
	// Clock returns monotonic nanoseconds; default time since creation.
	Clock func() int64
	// OnEscalate is called once when a source reaches After rejections,
	// with the (estimated) count. It runs on the rejecting goroutine with no
	// lock held, so it may call back into the Escalator; it should be quick
	// (an XDP map update) or hand off to another goroutine.
	OnEscalate func(src netip.Addr, count int)
}

// Escalator counts rejections per source address and reports sources that
// keep being rejected. It is meant for the rejection path only (Reject is
// never needed for admitted requests), is safe for concurrent use and holds
// at most MaxSources sources.
//
// Counting uses a sliding window estimated from two fixed windows per source
// (the current one and the previous one, weighted by how much of it still
// overlaps the sliding window), so a source is caught whatever the phase of
// its bursts, in constant memory per source.
type Escalator struct {
	after    float64
	within   int64
	block    int64
	clock    func() int64
	on       func(netip.Addr, int)
	shards   []escShard
	mask     uint64
	seed     uint64
	perShard int
}

// escShard holds up to perShard sources in a slab, indexed by a map and
// threaded on a doubly linked LRU list (head: most recently rejected).
type escShard struct {
	mu         sync.Mutex
	idx        map[[16]byte]int32
	ents       []escEntry
	head, tail int32
	_          [24]byte
}

type escEntry struct {
	addr       [16]byte
	prev, next int32
	start      int64 // start of the current fixed window
	cur, last  int64 // rejections in the current and the previous window
	quietUntil int64 // escalated: not counted before this time
}

const noEntry = int32(-1)

// NewEscalator returns an Escalator configured by opts.
func NewEscalator(opts EscalatorOptions) *Escalator {
	if opts.Within <= 0 {
		opts.Within = time.Minute
	}
	if opts.Block <= 0 {
		opts.Block = opts.Within
	}
	if opts.MaxSources <= 0 {
		opts.MaxSources = 1 << 16
	}
	n := opts.Shards
	if n <= 0 {
		n = 16
	}
	n = 1 << bits.Len(uint(n-1))
	if opts.Clock == nil {
		base := time.Now()
		opts.Clock = func() int64 { return int64(time.Since(base)) }
	}
	e := &Escalator{
		after:    float64(opts.After),
		within:   int64(opts.Within),
		block:    int64(opts.Block),
		clock:    opts.Clock,
		on:       opts.OnEscalate,
		shards:   make([]escShard, n),
		mask:     uint64(n - 1),
		seed:     rand.Uint64(),
		perShard: max(1, opts.MaxSources/n),
	}
	for i := range e.shards {
		e.shards[i].idx = make(map[[16]byte]int32)
		e.shards[i].head, e.shards[i].tail = noEntry, noEntry
	}
	return e
}

// Reject records one rejection of src and reports whether it escalated src
// (in which case OnEscalate has been called). Zones are ignored, and IPv4
// and IPv4-mapped IPv6 are one source.
func (e *Escalator) Reject(src netip.Addr) bool {
	if e == nil || e.after <= 0 {
		return false
	}
	a := src.Unmap().As16()
	k := Key{A: binary.BigEndian.Uint64(a[:8]), B: binary.BigEndian.Uint64(a[8:])}
	s := &e.shards[k.mix(e.seed)&e.mask]
	now := e.clock()

	s.mu.Lock()
	i, ok := s.idx[a]
	if !ok {
		i = s.insert(a, e.perShard)
		s.ents[i].start = now
	} else {
		s.touch(i)
	}
	en := &s.ents[i]
	now = max(now, en.start) // a reading taken before another goroutine's
	if now < en.quietUntil {
		s.mu.Unlock()
		return false
	}
	if en.quietUntil != 0 { // a block just ended: start afresh
		en.quietUntil, en.start, en.cur, en.last = 0, now, 0, 0
	}
	if el := now - en.start; el >= e.within { // roll the fixed windows
		if el < 2*e.within {
			en.last, en.cur = en.cur, 0
			en.start += e.within
		} else {
			en.last, en.cur = 0, 0
			en.start = now
		}
	}
	en.cur++
	// The sliding window [now−within, now] overlaps the previous fixed
	// window by within−(now−start).
	est := float64(en.cur)
	if en.last > 0 {
		est += float64(en.last) * float64(e.within-(now-en.start)) / float64(e.within)
	}
	fire := est >= e.after
	if fire {
		en.quietUntil = now + e.block
	}
	s.mu.Unlock()

	if fire && e.on != nil {
		e.on(src.Unmap().WithZone(""), int(est))
	}
	return fire
}

// Forget drops what is known about src (say, after an operator unblocked it).
func (e *Escalator) Forget(src netip.Addr) {
	if e == nil || e.after <= 0 {
		return
	}
	a := src.Unmap().As16()
	k := Key{A: binary.BigEndian.Uint64(a[:8]), B: binary.BigEndian.Uint64(a[8:])}
	s := &e.shards[k.mix(e.seed)&e.mask]
	s.mu.Lock()
	if i, ok := s.idx[a]; ok {
		s.ents[i].quietUntil, s.ents[i].cur, s.ents[i].last = 0, 0, 0
		s.ents[i].start = e.clock()
	}
	s.mu.Unlock()
}

// Len returns the number of sources tracked.
func (e *Escalator) Len() int {
	if e == nil {
		return 0
	}
	n := 0
	for i := range e.shards {
		s := &e.shards[i]
		s.mu.Lock()
		n += len(s.idx)
		s.mu.Unlock()
	}
	return n
}

// insert returns a slot for a, taking a new one while under capacity and
// recycling the least recently used one otherwise. The slot is at the head
// of the LRU list, zeroed but for addr.
func (s *escShard) insert(a [16]byte, capacity int) int32 {
	var i int32
	if len(s.ents) < capacity {
		s.ents = append(s.ents, escEntry{})
		i = int32(len(s.ents) - 1)
	} else {
		i = s.tail
		s.unlink(i)
		delete(s.idx, s.ents[i].addr)
	}
	s.ents[i] = escEntry{addr: a, prev: noEntry, next: noEntry}
	s.idx[a] = i
	s.pushFront(i)
	return i
}

func (s *escShard) touch(i int32) {
	if s.head != i {
		s.unlink(i)
		s.pushFront(i)
	}
}

func (s *escShard) unlink(i int32) {
	en := &s.ents[i]
	if en.prev != noEntry {
		s.ents[en.prev].next = en.next
	} else {
		s.head = en.next
	}
	if en.next != noEntry {
		s.ents[en.next].prev = en.prev
	} else {
		s.tail = en.prev
	}
	en.prev, en.next = noEntry, noEntry
}

func (s *escShard) pushFront(i int32) {
	s.ents[i].prev, s.ents[i].next = noEntry, s.head
	if s.head != noEntry {
		s.ents[s.head].prev = i
	}
	s.head = i
	if s.tail == noEntry {
		s.tail = i
	}
}
