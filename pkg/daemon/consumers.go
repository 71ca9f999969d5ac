package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
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

// bucketConsumerUIDs maps "tenant\x00name" of each live Consumer to its
// consumerIdentity.
var bucketConsumerUIDs = []byte("consumer_uids")

// consumerIdentity is the live metadata stoad keeps for a Consumer.
type consumerIdentity struct {
	UID       string    `json:"uid"`
	CreatedAt time.Time `json:"createdAt"`
	// Revision created the Consumer (0: it predates identities).
	Revision int64 `json:"revision"`
}

func consumerKey(tenant, name string) []byte { return []byte(tenant + "\x00" + name) }

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
func consumerUID(tx *bolt.Tx, tenant, name string) string {
	b := tx.Bucket(bucketConsumerUIDs)
	if b == nil {
		return ""
	}
	var id consumerIdentity
	if v := b.Get(consumerKey(tenant, name)); v == nil || json.Unmarshal(v, &id) != nil {
		return ""
	}
	return id.UID
}

// liveConsumerUIDs returns every live Consumer's UID by "tenant\x00name".
func liveConsumerUIDs(tx *bolt.Tx) map[string]string {
	out := map[string]string{}
	b := tx.Bucket(bucketConsumerUIDs)
	if b == nil {
		return out
	}
	_ = b.ForEach(func(k, v []byte) error {
		var id consumerIdentity
		if json.Unmarshal(v, &id) == nil {
			out[string(k)] = id.UID
		}
		return nil
	})
	return out
}

// ensureConsumerIdentities runs at start: every live Consumer gets a UID
// (state written before identities existed has none), and identities of
// Consumers that are gone are forgotten.
func (d *Daemon) ensureConsumerIdentities(st *State) error {
	return d.store.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketConsumerUIDs)
		if err != nil {
			return err
		}
		live := map[string]bool{}
		for _, o := range st.OfKind(spec.KindConsumer) {
			k := consumerKey(o.Metadata.Namespace, o.Metadata.Name)
			live[string(k)] = true
			if b.Get(k) != nil {
				continue
			}
			v, _ := json.Marshal(consumerIdentity{UID: newUID(), CreatedAt: time.Now().UTC()})
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		var stale [][]byte
		_ = b.ForEach(func(k, _ []byte) error {
			if !live[string(k)] {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// commitEffects are what a revision did besides its objects: events
// stored in its transaction (published once it is live) and whether keys
// were revoked (the key index must be rebuilt).
type commitEffects struct {
	events  []api.Event
	revoked int
}

// lifecycle runs inside the transaction that commits revision id: it gives
// created Consumers a UID and, for deleted Consumers and Tenants, forgets
// the UID and revokes every key bound to it, storing one key.revoked event
// per key with the actor who made the revision.
func (d *Daemon) lifecycle(tx *bolt.Tx, id int64, actor string, changes []plan.Change, now time.Time, fx *commitEffects) error {
	uids, err := tx.CreateBucketIfNotExists(bucketConsumerUIDs)
	if err != nil {
		return err
	}
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
			if err := uids.Put(k, v); err != nil {
				return err
			}
		case plan.Delete:
			reason := fmt.Sprintf("consumer %s/%s deleted in revision %d", c.Ref.Namespace, c.Ref.Name, id)
			if deletedTenants[c.Ref.Namespace] {
				reason = fmt.Sprintf("tenant %s deleted in revision %d", c.Ref.Namespace, id)
			}
			var ident consumerIdentity
			if v := uids.Get(k); v != nil && json.Unmarshal(v, &ident) == nil && ident.UID != "" {
				reasonByUID[ident.UID] = reason
			}
			reasonByName[string(k)] = reason
			if err := uids.Delete(k); err != nil {
				return err
			}
		}
	}
	keys := tx.Bucket(bucketKeys)
	if keys == nil || (len(reasonByName) == 0 && len(deletedTenants) == 0) {
		return nil
	}
	var revoke []auth.KeyRecord
	err = keys.ForEach(func(_, v []byte) error {
		var r auth.KeyRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode key: %w", err)
		}
		if !r.RevokedAt.IsZero() && !r.RevokedAt.After(now) {
			return nil // revoked already
		}
		reason, ok := reasonByUID[r.ConsumerUID]
		if !ok && r.ConsumerUID == "" {
			reason, ok = reasonByName[string(consumerKey(r.Tenant, r.Consumer))]
		}
		if !ok && deletedTenants[r.Tenant] {
			reason, ok = fmt.Sprintf("tenant %s deleted in revision %d", r.Tenant, id), true
		}
		if ok {
			r.RevokedAt, r.RevokedBy, r.RevokedReason = now, actor, reason
			revoke = append(revoke, r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range revoke {
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := keys.Put([]byte(r.ID), v); err != nil {
			return err
		}
		e, err := store.AppendEventTx(tx, api.Event{Time: now, Type: "key.revoked", Tenant: r.Tenant,
			Message: fmt.Sprintf("key %s of consumer %s revoked: %s (by %s)", r.Prefix, r.Consumer, r.RevokedReason, actor),
			Data: map[string]any{"key": r.Prefix, "consumer": r.Consumer, "consumerUid": r.ConsumerUID,
				"reason": r.RevokedReason, "actor": actor, "revision": id}})
		if err != nil {
			return err
		}
		fx.events = append(fx.events, e)
	}
	fx.revoked += len(revoke)
	return nil
}
