package xdp

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestLimiterWithoutInterfaces covers the Limiter where XDP is off by
// config (and so on any OS, without privileges): the fallback enforces,
// blocks expire and are reported, and metrics are served.
func TestLimiterWithoutInterfaces(t *testing.T) {
	l := New(nil)
	defer l.Close()
	l.sweepEvery = 10 * time.Millisecond

	if st := l.Status(); !st.Fallback || st.Enabled || st.Reason == "" {
		t.Fatalf("new limiter status: %+v", st)
	}
	if err := l.Apply(Config{Rate: 1, Burst: 1, Deny: prefixes("198.51.100.0/24")}); err != nil {
		t.Fatal(err)
	}
	st := l.Status()
	if !st.Fallback || st.Enabled || st.Attached || st.Reason != "XDP off: no interfaces configured" {
		t.Fatalf("status: %+v", st)
	}
	fb := l.Fallback()
	if fb.Allow(mustAddr("198.51.100.1")) != RejectDeny {
		t.Fatal("deny list not in the fallback")
	}
	if fb.Allow(mustAddr("203.0.113.1")) != Accept || fb.Allow(mustAddr("203.0.113.1")) != RejectRate {
		t.Fatal("bucket not in the fallback")
	}
	if top := l.TopSources(5); len(top) != 1 || top[0].Addr != mustAddr("203.0.113.1") || top[0].Dropped != 1 {
		t.Fatalf("top sources %+v", top)
	}
	if l.Status().TrackedSources != 1 {
		t.Fatal("tracked sources")
	}

	var mu sync.Mutex
	var events []string
	l.OnBlockChange(func(b Block, added bool) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, fmt.Sprintf("%s %s %v", b.Prefix, b.Reason, added))
	})
	if err := l.Block(netip.MustParsePrefix("::ffff:203.0.113.0/120"), 300*time.Millisecond, "escalated"); err != nil {
		t.Fatal(err)
	}
	if err := l.Block(netip.MustParsePrefix("2001:db8::/32"), time.Hour, "manual"); err != nil {
		t.Fatal(err)
	}
	if fb.Allow(mustAddr("203.0.113.77")) != RejectBlock {
		t.Fatal("block not in the fallback")
	}
	if got := l.Blocks(); len(got) != 2 || got[0].Prefix != netip.MustParsePrefix("203.0.113.0/24") {
		t.Fatalf("blocks %+v", got)
	}
	if err := l.Unblock(netip.MustParsePrefix("2001:db8::/32")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %q", events)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	got := strings.Join(events, ",")
	mu.Unlock()
	want := "203.0.113.0/24 escalated true,2001:db8::/32 manual true,2001:db8::/32 manual false,203.0.113.0/24 escalated false"
	if got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(l.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"stoa_xdp_packets_total", "stoa_xdp_tracked_sources", "stoa_xdp_active_blocks", "stoa_xdp_attached", "stoa_xdp_fallback_connections_total"} {
		if !names[n] {
			t.Errorf("metric %s missing (have %v)", n, names)
		}
	}
}

// TestBlockUntil restores a block with its absolute expiry (what stoad does
// after a restart) and refuses one whose expiry has passed.
func TestBlockUntil(t *testing.T) {
	l := New(nil)
	defer l.Close()
	until := time.Now().Add(time.Hour).Round(time.Second).UTC() // as read back from JSON
	if err := l.BlockUntil(netip.MustParsePrefix("2001:db8:7::/64"), until, "restored"); err != nil {
		t.Fatal(err)
	}
	got := l.Blocks()
	if len(got) != 1 || !got[0].Until.Equal(until) || got[0].Reason != "restored" {
		t.Fatalf("blocks %+v, want until %s", got, until)
	}
	if l.Fallback().Allow(mustAddr("2001:db8:7::99")) != RejectBlock {
		t.Fatal("restored block not enforced")
	}
	err := l.BlockUntil(netip.MustParsePrefix("198.51.100.0/24"), time.Now().Add(-time.Second), "stale")
	if err == nil || !strings.Contains(err.Error(), "has passed") {
		t.Fatalf("expired block: %v", err)
	}
	if len(l.Blocks()) != 1 {
		t.Fatalf("an expired block was added: %+v", l.Blocks())
	}
}
