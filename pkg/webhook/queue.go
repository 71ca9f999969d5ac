package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// Enqueue stores one delivery per live webhook that subscribes to each
// event (same tenant, matching type), all in one transaction together with
// commit (if not nil), e.g. a consumer's cursor.
func (d *Dispatcher) Enqueue(events []Event, commit func(store.Tx) error) ([]Delivery, error) {
	hooks := *d.hooks.Load()
	now := d.opts.Now().UTC()
	var ds []*Delivery
	for _, ev := range events {
		var body []byte
		for _, h := range sortedHooks(hooks) {
			if h.Tenant != ev.Tenant || !Match(h.Events, ev.Type) {
				continue
			}
			if body == nil {
				var err error
				if body, err = json.Marshal(ev); err != nil {
					return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
				}
			}
			ds = append(ds, &Delivery{Tenant: h.Tenant, Webhook: h.Name, EventID: ev.ID, EventType: ev.Type,
				State: StatePending, CreatedAt: now, NextAttemptAt: now, Body: body})
		}
	}
	return d.store(ds, commit)
}

func sortedHooks(m map[string]*Hook) []*Hook {
	out := make([]*Hook, 0, len(m))
	for _, h := range m {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b *Hook) int {
		if a.Tenant != b.Tenant {
			if a.Tenant < b.Tenant {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

func (d *Dispatcher) store(ds []*Delivery, commit func(store.Tx) error) ([]Delivery, error) {
	if len(ds) == 0 && commit == nil {
		return nil, nil
	}
	ctx := context.Background()
	err := d.opts.Store.Update(ctx, func(tx store.Tx) error {
		if len(ds) > 0 {
			ob := tx.Outbox()
			if err := ob.Insert(ctx, ds); err != nil {
				return err
			}
			// Trim a little more than was added, so one insert never does
			// much work (pending deliveries are never dropped).
			if _, err := ob.Trim(ctx, d.opts.Keep, 2*len(ds)+8); err != nil {
				return err
			}
		}
		if commit != nil {
			return commit(tx)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store webhook deliveries: %w", err)
	}
	out := make([]Delivery, len(ds))
	d.mu.Lock()
	for i, del := range ds {
		n, _ := ParseID(del.ID)
		d.sched[n] = del.NextAttemptAt
		out[i] = *del
	}
	d.mu.Unlock()
	if len(ds) > 0 {
		d.poke()
	}
	return out, nil
}

// ErrNoHook is returned when a webhook named by the caller does not exist.
var ErrNoHook = errors.New("no such webhook")

// SendTest queues a webhook.test event for webhook tenant/name only.
func (d *Dispatcher) SendTest(tenant, name, actor string) (Delivery, error) {
	h := d.Hook(tenant, name)
	if h == nil {
		return Delivery{}, fmt.Errorf("webhook %s in tenant %s: %w", name, tenant, ErrNoHook)
	}
	now := d.opts.Now().UTC()
	ev := Event{ID: fmt.Sprintf("evt_test_%d", now.UnixNano()), Type: TestEventType, Time: now, Tenant: tenant,
		Data: map[string]any{"webhook": name, "message": "test event sent by " + actor}}
	body, err := json.Marshal(ev)
	if err != nil {
		return Delivery{}, err
	}
	ds, err := d.store([]*Delivery{{Tenant: tenant, Webhook: name, EventID: ev.ID, EventType: ev.Type,
		State: StatePending, CreatedAt: now, NextAttemptAt: now, Body: body}}, nil)
	if err != nil {
		return Delivery{}, err
	}
	return ds[0], nil
}

// Redeliver queues the event of delivery id again, as a new delivery (same
// event id and body, a fresh attempt count), whatever the old one's state.
func (d *Dispatcher) Redeliver(id string) (Delivery, error) {
	orig, err := d.Get(id)
	if err != nil {
		return Delivery{}, err
	}
	if d.Hook(orig.Tenant, orig.Webhook) == nil {
		return Delivery{}, fmt.Errorf("webhook %s in tenant %s: %w", orig.Webhook, orig.Tenant, ErrNoHook)
	}
	now := d.opts.Now().UTC()
	ds, err := d.store([]*Delivery{{Tenant: orig.Tenant, Webhook: orig.Webhook, EventID: orig.EventID, EventType: orig.EventType,
		State: StatePending, CreatedAt: now, NextAttemptAt: now, Body: orig.Body, RedeliveryOf: orig.ID}}, nil)
	if err != nil {
		return Delivery{}, err
	}
	return ds[0], nil
}

// Get returns one delivery, with its body.
func (d *Dispatcher) Get(id string) (Delivery, error) {
	n, ok := ParseID(id)
	if !ok {
		return Delivery{}, fmt.Errorf("delivery %q: %w", id, ErrNotFound)
	}
	var del Delivery
	ctx := context.Background()
	err := d.opts.Store.View(ctx, func(tx store.Tx) error {
		var err error
		del, err = tx.Outbox().Get(ctx, n)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return Delivery{}, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	return del, err
}

// Filter selects deliveries for List.
type Filter struct {
	Tenant, Webhook, State string
	Limit                  int // newest N; default 50
}

// List returns matching deliveries, newest first, without bodies.
func (d *Dispatcher) List(f Filter) ([]Delivery, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var out []Delivery
	ctx := context.Background()
	err := d.opts.Store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Outbox().List(ctx, store.DeliveryFilter{Tenant: f.Tenant, Webhook: f.Webhook, State: f.State, Limit: f.Limit})
		return err
	})
	return out, err
}

// Wait blocks until delivery id has had an attempt (or is finished), or
// ctx ends, and returns its record.
func (d *Dispatcher) Wait(ctx context.Context, id string) (Delivery, error) {
	n, ok := ParseID(id)
	if !ok {
		return Delivery{}, fmt.Errorf("delivery %q: %w", id, ErrNotFound)
	}
	ch := make(chan Delivery, 1)
	d.mu.Lock()
	d.waiters[n] = append(d.waiters[n], ch)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		ws := d.waiters[n]
		if i := slices.Index(ws, ch); i >= 0 {
			d.waiters[n] = slices.Delete(ws, i, i+1)
		}
		if len(d.waiters[n]) == 0 {
			delete(d.waiters, n)
		}
		d.mu.Unlock()
	}()
	if del, err := d.Get(id); err != nil || del.Attempts > 0 || del.State != StatePending {
		return del, err
	}
	select {
	case del := <-ch:
		return del, nil
	case <-ctx.Done():
		del, _ := d.Get(id)
		return del, ctx.Err()
	}
}
