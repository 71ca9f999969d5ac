package limits

// maxStackKeys is how many keys AllowAll handles without allocating.
const maxStackKeys = 8

// pending is AllowAll's working state for one key.
type pending struct {
	p     params
	h     uint64 // key hash: shard in the low bits, table home in the top bits
	meta  uint64
	slot  int   // the key's slot when found
	tat   int64 // the TAT this call computed
	state uint8 // one of the pend* constants
	found bool
}

const (
	pendSkip   uint8 = iota // zero Limit: nothing to do
	pendNone                // decided, nothing to write
	pendCharge              // admitted: write tat if every key admits
	pendClamp               // rejected, but tat was clamped to a changed limit: write it
)

// AllowAll checks one request against several limits at once — typically a
// tenant's, a tool's, a consumer's and a source's — and charges all of them
// only if all admit it: a request rejected by one limit costs nothing
// against the others. keys[i] is limited by lims[i]; the slices must have
// the same length. Zero Limits are skipped. The same key may appear twice
// (it is then charged twice).
//
// The result is the most restrictive decision, with Index naming its key:
// when rejected, the rejecting limit with the longest RetryAfter (retrying
// earlier is pointless); when admitted, the limit with the fewest
// Remaining (ties: the longest Reset).
//
// All-or-nothing needs no global lock: AllowAll locks the shards of its keys
// in ascending shard order (so two concurrent AllowAlls cannot deadlock),
// decides every key, writes the new TATs only if all admit, and unlocks. The
// check and the charge are one atomic step, so there is no over-admission
// and nothing to roll back. It costs one lock per distinct shard — about
// what separate Allow calls cost — and allocates nothing for up to 8 keys.
func (l *Limiter) AllowAll(keys []Key, lims []Limit) Decision {
	if len(keys) != len(lims) {
		panic("limits: AllowAll: len(keys) != len(lims)")
	}
	if len(keys) == 1 {
		return l.AllowN(keys[0], lims[0], 1)
	}
	var (
		pendBuf [maxStackKeys]pending
		lockBuf [maxStackKeys]uint32 // distinct shards, ascending
	)
	var pend []pending
	locks := lockBuf[:0]
	if len(keys) <= maxStackKeys {
		pend = pendBuf[:len(keys)]
	} else {
		pend, locks = make([]pending, len(keys)), make([]uint32, 0, len(keys))
	}
	for i := range keys {
		pe := &pend[i] // zero: pendSkip
		if p, ok := lims[i].params(); ok {
			pe.p, pe.h, pe.state = p, keys[i].mix(l.seed), pendNone
			pe.meta = makeMeta(keys[i].Kind, p.cap)
			locks = insertSorted(locks, uint32(pe.h&l.mask))
		}
	}
	if len(locks) == 0 {
		return Decision{Allowed: true}
	}

	now := l.now()
	for _, si := range locks {
		l.shards[si].mu.Lock()
	}
	var best Decision
	allowed, have := true, false
	for i := range pend {
		pe := &pend[i]
		if pe.state == pendSkip {
			continue
		}
		t := &l.shards[pe.h&l.mask].t
		var tat int64
		changed, seen := false, false
		for j := i - 1; j >= 0; j-- { // the same key earlier in this call
			if pend[j].state != pendSkip && keys[j] == keys[i] {
				tat, changed, seen = pend[j].tat, pend[j].meta != pe.meta, true
				break
			}
		}
		pe.slot, pe.found = t.find(keys[i], pe.h)
		if !seen && pe.found {
			tat, changed = t.slots[pe.slot].tat, t.slots[pe.slot].meta != pe.meta
		}
		d, nt, write := pe.p.decide(tat, now, 1, changed)
		d.Index = i
		pe.tat = nt
		switch {
		case d.Allowed:
			pe.state = pendCharge
		case write:
			pe.state = pendClamp
		}
		switch {
		case !d.Allowed:
			if allowed || d.RetryAfter > best.RetryAfter {
				best = d
			}
			allowed = false
		case !allowed:
		case !have || d.Remaining < best.Remaining ||
			d.Remaining == best.Remaining && d.Reset > best.Reset:
			best = d
		}
		have = true
	}
	// Write every new TAT if all admitted; if not, only clamps (a TAT beyond
	// a changed limit's bucket), which charge nothing. Keys found in place
	// first: their slot indices hold until an insert moves entries.
	for pass := range 2 {
		for i := range pend {
			pe := &pend[i]
			if pe.found != (pass == 0) || !(pe.state == pendClamp || pe.state == pendCharge && allowed) {
				continue
			}
			s := &l.shards[pe.h&l.mask]
			if pe.found {
				s.t.slots[pe.slot].tat, s.t.slots[pe.slot].meta = pe.tat, pe.meta
			} else {
				l.insert(s, keys[i], pe.h, pe.meta, pe.tat, now)
			}
		}
	}
	for _, si := range locks {
		l.shards[si].mu.Unlock()
	}
	return best
}

// insertSorted adds v to the ascending set s unless present (an insertion
// sort step: s holds a handful of shard numbers).
func insertSorted(s []uint32, v uint32) []uint32 {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	s = append(s, v)
	for j := len(s) - 1; j > 0 && s[j-1] > s[j]; j-- {
		s[j-1], s[j] = s[j], s[j-1]
	}
	return s
}
