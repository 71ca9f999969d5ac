package store

import (
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

func obj(kind spec.Kind, ns, name, desc string) *spec.Object {
	o := &spec.Object{APIVersion: spec.APIVersion, Kind: kind, Metadata: spec.Metadata{Name: name, Namespace: ns}, Spec: spec.NewSpec(kind)}
	if t, ok := o.Spec.(*spec.ToolSpec); ok {
		t.Upstream, t.Description = "http://127.0.0.1:1", desc
	}
	spec.Default(o)
	return o
}

func commit(t *testing.T, s *Store, live, desired []*spec.Object, prune bool) ([]*spec.Object, int64) {
	t.Helper()
	changes, _ := plan.Compute(live, desired, plan.Options{Prune: prune, PruneScope: func(*spec.Object) bool { return true }})
	id, err := s.Commit(Revision{Time: time.Now(), Actor: "test", Action: "apply"}, changes)
	if err != nil {
		t.Fatal(err)
	}
	return plan.Apply(live, changes), id
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

func TestCommitLoadAndStateAt(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ten := obj(spec.KindTenant, "", "acme", "")
	r1 := []*spec.Object{ten, obj(spec.KindTool, "acme", "a", "v1")}
	live, id1 := commit(t, s, nil, r1, false)
	r2 := []*spec.Object{ten, obj(spec.KindTool, "acme", "a", "v2"), obj(spec.KindTool, "acme", "b", "v1")}
	live, id2 := commit(t, s, live, r2, false)
	r3 := []*spec.Object{ten, obj(spec.KindTool, "acme", "b", "v1")}
	_, id3 := commit(t, s, live, r3, true)
	if id1 != 1 || id2 != 2 || id3 != 3 {
		t.Fatalf("ids %d %d %d", id1, id2, id3)
	}
	s.Close()

	// Reopen: the state survives.
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	objs, cur, err := s.Load()
	if err != nil || cur != 3 {
		t.Fatalf("load: cur=%d err=%v", cur, err)
	}
	if got := names(objs); got != "Tenant/acme,Tool/acme/b=v1" {
		t.Fatalf("live after reopen: %s", got)
	}
	for rev, want := range map[int64]string{
		0: "",
		1: "Tenant/acme,Tool/acme/a=v1",
		2: "Tenant/acme,Tool/acme/a=v2,Tool/acme/b=v1",
		3: "Tenant/acme,Tool/acme/b=v1",
	} {
		st, err := s.StateAt(rev)
		if err != nil {
			t.Fatalf("StateAt(%d): %v", rev, err)
		}
		if got := names(st); got != want {
			t.Errorf("StateAt(%d) = %s, want %s", rev, got, want)
		}
	}
	if _, err := s.StateAt(4); err == nil {
		t.Fatal("StateAt beyond current must fail")
	}
	revs, err := s.Revisions(0)
	if err != nil || len(revs) != 3 || revs[0].ID != 3 || revs[0].Changes != nil {
		t.Fatalf("revisions (newest first, no changes): %+v %v", revs, err)
	}
	if revs[2].Summary.Create != 2 {
		t.Fatalf("summary of revision 1: %+v", revs[2].Summary)
	}
	full, err := s.Revision(2)
	if err != nil || len(full.Changes) != 2 {
		t.Fatalf("revision 2: %+v %v", full, err)
	}
}

func TestOpenLockedByAnother(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(dir)
	if err == nil || !strings.Contains(err.Error(), "another stoad") {
		t.Fatalf("second open: %v", err)
	}
}

func TestEventsCapped(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 25; i++ {
		if _, err := s.AppendEvent(api.Event{Type: "t", Message: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.Events(20, 0)
	if err != nil || len(evs) != 5 || evs[0].Seq != 21 {
		t.Fatalf("events after 20: %+v %v", evs, err)
	}
	evs, _ = s.Events(0, 3)
	if len(evs) != 3 || evs[2].Seq != 25 {
		t.Fatalf("last 3: %+v", evs)
	}
}
