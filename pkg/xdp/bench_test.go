//go:build linux && xdpbench

package xdp

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// TestDropRates compares how fast unwanted traffic from one source is
// discarded at different layers, on a veth pair between namespaces:
//
//   - XDP in generic mode (deny list, and token bucket over its rate),
//   - XDP in native mode, which veth also offers (for reference),
//   - iptables -t raw DROP (if iptables is installed),
//   - userspace: accept, then close with a reset (AcceptLimiter).
//
// The XDP and iptables rows receive the same raw SYN flood; the userspace
// row needs completed handshakes, so its attacker connects for real and the
// figure is connections per second. On veth the receive path runs in the
// sender's context, so the pps figures are bounded by the single sending
// thread on the same 2-core machine, and by whatever else runs on it: each
// scenario runs several interleaved rounds and the table shows the best and
// the median. "prog ns" is the XDP program's own run time per packet
// (BPF_ENABLE_STATS), which does not depend on the sender. Run with:
//
//	go test -tags xdpbench -run TestDropRates -v ./pkg/xdp
//
// or bpf/bench.sh. STOA_BENCH_ROUNDS and STOA_BENCH_DURATION (per round)
// override the defaults of 3 rounds of 1s.
func TestDropRates(t *testing.T) {
	requireRootBPF(t)
	rounds, d := 3, time.Second
	if v, err := strconv.Atoi(os.Getenv("STOA_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	if v, err := time.ParseDuration(os.Getenv("STOA_BENCH_DURATION")); err == nil && v > 0 {
		d = v
	}
	load := loadavg()
	n := newE2ENet(t)
	n.serveHTTP(t)
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		t.Fatalf("enable bpf stats: %v", err)
	}
	defer stats.Close()

	// synRound floods for d and reports sent and discarded per second.
	synRound := func(dropped func() uint64) (float64, float64) {
		syn, err := newSYNFlood(n.attacker, attackIP, serverA, 8080)
		if err != nil {
			t.Fatal(err)
		}
		defer syn.close()
		before := dropped()
		start := time.Now()
		sent := syn.run(d)
		el := time.Since(start).Seconds()
		return float64(sent) / el, float64(dropped()-before) / el
	}
	xdpRound := func(cfg Config, counter func(Counters) uint64) func() result {
		return func() result {
			l, apply := newLimiterIn(t, n.server)
			defer l.Close()
			if err := apply(cfg); err != nil {
				return result{skip: err.Error()}
			}
			before, _ := l.k.program().Stats()
			sent, dropped := synRound(func() uint64 { return counter(l.Status().Counters) })
			after, _ := l.k.program().Stats()
			r := result{sent: sent, dropped: dropped}
			if before != nil && after != nil && after.RunCount > before.RunCount {
				r.progNs = float64(after.Runtime-before.Runtime) / float64(after.RunCount-before.RunCount)
			}
			return r
		}
	}
	deny := Config{Interfaces: []string{"s-a"}, Mode: ModeGeneric, Ports: []uint16{8080}, Deny: prefixes("198.18.2.2/32")}
	overRate := Config{Interfaces: []string{"s-a"}, Mode: ModeGeneric, Ports: []uint16{8080}, Rate: 1000, Burst: 1000}
	native := deny
	native.Mode = ModeNative

	ctx := context.Background()
	ipt := func(args ...string) (string, error) {
		out, err := n.server.Command(ctx, "iptables", args...).CombinedOutput()
		return string(out), err
	}
	iptablesRound := func() result {
		if _, err := exec.LookPath("iptables"); err != nil {
			return result{skip: "iptables not installed"}
		}
		if out, err := ipt("-t", "raw", "-A", "PREROUTING", "-s", attackIP.String(), "-p", "tcp", "--dport", "8080", "-j", "DROP"); err != nil {
			return result{skip: strings.TrimSpace(out)}
		}
		defer ipt("-t", "raw", "-F")
		sent, dropped := synRound(func() uint64 {
			out, _ := ipt("-t", "raw", "-L", "PREROUTING", "-vnx")
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) > 2 && f[2] == "DROP" {
					v, _ := strconv.ParseUint(f[0], 10, 64)
					return v
				}
			}
			return 0
		})
		return result{sent: sent, dropped: dropped}
	}

	acc := NewAcceptLimiter(Config{Deny: prefixes("198.18.2.2/32")})
	raw, err := n.server.Listen("tcp", "198.18.2.1:8081")
	if err != nil {
		t.Fatal(err)
	}
	ln := acc.Wrap(raw)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	userspaceRound := func() result {
		var attempts atomic.Uint64
		var wg sync.WaitGroup
		before := acc.Counters().DroppedDeny
		start := time.Now()
		stop := start.Add(d)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					cctx, cancel := context.WithTimeout(ctx, time.Second)
					c, err := n.attacker.DialContext(cctx, "tcp", "198.18.2.1:8081")
					cancel()
					attempts.Add(1)
					if err == nil {
						c.Close()
					}
				}
			}()
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		return result{sent: float64(attempts.Load()) / el, dropped: float64(acc.Counters().DroppedDeny-before) / el}
	}

	scenarios := []struct {
		name, unit, notes string
		round             func() result
	}{
		{"XDP generic, deny list", "pkt/s", "SYN flood", xdpRound(deny, func(c Counters) uint64 { return c.DroppedDeny })},
		{"XDP generic, over rate", "pkt/s", "SYN flood; 1000/s pass to the stack", xdpRound(overRate, func(c Counters) uint64 { return c.DroppedRate })},
		{"XDP native (veth), deny", "pkt/s", "SYN flood; for reference, not generic", xdpRound(native, func(c Counters) uint64 { return c.DroppedDeny })},
		{"iptables -t raw DROP", "pkt/s", "SYN flood", iptablesRound},
		{"userspace accept + reset", "conn/s", "16 dialing goroutines; >= 3 packets per connection", userspaceRound},
	}

	// Warm up neighbour entries, caches and clocks.
	if syn, err := newSYNFlood(n.attacker, attackIP, serverA, 9); err == nil {
		syn.run(300 * time.Millisecond)
		syn.close()
	}
	results := make([][]result, len(scenarios))
	for range rounds {
		for i, s := range scenarios {
			results[i] = append(results[i], s.round())
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\n%d rounds of %v; load average before: %s", rounds, d, load)
	fmt.Fprintf(&b, "\n%-26s %12s %12s %12s %7s %8s  %s\n", "layer (veth, 2 cores)", "sent best", "disc. best", "disc. median", "unit", "prog ns", "notes")
	for i, s := range scenarios {
		rs := results[i]
		if rs[0].skip != "" {
			fmt.Fprintf(&b, "%-26s skipped: %s\n", s.name, rs[0].skip)
			continue
		}
		slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.dropped, b.dropped) })
		best, med := rs[len(rs)-1], rs[len(rs)/2]
		prog := "-"
		if med.progNs > 0 {
			prog = fmt.Sprintf("%.0f", med.progNs)
		}
		fmt.Fprintf(&b, "%-26s %12.0f %12.0f %12.0f %7s %8s  %s\n", s.name, best.sent, best.dropped, med.dropped, s.unit, prog, s.notes)
	}
	t.Log(b.String())
}

type result struct {
	sent, dropped, progNs float64
	skip                  string
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
