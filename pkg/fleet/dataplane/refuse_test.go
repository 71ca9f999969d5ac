package dataplane_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/controlplane"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// waitRefusal waits for the data plane's nth refusal event and returns
// its reason.
func waitRefusal(t testing.TB, d *dp, n int) string {
	t.Helper()
	eventually(t, "a refusal event", func() bool { return len(d.events.ofType("fleet.bundle.refused")) >= n })
	ev := d.events.ofType("fleet.bundle.refused")[n-1]
	return ev.Data["reason"].(string)
}

// assertServing checks that the data plane still serves rev (and
// applied nothing after it).
func assertServing(t testing.TB, d *dp, rev int64) {
	t.Helper()
	if got, _ := d.applied.last(); got != rev {
		t.Fatalf("applied revision %d, want still %d (applied %v)", got, rev, d.applied.all())
	}
	if st := d.Status(); st.Revision != rev {
		t.Fatalf("status says revision %d, want %d", st.Revision, rev)
	}
}

// A bundle whose signature does not verify (the control plane's source
// was tampered with after signing, or signed with another key) is
// refused before anything is applied; the data plane keeps serving, and
// takes the next good revision.
func TestRefuseBadSignature(t *testing.T) {
	c := newCP(t, cpOptions{source: newRewindable()})
	objs := smallConfig(t, 5, "")
	s1 := c.publish(1, objs)
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1")})
	d.applied.wait(t, 1)

	// Revision 2's bytes with revision 1's signature.
	b2, _ := bundle.Build(2, smallConfig(t, 6, ""))
	c.src.Publish(&controlplane.Signed{Bundle: b2, Signature: s1.Signature})
	if r := waitRefusal(t, d, 1); r != "signature" {
		t.Fatalf("refused for %q, want signature", r)
	}
	assertServing(t, d, 1)
	st := d.Status()
	if st.LastRefusal == nil || st.LastRefusal.Reason != "signature" || st.LastRefusal.Revision != 2 || st.LastRefusal.Hint == "" {
		t.Fatalf("status: %+v", st.LastRefusal)
	}
	// The refused revision is the control plane's newest: one behind.
	if st.ControlPlaneRevision != 2 || st.Lag != 1 {
		t.Fatalf("status: control plane revision %d, lag %d; want 2, 1", st.ControlPlaneRevision, st.Lag)
	}
	if got := metric(t, d.Collector(), "stoa_fleet_bundle_refusals_total", "reason", "signature"); got != 1 {
		t.Fatalf("refusal metric: %v", got)
	}
	// Reported as degraded to the control plane.
	eventually(t, "a degraded heartbeat", func() bool {
		l, _ := c.srv.DataPlanes(t.Context())
		return len(l.Items) == 1 && l.Items[0].Health == fleet.HealthDegraded && strings.Contains(l.Items[0].LastError, "signature")
	})
	// The refused bundle is not fetched again and again: the data plane
	// names it as refused and the control plane waits.
	time.Sleep(200 * time.Millisecond)
	if n := len(d.events.ofType("fleet.bundle.refused")); n != 1 {
		t.Fatalf("%d refusals of one bundle, want 1", n)
	}
	// A good newer revision passes.
	c.publish(3, smallConfig(t, 7, ""))
	d.applied.wait(t, 3)
	eventually(t, "lag 0", func() bool { st := d.Status(); return st.Lag == 0 && st.ControlPlaneRevision == 3 })
	eventually(t, "a healthy heartbeat", func() bool {
		l, _ := c.srv.DataPlanes(t.Context())
		return len(l.Items) == 1 && l.Items[0].Health == fleet.HealthOK && l.Items[0].Revision == 3
	})
}

// Bytes changed on the way (a full bundle or a delta) fail the digest;
// the data plane asks for the full bundle and recovers on its own.
func TestRefuseWrongDigestInTransit(t *testing.T) {
	c := newCP(t, cpOptions{})
	objs := smallConfig(t, 5, "")
	s1 := c.publish(1, objs)

	flip := func(b []byte) []byte {
		out := bytes.Clone(b)
		if i := bytes.Index(out, []byte("Generated tool 3")); i >= 0 {
			out[i] = 'g'
		}
		return out
	}
	c.tampering.Store(true)
	c.tamper.Store(&flip)
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1")})
	if r := waitRefusal(t, d, 1); r != "digest" {
		t.Fatalf("full bundle changed in transit: refused for %q", r)
	}
	if len(d.applied.all()) != 0 {
		t.Fatalf("applied %v from a damaged bundle", d.applied.all())
	}
	c.tamper.Store(nil)
	d.applied.wait(t, 1)

	// A delta changed in transit: the rebuilt bundle fails its digest,
	// and the full bundle (asked for next) passes.
	ref := spec.Ref{Kind: spec.KindTool, Namespace: "tenant-00", Name: "tool-00003"}
	_, tool := changed(t, objs, ref, "Generated tool 3 changed.")
	n := len(d.events.ofType("fleet.bundle.refused"))
	var once atomic.Bool
	// Only an answer carrying the tool is damaged: a long poll that ends
	// empty (a busy machine makes that likely) must not use up the flip.
	flipOnce := func(b []byte) []byte {
		if !bytes.Contains(b, []byte("Generated tool 3")) || once.Swap(true) {
			return b
		}
		return flip(b)
	}
	c.tamper.Store(&flipOnce)
	c.publishBundle(next(t, s1.Bundle, 2, tool))
	if r := waitRefusal(t, d, n+1); r != "digest" {
		t.Fatalf("delta changed in transit: refused for %q", r)
	}
	d.applied.wait(t, 2)
	if got := settledMetric(t, d.Collector(), 2, "stoa_fleet_bundles_applied_total", "via", "full"); got != 2 {
		t.Fatalf("full bundles applied: %v, want 2 (the first, and the retry of revision 2)", got)
	}
}

// An older revision, or the served revision with other content, is
// refused: a control plane restored from an old backup, a replay, or a
// second control plane. A rollback is a new revision and passes.
func TestRefuseStaleAndConflict(t *testing.T) {
	c := newCP(t, cpOptions{source: newRewindable()})
	v1 := smallConfig(t, 5, "")
	c.publish(1, v1)
	c.publish(2, smallConfig(t, 6, ""))
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1")})
	d.applied.wait(t, 2)

	c.publish(1, v1)
	if r := waitRefusal(t, d, 1); r != "stale" {
		t.Fatalf("older revision refused for %q, want stale", r)
	}
	assertServing(t, d, 2)

	c.publish(2, smallConfig(t, 6, "other"))
	if r := waitRefusal(t, d, 2); r != "conflict" {
		t.Fatalf("same revision, other content: refused for %q, want conflict", r)
	}
	assertServing(t, d, 2)
	if got := metric(t, d.Collector(), "stoa_fleet_bundle_refusals_total", "reason", "stale"); got != 1 {
		t.Fatalf("stale metric %v", got)
	}
	// Rolling back to revision 1's objects is revision 3.
	c.publish(3, v1)
	d.applied.wait(t, 3)
	if _, n := d.applied.last(); n != len(v1) {
		t.Fatalf("revision 3 has %d objects, want %d", n, len(v1))
	}
}

// When the daemon cannot prepare a verified revision, the data plane
// keeps serving the previous one, says why, and takes the next.
func TestApplyFailureKeepsServing(t *testing.T) {
	c := newCP(t, cpOptions{})
	c.publish(1, smallConfig(t, 5, ""))
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1"), apply: func(rev int64, _ []*spec.Object) error {
		if rev == 2 {
			return errApply
		}
		return nil
	}})
	d.applied.wait(t, 1)
	c.publish(2, smallConfig(t, 6, ""))
	eventually(t, "an apply failure", func() bool { return len(d.events.ofType("fleet.bundle.apply_failed")) == 1 })
	assertServing(t, d, 1)
	if st := d.Status(); !strings.Contains(st.LastError, "upstream pool refused") {
		t.Fatalf("status error: %q", st.LastError)
	}
	// The last good bundle on disk is still revision 1.
	eventually(t, "revision 1 on disk", func() bool {
		b, _, err := bundle.ReadLastGood(filepath.Join(d.dir, "bundles"), c.verifier)
		return err == nil && b.Revision() == 1
	})
	eventually(t, "a degraded heartbeat", func() bool {
		l, _ := c.srv.DataPlanes(t.Context())
		return len(l.Items) == 1 && l.Items[0].Health == fleet.HealthDegraded && l.Items[0].Lag == 1
	})
	c.publish(3, smallConfig(t, 7, ""))
	d.applied.wait(t, 3)
}

// A damaged last good bundle is refused at start (an event says so) and
// the data plane fetches the current one.
func TestDamagedLastGoodOnDisk(t *testing.T) {
	c := newCP(t, cpOptions{})
	c.publish(1, smallConfig(t, 5, ""))
	dir := t.TempDir()
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1"), dir: dir})
	d.applied.wait(t, 1)
	d.stop()
	files, _ := filepath.Glob(filepath.Join(dir, "bundles", "bundle-*.json"))
	if len(files) != 1 {
		t.Fatalf("bundle files: %v", files)
	}
	raw, _ := os.ReadFile(files[0])
	os.WriteFile(files[0], bytes.Replace(raw, []byte("Generated"), []byte("generated"), 1), 0o600)

	d2 := c.startDP(t, dpOptions{name: "edge-1", dir: dir})
	d2.applied.wait(t, 1)
	ev := d2.events.ofType("fleet.bundle.refused")
	if len(ev) != 1 || ev[0].Data["source"] != "disk" || ev[0].Data["reason"] != "digest" {
		t.Fatalf("events: %+v", ev)
	}
	// The status follows the apply callback, which the log records.
	eventually(t, "origin control-plane", func() bool { return d2.Status().Origin == "control-plane" })
}

// A bundle over the data plane's size limit is not a partition: the
// control plane answered, and status says what to raise.
func TestBundleOverSizeLimit(t *testing.T) {
	c := newCP(t, cpOptions{})
	c.publish(1, smallConfig(t, 50, ""))
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1"), maxBytes: 4 << 10})
	eventually(t, "the size error", func() bool { return strings.Contains(d.Status().LastError, "bundle size limit") })
	if st := d.Status(); st.State != fleet.StateConnected || len(d.applied.all()) != 0 {
		t.Fatalf("status: %+v, applied %v", st, d.applied.all())
	}
}
