package redislimit

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/limits"
)

// fakeClock drives both limiters of a comparison: the local one reads
// nanoseconds since an arbitrary start, the Redis one the Unix time the
// same distance after another; GCRA only ever uses differences.
type fakeClock struct{ off atomic.Int64 }

var unixBase = time.Unix(1_800_000_000, 123_456_789)

func (c *fakeClock) local() int64            { return 1_000_000_000_000 + c.off.Load() }
func (c *fakeClock) unix() time.Time         { return unixBase.Add(time.Duration(c.off.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// pair is the local limiter and an exact (lease-free) Redis limiter on one
// fake clock.
type pair struct {
	clock *fakeClock
	local *limits.Limiter
	redis *Limiter
}

func newPair(t *testing.T) *pair {
	t.Helper()
	addr := testAddr(t)
	c := &fakeClock{}
	r := New(Options{Conn: Conn{Addr: addr}, Prefix: testPrefix(t, addr), LeaseWindow: -1, Now: c.unix, Timeout: 5 * time.Second})
	t.Cleanup(func() { r.Close() })
	if r.Status().State != "up" {
		t.Fatalf("redis limiter not connected: %+v", r.Status())
	}
	return &pair{clock: c, local: limits.New(limits.Options{Clock: c.local}), redis: r}
}

func (p *pair) check(t *testing.T, step string, keys []limits.Key, lims []limits.Limit) limits.Decision {
	t.Helper()
	want := p.local.AllowAll(keys, lims)
	got := p.redis.AllowAll(keys, lims)
	if got != want {
		t.Fatalf("%s: redis decided %+v, local %+v", step, got, want)
	}
	return got
}

var (
	kTenant = limits.NameKey(limits.KindTenant, "tenant/acme")
	kTool   = limits.NameKey(limits.KindTool, "tool/acme/billing")
	kPlan   = limits.NameKey(limits.KindConsumer, "consumer/acme/alice")
	kSource = limits.AddrKey(limits.KindSource, netip.MustParseAddr("192.0.2.7"))
)

// TestScriptMatchesLocalGCRA plays the same calls, at the same instants,
// on the local limiter and on the Redis script, and requires the same
// decision to the nanosecond, field by field: admissions, Remaining, Reset,
// RetryAfter and which key decided.
func TestScriptMatchesLocalGCRA(t *testing.T) {
	type step struct {
		adv  time.Duration
		keys []limits.Key
		lims []limits.Limit
		want string // "ok" or "no": the expected outcome, as a sanity check
	}
	per := func(n int64, d time.Duration, b int) limits.Limit { return limits.LimitFrom(n, d, b) }
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst then pacing", func() []step {
			l := per(10, time.Second, 3)
			s := []step{}
			for range 3 {
				s = append(s, step{0, []limits.Key{kTool}, []limits.Limit{l}, "ok"})
			}
			s = append(s,
				step{0, []limits.Key{kTool}, []limits.Limit{l}, "no"},
				step{100*time.Millisecond - 1, []limits.Key{kTool}, []limits.Limit{l}, "no"},
				step{1, []limits.Key{kTool}, []limits.Limit{l}, "ok"}, // exactly RetryAfter later
				step{0, []limits.Key{kTool}, []limits.Limit{l}, "no"},
				step{10 * time.Second, []limits.Key{kTool}, []limits.Limit{l}, "ok"},
			)
			return s
		}()},
		{"one refusing key charges nothing else", func() []step {
			keys := []limits.Key{kTenant, kTool, kSource}
			lims := []limits.Limit{per(100, time.Second, 0), per(50, time.Second, 5), per(1, time.Second, 1)}
			return []step{
				{0, keys, lims, "ok"},
				{0, keys, lims, "no"}, // source empty: tenant and tool keep their tokens
				{0, keys, lims, "no"},
				{500 * time.Millisecond, keys, lims, "no"},
				{500 * time.Millisecond, keys, lims, "ok"},
				{0, keys[:2], lims[:2], "ok"},
			}
		}()},
		{"longest retry wins among refusals", []step{
			{0, []limits.Key{kTenant, kTool}, []limits.Limit{per(1, time.Second, 1), per(1, time.Minute, 1)}, "ok"},
			{0, []limits.Key{kTenant, kTool}, []limits.Limit{per(1, time.Second, 1), per(1, time.Minute, 1)}, "no"},
			{2 * time.Second, []limits.Key{kTenant, kTool}, []limits.Limit{per(1, time.Second, 1), per(1, time.Minute, 1)}, "no"},
		}},
		{"same key twice is charged twice", []step{
			{0, []limits.Key{kPlan, kPlan}, []limits.Limit{per(10, time.Second, 3), per(10, time.Second, 3)}, "ok"},
			{0, []limits.Key{kPlan, kPlan}, []limits.Limit{per(10, time.Second, 3), per(10, time.Second, 3)}, "no"},
			{0, []limits.Key{kPlan}, []limits.Limit{per(10, time.Second, 3)}, "ok"},
		}},
		{"zero limits are skipped", []step{
			{0, []limits.Key{kTenant, kTool}, []limits.Limit{{}, per(1, time.Hour, 1)}, "ok"},
			{0, []limits.Key{kTenant, kTool}, []limits.Limit{{}, per(1, time.Hour, 1)}, "no"},
			{0, []limits.Key{kTenant}, []limits.Limit{{}}, "ok"},
		}},
		{"tightened limit clamps the debt and the clamp sticks", []step{
			{0, []limits.Key{kTool}, []limits.Limit{per(1, time.Hour, 5)}, "ok"},
			{0, []limits.Key{kTool}, []limits.Limit{per(1, time.Hour, 5)}, "ok"},
			{0, []limits.Key{kTool}, []limits.Limit{per(1, time.Hour, 5)}, "ok"},
			{0, []limits.Key{kTool}, []limits.Limit{per(10, time.Second, 1)}, "no"}, // debt 3h > 100ms bucket: clamped
			{100 * time.Millisecond, []limits.Key{kTool}, []limits.Limit{per(10, time.Second, 1)}, "ok"},
			{0, []limits.Key{kTool}, []limits.Limit{per(1, time.Hour, 5)}, "ok"},
		}},
		{"loosened 1/day does not lock out", []step{
			{0, []limits.Key{kPlan}, []limits.Limit{per(1, 24*time.Hour, 1)}, "ok"},
			{time.Minute, []limits.Key{kPlan}, []limits.Limit{per(1, 24*time.Hour, 1)}, "no"},
			{0, []limits.Key{kPlan}, []limits.Limit{per(100, time.Second, 0)}, "no"}, // debt clamped to the new 1s bucket
			{10 * time.Millisecond, []limits.Key{kPlan}, []limits.Limit{per(100, time.Second, 0)}, "ok"},
		}},
		{"huge and tiny rates", []step{
			{0, []limits.Key{kSource, kTool}, []limits.Limit{per(1_000_000_000, time.Second, 1_000_000), per(1, 7*24*time.Hour, 2)}, "ok"},
			{time.Nanosecond, []limits.Key{kSource, kTool}, []limits.Limit{per(1_000_000_000, time.Second, 1_000_000), per(1, 7*24*time.Hour, 2)}, "ok"},
			{time.Nanosecond, []limits.Key{kSource, kTool}, []limits.Limit{per(1_000_000_000, time.Second, 1_000_000), per(1, 7*24*time.Hour, 2)}, "no"},
			{0, []limits.Key{kSource}, []limits.Limit{{Rate: 7.5, Burst: 2}}, "ok"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t)
			for i, s := range tt.steps {
				p.clock.advance(s.adv)
				d := p.check(t, fmt.Sprintf("step %d", i), s.keys, s.lims)
				if got := map[bool]string{true: "ok", false: "no"}[d.Allowed]; got != s.want {
					t.Fatalf("step %d: %s, want %s (%+v)", i, got, s.want, d)
				}
			}
		})
	}
}

// TestScriptMatchesLocalRandom plays random request mixes — several keys,
// limits that change, time that jumps or creeps — through both limiters.
func TestScriptMatchesLocalRandom(t *testing.T) {
	p := newPair(t)
	keys := []limits.Key{kTenant, kTool, kPlan, kSource}
	choices := []limits.Limit{
		{},
		limits.LimitFrom(3, time.Second, 2),
		limits.LimitFrom(100, time.Second, 0),
		limits.LimitFrom(1000, time.Minute, 0),
		limits.LimitFrom(5, time.Hour, 5),
		{Rate: 7.5, Burst: 3},
	}
	rng := rand.New(rand.NewPCG(7, 14))
	lim := make([]limits.Limit, len(keys))
	for i := range lim {
		lim[i] = choices[1+rng.IntN(len(choices)-1)]
	}
	n := 1500
	if testing.Short() {
		n = 300
	}
	admitted := 0
	for i := range n {
		switch r := rng.IntN(100); {
		case r < 2: // a reload changes one key's limit
			lim[rng.IntN(len(lim))] = choices[rng.IntN(len(choices))]
		case r < 60:
			p.clock.advance(time.Duration(rng.Int64N(int64(20 * time.Millisecond))))
		case r < 62:
			p.clock.advance(time.Duration(rng.Int64N(int64(time.Hour))))
		}
		var ks []limits.Key
		var ls []limits.Limit
		for j := range keys {
			if rng.IntN(3) > 0 {
				ks, ls = append(ks, keys[j]), append(ls, lim[j])
			}
		}
		if rng.IntN(20) == 0 && len(ks) > 0 { // a key named twice
			ks, ls = append(ks, ks[0]), append(ls, ls[0])
		}
		if p.check(t, fmt.Sprintf("call %d", i), ks, ls).Allowed {
			admitted++
		}
	}
	t.Logf("%d calls, %d admitted, all decided alike", n, admitted)
	if admitted == 0 || admitted == n {
		t.Fatalf("admitted %d of %d: the mix exercised only one outcome", admitted, n)
	}
}

// TestManyKeys: more keys than AllowAll keeps on the stack, through the
// script and through leases.
func TestManyKeys(t *testing.T) {
	p := newPair(t)
	var keys []limits.Key
	var lims []limits.Limit
	for i := range 11 {
		keys = append(keys, limits.NameKey(limits.KindOperation, fmt.Sprint("operation/acme/t/", i)))
		lims = append(lims, limits.LimitFrom(int64(10+i), time.Second, 2+i%3))
	}
	for i := range 6 {
		p.check(t, fmt.Sprintf("call %d", i), keys, lims)
		p.clock.advance(30 * time.Millisecond)
	}
	addr := testAddr(t)
	l := New(Options{Conn: Conn{Addr: addr}, Prefix: testPrefix(t, addr), Timeout: 5 * time.Second})
	defer l.Close()
	admitted := 0
	for range 5 {
		if l.AllowAll(keys, lims).Allowed {
			admitted++
		}
	}
	if admitted != 2 { // the smallest burst among the keys
		t.Fatalf("leases: admitted %d of 5 at once, want 2", admitted)
	}
}

// TestScriptLongDebts covers debts past 2^53 ns (104 days), where the
// script's doubles round: decisions still agree, durations within a
// microsecond.
func TestScriptLongDebts(t *testing.T) {
	p := newPair(t)
	lim := limits.LimitFrom(1, 365*24*time.Hour, 3)
	for i := range 5 {
		keys, lims := []limits.Key{kTool}, []limits.Limit{lim}
		want, got := p.local.AllowAll(keys, lims), p.redis.AllowAll(keys, lims)
		near := func(a, b time.Duration) bool { return max(a-b, b-a) <= time.Microsecond }
		if got.Allowed != want.Allowed || got.Remaining != want.Remaining || !near(got.Reset, want.Reset) || !near(got.RetryAfter, want.RetryAfter) {
			t.Fatalf("call %d: redis %+v, local %+v", i, got, want)
		}
		p.clock.advance(time.Hour)
	}
}

// TestScriptServerClock checks the default clock: with no Now, the script
// reads Redis' TIME, and a burst is still a burst.
func TestScriptServerClock(t *testing.T) {
	addr := testAddr(t)
	l := New(Options{Conn: Conn{Addr: addr}, Prefix: testPrefix(t, addr), LeaseWindow: -1, Timeout: 5 * time.Second})
	defer l.Close()
	lim := limits.LimitFrom(1, time.Hour, 3)
	for i := range 3 {
		if d := l.AllowAll([]limits.Key{kTool}, []limits.Limit{lim}); !d.Allowed || d.Remaining != int64(2-i) {
			t.Fatalf("call %d: %+v", i, d)
		}
	}
	d := l.AllowAll([]limits.Key{kTool}, []limits.Limit{lim})
	if d.Allowed || d.RetryAfter < 59*time.Minute || d.RetryAfter > time.Hour {
		t.Fatalf("4th call: %+v, want refused for about an hour", d)
	}
}

// TestKeyNames pins the Redis key encoding: data planes of different
// versions must keep agreeing on it.
func TestKeyNames(t *testing.T) {
	tests := []struct {
		k    limits.Key
		want string
	}{
		{limits.Key{Kind: limits.KindTenant, A: 1, B: 2}, "p:rl:tenant:00000000000000010000000000000002"},
		{limits.AddrKey(limits.KindSource, netip.MustParseAddr("192.0.2.7")), "p:rl:source:00000000000000000000ffffc0000207"},
		{limits.Key{Kind: 200, A: 0xdeadbeef}, "p:rl:k200:00000000deadbeef0000000000000000"},
		{limits.NameKey(limits.KindTool, "tool/acme/billing"), "p:rl:tool:" + fmt.Sprintf("%016x%016x", kTool.A, kTool.B)},
	}
	for _, tt := range tests {
		if got := keyName("p:", tt.k); got != tt.want {
			t.Errorf("keyName(%+v) = %q, want %q", tt.k, got, tt.want)
		}
	}
}
