package quota

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// BucketUsage is the store bucket of usage counters, keyed "tenant/subscription".
var BucketUsage = []byte("quota_usage")

// Load restores the counters flushed by an earlier run. Call it before the
// first Compile.
func (q *Quotas) Load(st *store.Store) error {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	return st.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(BucketUsage)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("load quota usage %s: %w", k, err)
			}
			q.usageFor(string(k)).restore(r)
			return nil
		})
	})
}

// Flush writes the counters that changed since the last flush, in one
// transaction, and forgets counters of subscriptions that no longer exist
// once their periods are over. It returns how many records it wrote.
func (q *Quotas) Flush(st *store.Store, now time.Time) (int, error) {
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
	err := st.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(BucketUsage)
		if err != nil {
			return err
		}
		for _, it := range dirty {
			v, err := json.Marshal(it.r)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(it.key), v); err != nil {
				return err
			}
		}
		for _, k := range drop {
			if err := b.Delete([]byte(k)); err != nil {
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
