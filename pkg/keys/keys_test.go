package keys

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

func consumer(ns, name string) *spec.Object {
	return &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindConsumer, Metadata: spec.Metadata{Name: name, Namespace: ns}, Spec: &spec.ConsumerSpec{}}
}

// newService is a key service on a fresh store where acme/shop and
// acme/bot are live consumers.
func newService(t *testing.T) (*Service, *auth.Authenticator, store.Store, *events.Log) {
	t.Helper()
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := EnsureIdentities(ctx, st, state.New(1, []*spec.Object{consumer("acme", "bot"), consumer("acme", "shop")})); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	evl := events.NewLog(st, log)
	a := &auth.Authenticator{}
	s, err := New(Options{Store: st, Auth: a, Events: evl, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return s, a, st, evl
}

func authenticates(a *auth.Authenticator, key string) bool {
	p, err := a.Authenticate(context.Background(), nil, []byte(key), time.Now())
	return err == nil && p.Consumer != ""
}

func TestKeyLifecycle(t *testing.T) {
	s, a, _, evl := newService(t)
	ctx := context.Background()
	key, rec, err := s.Create(ctx, "acme", "shop", "ci", 90*24*time.Hour, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if rec.ConsumerUID == "" || rec.Name != "ci" || rec.ExpiresAt.Sub(rec.CreatedAt) != 90*24*time.Hour || !authenticates(a, key) {
		t.Fatalf("created: %+v", rec)
	}
	if _, _, err := s.Create(ctx, "acme", "nobody", "", 0, "alice"); !errors.Is(err, ErrConsumerNotFound) {
		t.Fatalf("key for a missing consumer: %v", err)
	}

	// Rotation renews the lifetime; the old key works through its grace.
	now := time.Now()
	rot, err := s.Rotate(ctx, rec.ID, RotateOptions{Grace: time.Hour, KeepLifetime: true}, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	if rot.New.ExpiresAt.Sub(rot.New.CreatedAt) != 90*24*time.Hour || rot.Old.RotatedTo != rot.New.ID || !authenticates(a, rot.Key) || !authenticates(a, key) {
		t.Fatalf("rotation: %+v", rot)
	}
	if _, err := s.Rotate(ctx, rec.ID, RotateOptions{}, "alice", now); !errors.Is(err, ErrNotActive) {
		t.Fatalf("rotating a rotated key: %v", err)
	}

	revoked, err := s.Revoke(ctx, rot.New.ID, "bob", now)
	if err != nil || revoked.RevokedBy != "bob" || authenticates(a, rot.Key) {
		t.Fatalf("revoke: %+v %v", revoked, err)
	}
	// Revoked already: who and why are kept.
	if again, err := s.Revoke(ctx, rot.New.ID, "carol", now.Add(time.Second)); err != nil || again.RevokedBy != "bob" {
		t.Fatalf("second revoke: %+v %v", again, err)
	}
	if _, err := s.Revoke(ctx, "nope", "bob", now); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("revoking a missing key: %v", err)
	}

	list, err := s.List(ctx, "acme", "shop")
	if err != nil || len(list) != 2 || list[0].ID != rec.ID {
		t.Fatalf("list: %+v %v", list, err)
	}
	if other, _ := s.List(ctx, "acme", "bot"); len(other) != 0 {
		t.Fatalf("bot's keys: %+v", other)
	}
	evs, _ := evl.Read(ctx, 0, 0)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	if len(types) != 3 || types[0] != "key.created" || types[1] != "key.rotated" || types[2] != "key.revoked" {
		t.Fatalf("events: %v", types)
	}
}

// TestLifecycleRevokesWithTheConsumer: the revision deleting a consumer
// revokes its keys in the same transaction, and a consumer created again
// under the same name is another one.
func TestLifecycleRevokesWithTheConsumer(t *testing.T) {
	s, a, st, _ := newService(t)
	ctx := context.Background()
	key, _, err := s.Create(ctx, "acme", "shop", "", 0, "alice")
	if err != nil {
		t.Fatal(err)
	}
	botKey, _, _ := s.Create(ctx, "acme", "bot", "", 0, "alice")
	now := time.Now().UTC()
	var fx Effects
	del := []plan.Change{{Op: plan.Delete, Ref: spec.Ref{Kind: spec.KindConsumer, Namespace: "acme", Name: "shop"}}}
	if err := st.Update(ctx, func(tx store.Tx) error { return Lifecycle(ctx, tx, 2, "gitops", del, now, &fx) }); err != nil {
		t.Fatal(err)
	}
	if fx.Revoked != 1 || len(fx.Events) != 1 || fx.Events[0].Data["reason"] != "consumer acme/shop deleted in revision 2" {
		t.Fatalf("effects: %+v", fx)
	}
	if err := s.Refresh(); err != nil {
		t.Fatal(err)
	}
	if authenticates(a, key) || !authenticates(a, botKey) {
		t.Fatal("the deleted consumer's key still works, or another's stopped")
	}
	create := []plan.Change{{Op: plan.Create, Ref: spec.Ref{Kind: spec.KindConsumer, Namespace: "acme", Name: "shop"}}}
	if err := st.Update(ctx, func(tx store.Tx) error { return Lifecycle(ctx, tx, 3, "alice", create, now, &Effects{}) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(); err != nil {
		t.Fatal(err)
	}
	if authenticates(a, key) {
		t.Fatal("a consumer created again inherited the old one's key")
	}
}

func TestFlushUsage(t *testing.T) {
	s, a, st, _ := newService(t)
	ctx := context.Background()
	key, rec, err := s.Create(ctx, "acme", "shop", "", 0, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !authenticates(a, key) { // marks the key used
		t.Fatal("key does not authenticate")
	}
	if err := s.FlushUsage(); err != nil {
		t.Fatal(err)
	}
	var stored auth.KeyRecord
	st.View(ctx, func(tx store.Tx) error { stored, err = tx.Keys().Get(ctx, rec.ID); return err })
	if stored.LastUsedAt.IsZero() {
		t.Fatalf("last-used time not flushed: %+v (%v)", stored, err)
	}
}
