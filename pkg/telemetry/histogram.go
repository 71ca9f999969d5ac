// Package telemetry keeps stoad's request statistics: lock-free counters
// and latency histograms per (tenant, tool), updated on the hot path with a
// few atomic adds, read by the Prometheus collector on scrape and by the
// live stats stream (stoa top, stoa dashboard) once a second.
package telemetry

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Latency histogram layout: log-linear buckets over microseconds, four
// sub-buckets per power of two (≤ 19% relative error), from 1µs to about
// 2^27µs (134 s); slower requests land in the last bucket.
const (
	subBits    = 2
	subBuckets = 1 << subBits
	maxPow     = 27
	NumBuckets = (maxPow+1)*subBuckets + 1
)

// Histogram is a fixed-bucket latency histogram safe for concurrent use.
// Observe is wait-free and does not allocate.
type Histogram struct {
	counts [NumBuckets]atomic.Uint64
	sum    atomic.Uint64 // microseconds
}

// bucketOf returns the bucket index for us microseconds.
func bucketOf(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	p := bits.Len64(us) - 1 // us in [2^p, 2^(p+1))
	if p > maxPow {
		return NumBuckets - 1
	}
	sub := (us >> (p - subBits)) & (subBuckets - 1)
	return (p-subBits+1)*subBuckets + int(sub)
}

// UpperBound returns bucket i's upper bound (exclusive) in microseconds.
func UpperBound(i int) float64 {
	if i >= NumBuckets-1 {
		return math.Inf(1)
	}
	if i < subBuckets {
		return float64(i + 1)
	}
	p := i/subBuckets + subBits - 1
	sub := i % subBuckets
	return float64(uint64(1)<<p) + float64(sub+1)*float64(uint64(1)<<(p-subBits))
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[bucketOf(us)].Add(1)
	h.sum.Add(us)
}

// cumulative fills cum with the cumulative counts at the exported bucket
// bounds (promIdx) and, in cum[numLE], the total; it returns the sum in
// microseconds. Like Snapshot, each bucket is read atomically.
func (h *Histogram) cumulative(cum *[numLE + 1]uint64) (sumUS uint64) {
	var c uint64
	j := 0
	for i := range h.counts {
		c += h.counts[i].Load()
		if j < numLE && i == promIdx[j] {
			cum[j] = c
			j++
		}
	}
	cum[numLE] = c
	return h.sum.Load()
}

// HistogramSnapshot is a point-in-time copy of a histogram.
type HistogramSnapshot struct {
	Counts [NumBuckets]uint64
	SumUS  uint64
}

// Snapshot copies the counts (each bucket atomically; the whole only
// approximately, which is what scraping needs).
func (h *Histogram) Snapshot() HistogramSnapshot {
	var s HistogramSnapshot
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.SumUS = h.sum.Load()
	return s
}

// Count is the number of observations.
func (s *HistogramSnapshot) Count() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// Sub returns s minus an earlier snapshot of the same histogram (the
// observations in between).
func (s HistogramSnapshot) Sub(prev HistogramSnapshot) HistogramSnapshot {
	var d HistogramSnapshot
	for i := range s.Counts {
		d.Counts[i] = s.Counts[i] - prev.Counts[i]
	}
	d.SumUS = s.SumUS - prev.SumUS
	return d
}

// Quantile estimates the q-quantile (0..1) as a duration, interpolating
// linearly inside the bucket. It returns 0 for an empty histogram.
func (s *HistogramSnapshot) Quantile(q float64) time.Duration {
	total := s.Count()
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen float64
	for i, c := range s.Counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			lo := 0.0
			if i > 0 {
				lo = UpperBound(i - 1)
			}
			hi := UpperBound(i)
			if math.IsInf(hi, 1) {
				hi = lo * 2
			}
			frac := (rank - seen) / float64(c)
			return time.Duration((lo + (hi-lo)*frac) * float64(time.Microsecond))
		}
		seen += float64(c)
	}
	return time.Duration(UpperBound(NumBuckets-2) * float64(time.Microsecond))
}
