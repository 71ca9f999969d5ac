package localapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/webhook"
)

type webhooksAPI struct{ wh Webhooks }

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

// webhookError gives a refused webhook operation its code and a hint.
func webhookError(err error) error {
	switch {
	case errors.Is(err, webhook.ErrNotFound):
		return apiError(api.CodeNotFound, err.Error(), "list deliveries with: stoa webhooks deliveries")
	case errors.Is(err, webhook.ErrNoHook):
		return apiError(api.CodeNotFound, err.Error(), "list webhooks with: stoa get webhooks -A")
	}
	return err
}

func (h webhooksAPI) list(w http.ResponseWriter, r *http.Request, p Peer) error {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	ds, err := h.wh.List(webhook.Filter{Tenant: q.Get("namespace"), Webhook: q.Get("webhook"), State: q.Get("state"), Limit: limit})
	if err != nil {
		return err
	}
	out := api.WebhookDeliveryList{Items: []api.WebhookDelivery{}}
	for _, d := range ds {
		out.Items = append(out.Items, toAPIDelivery(d))
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (h webhooksAPI) get(w http.ResponseWriter, r *http.Request, p Peer) error {
	d, err := h.wh.Get(r.PathValue("id"))
	if err != nil {
		return webhookError(err)
	}
	return WriteJSON(w, http.StatusOK, toAPIDelivery(d))
}

func (h webhooksAPI) redeliver(w http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.WebhookRedeliverRequest
	if r.ContentLength != 0 {
		if err := DecodeBody(r, w, &req); err != nil {
			return err
		}
	}
	d, waited, err := h.wh.Redeliver(r.Context(), r.PathValue("id"), p.Actor, !req.NoWait)
	if err != nil {
		return webhookError(err)
	}
	return WriteJSON(w, http.StatusOK, api.WebhookAttemptResponse{Delivery: toAPIDelivery(d), Waited: waited})
}

func (h webhooksAPI) test(w http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.WebhookTestRequest
	if err := DecodeBody(r, w, &req); err != nil {
		return err
	}
	if req.Tenant == "" || req.Name == "" {
		return apiError(api.CodeBadRequest, "tenant and webhook name are required", "stoa webhooks test NAME -n TENANT")
	}
	d, waited, err := h.wh.Test(r.Context(), req.Tenant, req.Name, p.Actor, !req.NoWait)
	if err != nil {
		return webhookError(err)
	}
	return WriteJSON(w, http.StatusOK, api.WebhookAttemptResponse{Delivery: toAPIDelivery(d), Waited: waited})
}
