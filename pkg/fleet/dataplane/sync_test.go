package dataplane_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/controlplane"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// metric reads one counter or gauge of a collector.
// settledMetric is metric once it reads want, or after 20 s: a revision
// is applied (and seen applied) before the counters of its arrival move.
func settledMetric(t testing.TB, c prometheus.Collector, want float64, name string, labels ...string) float64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := metric(t, c, name, labels...)
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func metric(t testing.TB, c prometheus.Collector, name string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func TestJoinSyncAndDelta(t *testing.T) {
	c := newCP(t, cpOptions{})
	objs := smallConfig(t, 20, "")
	c.publish(1, objs)
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1")})
	d.applied.wait(t, 1)
	if rev, n := d.applied.last(); rev != 1 || n != len(objs) {
		t.Fatalf("applied revision %d with %d objects, want 1 with %d", rev, n, len(objs))
	}
	// The identity is on disk, owner-only.
	fi, err := os.Stat(filepath.Join(d.dir, "identity.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity.json: %v, mode %v", err, fi.Mode().Perm())
	}
	// The last good bundle is on disk (written once applied) and
	// verifies.
	eventually(t, "the last good bundle on disk", func() bool {
		b, _, err := bundle.ReadLastGood(filepath.Join(d.dir, "bundles"), c.verifier)
		return err == nil && b.Revision() == 1
	})

	c.publish(2, withDescription(t, objs, spec.Ref{Kind: spec.KindTool, Namespace: "tenant-00", Name: "tool-00007"}, "Changed."))
	d.applied.wait(t, 2)
	if got := settledMetric(t, d.Collector(), 1, "stoa_fleet_bundles_applied_total", "via", "delta"); got != 1 {
		t.Fatalf("revision 2 arrived as %v deltas, want 1", got)
	}
	st := d.Status()
	if st.State != fleet.StateConnected || st.Revision != 2 || st.Origin != "control-plane" || st.Name != "edge-1" || st.CertificateExpires.IsZero() {
		t.Fatalf("status: %+v", st)
	}
	// The control plane lists it once its heartbeat arrives.
	eventually(t, "heartbeat at revision 2", func() bool {
		l, err := c.srv.DataPlanes(context.Background())
		return err == nil && len(l.Items) == 1 && l.Items[0].Revision == 2
	})
	l, _ := c.srv.DataPlanes(context.Background())
	got := l.Items[0]
	if got.Name != "edge-1" || got.Lag != 0 || got.Health != fleet.HealthOK || got.Address != "https://edge-1.example:8443" || got.Version != "test" || l.Revision != 2 {
		t.Fatalf("listed: %+v (revision %d)", got, l.Revision)
	}
	if len(c.events.ofType("fleet.dataplane.joined")) != 1 || len(d.events.ofType("fleet.identity.joined")) != 1 {
		t.Fatalf("join events: cp %v dp %v", c.events.ofType("fleet.dataplane.joined"), d.events.ofType("fleet.identity.joined"))
	}
}

// A restarted data plane uses its identity (the token is not needed, and
// spent anyway) and asks for a delta from the revision on disk.
func TestRestartUsesIdentityAndDisk(t *testing.T) {
	c := newCP(t, cpOptions{})
	objs := smallConfig(t, 5, "")
	c.publish(1, objs)
	tok := c.token("edge-1")
	dir := t.TempDir()
	d := c.startDP(t, dpOptions{name: "edge-1", token: tok, dir: dir})
	d.applied.wait(t, 1)
	d.stop()

	c.publish(2, smallConfig(t, 6, ""))
	d2 := c.startDP(t, dpOptions{name: "edge-1", token: tok, dir: dir})
	d2.applied.wait(t, 2)
	if revs := d2.applied.all(); !slices.Equal(revs, []int64{1, 2}) {
		t.Fatalf("applied %v, want [1 2] (disk, then the control plane)", revs)
	}
	if got := settledMetric(t, d2.Collector(), 1, "stoa_fleet_bundles_applied_total", "via", "delta"); got != 1 {
		t.Fatalf("catch-up deltas: %v, want 1", got)
	}
	if n := len(c.events.ofType("fleet.dataplane.joined")); n != 1 {
		t.Fatalf("%d joins, want 1", n)
	}
}

// The headline figures of issue #14: a one-tool change in 10,000 tools
// travels as a delta of a few kilobytes; the first sync of a new data
// plane moves the whole configuration.
func TestDeltaOf10kTools(t *testing.T) {
	skipBig(t)
	c := newCP(t, cpOptions{heartbeat: time.Hour})
	objs := bigConfig(t)
	s1 := c.publish(1, objs)

	before := c.counter.written.Load()
	start := time.Now()
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1")})
	d.applied.wait(t, 1)
	first := time.Since(start)
	firstBytes := c.counter.written.Load() - before
	t.Logf("first sync of %d objects (%d bundle bytes): %v, %d bytes sent (join, TLS and gzip included)", len(objs), len(s1.Bundle.Bytes()), first.Round(time.Millisecond), firstBytes)

	ref := spec.Ref{Kind: spec.KindTool, Namespace: "tenant-07", Name: "tool-04567"}
	_, tool := changed(t, objs, ref, "Changed.")
	b2 := next(t, s1.Bundle, 2, tool)
	// Let the data plane's long poll settle, then count what one change
	// costs on the wire.
	eventually(t, "the post-apply heartbeat", func() bool {
		l, _ := c.srv.DataPlanes(context.Background())
		return len(l.Items) == 1 && l.Items[0].Revision == 1
	})
	time.Sleep(50 * time.Millisecond)
	before = c.counter.written.Load()
	start = time.Now()
	c.publishBundle(b2)
	d.applied.wait(t, 2)
	took := time.Since(start)
	sent := c.counter.written.Load() - before
	t.Logf("one-tool change: %d bytes sent by the control plane (TLS records), applied in %v", sent, took.Round(time.Millisecond))
	if sent >= 16<<10 {
		t.Fatalf("a one-tool change sent %d bytes, budget 16 KB", sent)
	}
	if got := settledMetric(t, d.Collector(), 1, "stoa_fleet_bundles_applied_total", "via", "delta"); got != 1 {
		t.Fatalf("deltas applied: %v, want 1", got)
	}
	if _, n := d.applied.last(); n != len(objs) {
		t.Fatalf("revision 2 has %d objects, want %d", n, len(objs))
	}
}

// Three data planes on one control plane: how long a one-tool change
// takes from the store's commit to being applied by all three, through
// the Follower that turns revisions into signed bundles (reported, not
// asserted: the machine is shared).
func TestPropagationToThreeDataPlanes(t *testing.T) {
	skipBig(t)
	c := newCP(t, cpOptions{heartbeat: time.Hour})
	objs := bigConfig(t)
	src := c.src.(*controlplane.MemorySource)
	var (
		mu        sync.Mutex
		builds    []time.Duration
		incr      int
		published = map[int64]time.Time{}
	)
	f := &controlplane.Follower{Store: c.store, Signer: c.signer, Source: src, Log: quietLog(),
		OnPublish: func(sb *controlplane.Signed, took time.Duration, incremental bool) {
			mu.Lock()
			published[sb.Bundle.Revision()] = time.Now()
			builds = append(builds, took)
			if incremental {
				incr++
			}
			mu.Unlock()
		}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.Run(ctx)
	commit(t, c.store, objs)
	var dps []*dp
	for _, n := range []string{"edge-1", "edge-2", "edge-3"} {
		dps = append(dps, c.startDP(t, dpOptions{name: n, token: c.token(n)}))
	}
	for _, d := range dps {
		d.applied.wait(t, 1)
	}
	const changes = 50
	var lat, commits, wire []time.Duration
	for i := 2; i <= changes+1; i++ {
		ref := spec.Ref{Kind: spec.KindTool, Namespace: "tenant-03", Name: "tool-00003"}
		var tool *spec.Object
		objs, tool = changed(t, objs, ref, fmt.Sprintf("Change %d.", i))
		start := time.Now()
		if rev := commitChanges(t, c.store, []plan.Change{{Op: plan.Update, Ref: ref, After: tool}}); rev != int64(i) {
			t.Fatalf("committed revision %d, want %d", rev, i)
		}
		commits = append(commits, time.Since(start))
		var worst, fromPublish time.Duration
		for _, d := range dps {
			d.applied.wait(t, int64(i))
			worst = max(worst, d.applied.when(int64(i)).Sub(start))
			mu.Lock()
			fromPublish = max(fromPublish, d.applied.when(int64(i)).Sub(published[int64(i)]))
			mu.Unlock()
		}
		lat = append(lat, worst)
		wire = append(wire, fromPublish)
	}
	pct := func(ds []time.Duration, q float64) time.Duration {
		sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
		return ds[min(len(ds)-1, int(q*float64(len(ds))))].Round(time.Millisecond)
	}
	mu.Lock()
	t.Logf("one-tool change in %d objects, %d changes, applied by all 3 data planes: from the store commit p50 %v, p90 %v, p99 %v; from the signed bundle's publication p50 %v, p99 %v; the commit (bbolt, fsync) p50 %v, p99 %v; the bundle (%d of %d incremental) built and signed in p50 %v, p99 %v",
		len(objs), changes, pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), pct(wire, 0.5), pct(wire, 0.99), pct(commits, 0.5), pct(commits, 0.99), incr, len(builds)-1, pct(builds[1:], 0.5), pct(builds[1:], 0.99))
	if incr != changes {
		t.Errorf("%d of %d revisions built incrementally", incr, changes)
	}
	mu.Unlock()
	for _, d := range dps {
		if got := settledMetric(t, d.Collector(), 1, "stoa_fleet_bundles_applied_total", "via", "full"); got != 1 {
			t.Fatalf("%s: %v full bundles, want only the first", d.Status().Name, got)
		}
	}
	// Every data plane holds exactly what the store holds.
	want, err := bundle.Build(changes+1, objs)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dps {
		if st := d.Status(); st.Digest != want.Digest().String() {
			t.Fatalf("%s serves %s, the store's revision is %s", st.Name, st.Digest, want.Digest())
		}
	}
}

// commit makes desired the store's live state as one revision, the way
// the daemon's apply does.
func commit(t testing.TB, st store.Store, desired []*spec.Object) int64 {
	t.Helper()
	live, _, err := store.Load(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	changes, _ := plan.Compute(live, desired, plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }})
	return commitChanges(t, st, changes)
}

func commitChanges(t testing.TB, st store.Store, changes []plan.Change) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	err := st.Update(ctx, func(tx store.Tx) error {
		cur, err := tx.Revisions().Current(ctx)
		if err != nil {
			return err
		}
		id, err = tx.Revisions().Commit(ctx, cur, store.Revision{Time: time.Now(), Actor: "test", Action: "apply"}, changes)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// changed returns objs with one tool's description changed, and that
// tool.
func changed(t testing.TB, objs []*spec.Object, ref spec.Ref, desc string) ([]*spec.Object, *spec.Object) {
	t.Helper()
	out := withDescription(t, objs, ref, desc)
	for _, o := range out {
		if o.Ref() == ref {
			return out, o
		}
	}
	t.Fatalf("no %s", ref)
	return nil, nil
}

// next is the control plane's incremental build of one change.
func next(t testing.TB, prev *bundle.Bundle, rev int64, up *spec.Object) *bundle.Bundle {
	t.Helper()
	b, err := controlplane.NextBundle(prev, rev, []*spec.Object{up}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// skipBig skips the 10,000-tool tests with -short and under the race
// detector.
func skipBig(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("10,000 tools: skipped with -short")
	}
	if raceEnabled {
		t.Skip("10,000 tools: skipped under the race detector (the small tests cover the same paths)")
	}
}
