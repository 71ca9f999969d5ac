package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

func okServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// shopSpecs is a tenant whose consumer shop may call tool api with a key.
func shopSpecs(up string) string {
	return doc("Tenant", "", "acme", "") +
		doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: apiKey}") +
		doc("Plan", "acme", "basic", "") +
		doc("Consumer", "acme", "shop", "") +
		doc("Subscription", "acme", "shop-api", "consumer: shop\nplan: basic\ntool: api")
}

// otherSpecs is a second tenant, so that deleting acme leaves something.
func otherSpecs(up string) string {
	return doc("Tenant", "", "globex", "") + doc("Tool", "globex", "api", "upstream: "+up)
}

func (ld *liveDaemon) createKey(tenant, consumer string) (string, api.KeyInfo) {
	ld.t.Helper()
	var resp api.KeyCreateResponse
	if err := ld.c.Do(context.Background(), "POST", api.PathKeys, api.KeyCreateRequest{Tenant: tenant, Consumer: consumer}, &resp); err != nil {
		ld.t.Fatalf("create key: %v", err)
	}
	return resp.Key, resp.Info
}

func (ld *liveDaemon) keys() map[string]api.KeyInfo {
	ld.t.Helper()
	var list api.KeyList
	if err := ld.c.Do(context.Background(), "GET", api.PathKeys, nil, &list); err != nil {
		ld.t.Fatal(err)
	}
	out := map[string]api.KeyInfo{}
	for _, k := range list.Items {
		out[k.ID] = k
	}
	return out
}

func (ld *liveDaemon) audit() []api.AuditEntry {
	ld.t.Helper()
	var out []api.AuditEntry
	if err := ld.c.Audit(context.Background(), client.AuditOptions{}, func(e api.AuditEntry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		ld.t.Fatal(err)
	}
	return out
}

func (ld *liveDaemon) keyStatus(key string) int {
	st, _ := ld.get("/acme/api/x", "X-Api-Key", key)
	return st
}

var (
	refSub      = spec.Ref{Kind: spec.KindSubscription, Namespace: "acme", Name: "shop-api"}
	refConsumer = spec.Ref{Kind: spec.KindConsumer, Namespace: "acme", Name: "shop"}
)

// TestConsumerDeletionRevokesKeys deletes the consumer every way a
// revision can, and checks each time that its keys are revoked in that
// revision (with who and why, in keys list and the audit trail), that they
// stay dead when the same spec is applied again, and that the new
// consumer of the same name starts with no keys.
func TestConsumerDeletionRevokesKeys(t *testing.T) {
	up := okServer(t)
	ld := startDaemon(t, nil)
	ctx := context.Background()
	specs := shopSpecs(up) + otherSpecs(up)
	withoutShop := doc("Tenant", "", "acme", "") + doc("Tool", "acme", "api", "upstream: "+up+"\nauth: {type: apiKey}") +
		doc("Plan", "acme", "basic", "") + otherSpecs(up)

	for _, tc := range []struct {
		name, reason string
		del          func() // removes consumer shop in one revision
	}{
		{"delete", "consumer acme/shop deleted in revision", func() {
			if _, err := ld.c.Delete(ctx, &api.DeleteRequest{Refs: []spec.Ref{refSub, refConsumer}}); err != nil {
				t.Fatal(err)
			}
		}},
		{"apply --prune", "consumer acme/shop deleted in revision", func() {
			ld.apply(withoutShop, "acme")
		}},
		{"rollback to a revision without it", "consumer acme/shop deleted in revision", func() {
			// The revision before the current one had no consumer shop
			// (the previous case, or the first apply below).
			if _, err := ld.c.Rollback(ctx, &api.RollbackRequest{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"tenant deletion", "tenant acme deleted in revision", func() {
			if _, err := ld.c.Delete(ctx, &api.DeleteRequest{Refs: []spec.Ref{refSub, refConsumer,
				{Kind: spec.KindPlan, Namespace: "acme", Name: "basic"}, {Kind: spec.KindTool, Namespace: "acme", Name: "api"},
				{Kind: spec.KindTenant, Name: "acme"}}}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "rollback to a revision without it" {
				ld.apply(withoutShop, "acme") // the revision to return to
			}
			ld.apply(specs)
			key, info := ld.createKey("acme", "shop")
			if info.ConsumerUID == "" {
				t.Fatal("key not bound to a consumer identity")
			}
			if st := ld.keyStatus(key); st != 200 {
				t.Fatalf("fresh key: %d", st)
			}
			tc.del()
			rev := ld.d.Live().Revision
			if st := ld.keyStatus(key); st != 401 && st != 404 {
				t.Fatalf("key of a deleted consumer answered %d", st)
			}
			k := ld.keys()[info.ID]
			if k.State != "revoked" || !strings.Contains(k.RevokedReason, tc.reason) || !strings.Contains(k.RevokedReason, "revision "+itoa(rev)) ||
				!strings.Contains(k.RevokedBy, "uid ") {
				t.Fatalf("keys list after the deletion: %+v (revision %d)", k, rev)
			}

			// The same spec again: a new consumer with a new identity; the
			// old key stays revoked and no key works until one is made.
			ld.apply(specs)
			if st := ld.keyStatus(key); st != 401 {
				t.Fatalf("re-applying the spec revived the old key: %d", st)
			}
			if k := ld.keys()[info.ID]; k.State != "revoked" {
				t.Fatalf("old key after re-apply: %+v", k)
			}
			key2, info2 := ld.createKey("acme", "shop")
			if info2.ConsumerUID == info.ConsumerUID || info2.ConsumerUID == "" {
				t.Fatalf("consumer created again kept its identity %s", info.ConsumerUID)
			}
			if ld.keyStatus(key2) != 200 || ld.keyStatus(key) != 401 {
				t.Fatal("new consumer's key refused, or the old one accepted")
			}

			// The audit trail holds the revocation, by whoever made the
			// revision, with the reason.
			var found bool
			for _, e := range ld.audit() {
				if e.Action == "key.revoke" && e.Target == "key "+info.Prefix {
					found = strings.Contains(e.Actor, "uid ") && strings.Contains(e.Details["reason"], tc.reason) && e.Revision == rev
				}
			}
			if !found {
				t.Fatalf("no audit entry for the revocation of %s in revision %d", info.Prefix, rev)
			}
		})
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// A rollback to a revision that had the consumer brings the consumer back
// as a new one: the keys revoked with the old one stay revoked.
func TestRollbackToRevisionWithConsumerKeepsKeysRevoked(t *testing.T) {
	up := okServer(t)
	ld := startDaemon(t, nil)
	ctx := context.Background()
	resp := ld.apply(shopSpecs(up))
	key, info := ld.createKey("acme", "shop")
	if _, err := ld.c.Delete(ctx, &api.DeleteRequest{Refs: []spec.Ref{refSub, refConsumer}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ld.c.Rollback(ctx, &api.RollbackRequest{Revision: resp.Revision}); err != nil {
		t.Fatal(err)
	}
	if ld.d.Live().Get(refConsumer) == nil {
		t.Fatal("rollback did not restore the consumer")
	}
	if st := ld.keyStatus(key); st != 401 {
		t.Fatalf("key of the consumer before the rollback answered %d", st)
	}
	if k := ld.keys()[info.ID]; k.State != "revoked" {
		t.Fatalf("key after rollback: %+v", k)
	}
	_, info2 := ld.createKey("acme", "shop")
	if info2.ConsumerUID == info.ConsumerUID {
		t.Fatal("rollback restored the old consumer identity")
	}
	// And the identity survives restarts and updates of the consumer.
	ld.apply(strings.Replace(shopSpecs(up), "kind: Consumer\nmetadata: {name: shop, namespace: acme}\n",
		"kind: Consumer\nmetadata: {name: shop, namespace: acme, labels: {team: web}}\n", 1))
	ld.restart()
	_, info3 := ld.createKey("acme", "shop")
	if info3.ConsumerUID != info2.ConsumerUID {
		t.Fatalf("consumer identity changed by an update or a restart: %s → %s", info2.ConsumerUID, info3.ConsumerUID)
	}
}

// Keys in their grace period and successors from a rotation die with the
// consumer; a revoked key cannot be rotated (or revived by rotating).
func TestRotateAndGraceOnDeletedConsumer(t *testing.T) {
	up := okServer(t)
	ld := startDaemon(t, nil)
	ctx := context.Background()
	ld.apply(shopSpecs(up))
	old, info := ld.createKey("acme", "shop")
	var rot api.KeyRotateResponse
	if err := ld.c.Do(ctx, "POST", api.PathKeys+"/"+info.ID+"/rotate", api.KeyRotateRequest{Grace: "1h"}, &rot); err != nil {
		t.Fatal(err)
	}
	if rot.New.ConsumerUID != info.ConsumerUID {
		t.Fatalf("successor not bound to the same consumer: %+v", rot.New)
	}
	if ld.keyStatus(old) != 200 || ld.keyStatus(rot.Key) != 200 {
		t.Fatal("both keys must work during the grace period")
	}
	if _, err := ld.c.Delete(ctx, &api.DeleteRequest{Refs: []spec.Ref{refSub, refConsumer}}); err != nil {
		t.Fatal(err)
	}
	ks := ld.keys()
	for _, id := range []string{info.ID, rot.New.ID} {
		if ks[id].State != "revoked" || ks[id].RevokedReason == "" {
			t.Fatalf("key %s after the consumer's deletion: %+v", id, ks[id])
		}
	}
	ld.apply(shopSpecs(up))
	if ld.keyStatus(old) != 401 || ld.keyStatus(rot.Key) != 401 {
		t.Fatal("a key of the deleted consumer works again")
	}
	err := ld.c.Do(ctx, "POST", api.PathKeys+"/"+rot.New.ID+"/rotate", api.KeyRotateRequest{}, nil)
	if apiCode(err) != api.CodeConflict || !strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("rotating a key of a deleted consumer: %v", err)
	}
	// Revoking it again keeps who and why.
	var again api.KeyInfo
	if err := ld.c.Do(ctx, "POST", api.PathKeys+"/"+rot.New.ID+"/revoke", struct{}{}, &again); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(again.RevokedReason, "consumer acme/shop deleted") {
		t.Fatalf("a second revoke replaced the reason: %+v", again)
	}
	// A manual revoke records its actor and reason.
	k3, i3 := ld.createKey("acme", "shop")
	if err := ld.c.Do(ctx, "POST", api.PathKeys+"/"+i3.ID+"/revoke", struct{}{}, &again); err != nil {
		t.Fatal(err)
	}
	if again.State != "revoked" || again.RevokedReason != "revoked on request" || !strings.Contains(again.RevokedBy, "uid ") || ld.keyStatus(k3) != 401 {
		t.Fatalf("manual revoke: %+v", again)
	}
	// Creating a key for the deleted consumer's name in another tenant, or
	// for a consumer that does not exist, is refused.
	if err := ld.c.Do(ctx, "POST", api.PathKeys, api.KeyCreateRequest{Tenant: "acme", Consumer: "gone"}, nil); apiCode(err) != api.CodeNotFound {
		t.Fatalf("key for a missing consumer: %v", err)
	}
}

// Keys stored before keys were bound to consumer identities are bound at
// start to the consumer they name — unless the revision log shows that
// consumer was deleted after the key was made, or it is gone: those are
// revoked, as the deletion would have done.
func TestLegacyKeysBoundAtStart(t *testing.T) {
	up := okServer(t)
	ld := startDaemon(t, nil)
	ctx := context.Background()
	ld.apply(shopSpecs(up) + doc("Consumer", "acme", "gone", ""))
	revs, err := ld.c.Revisions(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	firstApply := revs.Items[0].Time
	// shop is deleted and applied again (the old bug: its keys lived on);
	// gone is deleted for good.
	if _, err := ld.c.Delete(ctx, &api.DeleteRequest{Refs: []spec.Ref{refSub, refConsumer,
		{Kind: spec.KindConsumer, Namespace: "acme", Name: "gone"}}}); err != nil {
		t.Fatal(err)
	}
	ld.apply(shopSpecs(up))
	ld.stop()

	// Write keys as an earlier stoad did: no consumer UID.
	st, err := boltstore.Open(ld.cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	legacy := map[string]auth.KeyOptions{
		"before-delete": {Tenant: "acme", Consumer: "shop", Now: firstApply},
		"after-reapply": {Tenant: "acme", Consumer: "shop", Now: time.Now()},
		"gone":          {Tenant: "acme", Consumer: "gone", Now: firstApply},
	}
	secrets, ids := map[string]string{}, map[string]string{}
	if err := st.Update(ctx, func(tx store.Tx) error {
		for name, o := range legacy {
			key, rec, err := auth.GenerateKey(o)
			if err != nil {
				return err
			}
			secrets[name], ids[name] = key, rec.ID
			if err := tx.Keys().Put(ctx, rec); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	ld.start()
	ks := ld.keys()
	if k := ks[ids["after-reapply"]]; k.State != "active" || k.ConsumerUID == "" || ld.keyStatus(secrets["after-reapply"]) != 200 {
		t.Fatalf("key made after the consumer was applied again: %+v", k)
	}
	for _, name := range []string{"before-delete", "gone"} {
		k := ks[ids[name]]
		if k.State != "revoked" || k.RevokedBy != "stoad" || !strings.Contains(k.RevokedReason, "bound to consumer identities") {
			t.Fatalf("legacy key %s: %+v", name, k)
		}
		if name == "before-delete" && ld.keyStatus(secrets[name]) != 401 {
			t.Fatal("key made before its consumer was deleted still works")
		}
	}
	// A second start changes nothing.
	ld.restart()
	if k := ld.keys()[ids["after-reapply"]]; k.State != "active" || k.ConsumerUID != ks[ids["after-reapply"]].ConsumerUID {
		t.Fatalf("second start: %+v", k)
	}
}

// Keys created while their consumer is being deleted never outlive it:
// each is either refused or revoked with the consumer (run with -race).
func TestKeyCreateRacingConsumerDeletion(t *testing.T) {
	up := okServer(t)
	ld := startDaemon(t, nil)
	ctx := context.Background()
	for round := 0; round < 5; round++ {
		ld.apply(shopSpecs(up))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 20; i++ {
				var resp api.KeyCreateResponse
				err := ld.c.Do(ctx, "POST", api.PathKeys, api.KeyCreateRequest{Tenant: "acme", Consumer: "shop"}, &resp)
				if err != nil && apiCode(err) != api.CodeNotFound {
					t.Errorf("create: %v", err)
				}
			}
		}()
		time.Sleep(time.Duration(round) * time.Millisecond)
		if _, err := ld.c.Delete(ctx, &api.DeleteRequest{Refs: []spec.Ref{refSub, refConsumer}}); err != nil {
			t.Fatal(err)
		}
		<-done
		for _, k := range ld.keys() {
			if k.State == "active" {
				t.Fatalf("round %d: key %s of the deleted consumer is active: %+v", round, k.Prefix, k)
			}
		}
	}
}
