package limits

import (
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// Run with: go test -run '^$' -bench . -benchmem ./pkg/limits/

var benchLim = LimitFrom(1_000_000_000, time.Second, 1_000_000) // never rejects: measures the admit path

func BenchmarkAllow(b *testing.B) {
	b.Run("one-key", func(b *testing.B) {
		l := New(Options{})
		k := Key{Kind: KindConsumer, A: 1}
		b.ReportAllocs()
		for b.Loop() {
			l.Allow(k, benchLim)
		}
	})
	b.Run("one-key-rejecting", func(b *testing.B) {
		l := New(Options{})
		k := Key{Kind: KindConsumer, A: 1}
		lim := LimitFrom(1, time.Hour, 1)
		b.ReportAllocs()
		for b.Loop() {
			l.Allow(k, lim)
		}
	})
	b.Run("1M-keys", func(b *testing.B) {
		const n = 1 << 20
		l := New(Options{MaxKeys: 2 * n})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range n {
			l.Allow(Key{Kind: KindSource, A: uint64(i)}, benchLim)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportAllocs()
		i := uint64(0)
		for b.Loop() {
			// A stride co-prime with n visits every key in scattered order.
			i = (i + 0x9E3779B1) & (n - 1)
			l.Allow(Key{Kind: KindSource, A: i}, benchLim)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heapB/key")
	})
	b.Run("fake-clock", func(b *testing.B) { // the default clock's share
		var now atomic.Int64
		l := New(Options{Clock: now.Load})
		k := Key{Kind: KindConsumer, A: 1}
		b.ReportAllocs()
		for b.Loop() {
			l.Allow(k, benchLim)
		}
	})
}

func BenchmarkAllowAll4(b *testing.B) {
	l := New(Options{})
	keys := []Key{
		{Kind: KindTenant, A: 1},
		{Kind: KindTool, A: 7},
		StringKey(KindConsumer, "consumer-42"),
		AddrKey(KindSource, netip.MustParseAddr("192.0.2.1")),
	}
	lims := []Limit{benchLim, benchLim, benchLim, benchLim}
	b.ReportAllocs()
	for b.Loop() {
		l.AllowAll(keys, lims)
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	b.Run("distinct-keys", func(b *testing.B) {
		l := New(Options{})
		var next atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			base := next.Add(1) << 32
			i := uint64(0)
			for pb.Next() {
				i = (i + 1) & 1023
				l.Allow(Key{Kind: KindSource, A: base | i}, benchLim)
			}
		})
	})
	b.Run("one-key", func(b *testing.B) {
		l := New(Options{})
		k := Key{Kind: KindTenant, A: 1}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow(k, benchLim)
			}
		})
	})
	b.Run("AllowAll4", func(b *testing.B) {
		l := New(Options{})
		var next atomic.Uint64
		lims := []Limit{benchLim, benchLim, benchLim, benchLim}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			id := next.Add(1)
			keys := []Key{{Kind: KindTenant, A: 1}, {Kind: KindTool, A: id % 4}, {Kind: KindConsumer, A: id}, {Kind: KindSource, A: id}}
			for pb.Next() {
				l.AllowAll(keys, lims)
			}
		})
	})
}

func BenchmarkKeys(b *testing.B) {
	addr := netip.MustParseAddr("2001:db8::1")
	id := []byte("consumer-0123456789")
	var sink uint64
	b.Run("StringKey", func(b *testing.B) {
		for b.Loop() {
			sink += BytesKey(KindConsumer, id).A
		}
	})
	b.Run("AddrKey", func(b *testing.B) {
		for b.Loop() {
			sink += AddrKey(KindSource, addr).A
		}
	})
	_ = sink
}

func BenchmarkWriteHeaders(b *testing.B) {
	d := Decision{Limit: 1000, Remaining: 0, Reset: 1500 * time.Millisecond, RetryAfter: 60 * time.Millisecond}
	buf := make([]byte, 0, 64)
	n := 0
	set := func(name string, value []byte) { n += len(value) }
	b.ReportAllocs()
	for b.Loop() {
		buf = d.WriteHeaders(buf[:0], set)
	}
}

func BenchmarkEscalatorReject(b *testing.B) {
	b.Run("one-source", func(b *testing.B) {
		e := NewEscalator(EscalatorOptions{After: 1 << 30})
		src := netip.MustParseAddr("192.0.2.1")
		b.ReportAllocs()
		for b.Loop() {
			e.Reject(src)
		}
	})
	b.Run("churning-sources", func(b *testing.B) {
		e := NewEscalator(EscalatorOptions{After: 1 << 30, MaxSources: 4096})
		b.ReportAllocs()
		i := uint32(0)
		for b.Loop() {
			i++
			e.Reject(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		}
	})
}
