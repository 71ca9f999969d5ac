package limits

import (
	"math/rand/v2"
	"testing"
)

// TestTableAgainstMap drives small tables (so clusters wrap around the
// end) through random inserts, updates, removals, sweeps, evictions and
// resizes, and checks them against a Go map after every step.
func TestTableAgainstMap(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 0xdeadbeef} {
		rng := rand.New(rand.NewPCG(seed, 7))
		hseed := rng.Uint64() | 1
		tb := newTable(minSlots)
		model := map[Key]int64{}
		keyOf := func() Key { return Key{Kind: Kind(rng.IntN(3)), A: uint64(rng.IntN(12)), B: uint64(rng.IntN(2))} }
		for step := range 20_000 {
			k := keyOf()
			h := k.mix(hseed)
			switch op := rng.IntN(10); {
			case op < 5: // upsert
				tat := 1 + rng.Int64N(1000)
				if i, found := tb.find(k, h); found {
					tb.slots[i].tat = tat
				} else {
					if tb.full() {
						tb.resize(2*len(tb.slots), hseed)
					}
					i, _ = tb.find(k, h)
					tb.slots[i] = slot{a: k.A, b: k.B, meta: makeMeta(k.Kind, 0), tat: tat}
					tb.n++
				}
				model[k] = tat
			case op < 8: // remove
				if i, found := tb.find(k, h); found {
					tb.remove(i, hseed)
				}
				delete(model, k)
			case op < 9: // sweep
				before := rng.Int64N(200)
				tb.sweep(before, hseed)
				for mk, tat := range model {
					if tat <= before {
						delete(model, mk)
					}
				}
			default: // evict one, or shrink
				if tb.n > 0 && rng.IntN(2) == 0 {
					tb.evictOne(0, hseed)
					// Find which key went.
					for mk := range model {
						if _, found := tb.find(mk, mk.mix(hseed)); !found {
							delete(model, mk)
						}
					}
				} else if tb.n*4 < len(tb.slots) && len(tb.slots) > minSlots {
					tb.resize(len(tb.slots)/2, hseed)
				}
			}
			if tb.n != len(model) {
				t.Fatalf("seed %d step %d: n = %d, model has %d", seed, step, tb.n, len(model))
			}
			occupied := 0
			for i := range tb.slots {
				if tb.slots[i].tat != 0 {
					occupied++
				}
			}
			if occupied != tb.n || tb.n*4 > len(tb.slots)*3 {
				t.Fatalf("seed %d step %d: %d occupied, n = %d, %d slots", seed, step, occupied, tb.n, len(tb.slots))
			}
			for mk, tat := range model {
				i, found := tb.find(mk, mk.mix(hseed))
				if !found || tb.slots[i].tat != tat {
					t.Fatalf("seed %d step %d: %+v lost (found %v)", seed, step, mk, found)
				}
			}
		}
	}
}
