package redislimit

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/stoa-gateway/stoa/pkg/limits"
)

// storedDebt reads key's state from Redis as the script wrote it and
// returns its debt at now (Unix).
func storedDebt(t *testing.T, cl rueidis.Client, prefix string, k limits.Key, now time.Time) time.Duration {
	t.Helper()
	v, err := cl.Do(context.Background(), cl.B().Get().Key(keyName(prefix, k)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(v)
	if len(f) != 3 {
		t.Fatalf("stored value %q", v)
	}
	s, _ := strconv.ParseInt(f[0], 10, 64)
	ns, _ := strconv.ParseInt(f[1], 10, 64)
	return time.Unix(s, ns).Sub(now)
}

func redisTime(t *testing.T, cl rueidis.Client) time.Time {
	t.Helper()
	v, err := cl.Do(context.Background(), cl.B().Time().Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := strconv.ParseInt(v[0], 10, 64)
	us, _ := strconv.ParseInt(v[1], 10, 64)
	return time.Unix(s, us*1000)
}

// TestLeaseAllOrNone hammers two limits from many goroutines through
// leases: a roomy one (1/h with a burst of a million, so that its debt in
// Redis counts every token ever taken) and a tight one that refuses most
// requests. Every token the roomy key's bucket lost must be an admitted
// request or a token still held: refused requests cost the other key
// nothing, and no token is lost or counted twice.
func TestLeaseAllOrNone(t *testing.T) {
	addr := testAddr(t)
	prefix := testPrefix(t, addr)
	l := New(Options{Conn: Conn{Addr: addr}, Prefix: prefix, Timeout: 5 * time.Second, LeaseTTL: time.Hour})
	defer l.Close()
	roomy := limits.LimitFrom(1, time.Hour, 1_000_000)
	tight := limits.LimitFrom(200, time.Second, 20)
	keys := []limits.Key{kTenant, kSource}
	lims := []limits.Limit{roomy, tight}
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(400 * time.Millisecond)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				d := l.AllowAll(keys, lims)
				switch {
				case d.Unavailable:
					t.Errorf("unavailable: %+v", l.Status())
					return
				case d.Allowed:
					admitted.Add(1)
				default:
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	cl := testClient(t, addr)
	// Let background refills settle before reading the tokens held.
	waitFor(t, 5*time.Second, "refills in flight", func() bool { return inFlight(l) == 0 })
	held, _, _ := l.leaseState(kTenant)
	debt := storedDebt(t, cl, prefix, kTenant, redisTime(t, cl))
	charged := int64(math.Round(float64(debt) / float64(time.Hour)))
	t.Logf("admitted %d, refused %d, tokens held %d, charged %d; %+v", admitted.Load(), refused.Load(), held, charged, l.Status())
	if refused.Load() == 0 {
		t.Fatal("the tight limit refused nothing: the test did not test")
	}
	if charged != admitted.Load()+held {
		t.Fatalf("roomy key charged %d tokens, but %d admitted + %d held", charged, admitted.Load(), held)
	}
}

// inFlight counts leases with a call in flight.
func inFlight(l *Limiter) int {
	n := 0
	l.eachLease(func(ls *lease) {
		if ls.fetch != nil {
			n++
		}
	})
	return n
}

// TestLeaseAccuracy is the fleet's accuracy target: three data planes
// (three Limiters in this process, one Redis) share a 300/s limit under
// twice that load, spread over the three at random times. Past the first
// burst, the fleet must admit 300/s within 5% over three seconds (the
// design bound is 1%: Accuracy 0.01).
//
// A machine that starves the test's goroutines (the arrival loop falls
// more than 100ms behind) lets tokens pile up in the bucket and spends
// them in a rush later: the count over a window then says nothing about
// the limiter. Such a run is retried, twice at most; if every run was
// disturbed the figures are logged and only the upper bound over the
// whole run is checked.
func TestLeaseAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for five seconds or more")
	}
	addr := testAddr(t)
	for attempt := 1; ; attempt++ {
		r := fleetRun(t, addr, testPrefix(t, addr))
		got, want := float64(r.admitted), 300*r.window.Seconds()
		t.Logf("attempt %d: admitted %d of %d offered in %v (want %.0f ±5%%): %.1f/s; per second %v; %.2f script calls per admitted request (%d on the request path); arrivals up to %v late",
			attempt, r.admitted, r.offered, r.window, want, got/r.window.Seconds(), r.perSec, float64(r.calls)/max(1, got), r.sync, r.late)
		if r.late <= 100*time.Millisecond {
			if got > want*1.05 || got < want*0.95 {
				t.Fatalf("admitted %.0f in %v, want %.0f ±5%%", got, r.window, want)
			}
			return
		}
		if attempt == 3 {
			// Whatever the stalls, the fleet never admits more than the
			// limit allows over the whole run: burst + rate × time.
			if most := 300 + 300*r.total.Seconds(); float64(r.admittedAll) > most*1.05 {
				t.Fatalf("admitted %d over %v, more than %.0f +5%%", r.admittedAll, r.total, most)
			}
			t.Logf("machine too loaded for a clean run: the window was not checked")
			return
		}
	}
}

type fleetResult struct {
	admitted, offered, admittedAll int64
	perSec                         [3]int64
	window, total                  time.Duration
	calls, sync                    uint64
	late                           time.Duration
}

// fleetRun offers twice a 300/s limit to three Limiters for two seconds of
// warm-up and a three-second window.
func fleetRun(t *testing.T, addr, prefix string) fleetResult {
	const (
		planes  = 3
		rate    = 300
		offered = 2 * rate // requests per second, over all planes
		workers = 4        // per plane
	)
	lim := limits.LimitFrom(rate, time.Second, 0)
	key := limits.NameKey(limits.KindTool, "tool/acme/billing-api")
	var lims [planes]*Limiter
	for i := range lims {
		lims[i] = New(Options{Conn: Conn{Addr: addr}, Prefix: prefix, Peers: func() int { return planes }, Timeout: time.Second})
		defer lims[i].Close()
	}
	warm, window := 2*time.Second, 3*time.Second
	start := time.Now()
	end := start.Add(warm + window)
	var perSec [3]atomic.Int64
	var offeredIn, admittedIn, admittedAll, late atomic.Int64
	var wg sync.WaitGroup
	for p := range planes {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(p), uint64(w)))
				mean := float64(time.Second) * planes * workers / offered
				next := time.Now()
				for {
					next = next.Add(time.Duration(rng.ExpFloat64() * mean))
					time.Sleep(time.Until(next))
					now := time.Now()
					if now.After(end) {
						return
					}
					if d := int64(now.Sub(next)); d > late.Load() {
						late.Store(d) // racy max: good enough for a threshold
					}
					d := lims[p].AllowAll([]limits.Key{key}, []limits.Limit{lim})
					if d.Unavailable {
						t.Errorf("unavailable: %+v", lims[p].Status())
						return
					}
					if d.Allowed {
						admittedAll.Add(1)
					}
					if el := now.Sub(start); el >= warm {
						offeredIn.Add(1)
						if d.Allowed {
							admittedIn.Add(1)
							perSec[min(2, int((el-warm)/time.Second))].Add(1)
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	r := fleetResult{admitted: admittedIn.Load(), offered: offeredIn.Load(), admittedAll: admittedAll.Load(),
		window: window, total: time.Since(start), late: time.Duration(late.Load())}
	for i := range perSec {
		r.perSec[i] = perSec[i].Load()
	}
	for _, l := range lims {
		st := l.Status()
		r.calls += st.Calls
		r.sync += st.SyncCalls
	}
	return r
}

// TestLeaseBelowLimitRefusesNothing: three data planes offered half of a
// shared limit, unevenly (60/30/10%), must admit every request: leases
// never make a data plane refuse what the fleet's bucket holds.
func TestLeaseBelowLimitRefusesNothing(t *testing.T) {
	addr := testAddr(t)
	prefix := testPrefix(t, addr)
	lim := limits.LimitFrom(300, time.Second, 0)
	key := limits.NameKey(limits.KindTenant, "tenant/acme")
	share := []float64{0.6, 0.3, 0.1}
	var refused, admitted atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(1500 * time.Millisecond)
	for p, f := range share {
		l := New(Options{Conn: Conn{Addr: addr}, Prefix: prefix, Peers: func() int { return 3 }, Timeout: 2 * time.Second})
		defer l.Close()
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(p), uint64(w)))
				mean := float64(time.Second) / (150 * f / 2) // 150/s over the fleet
				for next := time.Now(); ; {
					next = next.Add(time.Duration(rng.ExpFloat64() * mean))
					time.Sleep(time.Until(next))
					if time.Now().After(end) {
						return
					}
					if d := l.AllowAll([]limits.Key{key}, []limits.Limit{lim}); d.Allowed {
						admitted.Add(1)
					} else {
						refused.Add(1)
						t.Errorf("plane %d refused %+v", p, d)
					}
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("admitted %d, refused %d", admitted.Load(), refused.Load())
}
