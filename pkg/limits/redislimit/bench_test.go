package redislimit

import (
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/limits"
)

// Run with: go test -run '^$' -bench . -benchmem ./pkg/limits/redislimit/
//
// Each benchmark reports cpu-ns/op besides wall time: the process' user +
// system CPU per request, which is what a data plane pays and which a
// machine shared with other jobs disturbs much less than wall time.

func cpuNS() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchLim admits everything the benchmark offers: the admit path. Its
// one-second bucket absorbs old clock readings of goroutines a loaded
// machine preempts (GCRA counts them against the bucket).
var benchLim = limits.LimitFrom(1_000_000_000, time.Second, 1_000_000_000)

// BenchmarkChecker runs the same parallel AllowAll — four keys per
// request, as the proxy checks tenant, tool, plan and source — through the
// local limiter, the Redis limiter with leases, and the Redis limiter with
// one script call per request. Each goroutine is one client: its own
// source and plan, a shared tenant and tool.
func BenchmarkChecker(b *testing.B) {
	addr := testAddr(b)
	checkers := []struct {
		name string
		make func() (limits.Checker, func())
	}{
		{"local", func() (limits.Checker, func()) { return limits.New(limits.Options{}), func() {} }},
		{"redis-lease", func() (limits.Checker, func()) {
			l := New(Options{Conn: Conn{Addr: addr}, Prefix: testPrefix(b, addr), Peers: func() int { return 3 }})
			return l, func() { l.Close() }
		}},
		{"redis-exact", func() (limits.Checker, func()) {
			l := New(Options{Conn: Conn{Addr: addr}, Prefix: testPrefix(b, addr), LeaseWindow: -1, Timeout: 2 * time.Second})
			return l, func() { l.Close() }
		}},
	}
	for _, c := range checkers {
		for _, nkeys := range []int{1, 4} {
			b.Run(c.name+"/keys="+string(rune('0'+nkeys)), func(b *testing.B) {
				chk, done := c.make()
				defer done()
				var next, refused atomic.Uint64
				b.ReportAllocs()
				start := cpuNS()
				b.RunParallel(func(pb *testing.PB) {
					id := next.Add(1)
					keys := []limits.Key{
						limits.NameKey(limits.KindTool, "tool/acme/billing-api"),
						limits.NameKey(limits.KindTenant, "tenant/acme"),
						{Kind: limits.KindConsumer, A: id},
						limits.AddrKey(limits.KindSource, netip.AddrFrom4([4]byte{192, 0, 2, byte(id)})),
					}[:nkeys]
					lims := []limits.Limit{benchLim, benchLim, benchLim, benchLim}[:nkeys]
					for pb.Next() {
						if d := chk.AllowAll(keys, lims); !d.Allowed {
							if d.Unavailable {
								b.Errorf("unavailable: %+v", d)
								return
							}
							refused.Add(1)
						}
					}
				})
				b.ReportMetric(float64(cpuNS()-start)/float64(b.N), "cpu-ns/op")
				if refused.Load()*100 > uint64(b.N) {
					b.Errorf("%d of %d refused: not the admit path", refused.Load(), b.N)
				}
				if l, ok := chk.(*Limiter); ok {
					st := l.Status()
					b.ReportMetric(float64(st.Calls)/float64(b.N), "calls/op")
				}
			})
		}
	}
}

// BenchmarkRefusedLocally is a saturated key: after Redis said the bucket
// is empty, requests are refused from local state until the next token.
func BenchmarkRefusedLocally(b *testing.B) {
	addr := testAddr(b)
	l := New(Options{Conn: Conn{Addr: addr}, Prefix: testPrefix(b, addr)})
	defer l.Close()
	keys := []limits.Key{limits.NameKey(limits.KindTool, "tool/acme/billing-api")}
	lims := []limits.Limit{limits.LimitFrom(1, time.Hour, 1)}
	l.AllowAll(keys, lims)
	b.ReportAllocs()
	start := cpuNS()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if l.AllowAll(keys, lims).Allowed {
				b.Error("admitted")
				return
			}
		}
	})
	b.ReportMetric(float64(cpuNS()-start)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(l.Status().Calls)/float64(b.N), "calls/op")
}
