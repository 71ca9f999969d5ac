package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// outbox: "webhook_deliveries" holds every delivery by id (JSON, the
// bucket's sequence numbers them); "webhook_pending" indexes the ids of
// those still pending.
type outbox struct{ t *txn }

func (o outbox) put(d *store.Delivery) (int64, error) {
	n, ok := store.DeliveryIDs.Parse(d.ID)
	if !ok {
		return 0, fmt.Errorf("store delivery: bad id %q", d.ID)
	}
	v, err := json.Marshal(d)
	if err != nil {
		return 0, err
	}
	return n, o.t.bucket(bucketDeliveries).Put(seqKey(n), v)
}

func (o outbox) Insert(_ context.Context, ds []*store.Delivery) error {
	if err := o.t.writable(store.DomainOutbox); err != nil {
		return err
	}
	b, p := o.t.bucket(bucketDeliveries), o.t.bucket(bucketPending)
	for _, d := range ds {
		if d.State != store.DeliveryPending {
			return fmt.Errorf("insert delivery: state %q, want %q", d.State, store.DeliveryPending)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		d.ID = store.DeliveryIDs.Format(int64(seq))
		if _, err := o.put(d); err != nil {
			return err
		}
		if err := p.Put(seqKey(int64(seq)), nil); err != nil {
			return err
		}
	}
	return nil
}

func (o outbox) Get(_ context.Context, id int64) (store.Delivery, error) {
	var d store.Delivery
	v := o.t.bucket(bucketDeliveries).Get(seqKey(id))
	if v == nil {
		return d, fmt.Errorf("delivery %s: %w", store.DeliveryIDs.Format(id), store.ErrNotFound)
	}
	if err := json.Unmarshal(v, &d); err != nil {
		return d, corrupt("delivery "+store.DeliveryIDs.Format(id), err)
	}
	return d, nil
}

func (o outbox) List(_ context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	var out []store.Delivery
	c := o.t.bucket(bucketDeliveries).Cursor()
	for k, v := c.Last(); k != nil && (f.Limit <= 0 || len(out) < f.Limit); k, v = c.Prev() {
		var d store.Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			continue // a damaged record is not worth failing the listing
		}
		if (f.Tenant != "" && d.Tenant != f.Tenant) || (f.Webhook != "" && d.Webhook != f.Webhook) || (f.State != "" && d.State != f.State) {
			continue
		}
		d.Body = nil
		out = append(out, d)
	}
	return out, nil
}

func (o outbox) Pending(ctx context.Context) ([]store.DueDelivery, error) {
	var out []store.DueDelivery
	err := o.t.bucket(bucketPending).ForEach(func(k, _ []byte) error {
		d, err := o.Get(ctx, seqOf(k))
		if err != nil {
			return err
		}
		out = append(out, store.DueDelivery{ID: seqOf(k), NextAttemptAt: d.NextAttemptAt})
		return nil
	})
	return out, err
}

// take checks that owner may write delivery n (no one else holds a live
// claim) and sets its claim to c (nil releases it), undone should the
// transaction roll back.
func (o outbox) take(n int64, owner string, c *claim) error {
	s := o.t.s
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	prev, held := s.claims[n]
	if held && prev.owner != owner && time.Now().Before(prev.until) {
		return fmt.Errorf("delivery %s: %w: claimed by %s until %s", store.DeliveryIDs.Format(n), store.ErrConflict,
			prev.owner, prev.until.UTC().Format(time.RFC3339))
	}
	if c != nil {
		s.claims[n] = *c
	} else {
		delete(s.claims, n)
	}
	o.t.undo = append(o.t.undo, func() {
		s.claimMu.Lock()
		defer s.claimMu.Unlock()
		if held {
			s.claims[n] = prev
		} else {
			delete(s.claims, n)
		}
	})
	return nil
}

func (o outbox) Claim(ctx context.Context, id int64, owner string, lease time.Duration) (store.Delivery, error) {
	if err := o.t.writable(store.DomainOutbox); err != nil {
		return store.Delivery{}, err
	}
	if owner == "" || lease <= 0 {
		return store.Delivery{}, fmt.Errorf("claim delivery: owner and a positive lease are required")
	}
	d, err := o.Get(ctx, id)
	if err != nil {
		return d, err
	}
	if d.State != store.DeliveryPending {
		return d, fmt.Errorf("delivery %s: %w: it is %s", d.ID, store.ErrConflict, d.State)
	}
	if err := o.take(id, owner, &claim{owner: owner, until: time.Now().Add(lease)}); err != nil {
		return store.Delivery{}, err
	}
	return d, nil
}

func (o outbox) finish(owner string, d store.Delivery, pending bool) error {
	if err := o.t.writable(store.DomainOutbox); err != nil {
		return err
	}
	if (d.State == store.DeliveryPending) != pending {
		return fmt.Errorf("record delivery %s: state %q does not fit", d.ID, d.State)
	}
	n, ok := store.DeliveryIDs.Parse(d.ID)
	if !ok {
		return fmt.Errorf("record delivery: bad id %q", d.ID)
	}
	if o.t.bucket(bucketDeliveries).Get(seqKey(n)) == nil {
		return fmt.Errorf("delivery %s: %w", d.ID, store.ErrNotFound)
	}
	if err := o.take(n, owner, nil); err != nil {
		return err
	}
	if _, err := o.put(&d); err != nil {
		return err
	}
	if pending {
		return o.t.bucket(bucketPending).Put(seqKey(n), nil)
	}
	return o.t.bucket(bucketPending).Delete(seqKey(n))
}

func (o outbox) Ack(_ context.Context, owner string, d store.Delivery) error {
	return o.finish(owner, d, false)
}

func (o outbox) Retry(_ context.Context, owner string, d store.Delivery) error {
	return o.finish(owner, d, true)
}

func (o outbox) Trim(_ context.Context, keep, limit int) (int, error) {
	if err := o.t.writable(store.DomainOutbox); err != nil {
		return 0, err
	}
	b, p := o.t.bucket(bucketDeliveries), o.t.bucket(bucketPending)
	last := b.Sequence()
	if keep <= 0 || last <= uint64(keep) {
		return 0, nil
	}
	upTo, c, dropped := int64(last-uint64(keep)), b.Cursor(), 0
	k, _ := c.First()
	for steps := 0; k != nil && seqOf(k) <= upTo && steps < limit; steps++ {
		if p.Get(k) != nil {
			k, _ = c.Next()
			continue
		}
		key := bytes.Clone(k)
		if err := b.Delete(key); err != nil {
			return dropped, err
		}
		dropped++
		k, _ = c.Seek(key)
	}
	return dropped, nil
}
