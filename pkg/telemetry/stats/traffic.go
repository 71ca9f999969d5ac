package stats

import (
	"math"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// acc accumulates traffic of several series (a tenant's tools).
type acc struct {
	t   api.Traffic
	lat telemetry.HistogramSnapshot
}

func (a *acc) add(t api.Traffic, lat *telemetry.HistogramSnapshot, filled bool) {
	a.t.Requests += t.Requests
	a.t.RPS += t.RPS
	a.t.Codes.S2xx += t.Codes.S2xx
	a.t.Codes.S3xx += t.Codes.S3xx
	a.t.Codes.S4xx += t.Codes.S4xx
	a.t.Codes.S5xx += t.Codes.S5xx
	a.t.Codes.Other += t.Codes.Other
	a.t.CodeRates.S2xx += t.CodeRates.S2xx
	a.t.CodeRates.S3xx += t.CodeRates.S3xx
	a.t.CodeRates.S4xx += t.CodeRates.S4xx
	a.t.CodeRates.S5xx += t.CodeRates.S5xx
	a.t.Limited += t.Limited
	a.t.LimitedRate += t.LimitedRate
	a.t.UpstreamErrors += t.UpstreamErrors
	a.t.Errors += t.Errors
	if filled {
		for i := range lat.Counts {
			a.lat.Counts[i] += lat.Counts[i]
		}
		a.lat.SumUS += lat.SumUS
	}
}

func (a *acc) traffic() api.Traffic { return roundTraffic(a.t, &a.lat, true) }

func round2(f float64) float64 { return math.Round(f*100) / 100 }

func quantileMs(h *telemetry.HistogramSnapshot, q float64) float64 {
	return math.Round(float64(h.Quantile(q))/1e3) / 1e3
}

func roundTraffic(t api.Traffic, lat *telemetry.HistogramSnapshot, filled bool) api.Traffic {
	t.RPS = round2(t.RPS)
	t.LimitedRate = round2(t.LimitedRate)
	t.CodeRates = api.StatusRates{S2xx: round2(t.CodeRates.S2xx), S3xx: round2(t.CodeRates.S3xx), S4xx: round2(t.CodeRates.S4xx), S5xx: round2(t.CodeRates.S5xx)}
	if filled {
		t.P50Ms, t.P99Ms = quantileMs(lat, 0.5), quantileMs(lat, 0.99)
	}
	return t
}

func xdpStats(r XDPReading, prev *XDPReading, dt float64) *api.XDPStats {
	dropped := r.DroppedRate + r.DroppedDeny + r.DroppedBlock
	x := &api.XDPStats{
		Mode: r.Mode, Attached: r.Attached, Fallback: r.Fallback, Reason: r.Reason,
		Passed: r.Passed, Dropped: dropped,
		DroppedBy:      map[string]uint64{"rate": r.DroppedRate, "deny": r.DroppedDeny, "block": r.DroppedBlock},
		Blocks:         r.Blocks,
		TrackedSources: r.TrackedSources,
		TopSources:     r.TopSources,
	}
	if x.Mode == "" {
		x.Mode = "off"
	}
	if prev != nil && dt > 0 {
		pd := prev.DroppedRate + prev.DroppedDeny + prev.DroppedBlock
		if r.Passed >= prev.Passed {
			x.PassedRate = round2(float64(r.Passed-prev.Passed) / dt)
		}
		if dropped >= pd {
			x.DroppedRate = round2(float64(dropped-pd) / dt)
		}
	}
	return x
}
