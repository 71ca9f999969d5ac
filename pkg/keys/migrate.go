package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// bindLegacy runs at start, after every live Consumer has a UID: keys
// stored before keys were bound to consumer identities get the UID of the
// Consumer they name — unless that Consumer was deleted after the key was
// made (the revision log says so; a Consumer of the same name applied
// again since is another consumer) or is gone: those keys are revoked, as
// the deletion would have done.
func (s *Service) bindLegacy() error {
	var unbound bool
	ctx := context.Background()
	err := s.o.Store.View(ctx, func(tx store.Tx) error {
		all, err := tx.Keys().List(ctx)
		for _, r := range all {
			unbound = unbound || r.ConsumerUID == ""
		}
		return err
	})
	if err != nil || !unbound {
		return err
	}
	deleted, err := consumerDeletions(ctx, s.o.Store)
	if err != nil {
		return fmt.Errorf("bind keys to consumers: %w", err)
	}
	now := time.Now().UTC()
	var events []api.Event
	bound, revoked := 0, 0
	err = s.o.Store.Update(ctx, func(tx store.Tx) error {
		events, bound, revoked = events[:0], 0, 0
		all, err := tx.Keys().List(ctx)
		if err != nil {
			return err
		}
		for _, r := range all {
			if r.ConsumerUID != "" {
				continue
			}
			uid, err := consumerUID(ctx, tx, r.Tenant, r.Consumer)
			if err != nil {
				return err
			}
			var reason string
			switch del := deleted[consumerKey(r.Tenant, r.Consumer)]; {
			case uid == "":
				reason = fmt.Sprintf("consumer %s/%s no longer exists (found when keys were bound to consumer identities)", r.Tenant, r.Consumer)
			case !del.IsZero() && del.After(r.CreatedAt):
				reason = fmt.Sprintf("consumer %s/%s was deleted at %s, after the key was made (found when keys were bound to consumer identities)",
					r.Tenant, r.Consumer, del.Format(time.RFC3339))
			}
			if reason == "" {
				r.ConsumerUID = uid
				bound++
			} else if r.RevokedAt.IsZero() || r.RevokedAt.After(now) {
				r.RevokedAt, r.RevokedBy, r.RevokedReason = now, "stoad", reason
				e, err := tx.Events().Append(ctx, api.Event{Time: now, Type: "key.revoked", Tenant: r.Tenant,
					Message: fmt.Sprintf("key %s of consumer %s revoked: %s", r.Prefix, r.Consumer, reason),
					Data:    map[string]any{"key": r.Prefix, "consumer": r.Consumer, "reason": reason, "actor": "stoad"}})
				if err != nil {
					return err
				}
				events = append(events, e)
				revoked++
			}
			if err := tx.Keys().Put(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bind keys to consumers: %w", err)
	}
	s.o.Log.Info("API keys bound to consumer identities", "bound", bound, "revoked", revoked)
	for _, e := range events {
		s.o.Events.Publish(e)
	}
	return nil
}

// consumerDeletions returns, by "tenant\x00name", when each Consumer was
// last deleted (directly or with its Tenant), from the revision log.
func consumerDeletions(ctx context.Context, st store.Store) (map[string]time.Time, error) {
	revs, err := store.ListRevisions(ctx, st, 0)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, h := range revs {
		rv, err := store.RevisionInfo(ctx, st, h.ID) // references only, not objects
		if err != nil {
			return nil, err
		}
		tenants := map[string]bool{}
		for _, c := range rv.Refs {
			if c.Op == plan.Delete && c.Ref.Kind == spec.KindTenant {
				tenants[c.Ref.Name] = true
			}
		}
		for _, c := range rv.Refs {
			if c.Ref.Kind != spec.KindConsumer || (c.Op != plan.Delete && !tenants[c.Ref.Namespace]) {
				continue
			}
			if k := consumerKey(c.Ref.Namespace, c.Ref.Name); rv.Time.After(out[k]) {
				out[k] = rv.Time
			}
		}
	}
	return out, nil
}
