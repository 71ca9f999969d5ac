package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/store"
)

type events struct{ t *txn }

func (e events) Append(_ context.Context, ev api.Event) (api.Event, error) {
	if err := e.t.writable(store.DomainEvents); err != nil {
		return ev, err
	}
	b := e.t.bucket(bucketEvents)
	seq, err := b.NextSequence()
	if err != nil {
		return ev, err
	}
	ev.Seq = int64(seq)
	e.t.change.Event = ev.Seq
	v, err := json.Marshal(ev)
	if err != nil {
		return ev, err
	}
	if err := b.Put(seqKey(ev.Seq), v); err != nil {
		return ev, err
	}
	if ev.Seq > store.MaxEvents {
		// Trim in small steps so a single append never does much work.
		c := b.Cursor()
		for k, _ := c.First(); k != nil && seqOf(k) <= ev.Seq-store.MaxEvents; k, _ = c.First() {
			if err := b.Delete(k); err != nil {
				return ev, err
			}
		}
	}
	return ev, nil
}

func decodeEvent(k, v []byte) (api.Event, error) {
	var ev api.Event
	if err := json.Unmarshal(v, &ev); err != nil {
		return ev, corrupt(fmt.Sprintf("event %d", seqOf(k)), err)
	}
	return ev, nil
}

func (e events) Since(ctx context.Context, after int64, limit int) ([]api.Event, error) {
	var out []api.Event
	c := e.t.bucket(bucketEvents).Cursor()
	for k, v := c.Seek(seqKey(max(after, 0) + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
		ev, err := decodeEvent(k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func (e events) Last(_ context.Context, n int) ([]api.Event, error) {
	var rev []api.Event
	c := e.t.bucket(bucketEvents).Cursor()
	for k, v := c.Last(); k != nil && len(rev) < n; k, v = c.Prev() {
		ev, err := decodeEvent(k, v)
		if err != nil {
			return nil, err
		}
		rev = append(rev, ev)
	}
	out := make([]api.Event, 0, len(rev))
	for i := len(rev) - 1; i >= 0; i-- {
		out = append(out, rev[i])
	}
	return out, nil
}
