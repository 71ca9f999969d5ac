package redislimit

import (
	"context"
	"testing"
	"time"
)

// TestPeersCount: data planes beating into one set count each other; one
// that leaves is no longer counted; a Peers whose Redis is gone keeps its
// last count.
func TestPeersCount(t *testing.T) {
	addr := testAddr(t)
	prefix := testPrefix(t, addr)
	ctx := context.Background()
	mk := func(id string) *Peers {
		p := NewPeers(PeersOptions{Conn: Conn{Addr: addr}, Prefix: prefix, ID: id, Every: time.Second})
		t.Cleanup(p.Close)
		return p
	}
	a, b, c := mk("a"), mk("b"), mk("c")
	if a.Count() != 1 {
		t.Fatalf("before the first beat: %d, want 1", a.Count())
	}
	for _, p := range []*Peers{a, b, c} {
		if err := p.Beat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Count() != 3 {
		t.Fatalf("three beating: a counts %d", a.Count())
	}
	c.leave()
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Count() != 2 {
		t.Fatalf("after c left: a counts %d, want 2", a.Count())
	}
	dead := NewPeers(PeersOptions{Conn: Conn{Addr: closedAddr(t), DialTimeout: 100 * time.Millisecond}, ID: "x"})
	if err := dead.Beat(ctx); err == nil {
		t.Fatal("beat without redis: no error")
	}
	if dead.Count() != 1 {
		t.Fatalf("without redis: %d, want the last count (1)", dead.Count())
	}
}
