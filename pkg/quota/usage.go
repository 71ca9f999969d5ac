package quota

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// window counts the calls of one period (a day or a month). The count is
// an atomic; only the switch to a new period takes a lock.
type window struct {
	idx       atomic.Int64 // period index the count belongs to
	n         atomic.Int64
	exhausted atomic.Int64 // period index last reported as exhausted (+1; 0 = never)
	mu        sync.Mutex

	// Fleet mode (fleet.go): base is what the other data planes counted
	// in this period as of the last exchange with the shared store, sent
	// how much of n this process has added to it.
	base, sent atomic.Int64
	// active: exchanges left during which the window is synced even with
	// nothing to send (touched only by the exchanging goroutine).
	active int
}

// charge counts one call in period idx if that keeps the count — this
// process's, plus the other data planes' in fleet mode — within limit (0:
// no limit, the call is only counted), and reports whether it did.
func (w *window) charge(idx, limit int64, f *fleet) bool {
	if w.idx.Load() != idx {
		w.roll(idx)
	}
	n := w.n.Add(1)
	if limit > 0 {
		used := n + w.base.Load()
		if f != nil && f.down.Load() {
			// The store is unreachable: count the others as spending as
			// fast as this process since the last exchange, so that the
			// fleet shares what was left instead of each spending all of it.
			used += int64(f.peers()-1) * (n - w.sent.Load())
		}
		if used > limit {
			w.n.Add(-1)
			return false
		}
	}
	if f != nil && n-w.sent.Load() >= f.units {
		f.signal()
	}
	return true
}

// refund takes back a call charged in period idx.
func (w *window) refund(idx int64) {
	if w.idx.Load() == idx {
		w.n.Add(-1)
	}
}

// roll starts period idx with a zero count. A request that started just
// before the switch and arrives after it counts in the new period.
func (w *window) roll(idx int64) {
	w.mu.Lock()
	if w.idx.Load() < idx {
		w.n.Store(0)
		w.base.Store(0)
		w.sent.Store(0)
		w.idx.Store(idx)
	}
	w.mu.Unlock()
}

// used is the count of period idx.
func (w *window) used(idx int64) int64 {
	if w.idx.Load() != idx {
		return 0
	}
	// In fleet mode base holds the other data planes' calls: the usage
	// reported is the fleet's, as the quota is.
	return w.n.Load() + w.base.Load()
}

// markExhausted reports whether this is the first time period idx was
// found exhausted (so the event goes out once per period).
func (w *window) markExhausted(idx int64) bool {
	for {
		old := w.exhausted.Load()
		if old == idx+1 {
			return false
		}
		if w.exhausted.CompareAndSwap(old, idx+1) {
			return true
		}
	}
}

// Usage is the call count of one subscription in the current day and
// month. Usage outlives revisions: a Subscription keeps its counts while
// its spec changes.
type Usage struct {
	day, month window
	// flushed is what the store last received (guarded by Quotas.flushMu).
	flushed Record
}

// Record is the stored form of a subscription's usage (the store owns
// the type, so every backend stores the same fields).
type Record = store.QuotaUsage

func (u *Usage) record() Record {
	return Record{
		Day: u.day.idx.Load(), DayCount: u.day.n.Load(),
		Month: u.month.idx.Load(), MonthCount: u.month.n.Load(),
		DayExhausted: u.day.exhausted.Load(), MonthExhausted: u.month.exhausted.Load(),
	}
}

func (u *Usage) restore(r Record) {
	// Counters written before every call counted in both periods kept no
	// month for plans with only a daily quota: the month holds at least
	// the day it contains.
	if r.DayCount > 0 {
		if m := periodsAt(time.Unix(0, r.Day*nsPerDay)).month; m > r.Month {
			r.Month, r.MonthCount = m, r.DayCount
		} else if m == r.Month && r.MonthCount < r.DayCount {
			r.MonthCount = r.DayCount
		}
	}
	u.day.idx.Store(r.Day)
	u.day.n.Store(r.DayCount)
	u.day.exhausted.Store(r.DayExhausted)
	u.month.idx.Store(r.Month)
	u.month.n.Store(r.MonthCount)
	u.month.exhausted.Store(r.MonthExhausted)
	u.flushed = r
}
