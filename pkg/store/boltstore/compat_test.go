package boltstore_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/audit"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/snapshot"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
	"github.com/stoa-gateway/stoa/pkg/webhook"
)

// openV1 opens a copy of testdata/v1/stoa.db: a state directory written by
// stoad before the store had interfaces (commit ec232d4), every bucket
// filled by that code — two revisions, events, a key, consumer identity,
// subscription state, quota usage, the MCP cursor key, two audit entries
// with cursors, three snapshots (one with no tenant), a delivered and a
// held webhook delivery with the feed cursor. (It was compacted with
// bbolt's Compact, which keeps every bucket sequence.)
func openV1(t *testing.T) *boltstore.Store {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "v1", boltstore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, boltstore.FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(dir)
	if err != nil {
		t.Fatalf("open a state dir of the previous layout: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// tool returns the description of Tool acme/name in objs.
func tool(objs []*spec.Object, name string) string {
	for _, o := range objs {
		if o.Ref() == (spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: name}) {
			return o.Spec.(*spec.ToolSpec).Description
		}
	}
	return ""
}

func TestOpensPreviousLayout(t *testing.T) {
	ctx := context.Background()
	st := openV1(t)

	objs, cur, err := store.Load(ctx, st)
	if err != nil || cur != 2 || len(objs) != 4 {
		t.Fatalf("load: revision %d, %d objects, %v", cur, len(objs), err)
	}
	if d := tool(objs, "a"); d != "v2" {
		t.Fatalf("tool a: %q", d)
	}
	if rv, err := store.RevisionInfo(ctx, st, 1); err != nil || rv.Actor != "alice" || rv.Message != "first" || len(rv.Refs) != 3 {
		t.Fatalf("revision 1: %+v %v", rv, err)
	}
	if rv, err := store.RevisionWithChanges(ctx, st, 2); err != nil || len(rv.Changes) != 2 || rv.Changes[0].Before == nil {
		t.Fatalf("revision 2 with changes: %+v %v", rv, err)
	}
	if at1, err := store.StateAt(ctx, st, 1); err != nil || len(at1) != 3 || tool(at1, "a") != "v1" {
		t.Fatalf("state at 1: %v", err)
	}
	if evs, err := store.ReadEvents(ctx, st, 0, 0); err != nil || len(evs) != 2 || evs[1].Type != "key.created" {
		t.Fatalf("events: %+v %v", evs, err)
	}

	err = st.View(ctx, func(tx store.Tx) error {
		k, err := tx.Keys().Get(ctx, "aaaaaaaaaaaaaaaa")
		if err != nil || k.Consumer != "shop" || k.ConsumerUID != "11111111-2222-4333-8444-555555555555" || k.Name != "ci" {
			t.Errorf("key: %+v %v", k, err)
		}
		var ident struct{ UID string }
		v, err := tx.Meta().Get(ctx, store.MetaConsumerUIDs, "acme\x00shop")
		if err != nil || json.Unmarshal(v, &ident) != nil || ident.UID != k.ConsumerUID {
			t.Errorf("consumer identity: %s %v", v, err)
		}
		if v, err := tx.Meta().Get(ctx, store.MetaSubscriptionState, "acme/s1"); err != nil || string(v) != `{"consumer":"shop","plan":"gold","tool":"a","state":"active"}` {
			t.Errorf("subscription state: %s %v", v, err)
		}
		if v, err := tx.Meta().Get(ctx, store.MetaMCP, "cursor-key"); err != nil || len(v) != 32 || v[31] != 31 {
			t.Errorf("mcp cursor key: %v %v", v, err)
		}
		if v, err := tx.Meta().Get(ctx, store.MetaWebhookFeed, "cursor"); err != nil || string(v) != string(store.EncodeSeq(2)) {
			t.Errorf("webhook cursor: %v %v", v, err)
		}
		u, err := tx.Quota().List(ctx)
		if err != nil || u["acme/s1"] != (store.QuotaUsage{Day: 20393, DayCount: 7, Month: 670, MonthCount: 42}) {
			t.Errorf("quota usage: %+v %v", u, err)
		}
		for name, want := range map[string]int64{"events": 2, "revisions": 2} {
			if n, ok, err := tx.Audit().Cursor(ctx, name); n != want || !ok || err != nil {
				t.Errorf("audit cursor %s: %d %v %v", name, n, ok, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The audit chain written by the old code verifies and extends.
	al, err := audit.Open(st)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := al.Verify(); err != nil || !r.OK || r.Entries != 2 {
		t.Fatalf("verify the old chain: %+v %v", r, err)
	}
	if out, err := al.Append([]audit.Entry{{Actor: "carol", Action: "apply", Target: "revision 3"}}, nil); err != nil || out[0].Seq != 3 {
		t.Fatalf("append: %+v %v", out, err)
	}
	if r, _ := al.Verify(); !r.OK || r.Entries != 3 {
		t.Fatalf("verify after appending: %+v", r)
	}

	// Snapshots, grouped by tenant as before (the no-tenant one too).
	ss, _ := snapshot.OpenStore(st)
	list, err := ss.List(snapshot.Filter{})
	if err != nil || len(list) != 3 || list[0].ID != "snp_3" || list[0].Tenant != "" || list[2].Tool != "tool0" {
		t.Fatalf("snapshots: %+v %v", list, err)
	}
	if acme, _ := ss.List(snapshot.Filter{Tenant: "acme"}); len(acme) != 2 {
		t.Fatalf("snapshots of acme: %+v", acme)
	}
	if sn, err := ss.Get("snp_2"); err != nil || sn.Tool != "tool1" || sn.Response.Status != 502 {
		t.Fatalf("snapshot 2: %+v %v", sn, err)
	}

	// The outbox: the held delivery is still pending, the delivered one
	// done; new ids continue the sequence.
	d, err := webhook.New(webhook.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if d.Pending() != 1 {
		t.Fatalf("pending deliveries: %d, want the held one", d.Pending())
	}
	if del, err := d.Get("dlv_2"); err != nil || del.State != webhook.StateSucceeded || del.Webhook != "ok" || len(del.Body) == 0 {
		t.Fatalf("delivered: %+v %v", del, err)
	}
	if del, err := d.Get("dlv_1"); err != nil || del.State != webhook.StatePending || del.Webhook != "held" {
		t.Fatalf("held: %+v %v", del, err)
	}

	// Every sequence continues where the old code left it.
	err = st.Update(ctx, func(tx store.Tx) error {
		changes, _ := plan.Compute(objs, objs[:1], plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }})
		id, err := tx.Revisions().Commit(ctx, 2, store.Revision{Time: time.Now()}, changes)
		if err != nil || id != 3 {
			t.Errorf("next revision: %d %v", id, err)
		}
		e, err := tx.Events().Append(ctx, api.Event{Type: "t"})
		if err != nil || e.Seq != 3 {
			t.Errorf("next event: %d %v", e.Seq, err)
		}
		if n, err := tx.Snapshots().NextID(ctx); err != nil || n != 4 {
			t.Errorf("next snapshot: %d %v", n, err)
		}
		ds := []*store.Delivery{{State: store.DeliveryPending, Tenant: "acme", Webhook: "ok"}}
		if err := tx.Outbox().Insert(ctx, ds); err != nil || ds[0].ID != "dlv_3" {
			t.Errorf("next delivery: %s %v", ds[0].ID, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
