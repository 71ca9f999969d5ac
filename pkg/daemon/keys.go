package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// keyService stores API key records (hashes only) and keeps the
// Authenticator's KeyIndex in step with them.
type keyService struct {
	d  *Daemon
	a  *auth.Authenticator
	mu sync.Mutex // serialises key changes
}

func newKeyService(d *Daemon, a *auth.Authenticator) (*keyService, error) {
	ks := &keyService{d: d, a: a}
	if err := ks.bindLegacyKeys(); err != nil {
		return nil, err
	}
	if err := ks.reload(); err != nil {
		return nil, err
	}
	d.HandleAPI("GET "+api.PathKeys, ks.serveList)
	d.HandleAPI("POST "+api.PathKeys, ks.serveCreate)
	d.HandleAPI("POST "+api.PathKeys+"/{id}/revoke", ks.serveRevoke)
	d.HandleAPI("POST "+api.PathKeys+"/{id}/rotate", ks.serveRotate)
	return ks, nil
}

// readKeys returns every key record and the live consumers' UIDs, read in
// one transaction.
func (ks *keyService) readKeys() ([]auth.KeyRecord, map[string]string, error) {
	var (
		out  []auth.KeyRecord
		live map[string]string
	)
	ctx := context.Background()
	err := ks.d.store.View(ctx, func(tx store.Tx) error {
		var err error
		if live, err = liveConsumerUIDs(ctx, tx); err != nil {
			return err
		}
		out, err = tx.Keys().List(ctx)
		return err
	})
	return out, live, err
}

// refresh rebuilds the KeyIndex after keys changed outside the service
// (revoked with their consumer by a revision).
func (ks *keyService) refresh() error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.reload()
}

// reload rebuilds the KeyIndex from the store; callers hold ks.mu, so
// indexes are built (and swapped in) in the order the store changed.
// Only keys of a live Consumer, with that Consumer's UID, are indexed: a
// key outliving its consumer is refused even if it was somehow not
// revoked.
func (ks *keyService) reload() error {
	recs, live, err := ks.readKeys()
	if err != nil {
		return err
	}
	// Carry last-used times not yet flushed (admission.go flushes them
	// periodically) over to the new index.
	used := map[string]time.Time{}
	if old := ks.a.Keys(); old != nil {
		old.RangeUsage(func(id string, t time.Time) bool { used[id] = t; return true })
	}
	n := 0
	for _, r := range recs {
		uid, ok := live[consumerKey(r.Tenant, r.Consumer)]
		if !ok || (r.ConsumerUID != "" && r.ConsumerUID != uid) {
			continue
		}
		if t := used[r.ID]; t.After(r.LastUsedAt) {
			r.LastUsedAt = t
		}
		recs[n] = r
		n++
	}
	ix, err := auth.NewKeyIndex(recs[:n])
	if err != nil {
		return err
	}
	ks.a.SetKeys(ix)
	return nil
}

// change runs fn in one store transaction; events fn emits are stored in
// that transaction. Afterwards the index is rebuilt and the events
// published. Callers hold ks.mu.
func (ks *keyService) change(fn func(ctx context.Context, tx store.Tx, emit func(api.Event) error) error) error {
	var events []api.Event
	ctx := context.Background()
	err := ks.d.store.Update(ctx, func(tx store.Tx) error {
		events = events[:0]
		return fn(ctx, tx, func(e api.Event) error {
			e.Time = time.Now().UTC()
			stored, err := tx.Events().Append(ctx, e)
			events = append(events, stored)
			return err
		})
	})
	if err != nil {
		return err
	}
	if err := ks.reload(); err != nil {
		return err
	}
	for _, e := range events {
		ks.d.events.Publish(e)
	}
	return nil
}

func getKey(ctx context.Context, tx store.Tx, id string) (auth.KeyRecord, error) {
	r, err := tx.Keys().Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, apiError(api.CodeNotFound, fmt.Sprintf("key %s not found", id), "list keys with: stoa keys list -A")
	}
	return r, err
}

func keyInfo(r auth.KeyRecord, now time.Time) api.KeyInfo {
	return api.KeyInfo{
		ID: r.ID, Prefix: r.Prefix, Tenant: r.Tenant, Consumer: r.Consumer, ConsumerUID: r.ConsumerUID, Name: r.Name,
		State: string(r.State(now)), CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt,
		RevokedBy: r.RevokedBy, RevokedReason: r.RevokedReason,
		NotAfter: r.NotAfter, RotatedTo: r.RotatedTo, LastUsedAt: r.LastUsedAt,
	}
}

func (ks *keyService) serveList(w http.ResponseWriter, r *http.Request, p Peer) error {
	q := r.URL.Query()
	recs, _, err := ks.readKeys()
	if err != nil {
		return err
	}
	// Fold in last-used times not yet flushed to the store.
	used := map[string]time.Time{}
	if ix := ks.a.Keys(); ix != nil {
		ix.RangeUsage(func(id string, t time.Time) bool { used[id] = t; return true })
	}
	now := time.Now()
	out := api.KeyList{Items: []api.KeyInfo{}}
	for _, rec := range recs {
		if ns := q.Get("namespace"); ns != "" && rec.Tenant != ns {
			continue
		}
		if c := q.Get("consumer"); c != "" && rec.Consumer != c {
			continue
		}
		if t := used[rec.ID]; t.After(rec.LastUsedAt) {
			rec.LastUsedAt = t
		}
		out.Items = append(out.Items, keyInfo(rec, now))
	}
	sort.Slice(out.Items, func(i, j int) bool { return out.Items[i].CreatedAt.Before(out.Items[j].CreatedAt) })
	return WriteJSON(w, http.StatusOK, out)
}

func consumerNotFound(tenant, consumer string) error {
	return apiError(api.CodeNotFound, fmt.Sprintf("consumer %q not found in tenant %s", consumer, tenant),
		"define the Consumer in a spec and apply it first; list them with: stoa get consumers -n "+tenant)
}

func (ks *keyService) serveCreate(w http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.KeyCreateRequest
	if err := DecodeBody(r, w, &req); err != nil {
		return err
	}
	if req.Tenant == "" || req.Consumer == "" {
		return apiError(api.CodeBadRequest, "tenant and consumer are required", "stoa keys create --consumer NAME -n TENANT")
	}
	ref := spec.Ref{Kind: spec.KindConsumer, Namespace: req.Tenant, Name: req.Consumer}
	if ks.d.State().Get(ref) == nil {
		return consumerNotFound(req.Tenant, req.Consumer)
	}
	var ttl time.Duration
	if req.ExpiresIn != "" {
		d, err := spec.NewDuration(req.ExpiresIn)
		if err != nil || d.D() <= 0 {
			return apiError(api.CodeBadRequest, fmt.Sprintf("bad expiry %q", req.ExpiresIn), "use a duration such as 90d or 720h")
		}
		ttl = d.D()
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var (
		key string
		rec auth.KeyRecord
	)
	err := ks.change(func(ctx context.Context, tx store.Tx, emit func(api.Event) error) error {
		// The consumer's identity is read in the transaction that stores
		// the key: a revision deleting the consumer commits either before
		// (no identity: refused) or after (and revokes this key too).
		uid, err := consumerUID(ctx, tx, req.Tenant, req.Consumer)
		if err != nil {
			return err
		}
		if uid == "" {
			return consumerNotFound(req.Tenant, req.Consumer)
		}
		key, rec, err = auth.GenerateKey(auth.KeyOptions{Tenant: req.Tenant, Consumer: req.Consumer, ConsumerUID: uid, Name: req.Name, TTL: ttl})
		if err != nil {
			return err
		}
		if err := tx.Keys().Put(ctx, rec); err != nil {
			return err
		}
		return emit(api.Event{Type: "key.created", Tenant: req.Tenant,
			Message: fmt.Sprintf("key %s created for consumer %s by %s", rec.Prefix, req.Consumer, p.Actor()),
			Data:    map[string]any{"key": rec.Prefix, "consumer": req.Consumer, "consumerUid": uid, "actor": p.Actor()}})
	})
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusCreated, api.KeyCreateResponse{Key: key, Info: keyInfo(rec, time.Now())})
}

func (ks *keyService) serveRevoke(w http.ResponseWriter, r *http.Request, p Peer) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := time.Now().UTC()
	var rec auth.KeyRecord
	err := ks.change(func(ctx context.Context, tx store.Tx, emit func(api.Event) error) error {
		var err error
		if rec, err = getKey(ctx, tx, r.PathValue("id")); err != nil {
			return err
		}
		if !rec.RevokedAt.IsZero() && !rec.RevokedAt.After(now) {
			return nil // revoked already: keep who and why
		}
		rec.RevokedAt, rec.RevokedBy, rec.RevokedReason = now, p.Actor(), "revoked on request"
		if err := tx.Keys().Put(ctx, rec); err != nil {
			return err
		}
		return emit(api.Event{Type: "key.revoked", Tenant: rec.Tenant,
			Message: fmt.Sprintf("key %s of consumer %s revoked by %s", rec.Prefix, rec.Consumer, p.Actor()),
			Data:    map[string]any{"key": rec.Prefix, "consumer": rec.Consumer, "reason": rec.RevokedReason, "actor": p.Actor()}})
	})
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, keyInfo(rec, now))
}

func (ks *keyService) serveRotate(w http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.KeyRotateRequest
	if err := DecodeBody(r, w, &req); err != nil {
		return err
	}
	var grace time.Duration
	if req.Grace != "" {
		d, err := spec.NewDuration(req.Grace)
		if err != nil || d.D() < 0 {
			return apiError(api.CodeBadRequest, fmt.Sprintf("bad grace period %q", req.Grace), "use a duration such as 24h")
		}
		grace = d.D()
	}
	var ttl time.Duration // the new key's lifetime; 0 means none
	switch req.ExpiresIn {
	case "", "never":
	default:
		d, err := spec.NewDuration(req.ExpiresIn)
		if err != nil || d.D() <= 0 {
			return apiError(api.CodeBadRequest, fmt.Sprintf("bad expiry %q", req.ExpiresIn), "use a duration such as 90d or 720h, or never")
		}
		ttl = d.D()
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := time.Now()
	var (
		key        string
		next, prev auth.KeyRecord
	)
	err := ks.change(func(ctx context.Context, tx store.Tx, emit func(api.Event) error) error {
		old, err := getKey(ctx, tx, r.PathValue("id"))
		if err != nil {
			return err
		}
		if st := old.State(now); st != auth.KeyActive {
			why := ""
			if st == auth.KeyRevoked && old.RevokedReason != "" {
				why = " (" + old.RevokedReason + ")"
			}
			return apiError(api.CodeConflict, fmt.Sprintf("key %s is %s%s; only active keys can be rotated", old.Prefix, st, why),
				"create a new key with: stoa keys create")
		}
		uid, err := consumerUID(ctx, tx, old.Tenant, old.Consumer)
		if err != nil {
			return err
		}
		if uid == "" || (old.ConsumerUID != "" && uid != old.ConsumerUID) {
			return apiError(api.CodeConflict, fmt.Sprintf("key %s belongs to consumer %s/%s, which no longer exists", old.Prefix, old.Tenant, old.Consumer),
				"a consumer created again under the same name starts with no keys: stoa keys create")
		}
		if req.ExpiresIn == "" && !old.ExpiresAt.IsZero() {
			// A rotation renews: the successor gets the old key's whole
			// lifetime again, counted from now (a 90-day key rotated on day 80
			// yields a key valid for 90 days, not 10, and not forever).
			ttl = old.ExpiresAt.Sub(old.CreatedAt)
		}
		key, next, prev, err = auth.RotateKey(old, grace, auth.KeyOptions{TTL: ttl})
		if err != nil {
			return err
		}
		if err := tx.Keys().Put(ctx, next, prev); err != nil {
			return err
		}
		return emit(api.Event{Type: "key.rotated", Tenant: old.Tenant,
			Message: fmt.Sprintf("key %s of consumer %s rotated to %s by %s (grace %s)", old.Prefix, old.Consumer, next.Prefix, p.Actor(), grace),
			Data:    map[string]any{"old": old.Prefix, "new": next.Prefix, "consumer": old.Consumer, "grace": grace.String(), "actor": p.Actor()}})
	})
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, api.KeyRotateResponse{Key: key, New: keyInfo(next, now), Old: keyInfo(prev, now)})
}
