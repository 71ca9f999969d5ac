package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// TestChangeListReadsAsMarshalled checks that the change list Commit
// writes from the objects' canonical bytes reads back exactly as the
// changes encoded by encoding/json would: creates, updates and deletes,
// planned with and without live digests, text the two encoders escape
// differently, a live object missing from the bucket or stored otherwise
// than it is live (its before is encoded from the change), and no
// changes.
func TestChangeListReadsAsMarshalled(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tool := func(name, desc string) *spec.Object {
		o := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool,
			Metadata: spec.Metadata{Name: name, Namespace: "acme", Labels: map[string]string{"a<b": "c&d"}}, Spec: spec.NewSpec(spec.KindTool)}
		ts := o.Spec.(*spec.ToolSpec)
		ts.Upstream, ts.Description = "http://127.0.0.1:1/?a=1&b=<2>", desc
		spec.Default(o)
		return o
	}
	ten := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "acme"}, Spec: spec.NewSpec(spec.KindTenant)}
	spec.Default(ten)
	ghost := tool("ghost", "never stored")

	var prev []*spec.Object
	for i, desired := range [][]*spec.Object{
		{ten, tool("a", "v1 <html> & \u2028 \"quoted\""), tool("b", "v1"), tool("d", "v1")},
		{ten, tool("a", "v2 \u00e9\u65e5\u672c"), tool("c", "v1"), tool("d", "v2")},
		{ten, tool("a", "v3"), tool("d", "v3")},
	} {
		opts := plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }}
		if i == 2 {
			opts.LiveDigests = plan.DigestAll(prev)
		}
		changes, _ := plan.Compute(prev, desired, opts)
		switch i {
		case 1:
			// A delete of an object the bucket does not hold.
			changes = append(changes, plan.Change{Op: plan.Delete, Ref: ghost.Ref(), Before: ghost})
		case 2:
			// Tool d stored otherwise than it is live (as by a stoad with
			// other defaults): the live object is what the change replaces.
			err := s.Update(ctx, func(tx store.Tx) error {
				return tx.(*txn).tx.Bucket(bucketObjects).Put(refKey(desired[2].Ref()), []byte(`{"apiVersion":"stoa.io/v1alpha1","kind":"Tool","metadata":{"name":"d","namespace":"acme"},"spec":{"upstream":"http://old"}}`+"\n"))
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		want := marshalled(t, changes)
		id := commitChanges(t, s, changes)
		got, err := store.RevisionWithChanges(ctx, s, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Changes, want) {
			t.Fatalf("revision %d: changes read back\n%s\nwant\n%s", id, show(t, got.Changes), show(t, want))
		}
		prev = desired
	}
	id := commitChanges(t, s, nil)
	if got, err := store.RevisionWithChanges(ctx, s, id); err != nil || got.Changes != nil {
		t.Fatalf("no changes: read back %#v, %v", got.Changes, err)
	}
}

// marshalled returns changes as encoding/json writes and reads them.
func marshalled(t *testing.T, changes []plan.Change) []plan.Change {
	t.Helper()
	b, err := json.Marshal(changes)
	if err != nil {
		t.Fatal(err)
	}
	var out []plan.Change
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func show(t *testing.T, changes []plan.Change) string {
	b, err := json.MarshalIndent(changes, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}

func commitChanges(t *testing.T, s store.Store, changes []plan.Change) int64 {
	t.Helper()
	var id int64
	err := s.Update(context.Background(), func(tx store.Tx) error {
		cur, err := tx.Revisions().Current(context.Background())
		if err != nil {
			return err
		}
		id, err = tx.Revisions().Commit(context.Background(), cur, store.Revision{Time: time.Now().UTC(), Actor: "test", Action: "apply"}, changes)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}
