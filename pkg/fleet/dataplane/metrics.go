package dataplane

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	refusals      *prometheus.CounterVec
	applied       *prometheus.CounterVec
	receivedBytes *prometheus.CounterVec
	applyFailures prometheus.Counter
	renewals      prometheus.Counter
	revision      prometheus.Gauge
	connected     prometheus.Gauge
	certExpiry    prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_fleet_bundle_refusals_total",
			Help: "Bundles refused before anything was prepared, by reason (signature, digest, stale, conflict, base, malformed)."}, []string{"reason"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_fleet_bundles_applied_total",
			Help: "Revisions served, by how they arrived (delta, full, disk)."}, []string{"via"}),
		receivedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_fleet_received_bytes_total",
			Help: "Bundle bytes received from the control plane (as sent, compressed), by kind (delta, full)."}, []string{"kind"}),
		applyFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "stoa_fleet_apply_failures_total",
			Help: "Verified revisions the daemon failed to prepare (the previous one stays served)."}),
		renewals: prometheus.NewCounter(prometheus.CounterOpts{Name: "stoa_fleet_certificate_renewals_total",
			Help: "Client certificate renewals."}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stoa_fleet_revision",
			Help: "The revision served."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stoa_fleet_control_plane_connected",
			Help: "1 when the last request to the control plane succeeded, else 0."}),
		certExpiry: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stoa_fleet_certificate_expiry_timestamp_seconds",
			Help: "When the data plane's client certificate expires (Unix time)."}),
	}
}

// Collector returns the data plane's fleet metrics, for the daemon's
// registry.
func (s *Syncer) Collector() prometheus.Collector { return s.metrics }

func (m *metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.refusals, m.applied, m.receivedBytes, m.applyFailures, m.renewals, m.revision, m.connected, m.certExpiry}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
}
