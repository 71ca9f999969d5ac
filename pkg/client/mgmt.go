package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// Quotas lists subscriptions with their effective state and quota usage.
func (c routes) Quotas(ctx context.Context, namespace string) (*api.QuotaList, error) {
	q := url.Values{}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	var l api.QuotaList
	return &l, c.tr.do(ctx, http.MethodGet, api.PathQuotas+"?"+q.Encode(), nil, &l)
}

// DeliveriesOptions select webhook deliveries.
type DeliveriesOptions struct {
	Namespace, Webhook, State string
	Limit                     int
}

// WebhookDeliveries lists deliveries, newest first.
func (c routes) WebhookDeliveries(ctx context.Context, o DeliveriesOptions) (*api.WebhookDeliveryList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"namespace": o.Namespace, "webhook": o.Webhook, "state": o.State} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var l api.WebhookDeliveryList
	return &l, c.tr.do(ctx, http.MethodGet, api.PathWebhookDeliveries+"?"+q.Encode(), nil, &l)
}

// WebhookDelivery returns one delivery with its payload.
func (c routes) WebhookDelivery(ctx context.Context, id string) (*api.WebhookDelivery, error) {
	var d api.WebhookDelivery
	return &d, c.tr.do(ctx, http.MethodGet, api.PathWebhookDeliveries+"/"+url.PathEscape(id), nil, &d)
}

// Redeliver queues a delivery's event again.
func (c routes) Redeliver(ctx context.Context, id string, noWait bool) (*api.WebhookAttemptResponse, error) {
	var r api.WebhookAttemptResponse
	return &r, c.tr.do(ctx, http.MethodPost, api.PathWebhookDeliveries+"/"+url.PathEscape(id)+"/redeliver",
		api.WebhookRedeliverRequest{NoWait: noWait}, &r)
}

// TestWebhook sends a webhook.test event to one webhook.
func (c routes) TestWebhook(ctx context.Context, req api.WebhookTestRequest) (*api.WebhookAttemptResponse, error) {
	var r api.WebhookAttemptResponse
	return &r, c.tr.do(ctx, http.MethodPost, api.PathWebhookTest, req, &r)
}

// SnapshotsOptions select error snapshots.
type SnapshotsOptions struct {
	Namespace, Tool string
	Since           time.Time
	Limit           int
}

// Snapshots lists error snapshots, newest first.
func (c routes) Snapshots(ctx context.Context, o SnapshotsOptions) (*api.SnapshotList, error) {
	q := url.Values{}
	if o.Namespace != "" {
		q.Set("namespace", o.Namespace)
	}
	if o.Tool != "" {
		q.Set("tool", o.Tool)
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var l api.SnapshotList
	return &l, c.tr.do(ctx, http.MethodGet, api.PathSnapshots+"?"+q.Encode(), nil, &l)
}

// Snapshot returns one snapshot, with its curl command.
func (c routes) Snapshot(ctx context.Context, id string) (*api.Snapshot, error) {
	var s api.Snapshot
	return &s, c.tr.do(ctx, http.MethodGet, api.PathSnapshots+"/"+url.PathEscape(id), nil, &s)
}

// ReplaySnapshot re-sends a snapshot's request through the tool's current
// route.
func (c routes) ReplaySnapshot(ctx context.Context, id string) (*api.ReplayResult, error) {
	var r api.ReplayResult
	return &r, c.tr.do(ctx, http.MethodPost, api.PathSnapshots+"/"+url.PathEscape(id)+"/replay", struct{}{}, &r)
}

// AuditOptions select audit entries.
type AuditOptions struct {
	Since                    time.Time
	Actor, Action, Namespace string
	Limit                    int
}

// Audit streams audit entries, oldest first, to fn.
func (c routes) Audit(ctx context.Context, o AuditOptions, fn func(api.AuditEntry) error) error {
	q := url.Values{}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	for k, v := range map[string]string{"actor": o.Actor, "action": o.Action, "namespace": o.Namespace} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	body, err := c.tr.stream(ctx, api.PathAudit+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer body.Close()
	return DecodeNDJSON(body, fn)
}

// AuditVerify checks the audit chain.
func (c routes) AuditVerify(ctx context.Context) (*api.AuditVerify, error) {
	var v api.AuditVerify
	return &v, c.tr.do(ctx, http.MethodGet, api.PathAuditVerify, nil, &v)
}
