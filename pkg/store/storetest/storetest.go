// Package storetest is the conformance suite of pkg/store: the behaviours
// every implementation must have, as one table of subtests. An
// implementation's own tests call Run with a constructor of empty stores
// (pkg/store/boltstore does; a database-backed store runs the same suite
// against a scratch database).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// NewStore returns an empty store for one subtest; the suite closes it.
type NewStore func(t *testing.T) store.Store

// Run runs every behaviour against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}()
			c.fn(t, s)
		})
	}
}

var cases = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"UpdateReturnsFnErrorAndWritesNothing", testUpdateError},
	{"CanceledContextRunsNothing", testCanceled},
	{"ViewRefusesWrites", testReadOnly},
	{"RevisionsMonotonic", testRevisionsMonotonic},
	{"RevisionHistoryAndStateAt", testStateAt},
	{"CommitOnStaleBaseConflicts", testStaleBase},
	{"CommitAtGivenIDs", testCommitAt},
	{"CommitAtomicWithKeysAndEvents", testCommitAtomic},
	{"ConcurrentCommitsLoseNothing", testConcurrentCommits},
	{"EventsOrderingAndSince", testEvents},
	{"EventsCapped", testEventsCapped},
	{"Keys", testKeys},
	{"AuditAppendAndList", testAudit},
	{"AuditNeverOverwrites", testAuditNoOverwrite},
	{"SnapshotsGroupListTrim", testSnapshots},
	{"OutboxClaimAckRetry", testOutbox},
	{"OutboxClaimRolledBack", testOutboxClaimRollback},
	{"OutboxTrimKeepsPending", testOutboxTrim},
	{"QuotaUsageUpsert", testQuota},
	{"QuotaUsageAdds", testQuotaAdd},
	{"MetaGetPut", testMeta},
	{"UpdateReadsItsOwnWrites", testOwnWrites},
	{"WatchSeesCommitsInOrder", testWatch},
}

var ctx = context.Background()

func update(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.View(ctx, fn); err != nil {
		t.Fatal(err)
	}
}

// obj returns a defaulted object; desc marks a Tool's version.
func obj(kind spec.Kind, ns, name, desc string) *spec.Object {
	o := &spec.Object{APIVersion: spec.APIVersion, Kind: kind, Metadata: spec.Metadata{Name: name, Namespace: ns}, Spec: spec.NewSpec(kind)}
	if t, ok := o.Spec.(*spec.ToolSpec); ok {
		t.Upstream, t.Description = "http://127.0.0.1:1", desc
	}
	spec.Default(o)
	return o
}

func names(objs []*spec.Object) string {
	var out []string
	for _, o := range objs {
		d := ""
		if t, ok := o.Spec.(*spec.ToolSpec); ok {
			d = "=" + t.Description
		}
		out = append(out, o.Ref().String()+d)
	}
	return strings.Join(out, ",")
}

// commit plans desired against the store's live state and commits it,
// returning the revision id.
func commit(t *testing.T, s store.Store, desired []*spec.Object, prune bool, also func(store.Tx, int64) error) int64 {
	t.Helper()
	var id int64
	update(t, s, func(tx store.Tx) error {
		live, err := tx.Revisions().Objects(ctx)
		if err != nil {
			return err
		}
		cur, err := tx.Revisions().Current(ctx)
		if err != nil {
			return err
		}
		changes, _ := plan.Compute(live, desired, plan.Options{Prune: prune, PruneScope: func(*spec.Object) bool { return true }})
		id, err = tx.Revisions().Commit(ctx, cur, store.Revision{Time: time.Now().UTC(), Actor: "test", Action: "apply"}, changes)
		if err != nil || also == nil {
			return err
		}
		return also(tx, id)
	})
	return id
}

var errBoom = errors.New("boom")

func testUpdateError(t *testing.T, s store.Store) {
	err := s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Events().Append(ctx, api.Event{Type: "t", Message: "m"}); err != nil {
			return err
		}
		if err := tx.Meta().Put(ctx, store.MetaMCP, "k", []byte("v")); err != nil {
			return err
		}
		return errBoom
	})
	if err != errBoom { //nolint:errorlint // the very error, not a wrapper
		t.Fatalf("Update returned %v, want fn's error unchanged", err)
	}
	view(t, s, func(tx store.Tx) error {
		if evs, _ := tx.Events().Since(ctx, 0, 0); len(evs) != 0 {
			t.Errorf("event of a failed Update is stored: %+v", evs)
		}
		if _, err := tx.Meta().Get(ctx, store.MetaMCP, "k"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("meta of a failed Update: %v", err)
		}
		return nil
	})
}

func testCanceled(t *testing.T, s store.Store) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	if err := s.Update(c, func(store.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("Update with a canceled context: err %v, ran %v", err, ran)
	}
	if err := s.View(c, func(store.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("View with a canceled context: err %v, ran %v", err, ran)
	}
}

func testReadOnly(t *testing.T, s store.Store) {
	writes := map[string]func(tx store.Tx) error{
		"commit": func(tx store.Tx) error {
			_, err := tx.Revisions().Commit(ctx, 0, store.Revision{}, nil)
			return err
		},
		"event":    func(tx store.Tx) error { _, err := tx.Events().Append(ctx, api.Event{Type: "t"}); return err },
		"key":      func(tx store.Tx) error { return tx.Keys().Put(ctx, auth.KeyRecord{ID: "k"}) },
		"audit":    func(tx store.Tx) error { return tx.Audit().Append(ctx, nil, store.AuditHead{}) },
		"cursor":   func(tx store.Tx) error { return tx.Audit().SetCursor(ctx, "c", 1) },
		"snapshot": func(tx store.Tx) error { _, err := tx.Snapshots().NextID(ctx); return err },
		"outbox": func(tx store.Tx) error {
			return tx.Outbox().Insert(ctx, []*store.Delivery{{State: store.DeliveryPending}})
		},
		"quota": func(tx store.Tx) error { return tx.Quota().Put(ctx, "a/b", store.QuotaUsage{}) },
		"quota add": func(tx store.Tx) error {
			_, err := tx.Quota().Add(ctx, "a/b", store.QuotaUsage{Day: 1, DayCount: 1})
			return err
		},
		"meta": func(tx store.Tx) error { return tx.Meta().Put(ctx, store.MetaMCP, "k", []byte("v")) },
	}
	for name, w := range writes {
		if err := s.View(ctx, w); !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("%s in View: %v, want ErrReadOnly", name, err)
		}
	}
}

func testRevisionsMonotonic(t *testing.T, s store.Store) {
	view(t, s, func(tx store.Tx) error {
		if cur, err := tx.Revisions().Current(ctx); cur != 0 || err != nil {
			t.Errorf("empty store: current %d, %v", cur, err)
		}
		return nil
	})
	ten := obj(spec.KindTenant, "", "acme", "")
	var prev int64
	for i := 1; i <= 5; i++ {
		id := commit(t, s, []*spec.Object{ten, obj(spec.KindTool, "acme", "a", fmt.Sprint("v", i))}, false, nil)
		if id <= prev {
			t.Fatalf("revision %d after %d", id, prev)
		}
		prev = id
		view(t, s, func(tx store.Tx) error {
			if cur, _ := tx.Revisions().Current(ctx); cur != id {
				t.Errorf("current %d after committing %d", cur, id)
			}
			return nil
		})
	}
	if prev != 5 {
		t.Errorf("five commits on an empty store end at revision %d, want 5", prev)
	}
}

func testStateAt(t *testing.T, s store.Store) {
	ten := obj(spec.KindTenant, "", "acme", "")
	id1 := commit(t, s, []*spec.Object{ten, obj(spec.KindTool, "acme", "a", "v1")}, false, nil)
	id2 := commit(t, s, []*spec.Object{ten, obj(spec.KindTool, "acme", "a", "v2"), obj(spec.KindTool, "acme", "b", "v1")}, false, nil)
	id3 := commit(t, s, []*spec.Object{ten, obj(spec.KindTool, "acme", "b", "v1")}, true, nil)

	objs, cur, err := store.Load(ctx, s)
	if err != nil || cur != id3 {
		t.Fatalf("load: cur=%d err=%v", cur, err)
	}
	if got := names(objs); got != "Tenant/acme,Tool/acme/b=v1" {
		t.Fatalf("live: %s", got)
	}
	for rev, want := range map[int64]string{
		0:   "",
		id1: "Tenant/acme,Tool/acme/a=v1",
		id2: "Tenant/acme,Tool/acme/a=v2,Tool/acme/b=v1",
		id3: "Tenant/acme,Tool/acme/b=v1",
	} {
		st, err := store.StateAt(ctx, s, rev)
		if err != nil {
			t.Fatalf("StateAt(%d): %v", rev, err)
		}
		if got := names(st); got != want {
			t.Errorf("StateAt(%d) = %s, want %s", rev, got, want)
		}
	}
	if _, err := store.StateAt(ctx, s, id3+1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("StateAt beyond current: %v", err)
	}
	revs, err := store.ListRevisions(ctx, s, 0)
	if err != nil || len(revs) != 3 || revs[0].ID != id3 || revs[2].ID != id1 || revs[0].Changes != nil || revs[0].Refs != nil {
		t.Fatalf("revisions (newest first, headers only): %+v %v", revs, err)
	}
	if revs[2].Summary.Create != 2 || revs[2].Actor != "test" || revs[2].Action != "apply" || revs[2].Time.IsZero() {
		t.Fatalf("header of revision 1: %+v", revs[2])
	}
	if revs, _ := store.ListRevisions(ctx, s, 2); len(revs) != 2 || revs[1].ID != id2 {
		t.Fatalf("limit 2: %+v", revs)
	}
	info, err := store.RevisionInfo(ctx, s, id2)
	if err != nil || len(info.Refs) != 2 || info.Changes != nil || info.Summary.Update != 1 || info.Summary.Create != 1 {
		t.Fatalf("revision info %d: %+v %v", id2, info, err)
	}
	full, err := store.RevisionWithChanges(ctx, s, id2)
	if err != nil || len(full.Changes) != 2 || full.Changes[0].After == nil {
		t.Fatalf("revision %d with changes: %+v %v", id2, full, err)
	}
	if _, err := store.RevisionInfo(ctx, s, id3+1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown revision: %v", err)
	}
	var order []int64
	view(t, s, func(tx store.Tx) error {
		return tx.Revisions().ChangesAfter(ctx, id1, func(id int64, _ []plan.Change) error { order = append(order, id); return nil })
	})
	if !slices.Equal(order, []int64{id3, id2}) {
		t.Fatalf("ChangesAfter(%d) visited %v, want newest first %v", id1, order, []int64{id3, id2})
	}
}

// commitAt commits desired (pruning) as revision id; it returns the id
// recorded and the error.
func commitAt(s store.Store, id int64, desired []*spec.Object) (int64, error) {
	var got int64
	err := s.Update(ctx, func(tx store.Tx) error {
		live, err := tx.Revisions().Objects(ctx)
		if err != nil {
			return err
		}
		cur, err := tx.Revisions().Current(ctx)
		if err != nil {
			return err
		}
		changes, _ := plan.Compute(live, desired, plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }})
		got, err = tx.Revisions().Commit(ctx, cur, store.Revision{ID: id, Time: time.Now().UTC(), Actor: "fleet", Action: "sync"}, changes)
		return err
	})
	return got, err
}

// testCommitAt: a data plane records its control plane's revision
// numbers, which skip those it never saw; ids never go backwards, and the
// history with gaps still reconstructs every recorded revision.
func testCommitAt(t *testing.T, s store.Store) {
	ten := obj(spec.KindTenant, "", "acme", "")
	v1 := []*spec.Object{ten, obj(spec.KindTool, "acme", "a", "v1")}
	v2 := []*spec.Object{ten, obj(spec.KindTool, "acme", "a", "v2")}
	if id, err := commitAt(s, 7, v1); err != nil || id != 7 {
		t.Fatalf("commit at 7 on an empty store: %d, %v", id, err)
	}
	for _, stale := range []int64{7, 3} {
		if _, err := commitAt(s, stale, v2); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("commit at %d after 7: %v, want ErrConflict", stale, err)
		}
	}
	if objs, cur, _ := store.Load(ctx, s); cur != 7 || names(objs) != "Tenant/acme,Tool/acme/a=v1" {
		t.Fatalf("refused commits changed the state: revision %d, %s", cur, names(objs))
	}
	if id, err := commitAt(s, 42, v2); err != nil || id != 42 {
		t.Fatalf("commit at 42: %d, %v", id, err)
	}
	// Without an id, the next one follows the last.
	if id := commit(t, s, v1, true, nil); id != 43 {
		t.Fatalf("the commit after 42 is revision %d, want 43", id)
	}
	revs, err := store.ListRevisions(ctx, s, 0)
	if err != nil || len(revs) != 3 || revs[0].ID != 43 || revs[1].ID != 42 || revs[2].ID != 7 || revs[1].Action != "sync" {
		t.Fatalf("revisions: %+v %v", revs, err)
	}
	for rev, want := range map[int64]string{7: "Tenant/acme,Tool/acme/a=v1", 42: "Tenant/acme,Tool/acme/a=v2", 20: "Tenant/acme,Tool/acme/a=v1"} {
		st, err := store.StateAt(ctx, s, rev)
		if err != nil || names(st) != want {
			t.Errorf("StateAt(%d) = %s, %v; want %s", rev, names(st), err, want)
		}
	}
}

func testStaleBase(t *testing.T, s store.Store) {
	ten := obj(spec.KindTenant, "", "acme", "")
	id := commit(t, s, []*spec.Object{ten}, false, nil)
	changes, _ := plan.Compute([]*spec.Object{ten}, []*spec.Object{ten, obj(spec.KindTool, "acme", "x", "v1")}, plan.Options{})
	err := s.Update(ctx, func(tx store.Tx) error {
		_, err := tx.Revisions().Commit(ctx, id-1, store.Revision{Time: time.Now()}, changes)
		return err
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("commit on a stale base: %v, want ErrConflict", err)
	}
	objs, cur, _ := store.Load(ctx, s)
	if cur != id || names(objs) != "Tenant/acme" {
		t.Fatalf("a refused commit changed the state: revision %d, %s", cur, names(objs))
	}
}

func testCommitAtomic(t *testing.T, s store.Store) {
	ten := obj(spec.KindTenant, "", "acme", "")
	id1 := commit(t, s, []*spec.Object{ten, obj(spec.KindConsumer, "acme", "shop", "")}, false, nil)
	update(t, s, func(tx store.Tx) error {
		return tx.Keys().Put(ctx, auth.KeyRecord{ID: "k1", Tenant: "acme", Consumer: "shop"})
	})
	// A deletion that revokes the key and reports it, then fails late:
	// none of it may remain.
	changes, _ := plan.Compute([]*spec.Object{ten, obj(spec.KindConsumer, "acme", "shop", "")}, []*spec.Object{ten},
		plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }})
	revoke := func(tx store.Tx, id int64) error {
		k, err := tx.Keys().Get(ctx, "k1")
		if err != nil {
			return err
		}
		k.RevokedAt, k.RevokedReason = time.Now().UTC(), fmt.Sprintf("consumer deleted in revision %d", id)
		if err := tx.Keys().Put(ctx, k); err != nil {
			return err
		}
		_, err = tx.Events().Append(ctx, api.Event{Type: "key.revoked", Message: "k1", Data: map[string]any{"revision": id}})
		return err
	}
	err := s.Update(ctx, func(tx store.Tx) error {
		id, err := tx.Revisions().Commit(ctx, id1, store.Revision{Time: time.Now()}, changes)
		if err != nil {
			return err
		}
		if err := revoke(tx, id); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("update: %v", err)
	}
	view(t, s, func(tx store.Tx) error {
		if cur, _ := tx.Revisions().Current(ctx); cur != id1 {
			t.Errorf("revision of a failed transaction is current: %d", cur)
		}
		if objs, _ := tx.Revisions().Objects(ctx); len(objs) != 2 {
			t.Errorf("objects of a failed transaction: %s", names(objs))
		}
		if _, err := tx.Revisions().Get(ctx, id1+1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revision record of a failed transaction: %v", err)
		}
		if k, _ := tx.Keys().Get(ctx, "k1"); !k.RevokedAt.IsZero() {
			t.Errorf("key revoked by a failed transaction: %+v", k)
		}
		if evs, _ := tx.Events().Since(ctx, 0, 0); len(evs) != 0 {
			t.Errorf("events of a failed transaction: %+v", evs)
		}
		return nil
	})
	// The same, succeeding: all of it together.
	id2 := commit(t, s, []*spec.Object{ten}, true, revoke)
	view(t, s, func(tx store.Tx) error {
		k, _ := tx.Keys().Get(ctx, "k1")
		evs, _ := tx.Events().Since(ctx, 0, 0)
		if k.RevokedAt.IsZero() || k.RevokedReason != fmt.Sprintf("consumer deleted in revision %d", id2) || len(evs) != 1 || evs[0].Type != "key.revoked" {
			t.Errorf("after the commit: key %+v, events %+v", k, evs)
		}
		return nil
	})
}

// counter reads the shared counter of testConcurrentCommits.
func counter(objs []*spec.Object) int {
	for _, o := range objs {
		if o.Metadata.Name == "counter" {
			var n int
			fmt.Sscan(o.Spec.(*spec.ToolSpec).Description, &n)
			return n
		}
	}
	return -1
}

// testConcurrentCommits: writers race, each planning on the revision it
// read (adding its own tool and incrementing a shared counter) and
// retrying on ErrConflict; every commit lands exactly once and no
// increment is lost.
func testConcurrentCommits(t *testing.T, s store.Store) {
	const writers, each = 4, 8
	update(t, s, func(tx store.Tx) error {
		changes, _ := plan.Compute(nil, []*spec.Object{obj(spec.KindTenant, "", "acme", ""), obj(spec.KindTool, "acme", "counter", "0")}, plan.Options{})
		_, err := tx.Revisions().Commit(ctx, 0, store.Revision{Time: time.Now()}, changes)
		return err
	})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ids      []int64
		failures []error
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				for attempt := 0; ; attempt++ {
					var live []*spec.Object
					var base int64
					err := s.View(ctx, func(tx store.Tx) error {
						var err error
						if base, err = tx.Revisions().Current(ctx); err != nil {
							return err
						}
						live, err = tx.Revisions().Objects(ctx)
						return err
					})
					if err != nil {
						mu.Lock()
						failures = append(failures, err)
						mu.Unlock()
						return
					}
					var desired []*spec.Object
					for _, o := range live {
						if o.Metadata.Name != "counter" {
							desired = append(desired, o)
						}
					}
					desired = append(desired, obj(spec.KindTool, "acme", fmt.Sprintf("w%d-%d", w, i), "v1"),
						obj(spec.KindTool, "acme", "counter", fmt.Sprint(counter(live)+1)))
					changes, _ := plan.Compute(live, desired, plan.Options{})
					var id int64
					err = s.Update(ctx, func(tx store.Tx) error {
						var err error
						if id, err = tx.Revisions().Commit(ctx, base, store.Revision{Time: time.Now()}, changes); err != nil {
							return err
						}
						_, err = tx.Events().Append(ctx, api.Event{Type: "config.applied", Data: map[string]any{"revision": id}})
						return err
					})
					if errors.Is(err, store.ErrConflict) && attempt < 1000 {
						continue
					}
					mu.Lock()
					if err != nil {
						failures = append(failures, err)
					} else {
						ids = append(ids, id)
					}
					mu.Unlock()
					if err != nil {
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("commits failed: %v", failures)
	}
	slices.Sort(ids)
	if len(slices.Compact(slices.Clone(ids))) != writers*each {
		t.Fatalf("revision ids not distinct: %v", ids)
	}
	objs, cur, err := store.Load(ctx, s)
	if n := counter(objs); n != writers*each {
		t.Errorf("the shared counter reads %d after %d increments: updates were lost", n, writers*each)
	}
	if err != nil || cur != ids[len(ids)-1] || len(objs) != 2+writers*each {
		t.Fatalf("after %d commits: current %d (last id %d), %d objects, %v", writers*each, cur, ids[len(ids)-1], len(objs), err)
	}
	evs, _ := store.ReadEvents(ctx, s, 0, 0)
	if len(evs) != writers*each {
		t.Fatalf("%d events for %d commits", len(evs), writers*each)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Fatalf("events out of order: %d after %d", evs[i].Seq, evs[i-1].Seq)
		}
	}
}

func testEvents(t *testing.T, s store.Store) {
	var seqs []int64
	for i := range 5 {
		e, err := store.AppendEvent(ctx, s, api.Event{Type: "t", Tenant: "acme", Message: fmt.Sprint("m", i), Data: map[string]any{"i": float64(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(seqs) > 0 && e.Seq <= seqs[len(seqs)-1] {
			t.Fatalf("seq %d after %d", e.Seq, seqs[len(seqs)-1])
		}
		seqs = append(seqs, e.Seq)
	}
	evs, err := store.ReadEvents(ctx, s, seqs[1], 0)
	if err != nil || len(evs) != 3 || evs[0].Seq != seqs[2] || evs[0].Message != "m2" || evs[0].Tenant != "acme" || evs[0].Data["i"] != float64(2) {
		t.Fatalf("since %d: %+v %v", seqs[1], evs, err)
	}
	view(t, s, func(tx store.Tx) error {
		if evs, _ := tx.Events().Since(ctx, 0, 2); len(evs) != 2 || evs[1].Seq != seqs[1] {
			t.Errorf("since 0, limit 2: %+v", evs)
		}
		if evs, _ := tx.Events().Since(ctx, seqs[4], 0); len(evs) != 0 {
			t.Errorf("since the last: %+v", evs)
		}
		if evs, _ := tx.Events().Last(ctx, 2); len(evs) != 2 || evs[0].Seq != seqs[3] || evs[1].Seq != seqs[4] {
			t.Errorf("last 2 (oldest first): %+v", evs)
		}
		if evs, _ := tx.Events().Last(ctx, 50); len(evs) != 5 {
			t.Errorf("last 50 of 5: %d", len(evs))
		}
		return nil
	})
}

func testEventsCapped(t *testing.T, s store.Store) {
	var last api.Event
	update(t, s, func(tx store.Tx) error {
		for range store.MaxEvents + 5 {
			var err error
			if last, err = tx.Events().Append(ctx, api.Event{Type: "t", Message: "m"}); err != nil {
				return err
			}
		}
		return nil
	})
	evs, err := store.ReadEvents(ctx, s, 0, 0)
	if err != nil || len(evs) != store.MaxEvents || evs[len(evs)-1].Seq != last.Seq || evs[0].Seq != last.Seq-store.MaxEvents+1 {
		t.Fatalf("kept %d events (%v), want the last %d", len(evs), err, store.MaxEvents)
	}
}

func testKeys(t *testing.T, s store.Store) {
	now := time.Now().UTC().Truncate(time.Second)
	a := auth.KeyRecord{ID: "aaaa", Prefix: "stoa_sk_aaaa", Tenant: "acme", Consumer: "shop", ConsumerUID: "u1", CreatedAt: now}
	b := auth.KeyRecord{ID: "bbbb", Prefix: "stoa_sk_bbbb", Tenant: "acme", Consumer: "shop", CreatedAt: now}
	update(t, s, func(tx store.Tx) error { return tx.Keys().Put(ctx, a, b) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.Keys().Get(ctx, "aaaa")
		if err != nil || got.ConsumerUID != "u1" || !got.CreatedAt.Equal(now) {
			t.Errorf("get: %+v %v", got, err)
		}
		if _, err := tx.Keys().Get(ctx, "cccc"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown key: %v", err)
		}
		return nil
	})
	b.RevokedAt, b.RevokedReason = now, "test"
	update(t, s, func(tx store.Tx) error { return tx.Keys().Put(ctx, b) })
	view(t, s, func(tx store.Tx) error {
		all, err := tx.Keys().List(ctx)
		slices.SortFunc(all, func(x, y auth.KeyRecord) int { return strings.Compare(x.ID, y.ID) })
		if err != nil || len(all) != 2 || all[1].RevokedReason != "test" || all[0].RevokedReason != "" {
			t.Errorf("list after replacing one: %+v %v", all, err)
		}
		return nil
	})
}

func testAudit(t *testing.T, s store.Store) {
	view(t, s, func(tx store.Tx) error {
		if h, err := tx.Audit().Head(ctx); err != nil || h != (store.AuditHead{}) {
			t.Errorf("empty head: %+v %v", h, err)
		}
		if _, ok, err := tx.Audit().Cursor(ctx, "events"); ok || err != nil {
			t.Errorf("cursor before any: %v %v", ok, err)
		}
		return nil
	})
	// Data is kept verbatim, whatever it is (verification must see what
	// was stored, not a re-encoding).
	data := [][]byte{[]byte(`{"seq":1, "b":2,"a":1}`), []byte(`{"seq":2}` + "\n"), []byte(`not json`)}
	update(t, s, func(tx store.Tx) error {
		recs := []store.AuditRecord{{Seq: 1, Data: data[0]}, {Seq: 2, Data: data[1]}}
		if err := tx.Audit().Append(ctx, recs, store.AuditHead{Seq: 2, Hash: "h2"}); err != nil {
			return err
		}
		return tx.Audit().SetCursor(ctx, "events", 42)
	})
	update(t, s, func(tx store.Tx) error {
		h, err := tx.Audit().Head(ctx)
		if err != nil || h.Seq != 2 || h.Hash != "h2" {
			t.Errorf("head: %+v %v", h, err)
		}
		return tx.Audit().Append(ctx, []store.AuditRecord{{Seq: 3, Data: data[2]}}, store.AuditHead{Seq: 3, Hash: "h3"})
	})
	view(t, s, func(tx store.Tx) error {
		var fwd, rev []int64
		_ = tx.Audit().Scan(ctx, false, func(r store.AuditRecord) bool {
			if !bytes.Equal(r.Data, data[r.Seq-1]) {
				t.Errorf("entry %d stored as %q, appended as %q", r.Seq, r.Data, data[r.Seq-1])
			}
			fwd = append(fwd, r.Seq)
			return true
		})
		_ = tx.Audit().Scan(ctx, true, func(r store.AuditRecord) bool { rev = append(rev, r.Seq); return len(rev) < 2 })
		if !slices.Equal(fwd, []int64{1, 2, 3}) || !slices.Equal(rev, []int64{3, 2}) {
			t.Errorf("scan forward %v, reverse (stopped after 2) %v", fwd, rev)
		}
		if n, ok, err := tx.Audit().Cursor(ctx, "events"); n != 42 || !ok || err != nil {
			t.Errorf("cursor: %d %v %v", n, ok, err)
		}
		if h, _ := tx.Audit().Head(ctx); h.Seq != 3 || h.Hash != "h3" {
			t.Errorf("head after the second append: %+v", h)
		}
		return nil
	})
}

func testAuditNoOverwrite(t *testing.T, s store.Store) {
	update(t, s, func(tx store.Tx) error {
		return tx.Audit().Append(ctx, []store.AuditRecord{{Seq: 1, Data: []byte("one")}}, store.AuditHead{Seq: 1, Hash: "h1"})
	})
	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.Audit().Append(ctx, []store.AuditRecord{{Seq: 1, Data: []byte("forged")}}, store.AuditHead{Seq: 1, Hash: "hx"})
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("overwriting entry 1: %v, want ErrConflict", err)
	}
	view(t, s, func(tx store.Tx) error {
		_ = tx.Audit().Scan(ctx, false, func(r store.AuditRecord) bool {
			if string(r.Data) != "one" {
				t.Errorf("entry 1 is now %q", r.Data)
			}
			return true
		})
		if h, _ := tx.Audit().Head(ctx); h.Hash != "h1" {
			t.Errorf("head moved: %+v", h)
		}
		return nil
	})
}

// snapshotData is a snapshot document carrying its indexed fields, as
// pkg/snapshot writes them.
func snapshotData(id int64, tenant, tool string, at time.Time, count int) []byte {
	return fmt.Appendf(nil, `{"id":"%s","time":"%s","tenant":"%s","tool":"%s","count":%d}`,
		store.SnapshotIDs.Format(id), at.UTC().Format(time.RFC3339Nano), tenant, tool, count)
}

func testSnapshots(t *testing.T, s store.Store) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type snap struct {
		tenant, tool string
		at           time.Time
	}
	in := []snap{
		{"acme", "billing", t0}, {"acme", "search", t0.Add(time.Minute)}, {"", "billing", t0.Add(2 * time.Minute)},
		{"globex", "billing", t0.Add(3 * time.Minute)}, {"acme", "billing", t0.Add(4 * time.Minute)},
	}
	var ids []int64
	update(t, s, func(tx store.Tx) error {
		for _, sn := range in {
			id, err := tx.Snapshots().NextID(ctx)
			if err != nil {
				return err
			}
			if len(ids) > 0 && id <= ids[len(ids)-1] {
				t.Errorf("snapshot id %d after %d", id, ids[len(ids)-1])
			}
			ids = append(ids, id)
			rec := store.SnapshotRecord{ID: id, Tenant: sn.tenant, Tool: sn.tool, Time: sn.at, Data: snapshotData(id, sn.tenant, sn.tool, sn.at, 1)}
			if err := tx.Snapshots().Put(ctx, rec); err != nil {
				return err
			}
		}
		return nil
	})
	list := func(f store.SnapshotFilter) []int64 {
		var out []int64
		view(t, s, func(tx store.Tx) error {
			recs, err := tx.Snapshots().List(ctx, f)
			for _, r := range recs {
				out = append(out, r.ID)
			}
			return err
		})
		return out
	}
	for name, tc := range map[string]struct {
		f    store.SnapshotFilter
		want []int64
	}{
		"all, newest first": {store.SnapshotFilter{}, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		"tenant":            {store.SnapshotFilter{Tenant: "acme"}, []int64{ids[4], ids[1], ids[0]}},
		"tool":              {store.SnapshotFilter{Tool: "billing"}, []int64{ids[4], ids[3], ids[2], ids[0]}},
		"since":             {store.SnapshotFilter{Since: t0.Add(3 * time.Minute)}, []int64{ids[4], ids[3]}},
		"limit":             {store.SnapshotFilter{Tenant: "acme", Limit: 2}, []int64{ids[4], ids[1]}},
	} {
		if got := list(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("list %s: %v, want %v", name, got, tc.want)
		}
	}
	// A repeat updates the stored snapshot in place (grouping).
	update(t, s, func(tx store.Tx) error {
		rec, err := tx.Snapshots().Get(ctx, ids[0])
		if err != nil {
			return err
		}
		if rec.Tenant != "acme" || rec.Tool != "billing" || !rec.Time.Equal(t0) {
			t.Errorf("get: %+v", rec)
		}
		rec.Data = snapshotData(rec.ID, rec.Tenant, rec.Tool, rec.Time, 7)
		return tx.Snapshots().Put(ctx, rec)
	})
	view(t, s, func(tx store.Tx) error {
		rec, err := tx.Snapshots().Get(ctx, ids[0])
		if err != nil || !bytes.Contains(rec.Data, []byte(`"count":7`)) {
			t.Errorf("after the repeat: %s %v", rec.Data, err)
		}
		if _, err := tx.Snapshots().Get(ctx, ids[4]+100); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown snapshot: %v", err)
		}
		tenants, err := tx.Snapshots().Tenants(ctx)
		slices.Sort(tenants)
		if err != nil || !slices.Equal(tenants, []string{"", "acme", "globex"}) {
			t.Errorf("tenants: %q %v", tenants, err)
		}
		return nil
	})
	// Trim by count keeps the newest; by age drops the old of one tenant only.
	update(t, s, func(tx store.Tx) error {
		if n, err := tx.Snapshots().Trim(ctx, "acme", 2, time.Time{}); n != 1 || err != nil {
			t.Errorf("trim acme to 2: dropped %d, %v", n, err)
		}
		if n, err := tx.Snapshots().Trim(ctx, "", 0, t0.Add(3*time.Minute)); n != 1 || err != nil {
			t.Errorf("trim the no-tenant snapshots by age: dropped %d, %v", n, err)
		}
		if n, err := tx.Snapshots().Trim(ctx, "globex", 0, t0.Add(3*time.Minute)); n != 1 || err != nil {
			t.Errorf("trim globex by age (taken exactly at the bound): dropped %d, %v", n, err)
		}
		if n, err := tx.Snapshots().Trim(ctx, "nobody", 1, time.Time{}); n != 0 || err != nil {
			t.Errorf("trim an unknown tenant: %d %v", n, err)
		}
		return nil
	})
	if got := list(store.SnapshotFilter{}); !slices.Equal(got, []int64{ids[4], ids[1]}) {
		t.Errorf("after trimming: %v, want %v", got, []int64{ids[4], ids[1]})
	}
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.Snapshots().Get(ctx, ids[0]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("trimmed snapshot still found: %v", err)
		}
		return nil
	})
}

func delivery(tenant, hook string, at time.Time) *store.Delivery {
	return &store.Delivery{Tenant: tenant, Webhook: hook, EventID: "evt_1", EventType: "key.created", State: store.DeliveryPending,
		CreatedAt: at, NextAttemptAt: at, Body: []byte(`{"id":"evt_1"}`)}
}

func testOutbox(t *testing.T, s store.Store) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ds := []*store.Delivery{delivery("acme", "a", t0), delivery("acme", "b", t0.Add(time.Second)), delivery("globex", "a", t0)}
	update(t, s, func(tx store.Tx) error { return tx.Outbox().Insert(ctx, ds) })
	var ids []int64
	for _, d := range ds {
		n, ok := store.DeliveryIDs.Parse(d.ID)
		if !ok || (len(ids) > 0 && n <= ids[len(ids)-1]) {
			t.Fatalf("delivery ids %q after %v", d.ID, ids)
		}
		ids = append(ids, n)
	}
	view(t, s, func(tx store.Tx) error {
		due, err := tx.Outbox().Pending(ctx)
		if err != nil || len(due) != 3 || !due[1].NextAttemptAt.Equal(t0.Add(time.Second)) {
			t.Errorf("pending: %+v %v", due, err)
		}
		got, err := tx.Outbox().Get(ctx, ids[0])
		if err != nil || got.ID != ds[0].ID || string(got.Body) != `{"id":"evt_1"}` || got.State != store.DeliveryPending {
			t.Errorf("get: %+v %v", got, err)
		}
		list, err := tx.Outbox().List(ctx, store.DeliveryFilter{Tenant: "acme"})
		if err != nil || len(list) != 2 || list[0].ID != ds[1].ID || list[0].Body != nil {
			t.Errorf("list acme (newest first, no bodies): %+v %v", list, err)
		}
		if list, _ := tx.Outbox().List(ctx, store.DeliveryFilter{Webhook: "a", Limit: 1}); len(list) != 1 || list[0].ID != ds[2].ID {
			t.Errorf("list webhook a, limit 1: %+v", list)
		}
		if _, err := tx.Outbox().Get(ctx, ids[2]+10); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown delivery: %v", err)
		}
		return nil
	})
	claim := func(id int64, owner string, lease time.Duration) (store.Delivery, error) {
		var d store.Delivery
		err := s.Update(ctx, func(tx store.Tx) error {
			var err error
			d, err = tx.Outbox().Claim(ctx, id, owner, lease)
			return err
		})
		return d, err
	}
	// One claim at a time; the holder may renew.
	d0, err := claim(ids[0], "r1", time.Hour)
	if err != nil || d0.ID != ds[0].ID {
		t.Fatalf("claim: %+v %v", d0, err)
	}
	if _, err := claim(ids[0], "r2", time.Hour); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second owner's claim: %v, want ErrConflict", err)
	}
	if _, err := claim(ids[0], "r1", time.Hour); err != nil {
		t.Fatalf("holder renews: %v", err)
	}
	if _, err := claim(ids[2]+10, "r1", time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim of an unknown delivery: %v", err)
	}
	// Another owner may not record the outcome while the claim lives.
	d0.State, d0.Attempts = store.DeliverySucceeded, 1
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Outbox().Ack(ctx, "r2", d0) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("ack by a non-holder: %v, want ErrConflict", err)
	}
	update(t, s, func(tx store.Tx) error { return tx.Outbox().Ack(ctx, "r1", d0) })
	if _, err := claim(ids[0], "r2", time.Hour); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("claim of a finished delivery: %v, want ErrConflict", err)
	}
	// Retry: still pending, due later, claim released.
	d1, err := claim(ids[1], "r1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	d1.Attempts, d1.LastStatus, d1.NextAttemptAt = 1, 503, t0.Add(time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.Outbox().Retry(ctx, "r1", d1) })
	if _, err := claim(ids[1], "r2", time.Hour); err != nil {
		t.Fatalf("claim after a retry released it: %v", err)
	}
	// A lapsed claim may be taken over.
	if _, err := claim(ids[2], "r1", time.Microsecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if _, err := claim(ids[2], "r2", time.Hour); err != nil {
		t.Fatalf("claim after the lease lapsed: %v", err)
	}
	view(t, s, func(tx store.Tx) error {
		due, _ := tx.Outbox().Pending(ctx)
		if len(due) != 2 || due[0].ID != ids[1] || !due[0].NextAttemptAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("pending after ack and retry: %+v", due)
		}
		got, _ := tx.Outbox().Get(ctx, ids[0])
		if got.State != store.DeliverySucceeded || got.Attempts != 1 {
			t.Errorf("acked delivery: %+v", got)
		}
		if got, _ := tx.Outbox().Get(ctx, ids[1]); got.LastStatus != 503 || got.State != store.DeliveryPending {
			t.Errorf("retried delivery: %+v", got)
		}
		if list, _ := tx.Outbox().List(ctx, store.DeliveryFilter{State: store.DeliverySucceeded}); len(list) != 1 || list[0].ID != ds[0].ID {
			t.Errorf("list succeeded: %+v", list)
		}
		return nil
	})
}

func testOutboxClaimRollback(t *testing.T, s store.Store) {
	ds := []*store.Delivery{delivery("acme", "a", time.Now())}
	update(t, s, func(tx store.Tx) error { return tx.Outbox().Insert(ctx, ds) })
	id, _ := store.DeliveryIDs.Parse(ds[0].ID)
	err := s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Outbox().Claim(ctx, id, "r1", time.Hour); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { _, err := tx.Outbox().Claim(ctx, id, "r2", time.Hour); return err }); err != nil {
		t.Fatalf("a claim rolled back still holds: %v", err)
	}
}

func testOutboxTrim(t *testing.T, s store.Store) {
	var all []*store.Delivery
	for i := range 20 {
		ds := []*store.Delivery{delivery("acme", "a", time.Now())}
		update(t, s, func(tx store.Tx) error {
			if err := tx.Outbox().Insert(ctx, ds); err != nil {
				return err
			}
			_, err := tx.Outbox().Trim(ctx, 5, 2*len(ds)+8)
			return err
		})
		all = append(all, ds[0])
		if i > 0 { // all but the first finish
			d := *ds[0]
			d.State = store.DeliverySucceeded
			update(t, s, func(tx store.Tx) error { return tx.Outbox().Ack(ctx, "r", d) })
		}
	}
	view(t, s, func(tx store.Tx) error {
		list, err := tx.Outbox().List(ctx, store.DeliveryFilter{})
		if err != nil || len(list) > 7 || list[len(list)-1].ID != all[0].ID {
			t.Errorf("kept %d deliveries (%v); want about 5 plus the pending %s", len(list), err, all[0].ID)
		}
		if list[0].ID != all[19].ID {
			t.Errorf("newest dropped: %+v", list[0])
		}
		return nil
	})
}

func testQuota(t *testing.T, s store.Store) {
	update(t, s, func(tx store.Tx) error {
		if err := tx.Quota().Put(ctx, "acme/s1", store.QuotaUsage{Day: 10, DayCount: 1, Month: 1, MonthCount: 1}); err != nil {
			return err
		}
		return tx.Quota().Put(ctx, "acme/s2", store.QuotaUsage{Day: 10, DayCount: 5})
	})
	update(t, s, func(tx store.Tx) error {
		if err := tx.Quota().Put(ctx, "acme/s1", store.QuotaUsage{Day: 11, DayCount: 2, Month: 1, MonthCount: 3, DayExhausted: 11}); err != nil {
			return err
		}
		return tx.Quota().Delete(ctx, "acme/s2")
	})
	view(t, s, func(tx store.Tx) error {
		all, err := tx.Quota().List(ctx)
		want := map[string]store.QuotaUsage{"acme/s1": {Day: 11, DayCount: 2, Month: 1, MonthCount: 3, DayExhausted: 11}}
		if err != nil || len(all) != 1 || all["acme/s1"] != want["acme/s1"] {
			t.Errorf("usage after upsert and delete: %+v %v", all, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error { return tx.Quota().Delete(ctx, "acme/none") })
}

func testMeta(t *testing.T, s store.Store) {
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.Meta().Get(ctx, store.MetaMCP, "cursor-key"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("absent: %v", err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error {
		for k, v := range map[string]string{"acme\x00b": "2", "acme\x00a": "1", "zeta\x00a": "3"} {
			if err := tx.Meta().Put(ctx, store.MetaConsumerUIDs, k, []byte(v)); err != nil {
				return err
			}
		}
		if err := tx.Meta().Put(ctx, store.MetaWebhookFeed, "cursor", store.EncodeSeq(7)); err != nil {
			return err
		}
		if err := tx.Meta().Put(ctx, store.Namespace("nope"), "k", []byte("v")); err == nil {
			t.Errorf("a namespace the store does not know was accepted")
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error {
		if err := tx.Meta().Put(ctx, store.MetaConsumerUIDs, "acme\x00a", []byte("1b")); err != nil {
			return err
		}
		return tx.Meta().Delete(ctx, store.MetaConsumerUIDs, "zeta\x00a")
	})
	view(t, s, func(tx store.Tx) error {
		var keys, vals []string
		err := tx.Meta().List(ctx, store.MetaConsumerUIDs, func(k string, v []byte) error {
			keys, vals = append(keys, k), append(vals, string(v))
			return nil
		})
		if err != nil || !slices.Equal(keys, []string{"acme\x00a", "acme\x00b"}) || !slices.Equal(vals, []string{"1b", "2"}) {
			t.Errorf("list: %q %q %v", keys, vals, err)
		}
		v, err := tx.Meta().Get(ctx, store.MetaWebhookFeed, "cursor")
		if n, ok := store.DecodeSeq(v); err != nil || !ok || n != 7 {
			t.Errorf("cursor: %v %v", v, err)
		}
		if _, err := tx.Meta().Get(ctx, store.MetaMCP, "acme\x00a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("namespaces are apart: %v", err)
		}
		return nil
	})
}

// testQuotaAdd: processes sharing a store flush what they counted since
// their last flush, and the counts add up.
func testQuotaAdd(t *testing.T, s store.Store) {
	add := func(key string, d store.QuotaUsage) store.QuotaUsage {
		t.Helper()
		var u store.QuotaUsage
		update(t, s, func(tx store.Tx) error {
			var err error
			u, err = tx.Quota().Add(ctx, key, d)
			return err
		})
		return u
	}
	steps := []struct {
		name        string
		delta, want store.QuotaUsage
	}{
		{"first flush", store.QuotaUsage{Day: 10, DayCount: 3, Month: 1, MonthCount: 3},
			store.QuotaUsage{Day: 10, DayCount: 3, Month: 1, MonthCount: 3}},
		{"another process, same day", store.QuotaUsage{Day: 10, DayCount: 4, Month: 1, MonthCount: 4, DayExhausted: 11},
			store.QuotaUsage{Day: 10, DayCount: 7, Month: 1, MonthCount: 7, DayExhausted: 11}},
		{"a late count of an earlier day", store.QuotaUsage{Day: 9, DayCount: 5, Month: 1, MonthCount: 5, DayExhausted: 10},
			store.QuotaUsage{Day: 10, DayCount: 7, Month: 1, MonthCount: 12, DayExhausted: 11}},
		{"a new day", store.QuotaUsage{Day: 11, DayCount: 1, Month: 1, MonthCount: 1},
			store.QuotaUsage{Day: 11, DayCount: 1, Month: 1, MonthCount: 13, DayExhausted: 11}},
		{"a new month", store.QuotaUsage{Day: 40, DayCount: 2, Month: 2, MonthCount: 2, MonthExhausted: 3},
			store.QuotaUsage{Day: 40, DayCount: 2, Month: 2, MonthCount: 2, DayExhausted: 11, MonthExhausted: 3}},
	}
	for _, st := range steps {
		if got := add("acme/s1", st.delta); got != st.want {
			t.Fatalf("%s: stored %+v, want %+v", st.name, got, st.want)
		}
	}
	// Writers at once lose no count.
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for range each {
				for attempt := 0; ; attempt++ {
					err := s.Update(ctx, func(tx store.Tx) error {
						_, err := tx.Quota().Add(ctx, "acme/s2", store.QuotaUsage{Day: 40, DayCount: 1, Month: 2, MonthCount: 1})
						return err
					})
					if errors.Is(err, store.ErrConflict) && attempt < 100 {
						continue
					}
					if err != nil {
						errs <- err
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent add: %v", err)
	}
	view(t, s, func(tx store.Tx) error {
		all, err := tx.Quota().List(ctx)
		if err != nil || all["acme/s2"].DayCount != writers*each || all["acme/s2"].MonthCount != writers*each || all["acme/s1"] != steps[len(steps)-1].want {
			t.Errorf("after concurrent adds: %+v %v", all, err)
		}
		return nil
	})
}

// testOwnWrites: reads in an Update see what it wrote before them.
func testOwnWrites(t *testing.T, s store.Store) {
	ten := obj(spec.KindTenant, "", "acme", "")
	update(t, s, func(tx store.Tx) error {
		changes, _ := plan.Compute(nil, []*spec.Object{ten}, plan.Options{})
		id, err := tx.Revisions().Commit(ctx, 0, store.Revision{Time: time.Now()}, changes)
		if err != nil {
			return err
		}
		if cur, _ := tx.Revisions().Current(ctx); cur != id {
			t.Errorf("current after commit in the same transaction: %d, want %d", cur, id)
		}
		if objs, _ := tx.Revisions().Objects(ctx); names(objs) != "Tenant/acme" {
			t.Errorf("objects after commit in the same transaction: %s", names(objs))
		}
		if rev, err := tx.Revisions().Get(ctx, id); err != nil || len(rev.Refs) != 1 {
			t.Errorf("revision after commit in the same transaction: %+v %v", rev, err)
		}
		for i := range 3 {
			if _, err := tx.Events().Append(ctx, api.Event{Type: "t", Message: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		if evs, _ := tx.Events().Since(ctx, 0, 0); len(evs) != 3 || evs[2].Message != "2" {
			t.Errorf("events appended in the same transaction: %+v", evs)
		}
		if evs, _ := tx.Events().Last(ctx, 1); len(evs) != 1 || evs[0].Message != "2" {
			t.Errorf("last event appended in the same transaction: %+v", evs)
		}
		if err := tx.Keys().Put(ctx, auth.KeyRecord{ID: "k1", Tenant: "acme"}); err != nil {
			return err
		}
		if k, err := tx.Keys().Get(ctx, "k1"); err != nil || k.Tenant != "acme" {
			t.Errorf("key put in the same transaction: %+v %v", k, err)
		}
		if err := tx.Meta().Put(ctx, store.MetaMCP, "cursor-key", []byte{0, 1, 2}); err != nil {
			return err
		}
		if v, err := tx.Meta().Get(ctx, store.MetaMCP, "cursor-key"); err != nil || !bytes.Equal(v, []byte{0, 1, 2}) {
			t.Errorf("meta put in the same transaction: %v %v", v, err)
		}
		ds := []*store.Delivery{delivery("acme", "a", time.Now())}
		if err := tx.Outbox().Insert(ctx, ds); err != nil {
			return err
		}
		if due, _ := tx.Outbox().Pending(ctx); len(due) != 1 {
			t.Errorf("delivery inserted in the same transaction: %+v", due)
		}
		if err := tx.Audit().Append(ctx, []store.AuditRecord{{Seq: 1, Data: []byte("a")}}, store.AuditHead{Seq: 1, Hash: "h1"}); err != nil {
			return err
		}
		if h, _ := tx.Audit().Head(ctx); h.Seq != 1 || h.Hash != "h1" {
			t.Errorf("audit head in the same transaction: %+v", h)
		}
		return nil
	})
}

// next waits for the next change on ch; a database store delivers them
// asynchronously, so the bound is generous.
func next(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("no change within 30s")
	}
	return store.Change{}
}

// testWatch: every committed write is one Change, in commit order; reads
// and failed writes are none.
func testWatch(t *testing.T, s store.Store) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := s.Watch(wctx)
	view(t, s, func(tx store.Tx) error { _, err := tx.Revisions().Objects(ctx); return err })
	_ = s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Events().Append(ctx, api.Event{Type: "t"}); err != nil {
			return err
		}
		return errBoom
	})
	var seq int64
	id := commit(t, s, []*spec.Object{obj(spec.KindTenant, "", "acme", "")}, false, func(tx store.Tx, id int64) error {
		e, err := tx.Events().Append(ctx, api.Event{Type: "config.applied", Data: map[string]any{"revision": id}})
		seq = e.Seq
		return err
	})
	update(t, s, func(tx store.Tx) error { return tx.Keys().Put(ctx, auth.KeyRecord{ID: "k1"}) })
	var ids []int64
	for range 3 {
		ids = append(ids, commit(t, s, []*spec.Object{obj(spec.KindTenant, "", "acme", ""), obj(spec.KindTool, "acme", "a", fmt.Sprint(len(ids)))}, false, nil))
	}
	update(t, s, func(tx store.Tx) error {
		_, err := tx.Quota().Add(ctx, "acme/s", store.QuotaUsage{Day: 1, DayCount: 1})
		return err
	})
	if c := next(t, ch); c != (store.Change{Revision: id, Event: seq, Domains: store.DomainRevisions | store.DomainEvents}) {
		t.Fatalf("first change %+v, want revision %d and event %d (a read and a failed write are no change)", c, id, seq)
	}
	if c := next(t, ch); c != (store.Change{Domains: store.DomainKeys}) {
		t.Fatalf("second change %+v, want keys", c)
	}
	for _, want := range ids {
		if c := next(t, ch); c.Revision != want || c.Domains != store.DomainRevisions {
			t.Fatalf("change %+v, want revision %d", c, want)
		}
	}
	if c := next(t, ch); c != (store.Change{Domains: store.DomainQuota}) {
		t.Fatalf("last change %+v, want quota", c)
	}
	cancel()
	for range ch { //nolint:revive // drain until closed
	}
}
