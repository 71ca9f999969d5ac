package limits

import "math/bits"

// table is one shard's key → state map: open addressing with linear
// probing over a power-of-two array of 32-byte slots, two per cache line.
// It replaces a Go map on the hot path because it probes once per call
// (a map needs a lookup and an assign, each hashing the key), reuses the
// hash that picked the shard, and holds no pointers, so the GC never scans
// it. Deletion shifts later entries back (no tombstones), so lookups stay
// short however keys come and go. Not safe for concurrent use: the shard's
// mutex guards it.
type table struct {
	slots []slot
	n     int    // occupied slots
	shift uint8  // 64 − log2(len(slots)): a hash's top bits are its home
	rng   uint64 // eviction sampling state
}

// slot is one key's state. tat == 0 marks an empty slot: a stored TAT is
// always ≥ 1 (now ≥ 0 plus at least one interval).
type slot struct {
	a, b uint64
	meta uint64 // kind << 56 | the bucket capacity (mod 2^56) the TAT was written under
	tat  int64
}

const (
	minSlots = 8
	metaMask = 1<<56 - 1
)

func makeMeta(kind Kind, capacity int64) uint64 {
	return uint64(kind)<<56 | uint64(capacity)&metaMask
}

func (s *slot) kind() Kind { return Kind(s.meta >> 56) }

// is reports whether s holds key k.
func (s *slot) is(k Key) bool { return s.a == k.A && s.b == k.B && s.kind() == k.Kind }

func newTable(n int) table {
	n = max(minSlots, 1<<bits.Len(uint(n-1)))
	return table{slots: make([]slot, n), shift: uint8(64 - bits.TrailingZeros(uint(n))), rng: uint64(n)}
}

func (t *table) home(h uint64) int { return int(h >> t.shift) }

// find returns the index of k's slot and true, or the index of the empty
// slot where k would go and false. The table always has an empty slot.
func (t *table) find(k Key, h uint64) (int, bool) {
	mask := len(t.slots) - 1
	for i := t.home(h); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.tat == 0 {
			return i, false
		}
		if s.is(k) {
			return i, true
		}
	}
}

// full reports whether one more key would exceed the 3/4 load factor.
func (t *table) full() bool { return (t.n+1)*4 > len(t.slots)*3 }

// resize rehashes into n slots (n a power of two above t.n·4/3).
func (t *table) resize(n int, seed uint64) {
	old := t.slots
	*t = newTable(n)
	for i := range old {
		if s := &old[i]; s.tat != 0 {
			k := Key{Kind: s.kind(), A: s.a, B: s.b}
			j, _ := t.find(k, k.mix(seed))
			t.slots[j] = *s
			t.n++
		}
	}
}

// remove empties slot i and shifts later entries of its cluster back so
// that every entry stays reachable from its home (Knuth's algorithm R).
func (t *table) remove(i int, seed uint64) {
	mask := len(t.slots) - 1
	t.slots[i] = slot{}
	t.n--
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		s := &t.slots[j]
		if s.tat == 0 {
			return
		}
		k := Key{Kind: s.kind(), A: s.a, B: s.b}
		h := t.home(k.mix(seed))
		// Move s into the hole unless its home lies cyclically in (i, j].
		if (j-h)&mask >= (j-i)&mask {
			t.slots[i] = *s
			*s = slot{}
			i = j
		}
	}
}

// evictOne removes one entry to make room: among up to evictSamples
// occupied slots from a random position, the first whose bucket is full
// (dropping it loses nothing), else the one with the least debt.
func (t *table) evictOne(now int64, seed uint64) {
	t.rng ^= t.rng << 13
	t.rng ^= t.rng >> 7
	t.rng ^= t.rng << 17
	mask := len(t.slots) - 1
	victim, seen, want := -1, 0, min(evictSamples, t.n)
	for i := int(t.rng) & mask; seen < want; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.tat == 0 {
			continue
		}
		if s.tat <= now {
			victim = i
			break
		}
		if victim < 0 || s.tat < t.slots[victim].tat {
			victim = i
		}
		seen++
	}
	if victim >= 0 {
		t.remove(victim, seed)
	}
}

// sweep removes every entry with tat ≤ before. It starts just after an
// empty slot so that no cluster straddles the start, and re-examines a
// slot after a removal (another entry may have shifted into it).
func (t *table) sweep(before int64, seed uint64) {
	if t.n == 0 {
		return
	}
	mask := len(t.slots) - 1
	start := 0
	for t.slots[start].tat != 0 {
		start++
	}
	for c := 1; c <= len(t.slots); c++ {
		i := (start + c) & mask
		for s := &t.slots[i]; s.tat != 0 && s.tat <= before; {
			t.remove(i, seed)
		}
	}
}
