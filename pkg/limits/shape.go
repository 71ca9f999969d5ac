package limits

import (
	"math"
	"time"
)

// Shape is a Limit reduced to the integers GCRA works with, exactly as the
// local Limiter reduces it, so that another backend (pkg/limits/redislimit)
// computes the same decisions for the same calls.
type Shape struct {
	// Interval is the emission interval: what one request costs.
	Interval time.Duration
	// Burst is how many requests a full bucket admits (≥ 1).
	Burst int64
	// Capacity is Burst × Interval: the bucket's size measured in time.
	Capacity time.Duration
	// Count is the RateLimit-Limit value.
	Count int64
}

// Shape returns l reduced to integers; ok is false for the zero Limit,
// which limits nothing.
func (l Limit) Shape() (s Shape, ok bool) {
	p, ok := l.params()
	if !ok {
		return Shape{}, false
	}
	return Shape{Interval: time.Duration(p.iv), Burst: p.burst, Capacity: time.Duration(p.cap), Count: p.count}, true
}

// Share returns one of n equal shares of l: the rate divided by n, the
// burst divided by n and rounded up, and the same RateLimit-Limit. n data
// planes enforcing Share(n) each admit about l together when load is
// spread evenly. n ≤ 1 returns l.
func (l Limit) Share(n int) Limit {
	if n <= 1 || l.IsZero() {
		return l
	}
	b := max(1, (l.Burst+n-1)/n)
	if l.Count > 0 && l.Period > 0 {
		per := l.Period * time.Duration(n)
		if per/time.Duration(n) != l.Period { // overflow: fall back to the rate
			return Limit{Rate: l.Rate / float64(n), Burst: b}
		}
		// Count stays, Period grows: the interval is n times longer and
		// RateLimit-Limit still reports the written count.
		return Limit{Rate: l.Rate / float64(n), Burst: b, Period: per, Count: l.Count}
	}
	if math.IsNaN(l.Rate) {
		return l
	}
	return Limit{Rate: l.Rate / float64(n), Burst: b}
}
