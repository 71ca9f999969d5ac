//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/fleet"
)

// TestFleetNetns is issue 14's end-to-end test: one control plane on
// PostgreSQL and three data planes in network namespaces reaching it over
// veth (fleet_netns_harness_test.go), all real stoad binaries driven by
// the real stoa CLI. The subtests share the fleet and run in order; the
// control plane's loss comes last.
func TestFleetNetns(t *testing.T) {
	f := newFleetNet(t, 3)

	// 200 tools: enough that a full bundle and a one-tool delta differ by
	// orders of magnitude.
	tools := make([]string, 200)
	for i := range tools {
		tools[i] = fmt.Sprintf("t%03d", i)
	}
	specs := func(extra ...string) string { return fleetTools(append(tools, extra...), "") }

	rev := f.apply(specs())
	f.joinAll()
	f.waitServing(rev, f.dps...)

	t.Run("apply_then_one_tool_delta", func(t *testing.T) {
		for _, dp := range f.dps {
			dp.serves("t000")
			dp.serves("t199")
			dp.lacks("added")
			if s := statusOf(t, dp.Daemon).Fleet; s.Origin != "control-plane" || s.State != fleet.StateConnected || s.Name != dp.name {
				t.Fatalf("%s status: %+v", dp.name, s)
			}
		}
		before := make([]map[string]float64, len(f.dps))
		for i, dp := range f.dps {
			before[i] = dp.metrics()
		}
		cpBefore := metrics(t, f.dps[0].client, f.cp.Ops)

		rev = f.apply(specs("added"))
		f.waitServing(rev, f.dps...)
		for i, dp := range f.dps {
			dp.serves("added")
			after := dp.metrics()
			delta := after[`stoa_fleet_received_bytes_total{kind="delta"}`] - before[i][`stoa_fleet_received_bytes_total{kind="delta"}`]
			full := after[`stoa_fleet_received_bytes_total{kind="full"}`]
			t.Logf("%s: the one-tool change arrived as %.0f bytes of delta (the first sync of 200 tools: %.0f bytes, full)", dp.name, delta, full)
			if n := after[`stoa_fleet_bundles_applied_total{via="delta"}`] - before[i][`stoa_fleet_bundles_applied_total{via="delta"}`]; n != 1 {
				t.Errorf("%s applied %.0f deltas for the one-tool change, want 1", dp.name, n)
			}
			if full != before[i][`stoa_fleet_received_bytes_total{kind="full"}`] {
				t.Errorf("%s received a full bundle for a one-tool change (%.0f → %.0f bytes)", dp.name, before[i][`stoa_fleet_received_bytes_total{kind="full"}`], full)
			}
			if delta <= 0 || delta*10 > full {
				t.Errorf("%s: the delta was %.0f bytes, the full bundle %.0f: want more than 0 and under a tenth", dp.name, delta, full)
			}
		}
		cpAfter := metrics(t, f.dps[0].client, f.cp.Ops)
		sent := cpAfter[`stoa_fleet_sent_bytes_total{kind="delta"}`] - cpBefore[`stoa_fleet_sent_bytes_total{kind="delta"}`]
		t.Logf("control plane: %.0f bytes of delta sent to three data planes", sent)
		if sent <= 0 || sent >= 3*16<<10 {
			t.Errorf("the control plane sent %.0f bytes of delta for a one-tool change to three data planes, want (0, 48 KB)", sent)
		}
		waitUntil(t, time.Minute, "get dataplanes to list the three at the new revision", func() bool {
			l, _ := dataPlanes(t, f.u, f.root)
			ok := 0
			for _, it := range l.Items {
				if it.Revision == rev && it.Lag == 0 && it.Health == fleet.HealthOK {
					ok++
				}
			}
			return l.Revision == rev && ok == 3
		})
	})

	t.Run("tampered_bundle_refused_everywhere", func(t *testing.T) {
		good := rev
		// The control plane comes back signing with a key the data planes
		// do not pin: every bundle it sends now carries a signature that
		// does not match its bytes under the pinned key.
		f.cp.Stop()
		f.startCP(f.evilKeyFile)
		bad := f.apply(specs("added", "evil"))
		for _, dp := range f.dps {
			within(t, dp.Daemon, dp.name+" to refuse the bundle", func() bool {
				return len(eventsOfType(t, dp.Daemon, "fleet.bundle.refused")) >= 1
			})
			if n := dp.metrics()[`stoa_fleet_bundle_refusals_total{reason="signature"}`]; n < 1 {
				t.Fatalf("%s: /metrics lacks the refusal", dp.name)
			}
			s := statusOf(t, dp.Daemon)
			if s.Revision != good || s.Fleet.LastRefusal == nil || s.Fleet.LastRefusal.Reason != "signature" || s.Fleet.LastRefusal.Revision != bad {
				t.Fatalf("%s after the refusal: revision %d, %+v", dp.name, s.Revision, s.Fleet)
			}
			dp.serves("added")
			dp.lacks("evil")
		}
		waitUntil(t, time.Minute, "get dataplanes to show the refusals", func() bool {
			l, _ := dataPlanes(t, f.u, f.root)
			n := 0
			for _, it := range l.Items {
				if it.Revision == good && it.Lag == bad-good && it.Health == fleet.HealthDegraded {
					n++
				}
			}
			return n == 3
		})

		// The right key again: the next revision is taken everywhere.
		f.cp.Stop()
		f.startCP(f.keyFile)
		rev = f.apply(specs("added", "evil", "after"))
		f.waitServing(rev, f.dps...)
		for _, dp := range f.dps {
			dp.serves("after")
		}
	})

	t.Run("bundle_bytes_changed_in_transit", func(t *testing.T) {
		// The control plane moves to another port and a tamperer takes
		// its address, certificate and key; the data planes (and the
		// CLI) now reach the control plane through it.
		good := rev
		f.cp.Stop()
		f.cpPort = fleetCPPortAlt
		tm := startTamperer(t, f, net.JoinHostPort(f.cpAddr, fleetCPPort), net.JoinHostPort(f.cpAddr, fleetCPPortAlt),
			`9001/t000"`, `9001/pwn0"`)
		// Armed before the data planes come back, so that every watch they
		// hold asks for a full bundle.
		tm.armed.Store(true)
		f.startCP(f.keyFile)
		refusals := func(dp *fleetDP) float64 {
			m := dp.metrics()
			return m[`stoa_fleet_bundle_refusals_total{reason="signature"}`] + m[`stoa_fleet_bundle_refusals_total{reason="digest"}`]
		}
		before := make([]float64, len(f.dps))
		for i, dp := range f.dps {
			before[i] = refusals(dp)
		}
		next := f.apply(specs("added", "evil", "after", "tampered"))
		for i, dp := range f.dps {
			within(t, dp.Daemon, dp.name+" to refuse the changed bytes", func() bool { return refusals(dp) > before[i] })
			s := statusOf(t, dp.Daemon)
			if s.Revision != good || s.Fleet.LastRefusal == nil || s.Fleet.LastRefusal.Reason != "signature" {
				t.Fatalf("%s after the changed bytes: revision %d, %+v", dp.name, s.Revision, s.Fleet)
			}
			dp.serves("t000") // still its own upstream, not the redirected one
			dp.lacks("tampered")
		}
		if tm.tampered.Load() == 0 {
			t.Fatal("the tamperer changed no bundle")
		}
		t.Logf("%d bundles changed in transit, all refused", tm.tampered.Load())

		// The bytes untouched again: the control plane's revision is taken.
		tm.armed.Store(false)
		f.waitServing(next, f.dps...)
		for _, dp := range f.dps {
			dp.serves("tampered")
			dp.serves("t000")
		}
		rev = next
		tm.stop()
		f.cp.Stop()
		f.cpPort = fleetCPPort
		f.startCP(f.keyFile)
	})

	t.Run("cut_link_then_catch_up", func(t *testing.T) {
		// The host's end goes down: the namespace keeps its routes (they
		// are only marked linkdown), as a pulled cable would leave them.
		cut := f.dps[2]
		run(t, "ip", "link", "set", cut.hostIf, "down")
		restored := false
		defer func() {
			if !restored {
				run(t, "ip", "link", "set", cut.hostIf, "up")
			}
		}()
		// (Checked from inside: the host's default route may answer for
		// any address once the link's route is gone.)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := cut.ns.DialContext(ctx, "tcp", net.JoinHostPort(f.cpAddr, fleetCPPort))
		cancel()
		if err == nil {
			c.Close()
			t.Fatalf("%s still reaches the control plane with its link down", cut.name)
		}
		old := rev
		rev = f.apply(specs("added", "evil", "after", "tampered", "partitioned"))
		f.waitServing(rev, f.dps[0], f.dps[1])
		for _, dp := range f.dps[:2] {
			dp.serves("partitioned")
		}
		if s := statusOf(t, cut.Daemon); s.Revision != old {
			t.Fatalf("%s serves revision %d with its link down, want %d", cut.name, s.Revision, old)
		}
		// Two revisions while cut off: it must catch up to the last.
		rev = f.apply(specs("added", "evil", "after", "tampered", "partitioned", "partitioned2"))
		f.waitServing(rev, f.dps[0], f.dps[1])
		if s := statusOf(t, cut.Daemon); s.Revision != old {
			t.Fatalf("%s serves revision %d with its link down, want %d", cut.name, s.Revision, old)
		}
		start := time.Now()
		run(t, "ip", "link", "set", cut.hostIf, "up")
		restored = true
		f.waitServing(rev, cut)
		t.Logf("%s caught up %s after its link came back", cut.name, time.Since(start).Round(time.Millisecond))
		cut.serves("partitioned2")
		if s := statusOf(t, cut.Daemon).Fleet; s.State != fleet.StateConnected || s.Lag != 0 {
			t.Fatalf("%s after catching up: %+v", cut.name, s)
		}
	})

	// A 300/s limit shared through Redis. STOA_FLEET_LONG=1 measures over
	// a minute instead of 10 s.
	window := 10 * time.Second
	if os.Getenv("STOA_FLEET_LONG") != "" {
		window = time.Minute
	}
	const limit = 300.0
	names := []string{"added", "evil", "after", "tampered", "partitioned", "partitioned2"}
	var rd *privateFleetRedis
	parent := t
	t.Run("shared_limit_300_per_second", func(t *testing.T) {
		rd = startFleetRedis(t, parent, f.cpAddr)
		rev = f.apply(fleetTools(append(tools, names...), redisGateway(rd.addr, "open")+limitedTool("limited", "300/s")))
		f.waitServing(rev, f.dps...)
		for _, dp := range f.dps {
			within(t, dp.Daemon, dp.name+" to share limits with three data planes through redis", func() bool {
				st, detail := dp.limitsDetail()
				return st == "ok" && strings.Contains(detail, "redis "+rd.addr) && strings.Contains(detail, "3 data planes")
			})
		}
		// 540/s offered, 180/s on each data plane (a busy machine gets
		// fewer out; 390/s is the least that loads the limit). The first
		// 3 s spend the burst (300) and let leases settle; then the window.
		const warm = 3 * time.Second
		l := startFleetLoad(f.dps, "/acme/limited/x", 180, 8)
		l.sleepUntil(warm + window)
		l.finish()
		got, offered := l.rate(warm, warm+window, -1)
		fails, all := l.count(0, l.now(), -1, fleetFailed)
		per := make([]string, len(f.dps))
		for i := range f.dps {
			a, o := l.rate(warm, warm+window, i)
			per[i] = fmt.Sprintf("%s %.1f/s of %.1f/s", f.dps[i].name, a, o)
		}
		t.Logf("shared 300/s limit: %.1f admitted/s over %s (%+.2f%%), %.1f/s offered; %s", got, window, (got-limit)/limit*100, offered, strings.Join(per, ", "))
		if fails != 0 {
			t.Fatalf("%d of %d requests failed (5xx or no answer): %v", fails, all, l.errs)
		}
		if offered < 1.3*limit {
			t.Fatalf("only %.1f requests/s were offered: the machine is too slow to load the limit", offered)
		}
		if d := (got - limit) / limit; d < -0.03 || d > 0.03 {
			t.Fatalf("%.1f admitted/s, want 300/s ± 3%%", got)
		}
		for i := range f.dps {
			if a, _ := l.rate(warm, warm+window, i); a < limit/3*0.5 {
				t.Errorf("%s admitted only %.1f/s: the shared limit is not spread", f.dps[i].name, a)
			}
		}
	})

	t.Run("redis_lost_fail_open", func(t *testing.T) {
		if rd == nil {
			t.Skip("needs the Redis of shared_limit_300_per_second")
		}
		l := startFleetLoad(f.dps, "/acme/limited/x", 180, 8)
		l.sleepUntil(2 * time.Second)
		killed := l.now()
		rd.kill()
		for _, dp := range f.dps {
			within(t, dp.Daemon, dp.name+" to record that redis is lost", func() bool {
				return len(eventsOfType(t, dp.Daemon, "limits.redis-down")) >= 1
			})
		}
		if st, detail := f.dps[0].limitsDetail(); st != "degraded" || !strings.Contains(detail, "UNREACHABLE") || !strings.Contains(detail, "1/3") {
			t.Errorf("%s's limits while redis is lost: %s %q", f.dps[0].name, st, detail)
		}
		l.sleepUntil(killed + 7*time.Second)
		// From 2 s after the kill (each data plane's local share has
		// spent its burst by then) to the restart.
		outage, _ := l.rate(killed+2*time.Second, killed+7*time.Second, -1)
		restarted := l.now()
		rd.start()
		for _, dp := range f.dps {
			within(t, dp.Daemon, dp.name+" to record that redis is back", func() bool {
				return len(eventsOfType(t, dp.Daemon, "limits.redis-up")) >= 1
			})
		}
		upSeen := l.now()
		l.sleepUntil(upSeen + 2*time.Second)
		l.finish()
		fails, all := l.count(0, l.now(), -1, fleetFailed)
		var per []string
		for i := range f.dps {
			a, _ := l.rate(killed+2*time.Second, killed+7*time.Second, i)
			per = append(per, fmt.Sprintf("%s %.1f/s", f.dps[i].name, a))
		}
		t.Logf("redis lost, failing open: %.1f admitted/s (%s); %d requests, %d failed; limits.redis-up seen on all three %s after the restart",
			outage, strings.Join(per, ", "), all, fails, (upSeen - restarted).Round(time.Millisecond))
		if fails != 0 {
			t.Fatalf("%d of %d requests failed (5xx or no answer) while redis was lost and back: %v", fails, all, l.errs)
		}
		if outage < 0.7*limit || outage > 1.3*limit {
			t.Errorf("failing open, the fleet admitted %.1f/s: want each data plane to enforce a third of 300/s", outage)
		}

		// Shared again: one data plane alone gets the whole limit, not
		// the third it has while failing open.
		for _, dp := range f.dps {
			within(t, dp.Daemon, dp.name+" to share limits again", func() bool {
				st, _ := dp.limitsDetail()
				return st == "ok"
			})
		}
		const warm = 3 * time.Second
		one := startFleetLoad(f.dps[:1], "/acme/limited/x", 540, 12)
		one.sleepUntil(warm + 5*time.Second)
		one.finish()
		got, offered := one.rate(warm, warm+5*time.Second, -1)
		t.Logf("redis back, all load on %s: %.1f admitted/s of %.1f/s offered", f.dps[0].name, got, offered)
		if n, all := one.count(0, one.now(), -1, fleetFailed); n != 0 {
			t.Fatalf("%d of %d requests failed after redis came back: %v", n, all, one.errs)
		}
		if offered < 1.3*limit {
			t.Fatalf("only %.1f requests/s were offered: the machine is too slow to load the limit", offered)
		}
		if got < 0.8*limit || got > 1.1*limit {
			t.Fatalf("with redis back one data plane admitted %.1f/s, want the whole shared 300/s (failing open it would be 100/s)", got)
		}
	})

	t.Run("control_plane_lost", func(t *testing.T) {
		f.cp.Kill()
		for _, dp := range f.dps {
			within(t, dp.Daemon, dp.name+" to notice the control plane is gone", func() bool {
				return statusOf(t, dp.Daemon).Fleet.State == fleet.StatePartitioned
			})
			dp.serves("partitioned2")
		}
		// A data plane restarted with the control plane still down serves
		// the last good bundle from disk.
		dp := f.dps[1]
		dp.Stop()
		dp.start()
		s := statusOf(t, dp.Daemon)
		if s.Revision != rev || s.Fleet == nil || s.Fleet.Revision != rev || s.Fleet.Origin != "disk" {
			t.Fatalf("%s restarted without its control plane: revision %d, %+v", dp.name, s.Revision, s.Fleet)
		}
		dp.serves("partitioned2")
		dp.serves("t123")
		r := dp.Stoa("status")
		expect(t, r, 0, "status")
		if !strings.Contains(r.Stdout, fmt.Sprintf("serving      revision %d (sha256:", rev)) || !strings.Contains(r.Stdout, "from disk") {
			t.Fatalf("stoa status on %s:\n%s", dp.name, r.Stdout)
		}
	})
}
