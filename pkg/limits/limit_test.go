package limits

import (
	"math"
	"testing"
	"time"
)

func TestLimitFrom(t *testing.T) {
	tests := []struct {
		name      string
		count     int64
		per       time.Duration
		burst     int
		wantBurst int
		wantIV    time.Duration
	}{
		{"100/s default burst", 100, time.Second, 0, 100, 10 * time.Millisecond},
		{"1000/min default burst", 1000, time.Minute, 0, 17, 60 * time.Millisecond},
		{"5/h default burst", 5, time.Hour, 0, 1, 12 * time.Minute},
		{"1/d", 1, 24 * time.Hour, 0, 1, 24 * time.Hour},
		{"3/s rounds to nearest ns", 3, time.Second, 2, 2, 333333333},
		{"2/3ns rounds half up", 2, 3, 1, 1, 2},
		{"explicit burst", 10, time.Second, 50, 50, 100 * time.Millisecond},
		{"faster than 1/ns clamps", 5e9, time.Second, 1, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := LimitFrom(tt.count, tt.per, tt.burst)
			if l.Burst != tt.wantBurst {
				t.Errorf("burst = %d, want %d", l.Burst, tt.wantBurst)
			}
			if got := l.Interval(); got != tt.wantIV {
				t.Errorf("interval = %v, want %v", got, tt.wantIV)
			}
			if l.Count != tt.count || l.Period != tt.per {
				t.Errorf("count/period = %d/%v, want %d/%v", l.Count, l.Period, tt.count, tt.per)
			}
			if want := float64(tt.count) / tt.per.Seconds(); math.Abs(l.Rate-want) > want*1e-12 {
				t.Errorf("rate = %v, want %v", l.Rate, want)
			}
		})
	}
}

func TestLimitZero(t *testing.T) {
	for _, l := range []Limit{{}, LimitFrom(0, time.Second, 5), LimitFrom(5, 0, 5), {Rate: math.NaN()}, {Rate: -1}} {
		if !l.IsZero() {
			t.Errorf("%+v: IsZero = false", l)
		}
		if l.Interval() != 0 {
			t.Errorf("%+v: Interval = %v", l, l.Interval())
		}
	}
	if (Limit{Rate: 2}).IsZero() {
		t.Error("Rate-only limit is zero")
	}
}

func TestLimitRateOnly(t *testing.T) {
	p, ok := Limit{Rate: 4, Burst: 3}.params()
	if !ok || p.iv != int64(250*time.Millisecond) || p.burst != 3 || p.count != 4 {
		t.Fatalf("params = %+v, %v", p, ok)
	}
	p, _ = Limit{Rate: 1e-30}.params()
	if p.iv != maxInterval || p.burst != 1 || p.count != 1 {
		t.Fatalf("tiny rate params = %+v", p)
	}
	p, _ = Limit{Rate: math.Inf(1), Burst: math.MaxInt}.params()
	if p.iv != 1 || p.cap > maxCapacity || p.burst < 1 {
		t.Fatalf("infinite rate params = %+v", p)
	}
}

func TestDecide(t *testing.T) {
	p, _ := LimitFrom(10, time.Second, 5).params() // iv 100ms, cap 500ms
	ms := int64(time.Millisecond)
	now := 1000 * ms
	tests := []struct {
		name    string
		tat     int64
		n       int64
		allowed bool
		rem     int64
		reset   time.Duration
		retry   time.Duration
		newTat  int64
		write   bool
		changed bool
	}{
		{"new key", 0, 1, true, 4, 100 * time.Millisecond, 0, now + 100*ms, true, false},
		{"full bucket, all of it", now - 5*ms, 5, true, 0, 500 * time.Millisecond, 0, now + 500*ms, true, false},
		{"half used", now + 250*ms, 1, true, 1, 350 * time.Millisecond, 0, now + 350*ms, true, false},
		{"exactly one left", now + 400*ms, 1, true, 0, 500 * time.Millisecond, 0, now + 500*ms, true, false},
		{"empty", now + 500*ms, 1, false, 0, 500 * time.Millisecond, 100 * time.Millisecond, now + 500*ms, false, false},
		{"almost one token", now + 401*ms, 1, false, 0, 401 * time.Millisecond, time.Millisecond, now + 401*ms, false, false},
		{"two of one left", now + 400*ms, 2, false, 1, 400 * time.Millisecond, 100 * time.Millisecond, now + 400*ms, false, false},
		{"more than burst", 0, 6, false, 5, 0, 100 * time.Millisecond, 0, false, false},
		{"debt beyond cap, limit unchanged: an old clock reading", now + 10_000*ms, 1, false, 0, 500 * time.Millisecond, 100 * time.Millisecond, now + 10_000*ms, false, false},
		{"debt beyond cap (limit changed): clamp sticks", now + 10_000*ms, 1, false, 0, 500 * time.Millisecond, 100 * time.Millisecond, now + 500*ms, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, nt, write := p.decide(tt.tat, now, tt.n, tt.changed)
			if d.Allowed != tt.allowed || d.Remaining != tt.rem || d.Reset != tt.reset || d.RetryAfter != tt.retry || d.Limit != 10 {
				t.Errorf("decision = %+v, want allowed %v remaining %d reset %v retry %v limit 10",
					d, tt.allowed, tt.rem, tt.reset, tt.retry)
			}
			if nt != tt.newTat || write != tt.write {
				t.Errorf("new TAT = %d, %v, want %d, %v", nt, write, tt.newTat, tt.write)
			}
		})
	}
}
