package limitsrt

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descBackend   = prometheus.NewDesc("stoa_limits_backend", "The rate-limit backend in use (1 for the one named).", []string{"backend"}, nil)
	descUp        = prometheus.NewDesc("stoa_limits_redis_up", "1 while the shared limit store answers, 0 while limits are decided by the failure mode.", nil, nil)
	descPeers     = prometheus.NewDesc("stoa_limits_redis_peers", "Live data planes sharing the limits, this one included.", nil, nil)
	descKeys      = prometheus.NewDesc("stoa_limits_redis_leased_keys", "Keys this data plane holds leased tokens for.", nil, nil)
	descTokens    = prometheus.NewDesc("stoa_limits_redis_leased_tokens", "Tokens this data plane holds unspent.", nil, nil)
	descCalls     = prometheus.NewDesc("stoa_limits_redis_calls_total", "Limit script calls to Redis.", nil, nil)
	descSync      = prometheus.NewDesc("stoa_limits_redis_sync_calls_total", "Limit script calls a request waited for.", nil, nil)
	descErrors    = prometheus.NewDesc("stoa_limits_redis_errors_total", "Failed or timed-out calls to Redis.", nil, nil)
	descOutages   = prometheus.NewDesc("stoa_limits_redis_outages_total", "Times Redis was lost.", nil, nil)
	descPublished = prometheus.NewDesc("stoa_limits_blocks_published_total", "Blocks this data plane shared with the fleet.", nil, nil)
	descReceived  = prometheus.NewDesc("stoa_limits_blocks_received_total", "Blocks received from other data planes.", nil, nil)
	descPubErrors = prometheus.NewDesc("stoa_limits_blocks_publish_errors_total", "Failed attempts to share a block (retried until it ends).", nil, nil)
)

// Collector exports the backend's state: which one, and for redis its
// connection, leases and script calls. Counters survive a reload that
// replaces the backend.
func (r *Runtime) Collector() prometheus.Collector { return collector{r} }

type collector struct{ r *Runtime }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBackend, descUp, descPeers, descKeys, descTokens, descCalls, descSync,
		descErrors, descOutages, descPublished, descReceived, descPubErrors} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	r.mu.Lock()
	b, base := r.cur, r.base
	r.mu.Unlock()
	local, redis := 1.0, 0.0
	if b != nil {
		local, redis = 0, 1
	}
	ch <- prometheus.MustNewConstMetric(descBackend, prometheus.GaugeValue, local, "local")
	ch <- prometheus.MustNewConstMetric(descBackend, prometheus.GaugeValue, redis, "redis")
	calls, sync, errs, outages := base.calls, base.syncCalls, base.errors, base.outages
	if b != nil {
		st := b.lim.Status()
		up := 1.0
		if st.State == "down" {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
		ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(st.Peers))
		ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(st.Keys))
		ch <- prometheus.MustNewConstMetric(descTokens, prometheus.GaugeValue, float64(st.Tokens))
		calls, sync, errs, outages = calls+st.Calls, sync+st.SyncCalls, errs+st.Errors, outages+st.Outages
	}
	ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(calls))
	ch <- prometheus.MustNewConstMetric(descSync, prometheus.CounterValue, float64(sync))
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(errs))
	ch <- prometheus.MustNewConstMetric(descOutages, prometheus.CounterValue, float64(outages))
	ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(r.published.Load()))
	ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(r.received.Load()))
	ch <- prometheus.MustNewConstMetric(descPubErrors, prometheus.CounterValue, float64(r.publishErrors.Load()))
}
