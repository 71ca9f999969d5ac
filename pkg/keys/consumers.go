package keys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// Consumer identity. A Consumer's name is how specs refer to it; its UID
// is which Consumer it is. stoad assigns a UID when a Consumer is created
// (like Kubernetes' metadata.uid) and keeps it as live metadata beside the
// object, never in the user's spec. API keys are bound to the UID, and
// deleting the Consumer (or its Tenant), by delete, apply --prune, rollback
// or GitOps, revokes its keys in the same transaction as the revision. A
// Consumer created again under the same name gets a new UID and starts
// with no keys; so does a rollback to a revision that had it.

// The store's MetaConsumerUIDs maps "tenant\x00name" of each live
// Consumer to its consumerIdentity.

// consumerIdentity is the live metadata stoad keeps for a Consumer.
type consumerIdentity struct {
	UID       string    `json:"uid"`
	CreatedAt time.Time `json:"createdAt"`
	// Revision created the Consumer (0: it predates identities).
	Revision int64 `json:"revision"`
}

func consumerKey(tenant, name string) string { return tenant + "\x00" + name }

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crashes instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// consumerUID returns the UID of the live Consumer tenant/name, or "".
func consumerUID(ctx context.Context, tx store.Tx, tenant, name string) (string, error) {
	v, err := tx.Meta().Get(ctx, store.MetaConsumerUIDs, consumerKey(tenant, name))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	var id consumerIdentity
	if json.Unmarshal(v, &id) != nil {
		return "", nil
	}
	return id.UID, nil
}

// liveConsumerUIDs returns every live Consumer's UID by "tenant\x00name".
func liveConsumerUIDs(ctx context.Context, tx store.Tx) (map[string]string, error) {
	out := map[string]string{}
	err := tx.Meta().List(ctx, store.MetaConsumerUIDs, func(k string, v []byte) error {
		var id consumerIdentity
		if json.Unmarshal(v, &id) == nil {
			out[k] = id.UID
		}
		return nil
	})
	return out, err
}

// EnsureIdentities runs at start, on the stored revision: every live
// Consumer gets a UID (state written before identities existed has none),
// and identities of Consumers that are gone are forgotten.
func EnsureIdentities(ctx context.Context, s store.Store, rev *state.Revision) error {
	return s.Update(ctx, func(tx store.Tx) error {
		m := tx.Meta()
		known, err := liveConsumerUIDs(ctx, tx)
		if err != nil {
			return err
		}
		live := map[string]bool{}
		for _, o := range rev.OfKind(spec.KindConsumer) {
			k := consumerKey(o.Metadata.Namespace, o.Metadata.Name)
			live[k] = true
			if _, ok := known[k]; ok {
				continue
			}
			if _, err := m.Get(ctx, store.MetaConsumerUIDs, k); err == nil {
				continue // stored, though it does not decode: leave it be
			}
			v, _ := json.Marshal(consumerIdentity{UID: newUID(), CreatedAt: time.Now().UTC()})
			if err := m.Put(ctx, store.MetaConsumerUIDs, k, v); err != nil {
				return err
			}
		}
		var stale []string
		err = m.List(ctx, store.MetaConsumerUIDs, func(k string, _ []byte) error {
			if !live[k] {
				stale = append(stale, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := m.Delete(ctx, store.MetaConsumerUIDs, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Effects are what a revision did to keys: events stored in its
// transaction (published once it is live) and how many keys were revoked
// (the key index must then be rebuilt: Service.Refresh).
type Effects struct {
	Events  []api.Event
	Revoked int
}

// Lifecycle runs inside the transaction that commits revision id: it
// gives created Consumers a UID and, for deleted Consumers and Tenants,
// forgets the UID and revokes every key bound to it, storing one
// key.revoked event per key with the actor who made the revision.
func Lifecycle(ctx context.Context, tx store.Tx, id int64, actor string, changes []plan.Change, now time.Time, fx *Effects) error {
	uids := tx.Meta()
	deletedTenants := map[string]bool{}
	for _, c := range changes {
		if c.Op == plan.Delete && c.Ref.Kind == spec.KindTenant {
			deletedTenants[c.Ref.Name] = true
		}
	}
	// Reasons by consumer UID, and by "tenant\x00name" for keys bound to
	// no UID (none after the start-up migration; kept for safety).
	reasonByUID, reasonByName := map[string]string{}, map[string]string{}
	for _, c := range changes {
		if c.Ref.Kind != spec.KindConsumer {
			continue
		}
		k := consumerKey(c.Ref.Namespace, c.Ref.Name)
		switch c.Op {
		case plan.Create:
			v, _ := json.Marshal(consumerIdentity{UID: newUID(), CreatedAt: now, Revision: id})
			if err := uids.Put(ctx, store.MetaConsumerUIDs, k, v); err != nil {
				return err
			}
		case plan.Delete:
			reason := fmt.Sprintf("consumer %s/%s deleted in revision %d", c.Ref.Namespace, c.Ref.Name, id)
			if deletedTenants[c.Ref.Namespace] {
				reason = fmt.Sprintf("tenant %s deleted in revision %d", c.Ref.Namespace, id)
			}
			var ident consumerIdentity
			if v, err := uids.Get(ctx, store.MetaConsumerUIDs, k); err == nil && json.Unmarshal(v, &ident) == nil && ident.UID != "" {
				reasonByUID[ident.UID] = reason
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			reasonByName[k] = reason
			if err := uids.Delete(ctx, store.MetaConsumerUIDs, k); err != nil {
				return err
			}
		}
	}
	if len(reasonByName) == 0 && len(deletedTenants) == 0 {
		return nil
	}
	all, err := tx.Keys().List(ctx)
	if err != nil {
		return err
	}
	var revoke []auth.KeyRecord
	for _, r := range all {
		if !r.RevokedAt.IsZero() && !r.RevokedAt.After(now) {
			continue // revoked already
		}
		reason, ok := reasonByUID[r.ConsumerUID]
		if !ok && r.ConsumerUID == "" {
			reason, ok = reasonByName[consumerKey(r.Tenant, r.Consumer)]
		}
		if !ok && deletedTenants[r.Tenant] {
			reason, ok = fmt.Sprintf("tenant %s deleted in revision %d", r.Tenant, id), true
		}
		if ok {
			r.RevokedAt, r.RevokedBy, r.RevokedReason = now, actor, reason
			revoke = append(revoke, r)
		}
	}
	for _, r := range revoke {
		if err := tx.Keys().Put(ctx, r); err != nil {
			return err
		}
		e, err := tx.Events().Append(ctx, api.Event{Time: now, Type: "key.revoked", Tenant: r.Tenant,
			Message: fmt.Sprintf("key %s of consumer %s revoked: %s (by %s)", r.Prefix, r.Consumer, r.RevokedReason, actor),
			Data: map[string]any{"key": r.Prefix, "consumer": r.Consumer, "consumerUid": r.ConsumerUID,
				"reason": r.RevokedReason, "actor": actor, "revision": id}})
		if err != nil {
			return err
		}
		fx.Events = append(fx.Events, e)
	}
	fx.Revoked += len(revoke)
	return nil
}
