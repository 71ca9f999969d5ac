package quota

import (
	"context"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// Load restores the counters flushed by an earlier run. Call it before the
// first Compile.
func (q *Quotas) Load(st store.Store) error {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	ctx := context.Background()
	return st.View(ctx, func(tx store.Tx) error {
		all, err := tx.Quota().List(ctx)
		if err != nil {
			return fmt.Errorf("load quota usage: %w", err)
		}
		for k, r := range all {
			q.usageFor(k).restore(r)
		}
		return nil
	})
}

// Flush writes the counters that changed since the last flush, in one
// transaction, and forgets counters of subscriptions that no longer exist
// once their periods are over. It returns how many records it wrote.
func (q *Quotas) Flush(st store.Store, now time.Time) (int, error) {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	live := map[string]bool{}
	if t := q.table.Load(); t != nil {
		for _, s := range t.subs {
			live[s.Key()] = true
		}
	}
	p := periodsAt(now)
	type item struct {
		key string
		u   *Usage
		r   Record
	}
	var dirty []item
	var drop []string
	q.mu.Lock()
	for k, u := range q.usage {
		r := u.record()
		if !live[k] && r.Day < p.day && r.Month < p.month {
			drop = append(drop, k)
			continue
		}
		if r != u.flushed {
			dirty = append(dirty, item{k, u, r})
		}
	}
	for _, k := range drop {
		delete(q.usage, k)
	}
	q.mu.Unlock()
	if len(dirty) == 0 && len(drop) == 0 {
		return 0, nil
	}
	ctx := context.Background()
	totals := make([]Record, len(dirty))
	err := st.Update(ctx, func(tx store.Tx) error {
		qs := tx.Quota()
		for i, it := range dirty {
			// The calls counted since the last flush are added to the
			// stored counts, which other stoads sharing the store add
			// to as well; the total comes back.
			t, err := qs.Add(ctx, it.key, delta(it.u.flushed, it.r))
			if err != nil {
				return err
			}
			totals[i] = t
		}
		for _, k := range drop {
			if err := qs.Delete(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("flush quota usage: %w", err)
	}
	for i, it := range dirty {
		// What the flush sent is known; the rest of the total is what
		// the others counted.
		it.u.merge(it.r, totals[i])
	}
	return len(dirty), nil
}

// SyncUsage learns the counts other stoads sharing the store flushed
// since this one last flushed or synced: the counters then hold the
// shared totals (plus the calls counted here and not flushed yet).
func (q *Quotas) SyncUsage(st store.Store) error {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	ctx := context.Background()
	var all map[string]Record
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		all, err = tx.Quota().List(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("read quota usage: %w", err)
	}
	for k, t := range all {
		u := q.usageFor(k)
		u.merge(u.flushed, t)
	}
	return nil
}

// delta is what r counted since flushed: the calls of r's day and month
// not yet in the store, and r's exhaustion marks.
func delta(flushed, r Record) Record {
	d := Record{Day: r.Day, Month: r.Month, DayExhausted: r.DayExhausted, MonthExhausted: r.MonthExhausted}
	d.DayCount = r.DayCount
	if flushed.Day == r.Day {
		d.DayCount -= flushed.DayCount
	}
	d.MonthCount = r.MonthCount
	if flushed.Month == r.Month {
		d.MonthCount -= flushed.MonthCount
	}
	return d
}

// merge folds a stored total into u, given known: what of the store's
// count u's counters already hold. Callers hold flushMu.
func (u *Usage) merge(known, total Record) {
	f := u.flushed
	f.Day, f.DayCount = u.day.merge(known.Day, known.DayCount, total.Day, total.DayCount, f.Day, f.DayCount)
	f.Month, f.MonthCount = u.month.merge(known.Month, known.MonthCount, total.Month, total.MonthCount, f.Month, f.MonthCount)
	f.DayExhausted, f.MonthExhausted = max(f.DayExhausted, total.DayExhausted), max(f.MonthExhausted, total.MonthExhausted)
	for _, x := range []struct {
		w    *window
		mark int64
	}{{&u.day, total.DayExhausted}, {&u.month, total.MonthExhausted}} {
		if old := x.w.exhausted.Load(); x.mark > old {
			x.w.exhausted.CompareAndSwap(old, x.mark)
		}
	}
	u.flushed = f
}

// merge adds to w what the stored count of period tIdx holds beyond
// what w already has of it (known), and returns the period and count now
// known to be stored (the previous ones, fIdx and fCount, when the store
// is behind w).
func (w *window) merge(kIdx, kCount, tIdx, tCount, fIdx, fCount int64) (int64, int64) {
	switch idx := w.idx.Load(); {
	case tIdx < idx:
		return fIdx, fCount // the store is still in an earlier period
	case tIdx > idx:
		// Others have started a later period: start it too, with
		// their count.
		w.roll(tIdx)
		kCount = 0
	case kIdx != tIdx:
		kCount = 0
	}
	w.n.Add(tCount - kCount)
	return tIdx, tCount
}
