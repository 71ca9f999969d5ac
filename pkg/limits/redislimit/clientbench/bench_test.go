// Package clientbench measures the two Redis clients stoa considered for
// the shared rate limiter, running the limiter's own script (../gcra.lua)
// against a real redis-server. It is a separate module so that the client
// stoa did not choose stays out of stoa's go.mod; docs/limits.md has the
// figures and the choice.
//
//	cd pkg/limits/redislimit/clientbench && go test -bench . -benchmem
package clientbench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

func addr() string {
	if a := os.Getenv("STOA_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

func script(b *testing.B) string {
	src, err := os.ReadFile("../gcra.lua")
	if err != nil {
		b.Fatal(err)
	}
	return string(src)
}

// args is one request's call: four keys, a limit that never refuses,
// one token each, all or none, the server's clock.
func args(g uint64) (keys, argv []string) {
	p := fmt.Sprintf("stoa-clientbench:%d:", g)
	keys = []string{p + "tenant", p + "tool", p + "consumer", p + "source"}
	argv = []string{"", "", "1", "1000"}
	for range keys {
		argv = append(argv, "1", "1000000000", "1", "1") // 1ns interval, burst 1e9
	}
	return keys, argv
}

// cpuNS is the CPU time (user+sys) this process has used, in ns.
func cpuNS() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// measureCPU reports the client's CPU per call (what a data plane pays),
// which load on a shared machine disturbs less than wall time.
func measureCPU(b *testing.B, run func()) {
	start := cpuNS()
	run()
	b.ReportMetric(float64(cpuNS()-start)/float64(b.N), "cpu-ns/op")
}

// parallelism gives each CPU this many goroutines: a proxy serving many
// connections at once.
var parallelism = []int{1, 16}

func BenchmarkRueidis(b *testing.B) {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr()}, DisableCache: true})
	if err != nil {
		b.Skipf("no redis at %s: %v", addr(), err)
	}
	defer c.Close()
	lua := rueidis.NewLuaScript(script(b))
	ctx := context.Background()
	for _, par := range parallelism {
		b.Run("par="+strconv.Itoa(par), func(b *testing.B) {
			var g atomic.Uint64
			b.SetParallelism(par)
			b.ReportAllocs()
			measureCPU(b, func() {
				b.RunParallel(func(pb *testing.PB) {
					keys, argv := args(g.Add(1))
					for pb.Next() {
						v, err := lua.Exec(ctx, c, keys, argv).AsIntSlice()
						if err != nil || len(v) != 13 || v[0] != 1 {
							b.Errorf("exec: %v %v", v, err)
							return
						}
					}
				})
			})
		})
	}
}

func BenchmarkGoRedis(b *testing.B) {
	c := goredis.NewClient(&goredis.Options{Addr: addr(), ReadTimeout: time.Second, WriteTimeout: time.Second})
	defer c.Close()
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		b.Skipf("no redis at %s: %v", addr(), err)
	}
	s := goredis.NewScript(script(b))
	for _, par := range parallelism {
		b.Run("par="+strconv.Itoa(par), func(b *testing.B) {
			var g atomic.Uint64
			b.SetParallelism(par)
			b.ReportAllocs()
			measureCPU(b, func() {
				b.RunParallel(func(pb *testing.PB) {
					keys, argv := args(g.Add(1))
					av := make([]any, len(argv))
					for i := range argv {
						av[i] = argv[i]
					}
					for pb.Next() {
						v, err := s.Run(ctx, c, keys, av...).Int64Slice()
						if err != nil || len(v) != 13 || v[0] != 1 {
							b.Errorf("run: %v %v", v, err)
							return
						}
					}
				})
			})
		})
	}
}
