package redislimit

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/limits"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// events collects a Limiter's events.
type events chan Event

func (e events) on(ev Event) { e <- ev }

func (e events) next(t *testing.T, within time.Duration) Event {
	t.Helper()
	select {
	case ev := <-e:
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
		return Event{}
	}
}

func TestFailClosedWhenUnreachable(t *testing.T) {
	addr := closedAddr(t)
	ev := make(events, 16)
	l := New(Options{Conn: Conn{Addr: addr, DialTimeout: 200 * time.Millisecond}, FailMode: FailClosed, OnEvent: ev.on})
	defer l.Close()
	e := ev.next(t, 5*time.Second)
	if e.Type != EventDown || e.Addr != addr || e.Error == "" || e.FailMode != "closed" {
		t.Fatalf("event %+v, want redis-down for %s with the cause", e, addr)
	}
	st := l.Status()
	if st.State != "down" || !strings.Contains(st.LastError, addr) || st.FailMode != "closed" {
		t.Fatalf("status %+v", st)
	}
	lim := limits.LimitFrom(100, time.Second, 0)
	for _, keys := range [][]limits.Key{{kTool}, {kTenant, kTool, kPlan, kSource}} {
		lims := make([]limits.Limit, len(keys))
		for i := range lims {
			lims[i] = lim
		}
		d := l.AllowAll(keys, lims)
		if d.Allowed || !d.Unavailable || d.Limit != 0 || d.RetryAfter < time.Second {
			t.Fatalf("%d keys: %+v, want refused as unavailable, no RateLimit headers, Retry-After ≥ 1s", len(keys), d)
		}
	}
	// No limit applies: nothing to share, nothing refused.
	if d := l.AllowAll([]limits.Key{kTool}, []limits.Limit{{}}); !d.Allowed {
		t.Fatalf("zero limit: %+v", d)
	}
	// Exact mode fails the same way.
	x := New(Options{Conn: Conn{Addr: addr, DialTimeout: 200 * time.Millisecond}, FailMode: FailClosed, LeaseWindow: -1})
	defer x.Close()
	if d := x.AllowAll([]limits.Key{kTool}, []limits.Limit{lim}); !d.Unavailable {
		t.Fatalf("exact mode: %+v", d)
	}
}

// TestFailOpenEnforcesShare: with Redis unreachable each data plane
// enforces its share of the limit — here a quarter of a burst of 8 — and
// still reports the written limit in RateLimit-Limit.
func TestFailOpenEnforcesShare(t *testing.T) {
	l := New(Options{Conn: Conn{Addr: closedAddr(t), DialTimeout: 200 * time.Millisecond}, Peers: func() int { return 4 }})
	defer l.Close()
	lim := limits.LimitFrom(4, time.Minute, 8)
	admitted := 0
	var last limits.Decision
	for range 10 {
		last = l.AllowAll([]limits.Key{kTool, kSource}, []limits.Limit{lim, {}})
		if last.Unavailable {
			t.Fatalf("fail-open answered unavailable: %+v", last)
		}
		if last.Allowed {
			admitted++
		}
	}
	if admitted != 2 || last.Limit != 4 || last.RetryAfter <= 0 {
		t.Fatalf("admitted %d (want 2 = 8/4), last %+v", admitted, last)
	}
}

// TestRecoversAfterClientClosed: a client that stops working (closed
// under the Limiter) is noticed, reported, replaced and reported back,
// with no restart.
func TestRecoversAfterClientClosed(t *testing.T) {
	addr := testAddr(t)
	ev := make(events, 16)
	l := New(Options{Conn: Conn{Addr: addr}, Prefix: testPrefix(t, addr), FailMode: FailClosed, OnEvent: ev.on, LeaseWindow: -1, Timeout: 2 * time.Second})
	defer l.Close()
	lim := limits.LimitFrom(1000, time.Second, 0)
	if d := l.AllowAll([]limits.Key{kTool}, []limits.Limit{lim}); !d.Allowed {
		t.Fatalf("before: %+v %+v", d, l.Status())
	}
	l.conn().Close()
	if d := l.AllowAll([]limits.Key{kTool}, []limits.Limit{lim}); !d.Unavailable {
		t.Fatalf("closed client: %+v, want unavailable", d)
	}
	if e := ev.next(t, 5*time.Second); e.Type != EventDown {
		t.Fatalf("event %+v, want redis-down", e)
	}
	if e := ev.next(t, 10*time.Second); e.Type != EventUp || e.Outage <= 0 {
		t.Fatalf("event %+v, want redis-up with the outage's length", e)
	}
	if d := l.AllowAll([]limits.Key{kTool}, []limits.Limit{lim}); !d.Allowed {
		t.Fatalf("after: %+v %+v", d, l.Status())
	}
	if st := l.Status(); st.State != "up" || st.Outages != 1 || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
}

// TestRecoversAfterRedisRestart stops a redis-server of the test's own
// under a working Limiter and starts it again: requests are refused as
// unavailable while it is gone (fail closed), both changes are reported,
// and limits are shared again once it is back, with no restart.
func TestRecoversAfterRedisRestart(t *testing.T) {
	srv := startRedisServer(t)
	ev := make(events, 16)
	l := New(Options{Conn: Conn{Addr: srv.addr(), DialTimeout: 500 * time.Millisecond}, FailMode: FailClosed, OnEvent: ev.on, Timeout: time.Second})
	defer l.Close()
	lim := limits.LimitFrom(50, time.Second, 5)
	keys, lims := []limits.Key{kTool}, []limits.Limit{lim}
	if d := l.AllowAll(keys, lims); !d.Allowed {
		t.Fatalf("before: %+v %+v", d, l.Status())
	}
	srv.stop()
	// Spend what the lease holds; the first request that needs Redis
	// (or the idle probe, whichever comes first) finds it gone.
	waitFor(t, 10*time.Second, "a request refused as unavailable", func() bool {
		return l.AllowAll(keys, lims).Unavailable
	})
	if e := ev.next(t, 5*time.Second); e.Type != EventDown || e.FailMode != "closed" {
		t.Fatalf("event %+v, want redis-down", e)
	}
	if st := l.Status(); st.State != "down" || st.LastError == "" {
		t.Fatalf("status while stopped: %+v", st)
	}
	srv.start()
	if e := ev.next(t, 15*time.Second); e.Type != EventUp {
		t.Fatalf("event %+v, want redis-up", e)
	}
	calls := l.Status().Calls
	time.Sleep(200 * time.Millisecond) // a fresh 50/s bucket: room again
	if d := l.AllowAll(keys, lims); !d.Allowed || d.Unavailable {
		t.Fatalf("after restart: %+v %+v", d, l.Status())
	}
	if st := l.Status(); st.State != "up" || st.Calls == calls {
		t.Fatalf("after restart the request did not go through Redis: %+v", st)
	}
}
