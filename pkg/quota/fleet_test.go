package quota

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// memShared is a Shared in memory, which can be made to fail.
type memShared struct {
	mu   sync.Mutex
	m    map[string]int64
	fail bool
}

func (s *memShared) Add(_ context.Context, keys []string, adds []int64, _ []time.Duration) ([]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return nil, errors.New("store down")
	}
	out := make([]int64, len(keys))
	for i, k := range keys {
		s.m[k] += adds[i]
		out[i] = s.m[k]
	}
	return out, nil
}

// TestSyncSharedCountsTheFleet: two data planes sharing one store admit
// the plan's quota (daily 3, monthly 5) between them, not each; a refund
// is shared too; and a new day starts from the fleet's count for it.
func TestSyncSharedCountsTheFleet(t *testing.T) {
	st := fixture(sub("shop-c", "shop", "free", "c", "", "", ""))
	a, b := New(Options{}), New(Options{})
	load(a, st)
	load(b, st)
	store := &memShared{m: map[string]int64{}}
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	// Two rounds: a plane learns another's calls at its first exchange
	// after that plane's.
	sync := func() {
		t.Helper()
		for range 2 {
			for _, q := range []*Quotas{a, b} {
				if err := q.SyncShared(ctx, store, now); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	id := Identity{Consumer: "shop"}
	verdicts := func(q *Quotas) Verdict { v := q.Decide("acme", "c", id, now).Verdict; sync(); return v }
	got := []Verdict{verdicts(a), verdicts(b), verdicts(a), verdicts(b)}
	if want := []Verdict{Admit, Admit, Admit, QuotaExceeded}; !equalVerdicts(got, want) {
		t.Fatalf("verdicts %v, want %v (daily quota 3 across both)", got, want)
	}
	a.Refund("acme", "c", id, now)
	sync()
	if v := verdicts(b); v != Admit {
		t.Fatalf("after a refund on the other plane: verdict %d", v)
	}
	if store.m["acme/shop-c:day:"+itoa(periodsAt(now).day)] != 3 {
		t.Fatalf("store %v", store.m)
	}
	// Each plane reports the fleet's usage (`stoa get quotas`), not its own.
	for name, q := range map[string]*Quotas{"a": a, "b": b} {
		if s := q.Statuses(now); len(s) != 1 || s[0].DailyUsed != 3 {
			t.Fatalf("plane %s reports %+v, want the fleet's 3 calls", name, s)
		}
	}
	// Next day: 3 of the month's 5 used, across the fleet.
	now = now.Add(24 * time.Hour)
	sync()
	got = []Verdict{verdicts(a), verdicts(b), verdicts(a)}
	if want := []Verdict{Admit, Admit, QuotaExceeded}; !equalVerdicts(got, want) {
		t.Fatalf("next day: %v, want %v (monthly quota 5 across both)", got, want)
	}
}

// TestRunSharedOutage: when the store fails, RunShared reports it, fails
// open with a share (2 planes: half of what was left) or closed
// (Unavailable), and reports the recovery.
func TestRunSharedOutage(t *testing.T) {
	for _, closed := range []bool{false, true} {
		st := fixture(sub("shop-c", "shop", "free", "c", "", "", ""))
		q := New(Options{})
		load(q, st)
		store := &memShared{m: map[string]int64{}, fail: true}
		changed := make(chan error, 8)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = q.RunShared(ctx, store, SharedOptions{Every: 5 * time.Millisecond, Peers: func() int { return 2 }, FailClosed: closed,
				OnChange: func(err error) { changed <- err }})
		}()
		if err := <-changed; err == nil {
			t.Fatal("outage reported as recovery")
		}
		now := time.Now()
		var got []Verdict
		for range 3 {
			got = append(got, q.Decide("acme", "c", Identity{Consumer: "shop"}, now).Verdict)
		}
		want := []Verdict{Admit, QuotaExceeded, QuotaExceeded} // 3 left, 2 planes: 1 here (n + 1·n ≤ 3)
		if closed {
			want = []Verdict{Unavailable, Unavailable, Unavailable}
		}
		if !equalVerdicts(got, want) {
			t.Errorf("closed=%v: %v, want %v", closed, got, want)
		}
		store.mu.Lock()
		store.fail = false
		store.mu.Unlock()
		if err := <-changed; err != nil {
			t.Fatalf("recovery reported as %v", err)
		}
		cancel()
		<-done
	}
}

func equalVerdicts(a, b []Verdict) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
