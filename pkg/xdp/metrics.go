package xdp

import "github.com/prometheus/client_golang/prometheus"

var (
	descPackets = prometheus.NewDesc("stoa_xdp_packets_total",
		"Packets to protected ports judged by the XDP limiter, by action.", []string{"action"}, nil)
	descIgnored = prometheus.NewDesc("stoa_xdp_packets_ignored_total",
		"Packets the XDP limiter passed without judging them, by reason.", []string{"reason"}, nil)
	descSources = prometheus.NewDesc("stoa_xdp_tracked_sources",
		"Sources with a token bucket in the XDP limiter's table.", nil, nil)
	descBlocks = prometheus.NewDesc("stoa_xdp_active_blocks",
		"Timed blocks in force.", nil, nil)
	descAttached = prometheus.NewDesc("stoa_xdp_attached",
		"1 when the XDP program is attached to every configured interface.", nil, nil)
	descFallback = prometheus.NewDesc("stoa_xdp_fallback_connections_total",
		"Connections judged by the userspace fallback limiter (in force while XDP is off), by action.", []string{"action"}, nil)
)

// Collector returns a Prometheus collector for the limiter's counters. Each
// scrape reads the kernel's maps once.
func (l *Limiter) Collector() prometheus.Collector { return collector{l} }

type collector struct{ l *Limiter }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descIgnored, descSources, descBlocks, descAttached, descFallback} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.l.Status()
	counter := func(d *prometheus.Desc, v uint64, label string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label)
	}
	k := st.Counters
	counter(descPackets, k.Passed, "passed")
	counter(descPackets, k.DroppedRate, "dropped_rate")
	counter(descPackets, k.DroppedDeny, "dropped_deny")
	counter(descPackets, k.DroppedBlock, "dropped_block")
	counter(descIgnored, k.Other, "other")
	counter(descIgnored, k.Fragments, "fragment")
	counter(descIgnored, k.Malformed, "malformed")
	f := c.l.fallback.Counters()
	counter(descFallback, f.Passed, "accepted")
	counter(descFallback, f.DroppedRate, "rejected_rate")
	counter(descFallback, f.DroppedDeny, "rejected_deny")
	counter(descFallback, f.DroppedBlock, "rejected_block")
	ch <- prometheus.MustNewConstMetric(descSources, prometheus.GaugeValue, float64(st.TrackedSources))
	ch <- prometheus.MustNewConstMetric(descBlocks, prometheus.GaugeValue, float64(st.Blocks))
	attached := 0.0
	if st.Attached {
		attached = 1
	}
	ch <- prometheus.MustNewConstMetric(descAttached, prometheus.GaugeValue, attached)
}
