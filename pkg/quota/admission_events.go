package quota

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// reconcile compares every subscription's effective state with the state
// last announced and emits subscription.* events for the differences,
// then records the new states. Events go out before the record, so a crash
// in between repeats them rather than losing them. It returns the next
// expiresAt to wake up for.
func (a *Admission) reconcile(afterReload bool) time.Time {
	t := a.q.Table()
	if t == nil {
		return time.Time{}
	}
	now := a.Now()
	cur := t.States(now)
	prev := map[string]SubState{}
	ctx := context.Background()
	err := a.o.Store.View(ctx, func(tx store.Tx) error {
		return tx.Meta().List(ctx, store.MetaSubscriptionState, func(k string, v []byte) error {
			var s SubState
			if json.Unmarshal(v, &s) == nil {
				prev[k] = s
			}
			return nil
		})
	})
	if err != nil {
		a.log.Warn("read subscription states", "err", err)
		return t.NextExpiry(now)
	}
	changes := Diff(prev, cur)
	if len(changes) == 0 {
		return t.NextExpiry(now)
	}
	actor := "stoad"
	if afterReload {
		actor = a.revisionActor(t.Revision)
	}
	declared := map[string]string{}
	for _, s := range t.Subscriptions() {
		declared[s.Key()] = s.State
	}
	for _, c := range changes {
		tenant, name, _ := strings.Cut(c.Key, "/")
		who := actor
		if c.Type == "subscription.expired" && declared[c.Key] == StateActive {
			who = "stoad (expiresAt passed)"
		}
		s, prevState := c.Cur, ""
		if s == nil {
			s = c.Prev
		}
		if c.Prev != nil {
			prevState = c.Prev.State
		}
		data := map[string]any{"subscription": name, "consumer": s.Consumer, "plan": s.Plan, "state": s.State,
			"revision": t.Revision, "actor": who}
		if c.Cur == nil {
			data["state"] = "deleted"
		}
		if prevState != "" {
			data["previousState"] = prevState
		}
		if s.Tool != "" {
			data["tool"] = s.Tool
		}
		if s.ToolSet != "" {
			data["toolSet"] = s.ToolSet
		}
		if !s.ExpiresAt.IsZero() {
			data["expiresAt"] = s.ExpiresAt
		}
		verb := strings.TrimPrefix(c.Type, "subscription.")
		a.o.Events.Emit(c.Type, tenant, fmt.Sprintf("subscription %s of consumer %s %s (by %s)", name, s.Consumer, verb, who), data)
	}
	err = a.o.Store.Update(ctx, func(tx store.Tx) error {
		m := tx.Meta()
		for _, c := range changes {
			if c.Cur == nil {
				if err := m.Delete(ctx, store.MetaSubscriptionState, c.Key); err != nil {
					return err
				}
				continue
			}
			v, err := json.Marshal(c.Cur)
			if err != nil {
				return err
			}
			if err := m.Put(ctx, store.MetaSubscriptionState, c.Key, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.log.Warn("record subscription states", "err", err)
	}
	return t.NextExpiry(now)
}

// revisionActor is who made revision id.
func (a *Admission) revisionActor(id int64) string {
	ctx := context.Background()
	revs, err := store.ListRevisions(ctx, a.o.Store, 8)
	if err == nil {
		for _, r := range revs {
			if r.ID == id {
				return r.Actor
			}
		}
	}
	if r, err := store.RevisionInfo(ctx, a.o.Store, id); err == nil {
		return r.Actor
	}
	return "stoad"
}
