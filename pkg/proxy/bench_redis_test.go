package proxy

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/limits/redislimit"
)

// BenchmarkServeLimitBackends is one proxied request through the handler
// (route, three rate limits — tool, tenant, per source — the upstream
// exchange in memory) with the local limiter and with the Redis one
// (leases, the default), on limits that admit everything. cpu-ns/op is
// the whole process' CPU per request, the limiter's background refills
// included; calls/op is script calls to Redis per request. docs/limits.md
// ("Cost per request") has the figures. Needs Redis (STOA_TEST_REDIS or
// 127.0.0.1:6379) for the redis case; skipped without.
func BenchmarkServeLimitBackends(b *testing.B) {
	specs := tenant("acme", "defaults: {rateLimit: 1000000000/s, perSource: 1000000000/s}") +
		tool("acme", "api", "UP", "auth: {type: none}\nrateLimit: 1000000000/s")
	run := func(b *testing.B, lim limits.Checker, calls func() uint64) {
		bp := newBenchProxy(b, specs)
		bp.p.opts.Limiter = lim
		before := cpuTime()
		var c0 uint64
		if calls != nil {
			c0 = calls()
		}
		bp.run(b)
		b.StopTimer()
		b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
		if calls != nil {
			b.ReportMetric(float64(calls()-c0)/float64(b.N), "calls/op")
		}
	}
	b.Run("local", func(b *testing.B) { run(b, limits.New(limits.Options{}), nil) })
	b.Run("redis", func(b *testing.B) {
		addr := os.Getenv("STOA_TEST_REDIS")
		if addr == "" {
			addr = "127.0.0.1:6379"
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
			b.Skip("no redis at " + addr + ": " + err.Error())
		} else {
			c.Close()
		}
		lim := redislimit.New(redislimit.Options{Conn: redislimit.Conn{Addr: addr}, Timeout: 2 * time.Second, Prefix: "stoabench:" + time.Now().Format("150405.000000") + ":"})
		b.Cleanup(func() { lim.Close() })
		run(b, lim, func() uint64 { return lim.Status().Calls })
	})
}

// cpuTime is the process' user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
