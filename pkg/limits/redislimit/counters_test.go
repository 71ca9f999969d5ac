package redislimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/quota"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
)

// quotaFleet is one configuration — consumer shop subscribed to tool a
// under a plan of 100 calls a day, and to tool b without a quota — loaded
// into one quota.Quotas per data plane.
func quotaFleet(n int) []*quota.Quotas {
	obj := func(kind spec.Kind, name string, s spec.Spec) *spec.Object {
		return &spec.Object{APIVersion: spec.APIVersion, Kind: kind, Metadata: spec.Metadata{Name: name, Namespace: "acme"}, Spec: s}
	}
	st := state.New(1, []*spec.Object{
		obj(spec.KindTool, "a", &spec.ToolSpec{}),
		obj(spec.KindTool, "b", &spec.ToolSpec{}),
		obj(spec.KindPlan, "metered", &spec.PlanSpec{Quota: &spec.Quota{Daily: 100}}),
		obj(spec.KindPlan, "open", &spec.PlanSpec{}),
		obj(spec.KindConsumer, "shop", &spec.ConsumerSpec{}),
		obj(spec.KindSubscription, "shop-a", &spec.SubscriptionSpec{Consumer: "shop", Plan: "metered", Tool: "a"}),
		obj(spec.KindSubscription, "shop-b", &spec.SubscriptionSpec{Consumer: "shop", Plan: "open", Tool: "b"}),
	})
	qs := make([]*quota.Quotas, n)
	for i := range qs {
		qs[i] = quota.New(quota.Options{})
		qs[i].Swap(qs[i].Compile(st))
	}
	return qs
}

var shop = quota.Identity{Consumer: "shop"}

// TestSharedQuotaExact: three data planes take turns, each exchanging its
// counts after every call: the fleet admits exactly the daily quota.
func TestSharedQuotaExact(t *testing.T) {
	addr := testAddr(t)
	prefix := testPrefix(t, addr)
	qs := quotaFleet(3)
	ctx := context.Background()
	now := time.Now()
	var stores []*Counters
	for range qs {
		c := NewCounters(CountersOptions{Conn: Conn{Addr: addr}, Prefix: prefix})
		defer c.Close()
		stores = append(stores, c)
	}
	admitted := 0
	for i := range 150 {
		p := i % 3
		d := qs[p].Decide("acme", "a", shop, now)
		if d.Verdict == quota.Admit {
			admitted++
		} else if d.Verdict != quota.QuotaExceeded {
			t.Fatalf("call %d: verdict %d", i, d.Verdict)
		}
		if err := qs[p].SyncShared(ctx, stores[p], now); err != nil {
			t.Fatal(err)
		}
		// The others learn the count at their own next exchange; here
		// every data plane exchanges before its next call.
		for j := range qs {
			if err := qs[j].SyncShared(ctx, stores[j], now); err != nil {
				t.Fatal(err)
			}
		}
	}
	if admitted != 100 {
		t.Fatalf("fleet admitted %d calls, quota 100", admitted)
	}
	// Each data plane reports the fleet's usage (what `stoa quotas`
	// shows there): the quota is the fleet's.
	for i, q := range qs {
		for _, s := range q.Statuses(now) {
			if s.Name == "shop-a" && s.DailyUsed != 100 {
				t.Fatalf("data plane %d reports %d calls, want the fleet's 100", i, s.DailyUsed)
			}
		}
	}
}

// TestSharedQuotaConcurrent: three data planes exchange in the background
// (RunShared, every 20ms or 5 calls) while callers hit all three at once.
// The fleet admits the quota, over by at most what it can admit between
// two exchanges.
func TestSharedQuotaConcurrent(t *testing.T) {
	addr := testAddr(t)
	prefix := testPrefix(t, addr)
	qs := quotaFleet(3)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, q := range qs {
		c := NewCounters(CountersOptions{Conn: Conn{Addr: addr}, Prefix: prefix})
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = q.RunShared(ctx, c, quota.SharedOptions{Every: 20 * time.Millisecond, Units: 5, Peers: func() int { return 3 }})
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	for _, q := range qs {
		waitFor(t, 20*time.Second, "RunShared to start", q.Sharing)
	}
	var admitted atomic.Int64
	var callers sync.WaitGroup
	for p := range qs {
		callers.Add(1)
		go func() {
			defer callers.Done()
			// 200 calls/s per data plane for a second: 600 offered.
			for range 200 {
				if qs[p].Decide("acme", "a", shop, time.Now()).Verdict == quota.Admit {
					admitted.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	callers.Wait()
	// Bound: each plane may admit up to Units calls, or what it admits in
	// one 20ms interval at 200/s (4), before the others hear of them:
	// 115 on an idle machine. A loaded machine that delays an exchange
	// stretches the interval by as long as the exchange waits for a core
	// (147 was seen at load average 17), so the test holds the fleet
	// below what a third of the planes unshared would admit (unshared,
	// the fleet admits 300); the accuracy at rate is measured by
	// make bench-fleet, not asserted here.
	t.Logf("fleet admitted %d of 600 calls against a daily quota of 100", admitted.Load())
	if n := admitted.Load(); n < 100 || n >= 200 {
		t.Fatalf("fleet admitted %d, want 100 … 199 (counts not shared?)", n)
	}
}

// TestSharedQuotaStoreLost: with the store unreachable, failing closed
// refuses calls under a quota as unavailable (calls without one go on),
// and failing open shares what was left: each of four data planes takes a
// quarter. Both report the outage.
func TestSharedQuotaStoreLost(t *testing.T) {
	addr := closedAddr(t)
	for _, closed := range []bool{true, false} {
		qs := quotaFleet(1)
		q := qs[0]
		c := NewCounters(CountersOptions{Conn: Conn{Addr: addr, DialTimeout: 100 * time.Millisecond}})
		changed := make(chan error, 4)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = q.RunShared(ctx, c, quota.SharedOptions{Every: 10 * time.Millisecond, Peers: func() int { return 4 }, FailClosed: closed,
				OnChange: func(err error) { changed <- err }})
		}()
		select {
		case err := <-changed:
			if err == nil {
				t.Fatal("reported reachable")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("outage not reported")
		}
		admitted, unavailable := 0, 0
		for range 60 {
			switch q.Decide("acme", "a", shop, time.Now()).Verdict {
			case quota.Admit:
				admitted++
			case quota.Unavailable:
				unavailable++
			}
		}
		if d := q.Decide("acme", "b", shop, time.Now()); d.Verdict != quota.Admit {
			t.Errorf("closed=%v: a call without a quota: verdict %d", closed, d.Verdict)
		}
		cancel()
		<-done
		c.Close()
		switch {
		case closed && (admitted != 0 || unavailable != 60):
			t.Errorf("fail closed: admitted %d, unavailable %d of 60", admitted, unavailable)
		case !closed && admitted != 25:
			t.Errorf("fail open, 4 data planes: admitted %d of a 100 quota, want 25", admitted)
		}
	}
}

// TestSharedQuotaRecovers: the store stops and comes back; RunShared
// reports both and the fleet's count carries on from Redis.
func TestSharedQuotaRecovers(t *testing.T) {
	srv := startRedisServer(t)
	q := quotaFleet(1)[0]
	c := NewCounters(CountersOptions{Conn: Conn{Addr: srv.addr(), DialTimeout: 200 * time.Millisecond}})
	defer c.Close()
	changed := make(chan error, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = q.RunShared(ctx, c, quota.SharedOptions{Every: 10 * time.Millisecond, OnChange: func(err error) { changed <- err }})
	}()
	defer func() { cancel(); <-done }()
	// Calls counted before RunShared starts are taken as shared already.
	waitFor(t, 20*time.Second, "RunShared to start", q.Sharing)
	for range 10 {
		q.Decide("acme", "a", shop, time.Now())
	}
	// The ten calls reach Redis before it stops (calls still pending at
	// the outage would be sent after it, on top of the new one below).
	cl := testClient(t, srv.addr())
	dayCount := func() int64 {
		keys, _ := cl.Do(context.Background(), cl.B().Keys().Pattern("stoa:q:acme/shop-a:day:*").Build()).AsStrSlice()
		if len(keys) != 1 {
			return -1
		}
		n, _ := cl.Do(context.Background(), cl.B().Get().Key(keys[0]).Build()).AsInt64()
		return n
	}
	waitFor(t, 20*time.Second, "the ten calls in Redis", func() bool { return dayCount() == 10 })
	srv.stop()
	select {
	case err := <-changed:
		if err == nil {
			t.Fatal("outage reported as recovery")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("outage not reported")
	}
	srv.start()
	select {
	case err := <-changed:
		if err != nil {
			t.Fatalf("recovery reported as %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("recovery not reported")
	}
	// The restarted Redis lost the count; the next exchange sends only
	// new calls, so the fleet total restarts from them.
	q.Decide("acme", "a", shop, time.Now())
	cl = testClient(t, srv.addr())
	waitFor(t, 20*time.Second, "the new call (only) in Redis", func() bool { return dayCount() == 1 })
}
