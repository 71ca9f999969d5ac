package redislimit

import (
	"math/bits"

	"github.com/stoa-gateway/stoa/pkg/limits"
)

// leaseTable is one shard's key → lease map: open addressing with linear
// probing, like pkg/limits' table. A Go map profiled at 40% of AllowAll
// here, most of it hashing the 24-byte key twice (shard, then map); the
// table reuses the hash that picked the shard and probes once. Deletion
// shifts later entries back, so there are no tombstones. The shard's mutex
// guards it.
type leaseTable struct {
	slots []leaseSlot
	n     int
	shift uint8 // 64 − log2(len(slots)): a hash's top bits are its home
}

type leaseSlot struct {
	key limits.Key
	ls  *lease // nil: empty
}

const minLeaseSlots = 8

func newLeaseTable(n int) leaseTable {
	n = max(minLeaseSlots, 1<<bits.Len(uint(n-1)))
	return leaseTable{slots: make([]leaseSlot, n), shift: uint8(64 - bits.TrailingZeros(uint(n)))}
}

// hash is a keyed 64-bit hash of k (two rounds of the wyhash multiply-fold,
// seeded per Limiter so that an attacker choosing source addresses cannot
// aim them at one shard or one probe sequence). Its low bits pick the
// shard, its top bits the home slot.
func hash(k limits.Key, seed uint64) uint64 {
	hi, lo := bits.Mul64(k.A^seed^0xa0761d6478bd642f, k.B^uint64(k.Kind)<<56^bits.RotateLeft64(seed, 29)^0xe7037ed1a0b428db)
	hi, lo = bits.Mul64(hi^lo^seed, 0x8ebc6af09c88c6e3)
	return hi ^ lo
}

func (t *leaseTable) home(h uint64) int { return int(h >> t.shift) }

// find returns k's slot and true, or the empty slot where k would go.
func (t *leaseTable) find(k limits.Key, h uint64) (int, bool) {
	mask := len(t.slots) - 1
	for i := t.home(h); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.ls == nil {
			return i, false
		}
		if s.key == k {
			return i, true
		}
	}
}

func (t *leaseTable) get(k limits.Key, h uint64) *lease {
	if i, ok := t.find(k, h); ok {
		return t.slots[i].ls
	}
	return nil
}

// put adds ls under k (k must not be there), growing past 3/4 full.
func (t *leaseTable) put(k limits.Key, h uint64, ls *lease, seed uint64) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(2*len(t.slots), seed)
	}
	i, _ := t.find(k, h)
	t.slots[i] = leaseSlot{key: k, ls: ls}
	t.n++
}

func (t *leaseTable) resize(n int, seed uint64) {
	old := t.slots
	*t = newLeaseTable(n)
	for _, s := range old {
		if s.ls != nil {
			i, _ := t.find(s.key, hash(s.key, seed))
			t.slots[i] = s
			t.n++
		}
	}
}

// del removes k, shifting the rest of its cluster back (Knuth's
// algorithm R).
func (t *leaseTable) del(k limits.Key, h uint64, seed uint64) {
	i, ok := t.find(k, h)
	if !ok {
		return
	}
	mask := len(t.slots) - 1
	t.slots[i] = leaseSlot{}
	t.n--
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		s := &t.slots[j]
		if s.ls == nil {
			break
		}
		hm := t.home(hash(s.key, seed))
		// Move s into the hole unless its home lies cyclically in (i, j].
		if (j-hm)&mask >= (j-i)&mask {
			t.slots[i] = *s
			*s = leaseSlot{}
			i = j
		}
	}
	if len(t.slots) > minLeaseSlots && t.n*8 < len(t.slots) {
		t.resize(max(minLeaseSlots, 2*t.n), seed)
	}
}
