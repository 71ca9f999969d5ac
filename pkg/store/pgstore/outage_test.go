package pgstore

import (
	"context"
	"errors"
	"github.com/stoa-gateway/stoa/pkg/store/pgstore/pgtest"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// waitFor polls cond until it holds; a busy machine may take a while to
// restart a server, so the bound is generous and no timing is asserted.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2 minutes", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nextChange waits for the next change a watch sends.
func nextChange(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return c
	case <-time.After(2 * time.Minute):
		t.Fatal("no change within 2 minutes")
	}
	return store.Change{}
}

// TestConnectionKilledMidTransaction: the backend of a transaction that
// has written a revision, its objects and an event is terminated before
// the commit. The Update fails with ErrUnavailable, nothing of it is
// stored, and the next Update (on a new connection) succeeds without
// reopening the store.
func TestConnectionKilledMidTransaction(t *testing.T) {
	url := freshDB(t)
	s := open(t, url)
	if _, err := apply(s, 0, nil, []*spec.Object{tenant("acme")}); err != nil {
		t.Fatal(err)
	}
	adm := admin(t)
	dbName := s.pool.Config().ConnConfig.Database
	kill := func() {
		t.Helper()
		var n int
		// The transaction's backend is the one idle inside a transaction
		// (the listener's is idle outside one).
		err := adm.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = $1 AND state = 'idle in transaction'`, dbName).Scan(&n)
		if err != nil || n != 1 {
			t.Fatalf("terminate the transaction's backend: %d terminated, %v", n, err)
		}
	}
	changes, _ := plan.Compute([]*spec.Object{tenant("acme")}, []*spec.Object{tenant("acme"), tool("acme", "a", "v1")}, plan.Options{})
	for _, tc := range []struct {
		name string
		// after runs once the backend is gone; it returns fn's result.
		after func(tx store.Tx) error
	}{
		{"a later write fails", func(tx store.Tx) error { return tx.Keys().Put(ctx, auth.KeyRecord{ID: "k1"}) }},
		{"the commit fails", func(store.Tx) error { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(ctx, func(tx store.Tx) error {
				id, err := tx.Revisions().Commit(ctx, 1, store.Revision{Time: time.Now()}, changes)
				if err != nil {
					return err
				}
				if _, err := tx.Events().Append(ctx, api.Event{Type: "config.applied", Data: map[string]any{"revision": id}}); err != nil {
					return err
				}
				kill()
				return tc.after(tx)
			})
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("update whose connection was killed: %v, want ErrUnavailable", err)
			}
			objs, cur := load(t, s)
			evs, _ := store.ReadEvents(ctx, s, 0, 0)
			if cur != 1 || refs(objs) != "Tenant/acme" || len(evs) != 1 {
				t.Fatalf("half written: revision %d, %s, %d events", cur, refs(objs), len(evs))
			}
		})
	}
	if _, err := apply(s, 1, []*spec.Object{tenant("acme")}, []*spec.Object{tenant("acme"), tool("acme", "a", "v1")}); err != nil {
		t.Fatalf("commit after the lost connections: %v", err)
	}
}

// TestServerRestart: the server stops (a fast shutdown: every session is
// ended, then the socket refuses). Reads, writes and the readiness probe
// fail with ErrUnavailable while it is down; once it is back the same
// Store works again, without being reopened, and its watchers are told
// to resync.
func TestServerRestart(t *testing.T) {
	srv := pgtest.Private(t)
	s := open(t, srv.URL)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := s.Watch(wctx)
	if _, err := apply(s, 0, nil, []*spec.Object{tenant("acme")}); err != nil {
		t.Fatal(err)
	}
	if c := nextChange(t, watch); c.Revision != 1 {
		t.Fatalf("change %+v, want revision 1", c)
	}

	srv.Stop()
	if err := store.Ping(ctx, s); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ping while the server is down: %v, want ErrUnavailable", err)
	}
	if _, _, err := store.Load(ctx, s); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("load while the server is down: %v, want ErrUnavailable", err)
	}
	_, err := apply(s, 1, []*spec.Object{tenant("acme")}, []*spec.Object{tenant("acme"), tenant("globex")})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("apply while the server is down: %v, want ErrUnavailable", err)
	}
	t.Logf("while down: %v", err)

	srv.Start()
	waitFor(t, "the store answers again", func() bool { return store.Ping(ctx, s) == nil })
	if c := nextChange(t, watch); !c.Resync || c.Revision != 1 || c.Domains != store.AllDomains {
		t.Fatalf("change after the listener reconnected: %+v, want a resync at revision 1", c)
	}
	id, err := apply(s, 1, []*spec.Object{tenant("acme")}, []*spec.Object{tenant("acme"), tenant("globex")})
	if err != nil || id != 2 {
		t.Fatalf("apply after the restart: revision %d, %v", id, err)
	}
	if c := nextChange(t, watch); c.Revision != 2 {
		t.Fatalf("change %+v, want revision 2", c)
	}
	objs, cur := load(t, s)
	if cur != 2 || refs(objs) != "Tenant/acme,Tenant/globex" {
		t.Fatalf("after the restart: revision %d, %s", cur, refs(objs))
	}
}

// TestOpenUnreachable: a server that is not there is ErrUnavailable,
// quickly, with a hint.
func TestOpenUnreachable(t *testing.T) {
	for _, url := range []string{
		"postgres:///stoa?host=/nonexistent-stoa-socket-dir",
		"postgres://stoa@127.0.0.1:1/stoa",
	} {
		_, err := Open(ctx, url, Options{})
		if !errors.Is(err, store.ErrUnavailable) || err == nil || !strings.Contains(err.Error(), "is PostgreSQL running") {
			t.Errorf("open %s: %v, want ErrUnavailable with a hint", url, err)
		}
	}
}
