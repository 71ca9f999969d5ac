package audit

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

// TestTrailFollowsBothLogs: a trail takes revisions (even those made
// before it existed) and change events (only from its start), records
// direct entries in order, and never takes anything twice — also when
// reopened.
func TestTrailFollowsBothLogs(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	evl := events.NewLog(st, log)
	evl.Emit("key.created", "acme", "before the trail", map[string]any{"key": "stoa_old", "actor": "alice"})
	tenant := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "acme"}, Spec: &spec.TenantSpec{}}
	err = st.Update(ctx, func(tx store.Tx) error {
		_, err := tx.Revisions().Commit(ctx, 0, store.Revision{Time: time.Now().UTC(), Actor: "alice", Action: "apply"},
			[]plan.Change{{Op: plan.Create, Ref: tenant.Ref(), After: tenant}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	open := func() *Trail {
		tr, err := NewTrail(TrailOptions{Store: st, Events: evl, Log: log, Revision: func() int64 { return 1 }})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	tr := open()
	evl.Emit("key.revoked", "acme", "revoked", map[string]any{"key": "stoa_new", "actor": "bob", "revision": int64(1)})
	evl.Emit("upstream.ejected", "acme", "not a change", nil)
	tr.Record(Entry{Actor: "carol", Action: "snapshot.replay", Target: "Tool/acme/billing", Tenant: "acme"})

	list := func(tr *Trail) []Entry {
		var out []Entry
		if err := tr.List(Filter{}, func(e Entry) error { out = append(out, e); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := list(tr)
	if len(got) != 3 {
		t.Fatalf("entries: %+v", got)
	}
	if got[0].Action != "apply" || got[0].Actor != "alice" || got[0].Target != "revision 1" || got[0].Details["changes"] != "+ Tenant/acme" {
		t.Errorf("revision entry: %+v", got[0])
	}
	if got[1].Action != "key.revoke" || got[1].Actor != "bob" || got[1].Target != "key stoa_new" || got[1].Revision != 1 {
		t.Errorf("event entry: %+v", got[1])
	}
	if got[2].Action != "snapshot.replay" || got[2].Revision != 1 {
		t.Errorf("recorded entry: %+v", got[2])
	}
	if res, err := tr.Verify(); err != nil || !res.OK || res.Entries != 3 {
		t.Fatalf("verify: %+v %v", res, err)
	}
	if again := list(open()); len(again) != 3 {
		t.Fatalf("reopened: %d entries", len(again))
	}
}
