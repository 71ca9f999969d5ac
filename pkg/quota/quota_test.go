package quota

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

func obj(kind spec.Kind, ns, name string, s spec.Spec) *spec.Object {
	return &spec.Object{APIVersion: spec.APIVersion, Kind: kind, Metadata: spec.Metadata{Name: name, Namespace: ns}, Spec: s}
}

// fixture: tenant acme with tools a, b (set "ab"), c; consumers shop
// (subject "sub-shop"), bot, idle (suspended).
func fixture(subs ...*spec.Object) *state.Revision {
	objs := []*spec.Object{
		obj(spec.KindTool, "acme", "a", &spec.ToolSpec{}),
		obj(spec.KindTool, "acme", "b", &spec.ToolSpec{}),
		obj(spec.KindTool, "acme", "c", &spec.ToolSpec{}),
		obj(spec.KindToolSet, "acme", "ab", &spec.ToolSetSpec{Tools: []string{"a", "b"}}),
		obj(spec.KindPlan, "acme", "free", &spec.PlanSpec{Quota: &spec.Quota{Daily: 3, Monthly: 5}}),
		obj(spec.KindPlan, "acme", "unlimited", &spec.PlanSpec{}),
		obj(spec.KindConsumer, "acme", "shop", &spec.ConsumerSpec{Subjects: []string{"sub-shop"}}),
		obj(spec.KindConsumer, "acme", "bot", &spec.ConsumerSpec{}),
		obj(spec.KindConsumer, "acme", "idle", &spec.ConsumerSpec{Suspended: true}),
	}
	return state.New(7, append(objs, subs...))
}

func sub(name, consumer, plan, tool, toolSet, st, expires string) *spec.Object {
	return obj(spec.KindSubscription, "acme", name, &spec.SubscriptionSpec{
		Consumer: consumer, Plan: plan, Tool: tool, ToolSet: toolSet, State: st, ExpiresAt: expires})
}

var t0 = time.Date(2026, 3, 31, 23, 59, 58, 0, time.UTC)

func load(q *Quotas, st *state.Revision) { q.Swap(q.Compile(st)) }

func TestDecide(t *testing.T) {
	st := fixture(
		sub("shop-ab", "shop", "unlimited", "", "ab", "", ""),
		sub("bot-a", "bot", "unlimited", "a", "", "suspended", ""),
		sub("bot-b", "bot", "unlimited", "b", "", "revoked", ""),
		sub("bot-c", "bot", "unlimited", "c", "", "active", "2026-03-01T00:00:00Z"),
		sub("idle-a", "idle", "unlimited", "a", "", "", ""),
		sub("shop-c-expired", "shop", "unlimited", "c", "", "expired", ""),
		sub("shop-c-later", "shop", "unlimited", "c", "", "", "2027-01-01T00:00:00Z"),
	)
	q := New(Options{})
	load(q, st)
	tests := []struct {
		name     string
		tenant   string
		tool     string
		id       Identity
		verdict  Verdict
		sub      string
		state    string
		consumer string
	}{
		{"toolset covers a", "acme", "a", Identity{Consumer: "shop"}, Admit, "shop-ab", "", "shop"},
		{"toolset covers b", "acme", "b", Identity{Consumer: "shop"}, Admit, "shop-ab", "", "shop"},
		{"direct active beats expired", "acme", "c", Identity{Consumer: "shop"}, Admit, "shop-c-later", "", "shop"},
		{"token subject maps to consumer", "acme", "a", Identity{Subject: "sub-shop"}, Admit, "shop-ab", "", "shop"},
		{"token client id maps to consumer", "acme", "a", Identity{Subject: "x", ClientID: "sub-shop"}, Admit, "shop-ab", "", "shop"},
		{"unmapped token", "acme", "a", Identity{Subject: "stranger"}, NoSubscription, "", "", ""},
		{"suspended", "acme", "a", Identity{Consumer: "bot"}, Inactive, "bot-a", "suspended", "bot"},
		{"revoked", "acme", "b", Identity{Consumer: "bot"}, Inactive, "bot-b", "revoked", "bot"},
		{"expired by time", "acme", "c", Identity{Consumer: "bot"}, Inactive, "bot-c", "expired", "bot"},
		{"consumer suspended", "acme", "a", Identity{Consumer: "idle"}, ConsumerSuspended, "", "", "idle"},
		{"no subscription to tool", "acme", "nope", Identity{Consumer: "shop"}, NoSubscription, "", "", "shop"},
		{"other tenant", "globex", "a", Identity{Consumer: "shop"}, NoSubscription, "", "", "shop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := q.Decide(tc.tenant, tc.tool, tc.id, t0)
			if d.Verdict != tc.verdict || d.State != tc.state || d.Consumer != tc.consumer {
				t.Fatalf("got verdict %d state %q consumer %q, want %d %q %q", d.Verdict, d.State, d.Consumer, tc.verdict, tc.state, tc.consumer)
			}
			name := ""
			if d.Sub != nil {
				name = d.Sub.Name
			}
			if name != tc.sub {
				t.Fatalf("subscription %q, want %q", name, tc.sub)
			}
		})
	}
}

func TestQuotaDailyResetAndRetryAfter(t *testing.T) {
	var events []Exhaustion
	q := New(Options{OnExhausted: func(e Exhaustion) { events = append(events, e) }})
	load(q, fixture(sub("shop-ab", "shop", "free", "", "ab", "", "")))
	id := Identity{Consumer: "shop"}
	// Daily 3, shared by the set's tools.
	for i, tool := range []string{"a", "b", "a"} {
		if d := q.Decide("acme", tool, id, t0); d.Verdict != Admit {
			t.Fatalf("call %d: verdict %d", i, d.Verdict)
		}
	}
	for i := 0; i < 3; i++ {
		d := q.Decide("acme", "b", id, t0)
		if d.Verdict != QuotaExceeded || d.Period != PeriodDay || d.Limit != 3 {
			t.Fatalf("4th call: %+v", d)
		}
		if d.RetryAfter != 2*time.Second {
			t.Fatalf("retry after %s, want 2s (until UTC midnight)", d.RetryAfter)
		}
	}
	if len(events) != 1 || events[0].Period != PeriodDay || !events[0].ResetAt.Equal(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("exhaustion events: %+v", events)
	}
	// Next day (and next month): 2 more fit the monthly 5... but April is a
	// new month, so the full daily 3 fit.
	next := t0.Add(3 * time.Second)
	for i := 0; i < 3; i++ {
		if d := q.Decide("acme", "a", id, next); d.Verdict != Admit {
			t.Fatalf("after reset, call %d: %+v", i, d)
		}
	}
	if d := q.Decide("acme", "a", id, next); d.Verdict != QuotaExceeded {
		t.Fatalf("after reset, 4th call: %+v", d)
	}
	if len(events) != 2 {
		t.Fatalf("want a second exhaustion event for the new day, got %+v", events)
	}
}

func TestQuotaMonthly(t *testing.T) {
	q := New(Options{})
	load(q, fixture(sub("s", "shop", "free", "a", "", "", "")))
	id := Identity{Consumer: "shop"}
	day := time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC)
	admitted := 0
	for d := 0; d < 3; d++ {
		for i := 0; i < 3; i++ {
			if q.Decide("acme", "a", id, day.AddDate(0, 0, d)).Verdict == Admit {
				admitted++
			}
		}
	}
	if admitted != 5 {
		t.Fatalf("admitted %d calls in February, want the monthly 5", admitted)
	}
	d := q.Decide("acme", "a", id, day.AddDate(0, 0, 2))
	if d.Verdict != QuotaExceeded || d.Period != PeriodMonth {
		t.Fatalf("want monthly exhaustion: %+v", d)
	}
	want := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Sub(day.AddDate(0, 0, 2))
	if d.RetryAfter != want {
		t.Fatalf("retry after %s, want %s", d.RetryAfter, want)
	}
	// The refused monthly call did not eat the day's count.
	st := q.Statuses(day.AddDate(0, 0, 2))
	if st[0].DailyUsed != 0 || st[0].MonthlyUsed != 5 {
		t.Fatalf("status %+v", st[0])
	}
	if q.Decide("acme", "a", id, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)).Verdict != Admit {
		t.Fatal("March should start afresh")
	}
}

func TestPeriodsDecember(t *testing.T) {
	now := time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)
	if got := ResetAt(PeriodMonth, now); !got.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("month reset %s", got)
	}
	if got := ResetAt(PeriodDay, now); !got.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("day reset %s", got)
	}
	// Non-UTC input: periods are UTC.
	loc := time.FixedZone("x", 5*3600)
	if got := ResetAt(PeriodDay, time.Date(2026, 6, 1, 2, 0, 0, 0, loc)); !got.Equal(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("day reset for 02:00+05:00 is %s", got)
	}
}

// TestConcurrentExact charges from many goroutines: exactly the quota is
// admitted (run with -race).
func TestConcurrentExact(t *testing.T) {
	st := state.New(1, []*spec.Object{
		obj(spec.KindTool, "acme", "a", &spec.ToolSpec{}),
		obj(spec.KindPlan, "acme", "p", &spec.PlanSpec{Quota: &spec.Quota{Daily: 1000}}),
		obj(spec.KindConsumer, "acme", "c", &spec.ConsumerSpec{}),
		sub("s", "c", "p", "a", "", "", ""),
	})
	var events atomic.Int32
	q := New(Options{OnExhausted: func(Exhaustion) { events.Add(1) }})
	load(q, st)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				if q.Decide("acme", "a", Identity{Consumer: "c"}, t0).Verdict == Admit {
					admitted.Add(1)
				}
			}
		}()
	}
	// Reloads while charging keep the counters.
	for i := 0; i < 5; i++ {
		load(q, st)
	}
	wg.Wait()
	if admitted.Load() != 1000 || events.Load() != 1 {
		t.Fatalf("admitted %d (want 1000), %d exhaustion events (want 1)", admitted.Load(), events.Load())
	}
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	s, err := boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := fixture(sub("s", "shop", "free", "a", "", "", ""))
	q := New(Options{})
	if err := q.Load(s); err != nil {
		t.Fatal(err)
	}
	load(q, st)
	for i := 0; i < 3; i++ {
		q.Decide("acme", "a", Identity{Consumer: "shop"}, t0)
	}
	if n, err := q.Flush(s, t0); err != nil || n != 1 {
		t.Fatalf("flush: %d, %v", n, err)
	}
	if n, _ := q.Flush(s, t0); n != 0 {
		t.Fatalf("second flush wrote %d records; nothing changed", n)
	}
	s.Close()

	s, err = boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var exhausted int
	q2 := New(Options{OnExhausted: func(Exhaustion) { exhausted++ }})
	if err := q2.Load(s); err != nil {
		t.Fatal(err)
	}
	load(q2, st)
	if d := q2.Decide("acme", "a", Identity{Consumer: "shop"}, t0); d.Verdict != QuotaExceeded {
		t.Fatalf("after restart the day's quota should still be used up: %+v", d)
	}
	if exhausted != 1 {
		t.Fatalf("exhaustion events %d", exhausted)
	}
	// The subscription goes away; its counters are dropped once their
	// periods are over.
	load(q2, fixture())
	if _, err := q2.Flush(s, t0); err != nil {
		t.Fatal(err)
	}
	if len(q2.usage) != 1 {
		t.Fatal("counters of the current period must be kept")
	}
	if _, err := q2.Flush(s, t0.AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if len(q2.usage) != 0 {
		t.Fatalf("stale counters kept: %v", q2.usage)
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	q := New(Options{})
	load(q, fixture(sub("shop-ab", "shop", "free", "", "ab", "", ""), sub("bot", "bot", "unlimited", "a", "", "", "")))
	q.Swap(q.Compile(fixture(
		obj(spec.KindPlan, "acme", "big", &spec.PlanSpec{Quota: &spec.Quota{Daily: 1 << 40, Monthly: 1 << 41}}),
		sub("shop-ab", "shop", "big", "", "ab", "", ""),
		sub("bot", "bot", "unlimited", "a", "", "", ""))))
	for _, id := range []Identity{{Consumer: "shop"}, {Subject: "sub-shop"}, {Consumer: "bot"}} {
		n := testing.AllocsPerRun(1000, func() {
			if q.Decide("acme", "a", id, t0).Verdict != Admit {
				t.Fatal("not admitted")
			}
		})
		if n != 0 {
			t.Fatalf("Decide(%+v) allocates %.1f times per call", id, n)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	q := New(Options{})
	load(q, fixture(
		obj(spec.KindPlan, "acme", "big", &spec.PlanSpec{Quota: &spec.Quota{Daily: 1 << 60, Monthly: 1 << 61}}),
		sub("shop-ab", "shop", "big", "", "ab", "", "")))
	id := Identity{Consumer: "shop"}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			q.Decide("acme", "a", id, now)
		}
	})
}

// A call admitted (and counted) but then refused by a rate limit is
// refunded, so retrying on 429 does not burn the quota.
func TestRefund(t *testing.T) {
	q := New(Options{})
	load(q, fixture(sub("shop-ab", "shop", "free", "", "ab", "", "")))
	id := Identity{Subject: "sub-shop"} // resolved through the consumer's subjects
	for i := 0; i < 10; i++ {
		if d := q.Decide("acme", "a", id, t0); d.Verdict != Admit {
			t.Fatalf("call %d: %+v", i, d)
		}
		q.Refund("acme", "a", id, t0)
	}
	for i := 0; i < 3; i++ {
		if d := q.Decide("acme", "a", id, t0); d.Verdict != Admit {
			t.Fatalf("after refunds, call %d: %+v", i, d)
		}
	}
	if d := q.Decide("acme", "a", id, t0); d.Verdict != QuotaExceeded {
		t.Fatalf("the daily quota still applies: %+v", d)
	}
	// A refund in a later period does not touch the new period's count.
	q.Refund("acme", "a", id, t0.Add(48*time.Hour))
	if d := q.Decide("acme", "a", id, t0); d.Verdict != QuotaExceeded {
		t.Fatalf("stale refund changed the count: %+v", d)
	}
}

// TestCoversMatchesDecide: Covers agrees with Decide on every case except
// used-up quotas (still covered), and counts nothing.
func TestCoversMatchesDecide(t *testing.T) {
	st := fixture(
		sub("shop-ab", "shop", "free", "", "ab", "", ""),
		sub("bot-a", "bot", "unlimited", "a", "", "suspended", ""),
		sub("bot-b", "bot", "unlimited", "b", "", "revoked", ""),
		sub("bot-c", "bot", "unlimited", "c", "", "active", "2026-04-01T00:00:00Z"),
		sub("idle-a", "idle", "unlimited", "a", "", "", ""),
	)
	q := New(Options{})
	load(q, st)
	for _, c := range []struct {
		tool string
		id   Identity
		want bool
	}{
		{"a", Identity{Consumer: "shop"}, true},
		{"b", Identity{Subject: "sub-shop"}, true},
		{"c", Identity{Consumer: "shop"}, false},
		{"a", Identity{Consumer: "bot"}, false},
		{"b", Identity{Consumer: "bot"}, false},
		{"c", Identity{Consumer: "bot"}, true},
		{"a", Identity{Consumer: "idle"}, false},
		{"a", Identity{Subject: "nobody"}, false},
		{"a", Identity{}, false},
	} {
		if got := q.Covers("acme", c.tool, c.id, t0); got != c.want {
			t.Errorf("Covers(%s, %+v) = %v, want %v", c.tool, c.id, got, c.want)
		}
	}
	// bot-c expires at midnight.
	if q.Covers("acme", "c", Identity{Consumer: "bot"}, t0.Add(2*time.Second)) {
		t.Error("expired subscription still covers")
	}
	// Covers counts nothing; a used-up quota is still covered.
	for range 3 {
		if d := q.Decide("acme", "a", Identity{Consumer: "shop"}, t0); d.Verdict != Admit {
			t.Fatalf("decide: %+v", d)
		}
	}
	if d := q.Decide("acme", "a", Identity{Consumer: "shop"}, t0); d.Verdict != QuotaExceeded {
		t.Fatalf("fourth call: %+v", d)
	}
	if !q.Covers("acme", "a", Identity{Consumer: "shop"}, t0) {
		t.Error("a used-up quota hides the tool")
	}
}
