package localapi

import (
	"encoding/json"
	"net/http"

	"github.com/stoa-gateway/stoa/pkg/api"
)

type statsAPI struct{ s Stats }

// serve answers GET /v1/stats: one sample with rates (waiting up to one
// interval for it), or with ?follow=1 a sample every interval, each
// flushed as it is taken, until the client goes away.
func (s statsAPI) serve(w http.ResponseWriter, r *http.Request, p Peer) error {
	follow := r.URL.Query().Get("follow")
	ch, cancel := s.s.Subscribe()
	defer cancel()
	if follow != "1" && follow != "true" {
		for {
			select {
			case <-r.Context().Done():
				return nil
			case line, ok := <-ch:
				if !ok {
					return apiError(api.CodeUnavailable, "stoad is shutting down", "")
				}
				var s struct {
					IntervalSeconds float64 `json:"intervalSeconds"`
				}
				if json.Unmarshal(line, &s) != nil || s.IntervalSeconds == 0 {
					continue // a stream's first sample has no rates yet
				}
				w.Header().Set("Content-Type", "application/json")
				_, err := w.Write(visibleSample(p, line))
				return err
			}
		}
	}
	out := startNDJSON(w)
	out.Flush()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case line, ok := <-ch:
			if !ok {
				return nil
			}
			if err := out.SendLine(visibleSample(p, line)); err != nil {
				return nil
			}
		}
	}
}

// visibleSample is an encoded sample as a peer that reads only some
// tenants sees it: their rows, totals summed over them (the quantiles of
// the totals are the highest of theirs), the daemon header reduced to
// version and uptime, and no XDP figures.
func visibleSample(p Peer, line []byte) []byte {
	if p.seesAll() {
		return line
	}
	var smp api.StatsSample
	if err := json.Unmarshal(line, &smp); err != nil {
		return []byte("{}\n") // never another tenant's figures
	}
	smp.Daemon = api.DaemonInfo{Version: smp.Daemon.Version, Commit: smp.Daemon.Commit, StartedAt: smp.Daemon.StartedAt,
		UptimeSeconds: smp.Daemon.UptimeSeconds}
	smp.XDP = nil
	tenants := smp.Tenants[:0]
	var tot api.Traffic
	for _, t := range smp.Tenants {
		if !p.sees(t.Name) {
			continue
		}
		tenants = append(tenants, t)
		addTraffic(&tot, t.Total)
	}
	smp.Tenants, smp.Totals = tenants, tot
	mcp := smp.MCP[:0]
	for _, m := range smp.MCP {
		if p.sees(m.Tenant) {
			mcp = append(mcp, m)
		}
	}
	smp.MCP = mcp
	out, err := json.Marshal(smp)
	if err != nil {
		return []byte("{}\n")
	}
	return append(out, '\n')
}

func addTraffic(t *api.Traffic, u api.Traffic) {
	t.Requests += u.Requests
	t.RPS += u.RPS
	t.P50Ms, t.P99Ms = max(t.P50Ms, u.P50Ms), max(t.P99Ms, u.P99Ms)
	t.Codes.S2xx += u.Codes.S2xx
	t.Codes.S3xx += u.Codes.S3xx
	t.Codes.S4xx += u.Codes.S4xx
	t.Codes.S5xx += u.Codes.S5xx
	t.Codes.Other += u.Codes.Other
	t.CodeRates.S2xx += u.CodeRates.S2xx
	t.CodeRates.S3xx += u.CodeRates.S3xx
	t.CodeRates.S4xx += u.CodeRates.S4xx
	t.CodeRates.S5xx += u.CodeRates.S5xx
	t.Limited += u.Limited
	t.LimitedRate += u.LimitedRate
	t.UpstreamErrors += u.UpstreamErrors
	t.Errors += u.Errors
}
