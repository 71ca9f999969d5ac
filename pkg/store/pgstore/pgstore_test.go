package pgstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(ctx, freshDB(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func tenant(name string) *spec.Object {
	o := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: name}, Spec: spec.NewSpec(spec.KindTenant)}
	spec.Default(o)
	return o
}

func tool(ns, name, desc string) *spec.Object {
	o := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool, Metadata: spec.Metadata{Name: name, Namespace: ns}, Spec: spec.NewSpec(spec.KindTool)}
	ts := o.Spec.(*spec.ToolSpec)
	ts.Upstream, ts.Description = "http://127.0.0.1:1", desc
	spec.Default(o)
	return o
}

// apply plans desired against what s reads and commits it on base,
// with its event, as stoad does.
func apply(s store.Store, base int64, live, desired []*spec.Object) (int64, error) {
	changes, _ := plan.Compute(live, desired, plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }})
	var id int64
	err := s.Update(ctx, func(tx store.Tx) error {
		var err error
		if id, err = tx.Revisions().Commit(ctx, base, store.Revision{Time: time.Now(), Actor: "test", Action: "apply"}, changes); err != nil {
			return err
		}
		_, err = tx.Events().Append(ctx, api.Event{Type: "config.applied", Data: map[string]any{"revision": id}})
		return err
	})
	return id, err
}

func load(t *testing.T, s store.Store) ([]*spec.Object, int64) {
	t.Helper()
	objs, cur, err := store.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	return objs, cur
}

func refs(objs []*spec.Object) string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Ref().String())
	}
	return strings.Join(out, ",")
}

// TestTwoReplicasConflict: two CLIs plan on the same revision, one
// through each replica; the second commit is refused and writes
// nothing; planned again on the new revision, it lands.
func TestTwoReplicasConflict(t *testing.T) {
	url := freshDB(t)
	a, b := open(t, url), open(t, url)
	liveA, baseA := load(t, a)
	liveB, baseB := load(t, b)
	if _, err := apply(a, baseA, liveA, []*spec.Object{tenant("acme")}); err != nil {
		t.Fatal(err)
	}
	_, err := apply(b, baseB, liveB, []*spec.Object{tenant("globex")})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second commit on the same base: %v, want ErrConflict", err)
	}
	objs, cur := load(t, b)
	if cur != 1 || refs(objs) != "Tenant/acme" {
		t.Fatalf("after the refused commit: revision %d, %s", cur, refs(objs))
	}
	if evs, _ := store.ReadEvents(ctx, b, 0, 0); len(evs) != 1 {
		t.Fatalf("the refused commit left events: %+v", evs)
	}
	id, err := apply(b, cur, objs, append(objs, tenant("globex")))
	if err != nil || id != 2 {
		t.Fatalf("retry on the new base: revision %d, %v", id, err)
	}
	if objs, cur := load(t, a); cur != 2 || refs(objs) != "Tenant/acme,Tenant/globex" {
		t.Fatalf("replica A reads revision %d, %s", cur, refs(objs))
	}
}

// TestTwoReplicasRaceLoseNothing: writers on two replicas race, each
// incrementing a shared counter object and retrying on ErrConflict: no
// increment is lost, revision ids and event sequence numbers are
// distinct and follow commit order.
func TestTwoReplicasRaceLoseNothing(t *testing.T) {
	url := freshDB(t)
	reps := []*Store{open(t, url), open(t, url)}
	if _, err := apply(reps[0], 0, nil, []*spec.Object{tenant("acme"), tool("acme", "counter", "0")}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 6, 6
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		conflicts int
		errs      []error
	)
	for w := range writers {
		s := reps[w%2]
		wg.Go(func() {
			for range each {
				for {
					objs, base, err := store.Load(ctx, s)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					var desired []*spec.Object
					n := 0
					for _, o := range objs {
						if o.Metadata.Name == "counter" {
							n = atoi(o.Spec.(*spec.ToolSpec).Description)
							continue
						}
						desired = append(desired, o)
					}
					desired = append(desired, tool("acme", "counter", itoa(n+1)))
					_, err = apply(s, base, objs, desired)
					mu.Lock()
					if errors.Is(err, store.ErrConflict) {
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						errs = append(errs, err)
					}
					mu.Unlock()
					break
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	objs, cur := load(t, reps[1])
	for _, o := range objs {
		if o.Metadata.Name == "counter" {
			if got := o.Spec.(*spec.ToolSpec).Description; got != itoa(writers*each) {
				t.Fatalf("counter %s after %d increments (%d conflicts retried): updates were lost", got, writers*each, conflicts)
			}
		}
	}
	if cur != 1+writers*each {
		t.Fatalf("revision %d after %d commits", cur, 1+writers*each)
	}
	evs, _ := store.ReadEvents(ctx, reps[0], 0, 0)
	for i, e := range evs {
		if e.Seq != int64(i+1) || e.Data["revision"] != float64(i+1) {
			t.Fatalf("event %d: seq %d for revision %v: sequence numbers must follow commit order", i, e.Seq, e.Data["revision"])
		}
	}
	t.Logf("%d commits, %d conflicts retried", writers*each, conflicts)
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestWatcherSeesOtherReplica: a watcher on replica B sees every
// revision committed on replica A, in order, with its event.
func TestWatcherSeesOtherReplica(t *testing.T) {
	url := freshDB(t)
	a, b := open(t, url), open(t, url)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := b.Watch(wctx)
	const n = 20
	live := []*spec.Object{tenant("acme")}
	for i := range n {
		desired := []*spec.Object{tenant("acme"), tool("acme", "t", itoa(i))}
		if _, err := apply(a, int64(i), live, desired); err != nil {
			t.Fatal(err)
		}
		live = desired
	}
	for want := int64(1); want <= n; want++ {
		select {
		case c := <-watch:
			if c.Revision != want || c.Event != want || !c.Domains.Has(store.DomainRevisions|store.DomainEvents) {
				t.Fatalf("replica B heard %+v, want revision %d with event %d", c, want, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("replica B did not hear of revision %d", want)
		}
	}
}

// TestConcurrentStartMigratesOnce: replicas starting together on an
// empty database migrate it once.
func TestConcurrentStartMigratesOnce(t *testing.T) {
	url := freshDB(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(ctx, url, Options{})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("a replica starting with others: %v", err)
		}
	}
	s := open(t, url)
	var versions, heads int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM schema_migrations), (SELECT count(*) FROM head)`).Scan(&versions, &heads); err != nil {
		t.Fatal(err)
	}
	if versions != SchemaVersion() || heads != 1 {
		t.Fatalf("%d migrations recorded (want %d), %d head rows (want 1)", versions, SchemaVersion(), heads)
	}
}

// TestNewerSchemaRefused: a database migrated by a newer stoad is not
// written by this one.
func TestNewerSchemaRefused(t *testing.T) {
	url := freshDB(t)
	s := open(t, url)
	if _, err := s.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, url, Options{})
	want := "database schema version " + itoa(SchemaVersion()+1) + " is newer than this stoad knows (" + itoa(SchemaVersion()) + ")"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("open of a newer schema: %v, want %q", err, want)
	}
}

func TestMigrationFiles(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil || len(ms) == 0 || SchemaVersion() != len(ms) {
		t.Fatalf("embedded migrations: %d, %v", len(ms), err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"a gap":      {"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}},
		"no number":  {"migrations/init.sql": {}},
		"version 0":  {"migrations/0000_zero.sql": {}},
		"a repeated": {"migrations/0001_a.sql": {}, "migrations/001_b.sql": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("migrations with %s were accepted", name)
		}
	}
}

func TestLocationHasNoCredentials(t *testing.T) {
	url := freshDB(t)
	s := open(t, url)
	if loc := s.Location(); !strings.HasPrefix(loc, "postgres://") && !strings.HasPrefix(loc, "postgres:///") || strings.Contains(loc, "password") {
		t.Fatalf("location %q", loc)
	}
	cfgURL := "postgres://stoa:s3cret@127.0.0.1:1/stoa?connect_timeout=1"
	_, err := Open(ctx, cfgURL, Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "is PostgreSQL running") {
		t.Fatalf("open of an unreachable database: %v; want ErrUnavailable, a hint, and no password", err)
	}
}
