package store

import (
	"encoding/binary"
	"encoding/json"

	bolt "go.etcd.io/bbolt"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// MaxEvents is how many events the log keeps; older ones are dropped.
const MaxEvents = 10000

// AppendEvent stores e, assigning its sequence number, and trims the log to
// MaxEvents. It returns e with Seq set.
func (s *Store) AppendEvent(e api.Event) (api.Event, error) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		e, err = AppendEventTx(tx, e)
		return err
	})
	return e, err
}

// AppendEventTx is AppendEvent within tx, for events that must be stored
// with the change they report (committed, or not, together).
func AppendEventTx(tx *bolt.Tx, e api.Event) (api.Event, error) {
	b := tx.Bucket(bucketEvents)
	seq, err := b.NextSequence()
	if err != nil {
		return e, err
	}
	e.Seq = int64(seq)
	v, err := json.Marshal(e)
	if err != nil {
		return e, err
	}
	if err := b.Put(u64(e.Seq), v); err != nil {
		return e, err
	}
	if e.Seq > MaxEvents {
		// Trim in small steps so a single append never does much work.
		c := b.Cursor()
		for k, _ := c.First(); k != nil && int64(binary.BigEndian.Uint64(k)) <= e.Seq-MaxEvents; k, _ = c.First() {
			if err := b.Delete(k); err != nil {
				return e, err
			}
		}
	}
	return e, nil
}

// Events returns up to limit events with Seq > after, oldest first. With
// last > 0 it returns the last `last` events instead.
func (s *Store) Events(after int64, last int) ([]api.Event, error) {
	var out []api.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		if last > 0 {
			var rev []api.Event
			for k, v := c.Last(); k != nil && len(rev) < last; k, v = c.Prev() {
				var e api.Event
				if err := json.Unmarshal(v, &e); err != nil {
					return err
				}
				rev = append(rev, e)
			}
			for i := len(rev) - 1; i >= 0; i-- {
				out = append(out, rev[i])
			}
			return nil
		}
		for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
			var e api.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
