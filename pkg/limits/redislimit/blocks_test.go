package redislimit

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// subscriber runs Blocks.Subscribe in the background and collects what it
// hands over.
type subscriber struct {
	got    chan Block
	errs   chan error
	cancel context.CancelFunc
	done   chan struct{}
}

func subscribe(t *testing.T, b *Blocks) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{got: make(chan Block, 64), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = b.Subscribe(ctx, func(blk Block) { s.got <- blk })
	}()
	t.Cleanup(func() { cancel(); <-s.done })
	return s
}

func (s *subscriber) next(t *testing.T, within time.Duration) Block {
	t.Helper()
	select {
	case b := <-s.got:
		return b
	case <-time.After(within):
		t.Fatalf("no block within %v", within)
		return Block{}
	}
}

func sameBlock(a, b Block) bool {
	return a.Prefix == b.Prefix && a.Until.UnixMilli() == b.Until.UnixMilli() && a.Reason == b.Reason && a.Origin == b.Origin
}

// TestBlocksShared: a block decided on one data plane reaches the others —
// one in force before a data plane subscribes, and one published after —
// and a data plane is not handed back its own blocks.
func TestBlocksShared(t *testing.T) {
	addr := testAddr(t)
	prefix := testPrefix(t, addr)
	errs := make(chan error, 16)
	dp1 := NewBlocks(BlocksOptions{Conn: Conn{Addr: addr}, Prefix: prefix, Origin: "dp1"})
	dp2 := NewBlocks(BlocksOptions{Conn: Conn{Addr: addr}, Prefix: prefix, Origin: "dp2", OnError: func(err error) { errs <- err }})
	defer dp1.Close()
	defer dp2.Close()
	ctx := context.Background()
	until := time.Now().Add(10 * time.Minute)
	early := Block{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Until: until, Reason: "50 rejections in 1m0s"}
	if ok, err := dp1.Publish(ctx, early); !ok || err != nil {
		t.Fatalf("publish: %v %v", ok, err)
	}
	sub := subscribe(t, dp2)
	early.Origin = "dp1"
	if got := sub.next(t, 5*time.Second); !sameBlock(got, early) {
		t.Fatalf("got %+v, want the block in force %+v", got, early)
	}
	// dp2's own block goes to dp1, not back to dp2; dp1 is not handed
	// its own block from the hash either.
	sub1 := subscribe(t, dp1)
	own := Block{Prefix: netip.MustParsePrefix("2001:db8::/64"), Until: until, Reason: "flood"}
	if _, err := dp2.Publish(ctx, own); err != nil {
		t.Fatal(err)
	}
	later := Block{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Until: until.Add(time.Minute), Reason: "scan", Origin: "dp1"}
	if _, err := dp1.Publish(ctx, later); err != nil {
		t.Fatal(err)
	}
	if got := sub.next(t, 5*time.Second); !sameBlock(got, later) {
		t.Fatalf("dp2 got %+v, want %+v (and never its own block)", got, later)
	}
	own.Origin = "dp2"
	if got := sub1.next(t, 5*time.Second); !sameBlock(got, own) {
		t.Fatalf("dp1 got %+v, want dp2's %+v", got, own)
	}

	// A shorter block for a prefix already blocked longer is not recorded.
	if ok, err := dp2.Publish(ctx, Block{Prefix: early.Prefix, Until: until.Add(-time.Minute)}); ok || err != nil {
		t.Fatalf("shorter block: recorded %v, %v", ok, err)
	}
	active, err := dp2.Active(ctx)
	if err != nil || len(active) != 3 {
		t.Fatalf("active: %v %+v", err, active)
	}

	// Garbage on the channel is reported and skipped.
	cl := testClient(t, addr)
	cl.Do(ctx, cl.B().Publish().Channel(prefix+"blocks").Message(`{"prefix":"300.1.1.1/32"}`).Build())
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "block message") {
			t.Fatalf("error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a bad message was not reported")
	}
	next := Block{Prefix: netip.MustParsePrefix("203.0.113.9/32"), Until: until, Origin: "dp1"}
	if _, err := dp1.Publish(ctx, next); err != nil {
		t.Fatal(err)
	}
	if got := sub.next(t, 5*time.Second); !sameBlock(got, next) {
		t.Fatalf("after a bad message: got %+v", got)
	}
}

func TestBlocksRefuseBadInput(t *testing.T) {
	b := NewBlocks(BlocksOptions{Conn: Conn{Addr: closedAddr(t)}})
	defer b.Close()
	now := time.Now()
	tests := []struct {
		blk  Block
		want string
	}{
		{Block{Until: now.Add(time.Hour)}, "no source prefix"},
		{Block{Prefix: netip.MustParsePrefix("192.0.2.7/24"), Until: now.Add(time.Hour)}, "did you mean 192.0.2.0/24"},
		{Block{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Until: now.Add(-time.Second)}, "not in the future"},
		{Block{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Until: now.Add(time.Hour), Reason: strings.Repeat("x", 201)}, "at most 200"},
		{Block{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Until: now.Add(time.Hour)}, "connect to redis"},
	}
	for _, tt := range tests {
		if _, err := b.Publish(context.Background(), tt.blk); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Publish(%+v) = %v, want an error containing %q", tt.blk, err, tt.want)
		}
	}
	for _, msg := range []string{`{`, `{"prefix":"192.0.2.7/24","until":"2030-01-01T00:00:00Z"}`, `{"prefix":"192.0.2.7/32"}`} {
		if _, err := decodeBlock([]byte(msg)); err == nil {
			t.Errorf("decodeBlock(%s) accepted", msg)
		}
	}
}

// TestBlocksExpire: blocks past their time are not listed, and are
// deleted from the hash.
func TestBlocksExpire(t *testing.T) {
	addr := testAddr(t)
	b := NewBlocks(BlocksOptions{Conn: Conn{Addr: addr}, Prefix: testPrefix(t, addr)})
	defer b.Close()
	ctx := context.Background()
	if _, err := b.Publish(ctx, Block{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Until: time.Now().Add(100 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, Block{Prefix: netip.MustParsePrefix("192.0.2.2/32"), Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	active, err := b.Active(ctx)
	if err != nil || len(active) != 1 || active[0].Prefix.String() != "192.0.2.2/32" {
		t.Fatalf("active %+v, %v", active, err)
	}
	cl := testClient(t, addr)
	if n, _ := cl.Do(ctx, cl.B().Hlen().Key(b.active).Build()).AsInt64(); n != 1 {
		t.Fatalf("hash holds %d entries after the expired one was read", n)
	}
}

// TestBlocksResubscribe: a subscriber whose Redis restarts reconnects by
// itself and receives blocks published afterwards.
func TestBlocksResubscribe(t *testing.T) {
	srv := startRedisServer(t)
	var mu sync.Mutex
	var errs []error
	sub := NewBlocks(BlocksOptions{Conn: Conn{Addr: srv.addr(), DialTimeout: 200 * time.Millisecond}, Origin: "dp2",
		OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }})
	defer sub.Close()
	s := subscribe(t, sub)
	pub := NewBlocks(BlocksOptions{Conn: Conn{Addr: srv.addr(), DialTimeout: 200 * time.Millisecond}, Origin: "dp1"})
	defer pub.Close()
	first := Block{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Until: time.Now().Add(time.Hour), Origin: "dp1"}
	// The subscription may not be in place yet: publish until it arrives.
	publishUntilSeen(t, pub, s, first)
	srv.stop()
	srv.start() // an empty Redis: nothing in force survives
	second := Block{Prefix: netip.MustParsePrefix("192.0.2.2/32"), Until: time.Now().Add(time.Hour), Origin: "dp1"}
	publishUntilSeen(t, pub, s, second)
	mu.Lock()
	defer mu.Unlock()
	if len(errs) == 0 {
		t.Fatal("the broken subscription was not reported")
	}
}

func publishUntilSeen(t *testing.T, pub *Blocks, s *subscriber, blk Block) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, _ = pub.Publish(context.Background(), blk)
		select {
		case got := <-s.got:
			if sameBlock(got, blk) {
				return
			}
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("block %+v never arrived", blk)
		}
		blk.Until = blk.Until.Add(time.Second) // a longer block is recorded again
	}
}
