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
	err := st.Update(ctx, func(tx store.Tx) error {
		qs := tx.Quota()
		for _, it := range dirty {
			if err := qs.Put(ctx, it.key, it.r); err != nil {
				return err
			}
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
	for _, it := range dirty {
		it.u.flushed = it.r
	}
	return len(dirty), nil
}
