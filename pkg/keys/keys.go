// Package keys keeps API keys: their records in the store (hashes only),
// the Authenticator's KeyIndex in step with them, their lifecycle with
// the Consumers they belong to (a deleted Consumer's keys are revoked in
// the revision that deletes it) and their last-used times.
package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// Errors of key operations, for errors.Is; the error's text says which
// key or consumer.
var (
	ErrKeyNotFound      = errors.New("key not found")
	ErrConsumerNotFound = errors.New("consumer not found")
	// ErrNotActive: only an active key can be rotated.
	ErrNotActive = errors.New("key not active")
	// ErrConsumerGone: the key's consumer was deleted (one created again
	// under the same name is another consumer).
	ErrConsumerGone = errors.New("consumer no longer exists")
)

// Error is a refused key operation: Kind is one of the errors above.
type Error struct {
	Kind error
	Msg  string
	// Tenant is the tenant the operation named.
	Tenant string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

// Options configure a Service.
type Options struct {
	Store  store.Store
	Auth   *auth.Authenticator // its KeyIndex is the service's
	Events *events.Log
	Log    *slog.Logger
}

// Service stores API key records and keeps the Authenticator's KeyIndex
// in step with them.
type Service struct {
	o  Options
	mu sync.Mutex // serialises key changes

	flushMu sync.Mutex
	flushed map[string]time.Time // key id → last-used time last written (FlushUsage)
}

// New binds keys stored before consumer identities existed (see
// bindLegacy) and builds the index. Call it after EnsureIdentities.
func New(o Options) (*Service, error) {
	s := &Service{o: o, flushed: map[string]time.Time{}}
	if err := s.bindLegacy(); err != nil {
		return nil, err
	}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// readKeys returns every key record and the live consumers' UIDs, read in
// one transaction.
func (s *Service) readKeys(ctx context.Context) ([]auth.KeyRecord, map[string]string, error) {
	var (
		out  []auth.KeyRecord
		live map[string]string
	)
	err := s.o.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if live, err = liveConsumerUIDs(ctx, tx); err != nil {
			return err
		}
		out, err = tx.Keys().List(ctx)
		return err
	})
	return out, live, err
}

// Refresh rebuilds the KeyIndex after keys changed outside the service
// (revoked with their consumer by a revision).
func (s *Service) Refresh() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload()
}

// usage returns the last-used times the index holds (not all flushed to
// the store yet).
func (s *Service) usage() map[string]time.Time {
	used := map[string]time.Time{}
	if ix := s.o.Auth.Keys(); ix != nil {
		ix.RangeUsage(func(id string, t time.Time) bool { used[id] = t; return true })
	}
	return used
}

// reload rebuilds the KeyIndex from the store; callers hold s.mu, so
// indexes are built (and swapped in) in the order the store changed.
// Only keys of a live Consumer, with that Consumer's UID, are indexed: a
// key outliving its consumer is refused even if it was somehow not
// revoked.
func (s *Service) reload() error {
	recs, live, err := s.readKeys(context.Background())
	if err != nil {
		return err
	}
	// Carry last-used times not yet flushed over to the new index.
	used := s.usage()
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
	s.o.Auth.SetKeys(ix)
	return nil
}

// change runs fn in one store transaction; events fn emits are stored in
// that transaction. Afterwards the index is rebuilt and the events
// published. Callers hold s.mu.
func (s *Service) change(fn func(ctx context.Context, tx store.Tx, emit func(api.Event) error) error) error {
	var evs []api.Event
	ctx := context.Background()
	err := s.o.Store.Update(ctx, func(tx store.Tx) error {
		evs = evs[:0]
		return fn(ctx, tx, func(e api.Event) error {
			e.Time = time.Now().UTC()
			stored, err := tx.Events().Append(ctx, e)
			evs = append(evs, stored)
			return err
		})
	})
	if err != nil {
		return err
	}
	if err := s.reload(); err != nil {
		return err
	}
	for _, e := range evs {
		s.o.Events.Publish(e)
	}
	return nil
}

func getKey(ctx context.Context, tx store.Tx, id string) (auth.KeyRecord, error) {
	r, err := tx.Keys().Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, &Error{Kind: ErrKeyNotFound, Msg: fmt.Sprintf("key %s not found", id)}
	}
	return r, err
}

// ConsumerNotFound is the error for a key asked for a consumer that does
// not exist.
func ConsumerNotFound(tenant, consumer string) error {
	return &Error{Kind: ErrConsumerNotFound, Tenant: tenant, Msg: fmt.Sprintf("consumer %q not found in tenant %s", consumer, tenant)}
}

// List returns the keys of tenant and consumer (every one when empty),
// oldest first, with last-used times not yet flushed folded in.
func (s *Service) List(ctx context.Context, tenant, consumer string) ([]auth.KeyRecord, error) {
	recs, _, err := s.readKeys(ctx)
	if err != nil {
		return nil, err
	}
	used := s.usage()
	out := recs[:0]
	for _, rec := range recs {
		if (tenant != "" && rec.Tenant != tenant) || (consumer != "" && rec.Consumer != consumer) {
			continue
		}
		if t := used[rec.ID]; t.After(rec.LastUsedAt) {
			rec.LastUsedAt = t
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Create makes a key for a live Consumer and returns it (shown once) and
// its record.
func (s *Service) Create(ctx context.Context, tenant, consumer, name string, ttl time.Duration, actor string) (string, auth.KeyRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		key string
		rec auth.KeyRecord
	)
	err := s.change(func(ctx context.Context, tx store.Tx, emit func(api.Event) error) error {
		// The consumer's identity is read in the transaction that stores
		// the key: a revision deleting the consumer commits either before
		// (no identity: refused) or after (and revokes this key too).
		uid, err := consumerUID(ctx, tx, tenant, consumer)
		if err != nil {
			return err
		}
		if uid == "" {
			return ConsumerNotFound(tenant, consumer)
		}
		key, rec, err = auth.GenerateKey(auth.KeyOptions{Tenant: tenant, Consumer: consumer, ConsumerUID: uid, Name: name, TTL: ttl})
		if err != nil {
			return err
		}
		if err := tx.Keys().Put(ctx, rec); err != nil {
			return err
		}
		return emit(api.Event{Type: "key.created", Tenant: tenant,
			Message: fmt.Sprintf("key %s created for consumer %s by %s", rec.Prefix, consumer, actor),
			Data:    map[string]any{"key": rec.Prefix, "consumer": consumer, "consumerUid": uid, "actor": actor}})
	})
	return key, rec, err
}

// Revoke revokes key id at now. A key revoked already keeps who revoked
// it and why.
func (s *Service) Revoke(ctx context.Context, id, actor string, now time.Time) (auth.KeyRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rec auth.KeyRecord
	err := s.change(func(ctx context.Context, tx store.Tx, emit func(api.Event) error) error {
		var err error
		if rec, err = getKey(ctx, tx, id); err != nil {
			return err
		}
		if !rec.RevokedAt.IsZero() && !rec.RevokedAt.After(now) {
			return nil // revoked already: keep who and why
		}
		rec.RevokedAt, rec.RevokedBy, rec.RevokedReason = now, actor, "revoked on request"
		if err := tx.Keys().Put(ctx, rec); err != nil {
			return err
		}
		return emit(api.Event{Type: "key.revoked", Tenant: rec.Tenant,
			Message: fmt.Sprintf("key %s of consumer %s revoked by %s", rec.Prefix, rec.Consumer, actor),
			Data:    map[string]any{"key": rec.Prefix, "consumer": rec.Consumer, "reason": rec.RevokedReason, "actor": actor}})
	})
	return rec, err
}

// RotateOptions shape a rotation.
type RotateOptions struct {
	// Grace is how long the old key keeps working.
	Grace time.Duration
	// TTL is the new key's lifetime (0: none), used when KeepLifetime is
	// false.
	TTL time.Duration
	// KeepLifetime gives the new key the old key's whole lifetime again,
	// counted from now (a key without expiry gets TTL).
	KeepLifetime bool
}

// Rotation is a rotated key: the new key (shown once) and both records.
type Rotation struct {
	Key      string
	New, Old auth.KeyRecord
}

// Rotate replaces active key id with a new one; the old one works for the
// grace period.
func (s *Service) Rotate(ctx context.Context, id string, o RotateOptions, actor string, now time.Time) (Rotation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out Rotation
	ttl := o.TTL
	err := s.change(func(ctx context.Context, tx store.Tx, emit func(api.Event) error) error {
		old, err := getKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if st := old.State(now); st != auth.KeyActive {
			why := ""
			if st == auth.KeyRevoked && old.RevokedReason != "" {
				why = " (" + old.RevokedReason + ")"
			}
			return &Error{Kind: ErrNotActive, Tenant: old.Tenant, Msg: fmt.Sprintf("key %s is %s%s; only active keys can be rotated", old.Prefix, st, why)}
		}
		uid, err := consumerUID(ctx, tx, old.Tenant, old.Consumer)
		if err != nil {
			return err
		}
		if uid == "" || (old.ConsumerUID != "" && uid != old.ConsumerUID) {
			return &Error{Kind: ErrConsumerGone, Tenant: old.Tenant,
				Msg: fmt.Sprintf("key %s belongs to consumer %s/%s, which no longer exists", old.Prefix, old.Tenant, old.Consumer)}
		}
		if o.KeepLifetime && !old.ExpiresAt.IsZero() {
			// A rotation renews: the successor gets the old key's whole
			// lifetime again, counted from now (a 90-day key rotated on day 80
			// yields a key valid for 90 days, not 10, and not forever).
			ttl = old.ExpiresAt.Sub(old.CreatedAt)
		}
		out.Key, out.New, out.Old, err = auth.RotateKey(old, o.Grace, auth.KeyOptions{TTL: ttl})
		if err != nil {
			return err
		}
		if err := tx.Keys().Put(ctx, out.New, out.Old); err != nil {
			return err
		}
		return emit(api.Event{Type: "key.rotated", Tenant: old.Tenant,
			Message: fmt.Sprintf("key %s of consumer %s rotated to %s by %s (grace %s)", old.Prefix, old.Consumer, out.New.Prefix, actor, o.Grace),
			Data:    map[string]any{"old": old.Prefix, "new": out.New.Prefix, "consumer": old.Consumer, "grace": o.Grace.String(), "actor": actor}})
	})
	return out, err
}

// FlushUsage writes keys' last-used times that moved since the last
// flush (to the second; at most one write transaction per call). The
// admission runtime calls it on its flush schedule.
func (s *Service) FlushUsage() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	ix := s.o.Auth.Keys()
	if ix == nil {
		return nil
	}
	dirty := map[string]time.Time{}
	ix.RangeUsage(func(id string, t time.Time) bool {
		if !t.IsZero() && t.After(s.flushed[id]) {
			dirty[id] = t
		}
		return true
	})
	if len(dirty) == 0 {
		return nil
	}
	ctx := context.Background()
	err := s.o.Store.Update(ctx, func(tx store.Tx) error {
		keys := tx.Keys()
		for id, t := range dirty {
			rec, err := keys.Get(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if !t.After(rec.LastUsedAt) {
				continue
			}
			rec.LastUsedAt = t
			if err := keys.Put(ctx, rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for id, t := range dirty {
		s.flushed[id] = t
	}
	return nil
}
