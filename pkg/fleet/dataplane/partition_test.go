package dataplane_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// A data plane that starts while its control plane is unreachable serves
// the last good bundle from disk, says so, and catches up when the
// control plane is back.
func TestStartPartitionedServesLastGood(t *testing.T) {
	c := newCP(t, cpOptions{})
	c.publish(1, smallConfig(t, 5, ""))
	dir := t.TempDir()
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1"), dir: dir})
	d.applied.wait(t, 1)
	d.stop()

	c.gate.cut()
	c.publish(2, smallConfig(t, 6, ""))
	d2 := c.startDP(t, dpOptions{name: "edge-1", dir: dir})
	d2.applied.wait(t, 1)
	eventually(t, "status partitioned", func() bool { return d2.Status().State == fleet.StatePartitioned })
	st := d2.Status()
	if st.Revision != 1 || st.Origin != "disk" || !strings.Contains(st.Hint, "serving revision 1 (from disk)") || !strings.Contains(st.LastError, "reach the control plane") {
		t.Fatalf("status while partitioned: %+v", st)
	}
	// The event follows the state change (emitted outside the lock).
	eventually(t, "the partition event", func() bool { return len(d2.events.ofType("fleet.controlplane.partitioned")) >= 1 })
	if len(d2.events.ofType("fleet.controlplane.partitioned")) != 1 {
		t.Fatalf("partition events: %v", d2.events.ofType("fleet.controlplane.partitioned"))
	}
	if got := metric(t, d2.Collector(), "stoa_fleet_control_plane_connected"); got != 0 {
		t.Fatalf("connected gauge %v", got)
	}

	c.gate.heal()
	d2.applied.wait(t, 2)
	// The status takes the revision once Apply has returned, which is
	// after the apply log saw it.
	eventually(t, "status connected at revision 2", func() bool {
		st := d2.Status()
		return st.State == fleet.StateConnected && st.Revision == 2
	})
	st = d2.Status()
	if st.Origin != "control-plane" || st.LastError != "" || st.Hint != "" {
		t.Fatalf("status after the partition: %+v", st)
	}
	eventually(t, "the reconnection event", func() bool { return len(d2.events.ofType("fleet.controlplane.connected")) >= 1 })
	if len(d2.events.ofType("fleet.controlplane.connected")) != 1 {
		t.Fatalf("reconnection events: %v", d2.events.ofType("fleet.controlplane.connected"))
	}
}

// A data plane whose first join cannot reach the control plane keeps
// trying and joins when it can.
func TestJoinWhileUnreachable(t *testing.T) {
	c := newCP(t, cpOptions{})
	c.publish(1, smallConfig(t, 3, ""))
	c.gate.cut()
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1")})
	eventually(t, "status partitioned", func() bool { return d.Status().State == fleet.StatePartitioned })
	if st := d.Status(); !strings.Contains(st.Hint, "no configuration is served yet") {
		t.Fatalf("hint: %q", st.Hint)
	}
	c.gate.heal()
	d.applied.wait(t, 1)
}

// Cut off while running, the data plane keeps serving; when the partition
// heals it catches up on every revision it missed, in one step.
func TestPartitionThenCatchUp(t *testing.T) {
	c := newCP(t, cpOptions{})
	c.publish(1, smallConfig(t, 5, ""))
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1")})
	d.applied.wait(t, 1)
	eventually(t, "connected", func() bool { return d.Status().State == fleet.StateConnected })

	c.gate.cut()
	eventually(t, "status partitioned", func() bool { return d.Status().State == fleet.StatePartitioned })
	for rev := int64(2); rev <= 4; rev++ {
		c.publish(rev, smallConfig(t, int(rev)+4, ""))
	}
	time.Sleep(100 * time.Millisecond)
	assertServing(t, d, 1)

	c.gate.heal()
	d.applied.wait(t, 4)
	if revs := d.applied.all(); len(revs) != 2 {
		t.Fatalf("applied %v, want [1 4]: the missed revisions in one delta", revs)
	}
	if got := settledMetric(t, d.Collector(), 1, "stoa_fleet_bundles_applied_total", "via", "delta"); got != 1 {
		t.Fatalf("catch-up by delta: %v", got)
	}
	eventually(t, "connected", func() bool { return d.Status().State == fleet.StateConnected })
}

// Certificates are renewed at two thirds of their lifetime, with the
// current one, for a new key; the data plane goes on past the first
// certificate's expiry.
func TestCertificateRenewal(t *testing.T) {
	c := newCP(t, cpOptions{certTTL: 24 * time.Hour, heartbeat: time.Hour})
	c.publish(1, smallConfig(t, 3, ""))
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1"), wait: 100 * time.Millisecond})
	d.applied.wait(t, 1)
	first := d.Status().CertificateExpires
	if d := first.Sub(c.clock.Now()); d < 23*time.Hour || d > 24*time.Hour {
		t.Fatalf("certificate valid for %v", d)
	}

	c.clock.Advance(12 * time.Hour)
	time.Sleep(300 * time.Millisecond)
	if len(d.events.ofType("fleet.identity.renewed")) != 0 {
		t.Fatal("renewed at half its life")
	}
	c.clock.Advance(5 * time.Hour) // 17h: past two thirds
	eventually(t, "renewal", func() bool { return len(d.events.ofType("fleet.identity.renewed")) == 1 })
	second := d.Status().CertificateExpires
	if !second.After(first.Add(16 * time.Hour)) {
		t.Fatalf("renewed certificate expires %v, first %v", second, first)
	}
	if len(c.events.ofType("fleet.dataplane.renewed")) != 1 {
		t.Fatal("no renewal event on the control plane")
	}
	// Past the first certificate's end, the data plane still syncs.
	c.clock.Advance(8 * time.Hour)
	c.publish(2, smallConfig(t, 4, ""))
	d.applied.wait(t, 2)
	eventually(t, "the listing's certificate expiry", func() bool {
		l, _ := c.srv.DataPlanes(t.Context())
		return len(l.Items) == 1 && l.Items[0].CertificateExpires.Equal(second)
	})
	if got := metric(t, d.Collector(), "stoa_fleet_certificate_expiry_timestamp_seconds"); got != float64(second.Unix()) {
		t.Fatalf("expiry gauge %v, want %v", got, second.Unix())
	}
}

// A data plane cut off for longer than its certificate's lifetime keeps
// serving but cannot reconnect: status says to join again, and a new
// token does it.
func TestExpiredCertificateNeedsNewToken(t *testing.T) {
	c := newCP(t, cpOptions{certTTL: time.Hour, heartbeat: time.Hour})
	c.publish(1, smallConfig(t, 3, ""))
	dir := t.TempDir()
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1"), dir: dir, wait: 100 * time.Millisecond})
	d.applied.wait(t, 1)
	c.gate.cut()
	eventually(t, "partitioned", func() bool { return d.Status().State == fleet.StatePartitioned })
	c.clock.Advance(2 * time.Hour)
	c.gate.heal()
	eventually(t, "unauthorized", func() bool { return d.Status().State == fleet.StateUnauthorized })
	st := d.Status()
	if !strings.Contains(st.LastError, "expired") || !strings.Contains(st.Hint, "join-token create --name edge-1") || st.Revision != 1 {
		t.Fatalf("status: %+v", st)
	}
	d.stop()

	// Its certificate expired, so the name is free although its last
	// heartbeat is recent enough.
	c.publish(2, smallConfig(t, 4, ""))
	d2 := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1"), dir: dir})
	d2.applied.wait(t, 2)
}

// Revoked while running: the data plane is refused, keeps serving, and
// says so.
func TestRevokedWhileRunning(t *testing.T) {
	c := newCP(t, cpOptions{})
	c.publish(1, smallConfig(t, 3, ""))
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1"), wait: 100 * time.Millisecond})
	d.applied.wait(t, 1)
	if err := c.srv.Revoke(t.Context(), "edge-1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unauthorized", func() bool { return d.Status().State == fleet.StateUnauthorized })
	if st := d.Status(); !strings.Contains(st.LastError, "revoked") || st.Revision != 1 {
		t.Fatalf("status: %+v", st)
	}
}

// The listing: lag behind the control plane, stale after three missed
// heartbeats.
func TestDataPlaneListing(t *testing.T) {
	c := newCP(t, cpOptions{heartbeat: 10 * time.Second})
	if l, err := c.srv.DataPlanes(t.Context()); err != nil || len(l.Items) != 0 || l.Items == nil {
		t.Fatalf("empty listing: %+v %v", l, err)
	}
	c.publish(1, smallConfig(t, 3, ""))
	d := c.startDP(t, dpOptions{name: "edge-1", token: c.token("edge-1"), apply: func(rev int64, _ []*spec.Object) error {
		if rev > 1 {
			return errApply
		}
		return nil
	}})
	d.applied.wait(t, 1)
	c.publish(2, smallConfig(t, 4, ""))
	c.publish(3, smallConfig(t, 5, ""))
	eventually(t, "lag 2", func() bool {
		l, _ := c.srv.DataPlanes(t.Context())
		return len(l.Items) == 1 && l.Items[0].Lag == 2 && l.Revision == 3 && l.Items[0].Revision == 1
	})
	c.clock.Advance(31 * time.Second)
	l, _ := c.srv.DataPlanes(t.Context())
	if l.Items[0].Health != fleet.HealthStale {
		t.Fatalf("health %q after three missed heartbeats", l.Items[0].Health)
	}
	if err := c.srv.Delete(t.Context(), "edge-1"); err != nil {
		t.Fatal(err)
	}
	if l, _ := c.srv.DataPlanes(t.Context()); len(l.Items) != 0 {
		t.Fatalf("after delete: %+v", l.Items)
	}
}
