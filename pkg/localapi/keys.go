package localapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/keys"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
)

type keysAPI struct {
	k    Keys
	live func() *state.Revision
}

// toAPIKey is a key record on the wire: never the hash, and its state
// at now.
func toAPIKey(r auth.KeyRecord, now time.Time) api.KeyInfo {
	return api.KeyInfo{
		ID: r.ID, Prefix: r.Prefix, Tenant: r.Tenant, Consumer: r.Consumer, ConsumerUID: r.ConsumerUID, Name: r.Name,
		State: string(r.State(now)), CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt,
		RevokedBy: r.RevokedBy, RevokedReason: r.RevokedReason,
		NotAfter: r.NotAfter, RotatedTo: r.RotatedTo, LastUsedAt: r.LastUsedAt,
	}
}

// keysError gives a refused key operation its code and a hint.
func keysError(err error) error {
	var ke *keys.Error
	if !errors.As(err, &ke) {
		return err
	}
	switch {
	case errors.Is(err, keys.ErrKeyNotFound):
		return apiError(api.CodeNotFound, ke.Msg, "list keys with: stoa keys list -A")
	case errors.Is(err, keys.ErrConsumerNotFound):
		return apiError(api.CodeNotFound, ke.Msg,
			"define the Consumer in a spec and apply it first; list them with: stoa get consumers -n "+ke.Tenant)
	case errors.Is(err, keys.ErrNotActive):
		return apiError(api.CodeConflict, ke.Msg, "create a new key with: stoa keys create")
	case errors.Is(err, keys.ErrConsumerGone):
		return apiError(api.CodeConflict, ke.Msg, "a consumer created again under the same name starts with no keys: stoa keys create")
	}
	return err
}

func (k keysAPI) list(w http.ResponseWriter, r *http.Request, p Peer) error {
	q := r.URL.Query()
	recs, err := k.k.List(r.Context(), q.Get("namespace"), q.Get("consumer"))
	if err != nil {
		return err
	}
	now := time.Now()
	out := api.KeyList{Items: []api.KeyInfo{}}
	for _, rec := range recs {
		out.Items = append(out.Items, toAPIKey(rec, now))
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (k keysAPI) create(w http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.KeyCreateRequest
	if err := DecodeBody(r, w, &req); err != nil {
		return err
	}
	if req.Tenant == "" || req.Consumer == "" {
		return apiError(api.CodeBadRequest, "tenant and consumer are required", "stoa keys create --consumer NAME -n TENANT")
	}
	if k.live().Get(spec.Ref{Kind: spec.KindConsumer, Namespace: req.Tenant, Name: req.Consumer}) == nil {
		return keysError(keys.ConsumerNotFound(req.Tenant, req.Consumer))
	}
	var ttl time.Duration
	if req.ExpiresIn != "" {
		d, err := spec.NewDuration(req.ExpiresIn)
		if err != nil || d.D() <= 0 {
			return apiError(api.CodeBadRequest, fmt.Sprintf("bad expiry %q", req.ExpiresIn), "use a duration such as 90d or 720h")
		}
		ttl = d.D()
	}
	key, rec, err := k.k.Create(r.Context(), req.Tenant, req.Consumer, req.Name, ttl, p.Actor)
	if err != nil {
		return keysError(err)
	}
	return WriteJSON(w, http.StatusCreated, api.KeyCreateResponse{Key: key, Info: toAPIKey(rec, time.Now())})
}

func (k keysAPI) revoke(w http.ResponseWriter, r *http.Request, p Peer) error {
	now := time.Now().UTC()
	rec, err := k.k.Revoke(r.Context(), r.PathValue("id"), p.Actor, now)
	if err != nil {
		return keysError(err)
	}
	return WriteJSON(w, http.StatusOK, toAPIKey(rec, now))
}

func (k keysAPI) rotate(w http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.KeyRotateRequest
	if err := DecodeBody(r, w, &req); err != nil {
		return err
	}
	var o keys.RotateOptions
	if req.Grace != "" {
		d, err := spec.NewDuration(req.Grace)
		if err != nil || d.D() < 0 {
			return apiError(api.CodeBadRequest, fmt.Sprintf("bad grace period %q", req.Grace), "use a duration such as 24h")
		}
		o.Grace = d.D()
	}
	switch req.ExpiresIn {
	case "": // the new key lives as long as the old one did
		o.KeepLifetime = true
	case "never":
	default:
		d, err := spec.NewDuration(req.ExpiresIn)
		if err != nil || d.D() <= 0 {
			return apiError(api.CodeBadRequest, fmt.Sprintf("bad expiry %q", req.ExpiresIn), "use a duration such as 90d or 720h, or never")
		}
		o.TTL = d.D()
	}
	now := time.Now()
	rot, err := k.k.Rotate(r.Context(), r.PathValue("id"), o, p.Actor, now)
	if err != nil {
		return keysError(err)
	}
	return WriteJSON(w, http.StatusOK, api.KeyRotateResponse{Key: rot.Key, New: toAPIKey(rot.New, now), Old: toAPIKey(rot.Old, now)})
}
