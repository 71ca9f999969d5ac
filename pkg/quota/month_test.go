package quota

import (
	"context"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

// The month includes today whatever the plan meters: a plan with only a
// daily quota, only a monthly one, or none showed "THIS MONTH 0" (or
// "TODAY 0") beside the calls of the other period.
func TestUsageCountsBothPeriods(t *testing.T) {
	day := time.Date(2026, 5, 14, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name           string
		daily, monthly int64
	}{
		{"daily quota only", 100000, 0},
		{"monthly quota only", 0, 100000},
		{"both", 100000, 1000000},
		{"no quota", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var quota *spec.Quota
			if tc.daily > 0 || tc.monthly > 0 {
				quota = &spec.Quota{Daily: tc.daily, Monthly: tc.monthly}
			}
			q := New(Options{})
			load(q, fixture(
				obj(spec.KindPlan, "acme", "p", &spec.PlanSpec{Quota: quota}),
				sub("s", "shop", "p", "a", "", "", "")))
			id := Identity{Consumer: "shop"}
			for i := range 2737 {
				if d := q.Decide("acme", "a", id, day.Add(time.Duration(i)*time.Second)); d.Verdict != Admit {
					t.Fatalf("call %d: %+v", i, d)
				}
			}
			// A call a rate limit then refused is given back in both.
			q.Decide("acme", "a", id, day)
			q.Refund("acme", "a", id, day)
			st := q.Statuses(day.Add(time.Hour))
			if len(st) != 1 || st[0].DailyUsed != 2737 || st[0].MonthlyUsed != 2737 {
				t.Fatalf("today %d, this month %d; want 2737 and 2737", st[0].DailyUsed, st[0].MonthlyUsed)
			}
			// The next day starts at 0; the month goes on.
			next := day.AddDate(0, 0, 1)
			for range 3 {
				q.Decide("acme", "a", id, next)
			}
			st = q.Statuses(next)
			if st[0].DailyUsed != 3 || st[0].MonthlyUsed != 2740 {
				t.Fatalf("next day: today %d, this month %d; want 3 and 2740", st[0].DailyUsed, st[0].MonthlyUsed)
			}
			// And the next month starts afresh.
			if st := q.Statuses(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)); st[0].DailyUsed != 0 || st[0].MonthlyUsed != 0 {
				t.Fatalf("June: %+v", st[0])
			}
		})
	}
}

// Both periods are flushed and restored: the month shown after a restart
// still includes the day's in-memory calls of before it.
func TestUsageBothPeriodsPersist(t *testing.T) {
	dir := t.TempDir()
	s, err := boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := fixture(obj(spec.KindPlan, "acme", "daily", &spec.PlanSpec{Quota: &spec.Quota{Daily: 100000}}),
		sub("s", "shop", "daily", "a", "", "", ""))
	day := time.Date(2026, 5, 14, 9, 0, 0, 0, time.UTC)
	q := New(Options{})
	if err := q.Load(s); err != nil {
		t.Fatal(err)
	}
	load(q, st)
	for range 40 {
		q.Decide("acme", "a", Identity{Consumer: "shop"}, day)
	}
	if _, err := q.Flush(s, day); err != nil {
		t.Fatal(err)
	}
	q2 := New(Options{})
	if err := q2.Load(s); err != nil {
		t.Fatal(err)
	}
	load(q2, st)
	q2.Decide("acme", "a", Identity{Consumer: "shop"}, day)
	if got := q2.Statuses(day)[0]; got.DailyUsed != 41 || got.MonthlyUsed != 41 {
		t.Fatalf("after restart: today %d, this month %d; want 41 and 41", got.DailyUsed, got.MonthlyUsed)
	}
}

// Counters stored before both periods were always counted have a day but
// no month; loading them makes the month include that day.
func TestUsageRestoreOldRecords(t *testing.T) {
	day := time.Date(2026, 5, 14, 9, 0, 0, 0, time.UTC)
	p := periodsAt(day)
	prev := periodsAt(day.AddDate(0, -1, 0))
	for _, tc := range []struct {
		name       string
		rec        Record
		today      time.Time
		wantDay    int64
		wantMonth  int64
		wantStored int64 // MonthCount as flushed back
	}{
		{"day without month", Record{Day: p.day, DayCount: 2737}, day, 2737, 2737, 2737},
		{"day with last month's month", Record{Day: p.day, DayCount: 12, Month: prev.month, MonthCount: 900}, day, 12, 12, 12},
		{"month already counting the day", Record{Day: p.day, DayCount: 12, Month: p.month, MonthCount: 500}, day, 12, 500, 500},
		{"an earlier day of the month", Record{Day: p.day - 3, DayCount: 30}, day, 0, 30, 30},
		{"a day of last month", Record{Day: prev.day, DayCount: 30}, day, 0, 0, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := boltstore.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Update(context.Background(), func(tx store.Tx) error {
				return tx.Quota().Put(context.Background(), "acme/s", tc.rec)
			}); err != nil {
				t.Fatal(err)
			}
			q := New(Options{})
			if err := q.Load(s); err != nil {
				t.Fatal(err)
			}
			load(q, fixture(obj(spec.KindPlan, "acme", "daily", &spec.PlanSpec{Quota: &spec.Quota{Daily: 100000}}),
				sub("s", "shop", "daily", "a", "", "", "")))
			got := q.Statuses(tc.today)[0]
			if got.DailyUsed != tc.wantDay || got.MonthlyUsed != tc.wantMonth {
				t.Fatalf("today %d, this month %d; want %d and %d", got.DailyUsed, got.MonthlyUsed, tc.wantDay, tc.wantMonth)
			}
			q.mu.Lock()
			r := q.usage["acme/s"].record()
			q.mu.Unlock()
			if r.MonthCount != tc.wantStored {
				t.Fatalf("restored record %+v", r)
			}
		})
	}
}
