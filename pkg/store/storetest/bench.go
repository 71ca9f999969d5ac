package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// Tools10k is the first apply of make bench-apply: 20 tenants, 10,000
// tools — the changes that create them.
func Tools10k() []plan.Change {
	var objs []*spec.Object
	for t := range 20 {
		ten := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: fmt.Sprintf("tenant-%02d", t)}, Spec: spec.NewSpec(spec.KindTenant)}
		objs = append(objs, ten)
		for i := t; i < 10000; i += 20 {
			o := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool,
				Metadata: spec.Metadata{Name: fmt.Sprintf("tool-%05d", i), Namespace: ten.Metadata.Name}, Spec: spec.NewSpec(spec.KindTool)}
			ts := o.Spec.(*spec.ToolSpec)
			ts.Upstream, ts.Description = fmt.Sprintf("http://127.0.0.1:18081/t%d", i), fmt.Sprintf("Generated tool %d.", i)
			objs = append(objs, o)
		}
	}
	for _, o := range objs {
		spec.Default(o)
	}
	changes, _ := plan.Compute(nil, objs, plan.Options{})
	return changes
}

// NewBenchStore returns an empty store for one benchmark iteration; the
// benchmark closes it.
type NewBenchStore func(b *testing.B) store.Store

// BenchCommit10kTools is the store's share of a first apply: the
// objects, the revision, its changes and its event, in one transaction,
// on an empty store (made with the timer stopped).
func BenchCommit10kTools(b *testing.B, newStore NewBenchStore) {
	changes := Tools10k()
	for b.Loop() {
		b.StopTimer()
		s := newStore(b)
		b.StartTimer()
		err := s.Update(ctx, func(tx store.Tx) error {
			id, err := tx.Revisions().Commit(ctx, 0, store.Revision{Time: time.Now(), Actor: "bench", Action: "apply"}, changes)
			if err != nil {
				return err
			}
			_, err = tx.Events().Append(ctx, api.Event{Type: "config.applied", Data: map[string]any{"revision": id}})
			return err
		})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		b.StartTimer()
	}
}

// BenchLoad10kTools is stoad's start: every live object decoded.
func BenchLoad10kTools(b *testing.B, newStore NewBenchStore) {
	s := newStore(b)
	defer s.Close()
	if err := s.Update(ctx, func(tx store.Tx) error {
		_, err := tx.Revisions().Commit(ctx, 0, store.Revision{Time: time.Now()}, Tools10k())
		return err
	}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		objs, _, err := store.Load(ctx, s)
		if err != nil || len(objs) != 10020 {
			b.Fatalf("%d objects, %v", len(objs), err)
		}
	}
}

// BenchAppendEvent is the smallest write: one event in its own
// transaction, from several goroutines at once (writers take turns on
// either store, so this is the write throughput of the store).
func BenchAppendEvent(b *testing.B, newStore NewBenchStore) {
	s := newStore(b)
	defer s.Close()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := store.AppendEvent(ctx, s, api.Event{Type: "key.created", Tenant: "acme", Message: "key k1"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
