package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/audit"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/secret"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// keyWebhookCursor (in the store's MetaWebhookFeed) is the last event
// turned into deliveries.
const keyWebhookCursor = "cursor"

// deliverable are the event types Webhook specs can receive, beyond
// spec.EventTypes (which validation accepts by name): the other
// subscription changes, matched by "subscription.*" and "*".
var deliverable = append(slices.Clone(spec.EventTypes),
	"subscription.suspended", "subscription.updated", "subscription.deleted")

// RuntimeOptions configure a Runtime.
type RuntimeOptions struct {
	Store   store.Store
	Events  *events.Log
	Metrics prometheus.Registerer
	Log     *slog.Logger
	// Audit records redeliveries and tests.
	Audit *audit.Trail
	// AllowPrivate is the daemon-wide switch for deliveries to private
	// addresses; Webhook.allowPrivate is the per-hook one.
	AllowPrivate bool
}

// Runtime turns events into deliveries (an outbox fed from the stored
// event log) and lists, redelivers and tests them.
type Runtime struct {
	o    RuntimeOptions
	disp *Dispatcher
	feed *events.Feed
	kick chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

// NewRuntime opens the outbox kept in o.Store; a new one starts with the
// events from now on.
func NewRuntime(o RuntimeOptions) (*Runtime, error) {
	disp, err := New(Options{Store: o.Store, Log: o.Log.With("component", "webhooks"), AllowPrivate: o.AllowPrivate})
	if err != nil {
		return nil, err
	}
	w := &Runtime{o: o, disp: disp, kick: make(chan struct{}, 1)}
	o.Metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stoa_webhook_deliveries_pending", Help: "Webhook deliveries waiting for an attempt.",
	}, func() float64 { return float64(disp.Pending()) }))
	ctx := context.Background()
	err = o.Store.Update(ctx, func(tx store.Tx) error {
		_, err := tx.Meta().Get(ctx, store.MetaWebhookFeed, keyWebhookCursor)
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// A new outbox starts with what happens from now on.
		last, err := tx.Events().Last(ctx, 1)
		if err != nil {
			return err
		}
		var seq int64
		if len(last) > 0 {
			seq = last[0].Seq
		}
		return tx.Meta().Put(ctx, store.MetaWebhookFeed, keyWebhookCursor, store.EncodeSeq(seq))
	})
	if err != nil {
		return nil, fmt.Errorf("open webhook feed: %w", err)
	}
	w.feed = events.NewFeed(o.Events, "webhooks", w.cursor, w.consume)
	return w, nil
}

func (w *Runtime) cursor() (int64, error) {
	var n int64
	ctx := context.Background()
	err := w.o.Store.View(ctx, func(tx store.Tx) error {
		v, err := tx.Meta().Get(ctx, store.MetaWebhookFeed, keyWebhookCursor)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		n, _ = store.DecodeSeq(v)
		return err
	})
	return n, err
}

func (w *Runtime) Name() string { return "webhooks" }

// Prepare compiles the revision's Webhooks; a secret that cannot be read
// rejects the revision (as the proxy does for upstream credentials).
func (w *Runtime) Prepare(st *state.Revision) (func(), error) {
	var hooks []*Hook
	for _, o := range st.OfKind(spec.KindWebhook) {
		ws := o.Spec.(*spec.WebhookSpec)
		sec, err := secret.Read(ws.SecretRef)
		if err != nil {
			return nil, fmt.Errorf("webhook %s/%s: %w", o.Metadata.Namespace, o.Metadata.Name, err)
		}
		hooks = append(hooks, &Hook{
			Tenant: o.Metadata.Namespace, Name: o.Metadata.Name, URL: ws.URL, Events: ws.Events, Secret: []byte(sec),
			AllowPrivate: ws.AllowPrivate, Timeout: ws.Timeout.D(), MaxAttempts: ws.MaxAttempts, Disabled: ws.Disabled,
		})
	}
	return func() {
		w.disp.SetHooks(hooks)
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}, nil
}

func (w *Runtime) Start(context.Context) error {
	w.disp.Start()
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		w.feed.Run(ctx, w.kick)
	}()
	return nil
}

func (w *Runtime) Stop(context.Context) error {
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
	w.disp.Stop()
	return nil
}

func (w *Runtime) Status() api.Component {
	c := api.Component{Name: "webhooks", State: "ok"}
	c.Detail = fmt.Sprintf("%d deliveries pending", w.disp.Pending())
	return c
}

// consume turns stored events into deliveries, committing the cursor with
// them.
func (w *Runtime) consume(evs []api.Event) error {
	var out []Event
	for _, e := range evs {
		out = append(out, w.convert(e)...)
	}
	last := evs[len(evs)-1].Seq
	_, err := w.disp.Enqueue(out, func(tx store.Tx) error {
		return tx.Meta().Put(context.Background(), store.MetaWebhookFeed, keyWebhookCursor, store.EncodeSeq(last))
	})
	return err
}

// convert maps one stored event to the webhook events it produces: tenant
// events as they are; config changes once per tenant they touched, with
// that tenant's changes only.
func (w *Runtime) convert(e api.Event) []Event {
	id := store.EventIDs.Format(e.Seq)
	if e.Type == "config.applied" || e.Type == "config.rolledback" {
		return w.configEvents(e, id)
	}
	if e.Tenant == "" || !slices.Contains(deliverable, e.Type) {
		return nil
	}
	data := map[string]any{"message": e.Message}
	for k, v := range e.Data {
		data[k] = v
	}
	return []Event{{ID: id, Type: e.Type, Time: e.Time, Tenant: e.Tenant, Data: data}}
}

func (w *Runtime) configEvents(e api.Event, id string) []Event {
	rev := events.Int(e.Data["revision"])
	rv, err := store.RevisionInfo(context.Background(), w.o.Store, rev)
	if err != nil {
		return nil
	}
	byTenant := map[string][]string{}
	var order []string
	for _, c := range rv.Refs {
		t := c.Ref.Namespace
		if c.Ref.Kind == spec.KindTenant {
			t = c.Ref.Name
		}
		if t == "" {
			continue
		}
		if _, ok := byTenant[t]; !ok {
			order = append(order, t)
		}
		byTenant[t] = append(byTenant[t], string(c.Op)+" "+c.Ref.String())
	}
	action, _ := e.Data["action"].(string)
	var out []Event
	for _, t := range order {
		ch := byTenant[t]
		if len(ch) > 100 {
			ch = append(ch[:100], fmt.Sprintf("… %d more", len(byTenant[t])-100))
		}
		out = append(out, Event{ID: id + "_" + t, Type: "config.applied", Time: e.Time, Tenant: t,
			Data: map[string]any{"revision": rev, "action": action, "changes": ch}})
	}
	return out
}

// List catches up with the event log and returns the deliveries f
// matches.
func (w *Runtime) List(f Filter) ([]Delivery, error) {
	w.feed.CatchUp()
	return w.disp.List(f)
}

// Get returns delivery id, with its body (ErrNotFound when there is none).
func (w *Runtime) Get(id string) (Delivery, error) { return w.disp.Get(id) }

// wait waits for a new delivery's first attempt, bounded by the webhook's
// timeout, and reports whether it finished in time.
func (w *Runtime) wait(ctx context.Context, d Delivery) (Delivery, bool) {
	limit := 15 * time.Second
	if h := w.disp.Hook(d.Tenant, d.Webhook); h != nil && h.Timeout > 0 {
		limit = h.Timeout + 5*time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	got, err := w.disp.Wait(ctx, d.ID)
	got.Body = nil
	return got, err == nil
}

// Redeliver queues delivery id again (as a new delivery) and, with wait,
// waits for its first attempt. actor is recorded in the audit trail.
func (w *Runtime) Redeliver(ctx context.Context, id, actor string, wait bool) (Delivery, bool, error) {
	d, err := w.disp.Redeliver(id)
	if err != nil {
		return d, false, err
	}
	w.o.Audit.Record(audit.Entry{Actor: actor, Action: "webhook.redeliver", Target: "Webhook/" + d.Tenant + "/" + d.Webhook,
		Tenant: d.Tenant, Details: map[string]string{"delivery": d.ID, "of": d.RedeliveryOf, "event": d.EventID}})
	if !wait {
		return d, false, nil
	}
	d, ok := w.wait(ctx, d)
	return d, ok, nil
}

// Test sends a webhook.test event to one webhook and, with wait, waits
// for the attempt. actor is recorded in the event and the audit trail.
func (w *Runtime) Test(ctx context.Context, tenant, name, actor string, wait bool) (Delivery, bool, error) {
	d, err := w.disp.SendTest(tenant, name, actor)
	if err != nil {
		return d, false, err
	}
	w.o.Audit.Record(audit.Entry{Actor: actor, Action: "webhook.test", Target: "Webhook/" + tenant + "/" + name,
		Tenant: tenant, Details: map[string]string{"delivery": d.ID}})
	if !wait {
		return d, false, nil
	}
	d, ok := w.wait(ctx, d)
	return d, ok, nil
}
