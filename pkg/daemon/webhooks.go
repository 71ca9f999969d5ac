package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/audit"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/secret"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/webhook"
)

// keyWebhookCursor (in the store's MetaWebhookFeed) is the last event
// turned into deliveries.
const keyWebhookCursor = "cursor"

// webhookEvents are the event types Webhook specs can receive, beyond
// spec.EventTypes (which validation accepts by name): the other
// subscription changes, matched by "subscription.*" and "*".
var webhookEvents = append(slices.Clone(spec.EventTypes),
	"subscription.suspended", "subscription.updated", "subscription.deleted")

// webhookRuntime turns events into deliveries (an outbox fed from the
// stored event log) and serves the webhooks LocalAPI.
type webhookRuntime struct {
	d     *Daemon
	disp  *webhook.Dispatcher
	feed  *events.Feed
	audit *auditRuntime
	kick  chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

func newWebhookRuntime(d *Daemon, au *auditRuntime) (*webhookRuntime, error) {
	disp, err := webhook.New(webhook.Options{
		Store: d.store, Log: d.log.With("component", "webhooks"),
		// The daemon-wide switch; Webhook.allowPrivate is the per-hook one.
		AllowPrivate: os.Getenv("STOAD_WEBHOOK_ALLOW_PRIVATE") == "1" || os.Getenv("STOAD_WEBHOOK_ALLOW_PRIVATE") == "true",
	})
	if err != nil {
		return nil, err
	}
	w := &webhookRuntime{d: d, disp: disp, audit: au, kick: make(chan struct{}, 1)}
	d.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stoa_webhook_deliveries_pending", Help: "Webhook deliveries waiting for an attempt.",
	}, func() float64 { return float64(disp.Pending()) }))
	ctx := context.Background()
	err = d.store.Update(ctx, func(tx store.Tx) error {
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
	w.feed = events.NewFeed(d.events, "webhooks", w.cursor, w.consume)
	d.HandleAPI("GET "+api.PathWebhookDeliveries, w.serveList)
	d.HandleAPI("GET "+api.PathWebhookDeliveries+"/{id}", w.serveGet)
	d.HandleAPI("POST "+api.PathWebhookDeliveries+"/{id}/redeliver", w.serveRedeliver)
	d.HandleAPI("POST "+api.PathWebhookTest, w.serveTest)
	return w, nil
}

func (w *webhookRuntime) cursor() (int64, error) {
	var n int64
	ctx := context.Background()
	err := w.d.store.View(ctx, func(tx store.Tx) error {
		v, err := tx.Meta().Get(ctx, store.MetaWebhookFeed, keyWebhookCursor)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		n, _ = store.DecodeSeq(v)
		return err
	})
	return n, err
}

func (w *webhookRuntime) Name() string { return "webhooks" }

// Prepare compiles the revision's Webhooks; a secret that cannot be read
// rejects the revision (as the proxy does for upstream credentials).
func (w *webhookRuntime) Prepare(st *State) (func(), error) {
	var hooks []*webhook.Hook
	for _, o := range st.OfKind(spec.KindWebhook) {
		ws := o.Spec.(*spec.WebhookSpec)
		sec, err := secret.Read(ws.SecretRef)
		if err != nil {
			return nil, fmt.Errorf("webhook %s/%s: %w", o.Metadata.Namespace, o.Metadata.Name, err)
		}
		hooks = append(hooks, &webhook.Hook{
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

func (w *webhookRuntime) Start(context.Context) error {
	w.disp.Start()
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		w.feed.Run(ctx, w.kick)
	}()
	return nil
}

func (w *webhookRuntime) Stop(context.Context) error {
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
	w.disp.Stop()
	return nil
}

func (w *webhookRuntime) Status() api.Component {
	c := api.Component{Name: "webhooks", State: "ok"}
	c.Detail = fmt.Sprintf("%d deliveries pending", w.disp.Pending())
	return c
}

// consume turns stored events into deliveries, committing the cursor with
// them.
func (w *webhookRuntime) consume(evs []api.Event) error {
	var out []webhook.Event
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
func (w *webhookRuntime) convert(e api.Event) []webhook.Event {
	id := store.EventIDs.Format(e.Seq)
	if e.Type == "config.applied" || e.Type == "config.rolledback" {
		return w.configEvents(e, id)
	}
	if e.Tenant == "" || !slices.Contains(webhookEvents, e.Type) {
		return nil
	}
	data := map[string]any{"message": e.Message}
	for k, v := range e.Data {
		data[k] = v
	}
	return []webhook.Event{{ID: id, Type: e.Type, Time: e.Time, Tenant: e.Tenant, Data: data}}
}

func (w *webhookRuntime) configEvents(e api.Event, id string) []webhook.Event {
	rev := dataInt(e.Data["revision"])
	rv, err := store.RevisionInfo(context.Background(), w.d.store, rev)
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
	var out []webhook.Event
	for _, t := range order {
		ch := byTenant[t]
		if len(ch) > 100 {
			ch = append(ch[:100], fmt.Sprintf("… %d more", len(byTenant[t])-100))
		}
		out = append(out, webhook.Event{ID: id + "_" + t, Type: "config.applied", Time: e.Time, Tenant: t,
			Data: map[string]any{"revision": rev, "action": action, "changes": ch}})
	}
	return out
}

func toAPIDelivery(d webhook.Delivery) api.WebhookDelivery {
	out := api.WebhookDelivery{
		ID: d.ID, Tenant: d.Tenant, Webhook: d.Webhook, EventID: d.EventID, EventType: d.EventType, State: d.State,
		Attempts: d.Attempts, CreatedAt: d.CreatedAt, NextAttemptAt: d.NextAttemptAt, LastAttemptAt: d.LastAttemptAt,
		LastStatus: d.LastStatus, LastError: d.LastError, LastDuration: d.LastDuration, LastResponse: d.LastResponse,
		CompletedAt: d.CompletedAt, RedeliveryOf: d.RedeliveryOf,
	}
	if len(d.Body) > 0 {
		out.Body = json.RawMessage(d.Body)
	}
	return out
}

func webhookError(err error) error {
	switch {
	case errors.Is(err, webhook.ErrNotFound):
		return apiError(api.CodeNotFound, err.Error(), "list deliveries with: stoa webhooks deliveries")
	case errors.Is(err, webhook.ErrNoHook):
		return apiError(api.CodeNotFound, err.Error(), "list webhooks with: stoa get webhooks -A")
	}
	return err
}

func (w *webhookRuntime) serveList(rw http.ResponseWriter, r *http.Request, p Peer) error {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	w.feed.CatchUp()
	ds, err := w.disp.List(webhook.Filter{Tenant: q.Get("namespace"), Webhook: q.Get("webhook"), State: q.Get("state"), Limit: limit})
	if err != nil {
		return err
	}
	out := api.WebhookDeliveryList{Items: []api.WebhookDelivery{}}
	for _, d := range ds {
		out.Items = append(out.Items, toAPIDelivery(d))
	}
	return WriteJSON(rw, http.StatusOK, out)
}

func (w *webhookRuntime) serveGet(rw http.ResponseWriter, r *http.Request, p Peer) error {
	d, err := w.disp.Get(r.PathValue("id"))
	if err != nil {
		return webhookError(err)
	}
	return WriteJSON(rw, http.StatusOK, toAPIDelivery(d))
}

// wait waits for a new delivery's first attempt, bounded by the webhook's
// timeout.
func (w *webhookRuntime) wait(ctx context.Context, d webhook.Delivery, noWait bool) api.WebhookAttemptResponse {
	if noWait {
		return api.WebhookAttemptResponse{Delivery: toAPIDelivery(d)}
	}
	limit := 15 * time.Second
	if h := w.disp.Hook(d.Tenant, d.Webhook); h != nil && h.Timeout > 0 {
		limit = h.Timeout + 5*time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	got, err := w.disp.Wait(ctx, d.ID)
	got.Body = nil
	return api.WebhookAttemptResponse{Delivery: toAPIDelivery(got), Waited: err == nil}
}

func (w *webhookRuntime) serveRedeliver(rw http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.WebhookRedeliverRequest
	if r.ContentLength != 0 {
		if err := DecodeBody(r, rw, &req); err != nil {
			return err
		}
	}
	d, err := w.disp.Redeliver(r.PathValue("id"))
	if err != nil {
		return webhookError(err)
	}
	w.audit.record(audit.Entry{Actor: p.Actor(), Action: "webhook.redeliver", Target: "Webhook/" + d.Tenant + "/" + d.Webhook,
		Tenant: d.Tenant, Details: map[string]string{"delivery": d.ID, "of": d.RedeliveryOf, "event": d.EventID}})
	return WriteJSON(rw, http.StatusOK, w.wait(r.Context(), d, req.NoWait))
}

func (w *webhookRuntime) serveTest(rw http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.WebhookTestRequest
	if err := DecodeBody(r, rw, &req); err != nil {
		return err
	}
	if req.Tenant == "" || req.Name == "" {
		return apiError(api.CodeBadRequest, "tenant and webhook name are required", "stoa webhooks test NAME -n TENANT")
	}
	d, err := w.disp.SendTest(req.Tenant, req.Name, p.Actor())
	if err != nil {
		return webhookError(err)
	}
	w.audit.record(audit.Entry{Actor: p.Actor(), Action: "webhook.test", Target: "Webhook/" + req.Tenant + "/" + req.Name,
		Tenant: req.Tenant, Details: map[string]string{"delivery": d.ID}})
	return WriteJSON(rw, http.StatusOK, w.wait(r.Context(), d, req.NoWait))
}
