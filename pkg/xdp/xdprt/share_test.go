package xdprt

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/xdp"
)

// TestShareBlocks: the blocks this data plane decides — an escalation, an
// operator's block — are handed to ShareBlocks' function; a block from
// the fleet is applied with its end and origin and is not handed back; a
// longer block in force is kept; nil stops sharing.
func TestShareBlocks(t *testing.T) {
	evl, r := newTestRuntime(t)
	var mu sync.Mutex
	var shared []xdp.Block
	r.ShareBlocks(func(b xdp.Block) { mu.Lock(); shared = append(shared, b); mu.Unlock() })
	got := func() []xdp.Block { mu.Lock(); defer mu.Unlock(); return append([]xdp.Block(nil), shared...) }

	r.swap(&xdpPlan{esc: escalation{after: 3, within: time.Minute, block: time.Minute}})
	for range 3 {
		r.OnReject(netip.MustParseAddr("198.51.100.9"))
	}
	if s := got(); len(s) != 1 || s[0].Prefix.String() != "198.51.100.9/32" || !strings.HasPrefix(s[0].Reason, "escalated") {
		t.Fatalf("after an escalation, shared %+v", s)
	}
	if err := r.Block(netip.MustParsePrefix("203.0.113.0/24"), time.Hour, "stuffing", "alice"); err != nil {
		t.Fatal(err)
	}
	if s := got(); len(s) != 2 || s[1].Prefix.String() != "203.0.113.0/24" || s[1].Reason != "stuffing" {
		t.Fatalf("after an operator's block, shared %+v", s)
	}

	until := time.Now().Add(10 * time.Minute).Truncate(time.Millisecond)
	if err := r.BlockFromFleet(netip.MustParsePrefix("192.0.2.0/24"), until, "escalated: 50 rejections in 1m", "dp-2"); err != nil {
		t.Fatal(err)
	}
	var fleet *xdp.Block
	for _, b := range r.Blocks() {
		if b.Prefix.String() == "192.0.2.0/24" {
			fleet = &b
		}
	}
	if fleet == nil || !fleet.Until.Equal(until) || !strings.Contains(fleet.Reason, "shared by dp-2") {
		t.Fatalf("fleet block %+v, want until %s, shared by dp-2", fleet, until)
	}
	if s := got(); len(s) != 2 {
		t.Fatalf("a block from the fleet was handed back: %+v", s)
	}
	evs := waitEvents(t, evl, 3, "xdp.block")
	if e := evs[len(evs)-1]; e.Data["by"] != "fleet" || e.Data["actor"] != "dp-2" {
		t.Fatalf("fleet block event %+v", e)
	}

	// The operator's hour-long block is not shortened by a fleet one.
	if err := r.BlockFromFleet(netip.MustParsePrefix("203.0.113.0/24"), time.Now().Add(time.Minute), "x", "dp-2"); err != nil {
		t.Fatal(err)
	}
	for _, b := range r.Blocks() {
		if b.Prefix.String() == "203.0.113.0/24" && b.Reason != "stuffing" {
			t.Fatalf("a shorter fleet block replaced the operator's: %+v", b)
		}
	}
	// Ended already: ignored.
	if err := r.BlockFromFleet(netip.MustParsePrefix("192.0.2.128/25"), time.Now().Add(-time.Second), "x", "dp-2"); err != nil || len(r.Blocks()) != 3 {
		t.Fatalf("an ended fleet block: err %v, blocks %+v", err, r.Blocks())
	}

	r.ShareBlocks(nil)
	if err := r.Block(netip.MustParsePrefix("198.51.100.0/24"), time.Hour, "", "alice"); err != nil {
		t.Fatal(err)
	}
	if s := got(); len(s) != 2 {
		t.Fatalf("shared after ShareBlocks(nil): %+v", s)
	}
}
