package boltstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
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

func TestSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ten := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "acme"}, Spec: spec.NewSpec(spec.KindTenant)}
	spec.Default(ten)
	changes, _ := plan.Compute(nil, []*spec.Object{ten}, plan.Options{})
	err = s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Revisions().Commit(ctx, 0, store.Revision{Time: time.Now()}, changes); err != nil {
			return err
		}
		_, err := tx.Events().Append(ctx, api.Event{Type: "config.applied"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	objs, cur, err := store.Load(ctx, s)
	if err != nil || cur != 1 || len(objs) != 1 {
		t.Fatalf("after reopening: revision %d, %d objects, %v", cur, len(objs), err)
	}
	if evs, _ := store.ReadEvents(ctx, s, 0, 0); len(evs) != 1 {
		t.Fatalf("events after reopening: %+v", evs)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tamper("meta", []byte("schema"), func([]byte) []byte { return []byte("99") }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "state schema 99 is not supported") {
		t.Fatalf("open of a newer schema: %v", err)
	}
}

func TestCorruptRecordIsErrCorrupt(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := store.AppendEvent(ctx, s, api.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Tamper("events", store.EncodeSeq(1), func([]byte) []byte { return []byte("{") }); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ReadEvents(ctx, s, 0, 0); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("reading a damaged event: %v, want ErrCorrupt", err)
	}
}
