//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// TestFleetNetnsBench measures issue 14's fleet figures on real binaries
// in network namespaces (scripts/bench-fleet.sh runs it; it is not part
// of make test): with 10,000 tools on the control plane, how long a
// one-tool change takes to reach all three data planes (from the
// revision's commit time on the control plane to each data plane's
// fleet.bundle.applied event, both read from the one machine's clock),
// how many bytes the control plane sends for it, and how long a new data
// plane takes to start, join and serve the 10,000 tools. It prints the
// figures and asserts none of them: times on a shared machine are not
// pass/fail material.
//
// STOA_FLEET_BENCH=1 turns it on; STOA_FLEET_BENCH_TOOLS (10000) and
// STOA_FLEET_BENCH_CHANGES (50) size it.
func TestFleetNetnsBench(t *testing.T) {
	if os.Getenv("STOA_FLEET_BENCH") == "" {
		t.Skip("a benchmark: STOA_FLEET_BENCH=1 (scripts/bench-fleet.sh) runs it")
	}
	nTools := envInt(t, "STOA_FLEET_BENCH_TOOLS", 10000)
	nChanges := envInt(t, "STOA_FLEET_BENCH_CHANGES", 50)

	f := newFleetNet(t, 4)
	tools := make([]string, nTools)
	for i := range tools {
		tools[i] = fmt.Sprintf("t%05d", i)
	}
	start := time.Now()
	rev := f.apply(fleetTools(tools, ""))
	fmt.Printf("apply of %d tools on the control plane (stoa apply over HTTPS, PostgreSQL): %s\n", nTools, time.Since(start).Round(time.Millisecond))

	// Three data planes join at once; the fourth joins alone later.
	three, fourth := f.dps[:3], f.dps[3]
	start = time.Now()
	for _, dp := range three {
		f.join(dp)
	}
	f.waitServing(rev, three...)
	fmt.Printf("three data planes started, joined and serving %d tools: %s\n", nTools, time.Since(start).Round(time.Millisecond))

	// Let the first sync's aftermath pass before timing changes: each
	// data plane writes the 10 MB last good bundle and, 2 s after the
	// large change, collects and returns memory to the OS; changes that
	// land in it time that work, not theirs. A fixed pause is simpler
	// than polling each data plane's CPU until it is idle.
	time.Sleep(5 * time.Second)

	// One-tool changes, one at a time: each is a tool's new description,
	// applied alone (stoa apply without --prune changes only what the
	// file names).
	cpBefore := metrics(t, f.dps[0].client, f.cp.Ops)
	recvBefore := make([]map[string]float64, 3)
	for i, dp := range three {
		recvBefore[i] = dp.metrics()
	}
	revs := make([]int64, 0, nChanges)
	for i := range nChanges {
		one := doc("Tool", "acme", tools[0], fmt.Sprintf("upstream: http://127.0.0.1:9001/%s\nauth: {type: none}\ndescription: change %d", tools[0], i))
		expect(t, f.stoa("apply", "-f", writeSpecs(t, one)), 0, "apply a one-tool change")
		r := f.cpRevision()
		revs = append(revs, r)
		f.waitServing(r, three...)
		time.Sleep(100 * time.Millisecond)
	}
	cpAfter := metrics(t, f.dps[0].client, f.cp.Ops)

	// Commit times on the control plane, applied times on each data plane.
	committed := map[int64]time.Time{}
	h := f.stoa("history", "-o", "json", "--limit", strconv.Itoa(nChanges+10))
	expect(t, h, 0, "history")
	var list api.RevisionList
	if err := json.Unmarshal([]byte(h.Stdout), &list); err != nil {
		t.Fatalf("history -o json: %v", err)
	}
	for _, r := range list.Items {
		committed[r.ID] = r.Time
	}
	applied := make([]map[int64]time.Time, 3)
	for i, dp := range three {
		applied[i] = map[int64]time.Time{}
		for _, e := range eventsOfType(t, dp.Daemon, "fleet.bundle.applied") {
			if r, ok := e.Data["revision"].(float64); ok {
				applied[i][int64(r)] = e.Time
			}
		}
	}
	var all, each []time.Duration
	for _, r := range revs {
		c, ok := committed[r]
		if !ok {
			t.Fatalf("revision %d is not in the control plane's history", r)
		}
		var last time.Duration
		for i := range three {
			a, ok := applied[i][r]
			if !ok {
				t.Fatalf("%s has no fleet.bundle.applied event for revision %d", three[i].name, r)
			}
			each = append(each, a.Sub(c))
			last = max(last, a.Sub(c))
		}
		all = append(all, last)
	}
	slowest := 0
	for i, d := range all {
		if d > all[slowest] {
			slowest = i
		}
	}
	fmt.Printf("one-tool change in %d tools, commit on the control plane → applied by all three data planes, %d changes: p50 %s, p90 %s, p99 %s, max %s (change %d)\n",
		nTools, len(all), pct(all, 50), pct(all, 90), pct(all, 99), pct(all, 100), slowest+1)
	fmt.Printf("  the same per data plane (%d): p50 %s, p99 %s\n", len(each), pct(each, 50), pct(each, 99))
	// Of that, the data plane's own part: the daemon's transactional
	// reload of the whole revision (the "took" of its log line).
	var reload []time.Duration
	for _, dp := range three {
		for _, m := range tookRE.FindAllStringSubmatch(dp.Log(), -1) {
			if d, err := time.ParseDuration(m[1]); err == nil {
				reload = append(reload, d)
			}
		}
	}
	fmt.Printf("  of which the data plane's reload of the verified revision (%d): p50 %s, p99 %s\n", len(reload), pct(reload, 50), pct(reload, 99))
	sent := cpAfter[`stoa_fleet_sent_bytes_total{kind="delta"}`] - cpBefore[`stoa_fleet_sent_bytes_total{kind="delta"}`]
	full := cpAfter[`stoa_fleet_sent_bytes_total{kind="full"}`] - cpBefore[`stoa_fleet_sent_bytes_total{kind="full"}`]
	fmt.Printf("bytes the control plane sent per one-tool change per data plane (response bodies, gzip): %.0f (full bundles sent meanwhile: %.0f bytes)\n",
		sent/float64(nChanges)/3, full)
	// The data planes' CPU over the changes: what a change costs them,
	// whatever else the machine runs (wall times above include waiting
	// for a core).
	var cpu float64
	for i, dp := range three {
		m := dp.metrics()
		cpu += m["process_cpu_seconds_total"] - recvBefore[i]["process_cpu_seconds_total"]
		fmt.Printf("  %s received %.0f bytes of deltas for %d changes (%.0f each); its first sync: %.0f bytes\n", dp.name,
			m[`stoa_fleet_received_bytes_total{kind="delta"}`]-recvBefore[i][`stoa_fleet_received_bytes_total{kind="delta"}`], nChanges,
			(m[`stoa_fleet_received_bytes_total{kind="delta"}`]-recvBefore[i][`stoa_fleet_received_bytes_total{kind="delta"}`])/float64(nChanges),
			m[`stoa_fleet_received_bytes_total{kind="full"}`])
	}

	fmt.Printf("data plane CPU per one-tool change (process_cpu_seconds_total, mean of three: reload, verification, last good bundle written, heartbeats): %.0f ms\n",
		cpu/3/float64(nChanges)*1000)

	// A new data plane: process start → join → full bundle → verify →
	// applied (its event), and → its proxy answering a tool.
	rev = f.cpRevision()
	start = time.Now()
	f.join(fourth)
	f.waitServing(rev, fourth)
	served := time.Since(start)
	var appliedAt time.Time
	for _, e := range eventsOfType(t, fourth.Daemon, "fleet.bundle.applied") {
		if r, ok := e.Data["revision"].(float64); ok && int64(r) == rev {
			appliedAt = e.Time
		}
	}
	fourth.serves(tools[nTools-1])
	m := fourth.metrics()
	fmt.Printf("first sync of %d tools to a new data plane: stoad started → revision applied %s (→ seen serving by stoa status %s); %.0f bytes received\n",
		nTools, appliedAt.Sub(start).Round(time.Millisecond), served.Round(time.Millisecond), m[`stoa_fleet_received_bytes_total{kind="full"}`])
	if out := os.Getenv("STOA_FLEET_BENCH_OUT"); out != "" {
		line := fmt.Sprintf("tools=%d changes=%d p50_ms=%d p99_ms=%d bytes_per_change=%.0f first_sync_ms=%d\n", nTools, nChanges,
			pct(all, 50).Milliseconds(), pct(all, 99).Milliseconds(), sent/float64(nChanges)/3, appliedAt.Sub(start).Milliseconds())
		if err := os.WriteFile(filepath.Clean(out), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var tookRE = regexp.MustCompile(`serving a new revision.* via=delta took=(\S+)`)

// pct is the p-th percentile of ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))].Round(time.Millisecond)
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
