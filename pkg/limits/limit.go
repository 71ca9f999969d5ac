package limits

import (
	"math"
	"math/bits"
	"time"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Limit is a sustained rate with a burst. Build it with LimitFrom from the
// spec's "N/period" and burst; the zero Limit means "no limit".
//
// The emission interval (the time one request costs) is Period/Count when
// both are set — integer nanoseconds, rounded to nearest — and otherwise
// 1s/Rate. It is at least 1ns (rates above 1e9/s behave as 1e9/s) and at
// most 2^56ns (about 2.3 years). Burst is how many requests a full bucket admits at
// once; values below 1 mean 1.
//
// When the Limit of a key changes between calls (config reload), the key's
// state carries over: its debt, measured in time (how long until its bucket
// is full again), clamped to the new bucket's capacity (Burst × interval),
// and the clamp is stored. So a key never waits longer than the new limit
// alone could make it wait — an old 1/d limit leaves no day-long lockout
// once loosened — and a tightened limit never hands out more than a fresh
// bucket of the new limit: debt already run up counts against it.
type Limit struct {
	// Rate is the sustained rate in requests per second.
	Rate float64
	// Burst is how many requests a full bucket admits at once (≥1).
	Burst int
	// Period is the written unit (1s, 1m, 1h, 24h); with Count it gives the
	// exact emission interval and the RateLimit-Limit value.
	Period time.Duration
	// Count is N in "N per Period"; reported as RateLimit-Limit.
	Count int64
}

// LimitFrom returns the limit "count per period" with the given burst. A
// burst ≤ 0 takes the spec's default: the rate per second rounded up, at
// least 1 (100/s → 100, 1000/min → 17, 5/h → 1). A count or period ≤ 0
// gives the zero Limit, which limits nothing; spec validation rejects such
// rates before they get here.
func LimitFrom(count int64, per time.Duration, burst int) Limit {
	if count <= 0 || per <= 0 {
		return Limit{}
	}
	rate := float64(count) / per.Seconds()
	if burst <= 0 {
		burst = 1
		if r := math.Ceil(rate); r > 1 {
			burst = int(min(r, float64(maxBurst)))
		}
	}
	return Limit{Rate: rate, Burst: burst, Period: per, Count: count}
}

// FromRate returns the limit a spec sets: its rate (parsed when the spec
// was decoded) with the burst in force (spec.RateLimit.EffectiveBurst).
// Nil or an unset rate gives the zero Limit. Every runtime builds its
// limits here, so the proxy, MCP and the daemon cannot disagree.
func FromRate(r *spec.RateLimit) Limit {
	if r.IsZero() {
		return Limit{}
	}
	return LimitFrom(r.Rate.Count(), r.Rate.Per(), r.EffectiveBurst())
}

// IsZero reports whether l limits nothing.
func (l Limit) IsZero() bool { return !(l.Count > 0 && l.Period > 0) && !(l.Rate > 0) }

// Interval returns the emission interval: the time one request costs, and
// the time between requests at the sustained rate. It is 0 for the zero
// Limit.
func (l Limit) Interval() time.Duration {
	p, ok := l.params()
	if !ok {
		return 0
	}
	return time.Duration(p.iv)
}

// Bounds that keep every sum and product below 2^62 so that now+debt fits
// in an int64 for any clock reading below 2^62 ns (146 years).
const (
	maxInterval = int64(1) << 56 // ≈ 2.3 years per request
	maxCapacity = int64(1) << 60 // ≈ 36.5 years of debt
	maxBurst    = int64(1) << 40
	maxClock    = int64(1) << 62
)

// params is a Limit reduced to integer nanoseconds.
type params struct {
	iv    int64 // emission interval, ns, in [1, maxInterval]
	cap   int64 // bucket capacity in time: burst × iv, ≤ maxCapacity
	burst int64 // requests admitted from a full bucket (≥1)
	count int64 // RateLimit-Limit value
}

// params reduces l; ok is false for the zero (unlimited) Limit. It is a
// handful of integer operations: cheap enough for every call.
func (l Limit) params() (p params, ok bool) {
	switch {
	case l.Count > 0 && l.Period > 0:
		per := int64(l.Period)
		q, r := per/l.Count, per%l.Count
		if r >= l.Count-r { // round to nearest
			q++
		}
		p.iv = q
		p.count = l.Count
	case l.Rate > 0: // false for NaN
		f := 1e9 / l.Rate
		if f >= float64(maxInterval) {
			p.iv = maxInterval
		} else {
			p.iv = int64(f + 0.5)
		}
		p.count = int64(math.Ceil(min(l.Rate, float64(maxBurst))))
	default:
		return params{}, false
	}
	p.iv = max(1, min(p.iv, maxInterval))
	p.burst = max(1, min(int64(l.Burst), maxBurst))
	if hi, lo := bits.Mul64(uint64(p.burst), uint64(p.iv)); hi != 0 || lo > uint64(maxCapacity) {
		p.burst = maxCapacity / p.iv
	}
	p.cap = p.burst * p.iv
	return p, true
}

// decide is GCRA for n requests (n ≥ 1) against stored theoretical arrival
// time tat (0 for a new key) at time now. It returns the decision, the TAT
// to store and whether to store it: when admitted, and when the limit's
// bucket shrank since tat was stored (changed) and tat lies beyond it, so
// that clamping it sticks. All arithmetic stays in [−2^62, 2^62].
//
// GCRA keeps one number per key: TAT, the time at which the key's bucket
// would be full again. debt = TAT − now is how much of the bucket is used,
// in time; a request costs iv and is admitted while debt + n·iv ≤ cap.
func (p params) decide(tat, now int64, n int64, changed bool) (d Decision, newTat int64, write bool) {
	debt := tat - now
	clamped := changed && debt > p.cap
	if clamped {
		tat = now + p.cap
	}
	debt = max(0, min(debt, p.cap))
	d.Limit = p.count
	nd := debt + min(n, p.burst+1)*p.iv // ≤ cap + iv: no overflow
	switch {
	case nd <= p.cap:
		d.Allowed = true
		d.Remaining = (p.cap - nd) / p.iv
		d.Reset = time.Duration(nd)
		return d, max(tat, now) + n*p.iv, true
	case n > p.burst: // never admissible; report when the bucket is full
		d.RetryAfter = time.Duration(max(debt, p.iv))
	default:
		d.RetryAfter = time.Duration(nd - p.cap)
	}
	d.Remaining = (p.cap - debt) / p.iv
	d.Reset = time.Duration(debt)
	return d, tat, clamped
}

// peek reports the state of a bucket without charging it: Allowed and
// RetryAfter say whether one request would be admitted now, Remaining and
// Reset describe the bucket as it is.
func (p params) peek(tat, now int64) Decision {
	debt := max(0, min(tat-now, p.cap))
	d := Decision{
		Allowed:   debt+p.iv <= p.cap,
		Limit:     p.count,
		Remaining: (p.cap - debt) / p.iv,
		Reset:     time.Duration(debt),
	}
	if !d.Allowed {
		d.RetryAfter = time.Duration(debt + p.iv - p.cap)
	}
	return d
}
