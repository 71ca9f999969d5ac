package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

var bucketKeys = []byte("keys")

// keyService stores API key records (hashes only) and keeps the
// Authenticator's KeyIndex in step with them.
type keyService struct {
	d  *Daemon
	a  *auth.Authenticator
	mu sync.Mutex // serialises key changes
}

func newKeyService(d *Daemon, a *auth.Authenticator) (*keyService, error) {
	ks := &keyService{d: d, a: a}
	if err := d.store.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketKeys)
		return err
	}); err != nil {
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

func (ks *keyService) records() ([]auth.KeyRecord, error) {
	var out []auth.KeyRecord
	err := ks.d.store.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(k, v []byte) error {
			var r auth.KeyRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode key %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// reload rebuilds the KeyIndex from the store.
func (ks *keyService) reload() error {
	recs, err := ks.records()
	if err != nil {
		return err
	}
	// Carry last-used times not yet flushed (admission.go flushes them
	// periodically) over to the new index.
	if old := ks.a.Keys(); old != nil {
		used := map[string]time.Time{}
		old.RangeUsage(func(id string, t time.Time) bool { used[id] = t; return true })
		for i := range recs {
			if t := used[recs[i].ID]; t.After(recs[i].LastUsedAt) {
				recs[i].LastUsedAt = t
			}
		}
	}
	ix, err := auth.NewKeyIndex(recs)
	if err != nil {
		return err
	}
	ks.a.SetKeys(ix)
	return nil
}

func (ks *keyService) put(recs ...auth.KeyRecord) error {
	err := ks.d.store.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		for _, r := range recs {
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(r.ID), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return ks.reload()
}

func (ks *keyService) get(id string) (auth.KeyRecord, error) {
	var r auth.KeyRecord
	err := ks.d.store.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKeys).Get([]byte(id))
		if v == nil {
			return apiError(api.CodeNotFound, fmt.Sprintf("key %s not found", id), "list keys with: stoa keys list -A")
		}
		return json.Unmarshal(v, &r)
	})
	return r, err
}

func keyInfo(r auth.KeyRecord, now time.Time) api.KeyInfo {
	return api.KeyInfo{
		ID: r.ID, Prefix: r.Prefix, Tenant: r.Tenant, Consumer: r.Consumer, Name: r.Name,
		State: string(r.State(now)), CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt,
		NotAfter: r.NotAfter, RotatedTo: r.RotatedTo, LastUsedAt: r.LastUsedAt,
	}
}

func (ks *keyService) serveList(w http.ResponseWriter, r *http.Request, p Peer) error {
	q := r.URL.Query()
	recs, err := ks.records()
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
		return apiError(api.CodeNotFound, fmt.Sprintf("consumer %q not found in tenant %s", req.Consumer, req.Tenant),
			"define the Consumer in a spec and apply it first; list them with: stoa get consumers -n "+req.Tenant)
	}
	var ttl time.Duration
	if req.ExpiresIn != "" {
		d, err := spec.ParseDuration(spec.Duration(req.ExpiresIn))
		if err != nil || d <= 0 {
			return apiError(api.CodeBadRequest, fmt.Sprintf("bad expiry %q", req.ExpiresIn), "use a duration such as 90d or 720h")
		}
		ttl = d
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	key, rec, err := auth.GenerateKey(auth.KeyOptions{Tenant: req.Tenant, Consumer: req.Consumer, Name: req.Name, TTL: ttl})
	if err != nil {
		return err
	}
	if err := ks.put(rec); err != nil {
		return err
	}
	ks.d.Emit("key.created", req.Tenant, fmt.Sprintf("key %s created for consumer %s by %s", rec.Prefix, req.Consumer, p.Actor()),
		map[string]any{"key": rec.Prefix, "consumer": req.Consumer, "actor": p.Actor()})
	return WriteJSON(w, http.StatusCreated, api.KeyCreateResponse{Key: key, Info: keyInfo(rec, time.Now())})
}

func (ks *keyService) serveRevoke(w http.ResponseWriter, r *http.Request, p Peer) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	rec, err := ks.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	if rec.RevokedAt.IsZero() || rec.RevokedAt.After(now) {
		rec.RevokedAt = now
		if err := ks.put(rec); err != nil {
			return err
		}
		ks.d.Emit("key.revoked", rec.Tenant, fmt.Sprintf("key %s of consumer %s revoked by %s", rec.Prefix, rec.Consumer, p.Actor()),
			map[string]any{"key": rec.Prefix, "consumer": rec.Consumer, "actor": p.Actor()})
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
		d, err := spec.ParseDuration(spec.Duration(req.Grace))
		if err != nil || d < 0 {
			return apiError(api.CodeBadRequest, fmt.Sprintf("bad grace period %q", req.Grace), "use a duration such as 24h")
		}
		grace = d
	}
	var ttl time.Duration // the new key's lifetime; 0 means none
	switch req.ExpiresIn {
	case "", "never":
	default:
		d, err := spec.ParseDuration(spec.Duration(req.ExpiresIn))
		if err != nil || d <= 0 {
			return apiError(api.CodeBadRequest, fmt.Sprintf("bad expiry %q", req.ExpiresIn), "use a duration such as 90d or 720h, or never")
		}
		ttl = d
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	old, err := ks.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	now := time.Now()
	if st := old.State(now); st != auth.KeyActive {
		return apiError(api.CodeConflict, fmt.Sprintf("key %s is %s; only active keys can be rotated", old.Prefix, st), "create a new key with: stoa keys create")
	}
	if req.ExpiresIn == "" && !old.ExpiresAt.IsZero() {
		// A rotation renews: the successor gets the old key's whole
		// lifetime again, counted from now (a 90-day key rotated on day 80
		// yields a key valid for 90 days, not 10, and not forever).
		ttl = old.ExpiresAt.Sub(old.CreatedAt)
	}
	key, next, prev, err := auth.RotateKey(old, grace, auth.KeyOptions{TTL: ttl})
	if err != nil {
		return err
	}
	if err := ks.put(next, prev); err != nil {
		return err
	}
	ks.d.Emit("key.rotated", old.Tenant, fmt.Sprintf("key %s of consumer %s rotated to %s by %s (grace %s)", old.Prefix, old.Consumer, next.Prefix, p.Actor(), grace),
		map[string]any{"old": old.Prefix, "new": next.Prefix, "consumer": old.Consumer, "grace": grace.String(), "actor": p.Actor()})
	return WriteJSON(w, http.StatusOK, api.KeyRotateResponse{Key: key, New: keyInfo(next, now), Old: keyInfo(prev, now)})
}
