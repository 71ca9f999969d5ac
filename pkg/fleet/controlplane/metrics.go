package controlplane

import "github.com/prometheus/client_golang/prometheus"

type serverMetrics struct {
	answers      *prometheus.CounterVec
	sentBytes    *prometheus.CounterVec
	joins        *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	renewals     prometheus.Counter
}

func newServerMetrics() *serverMetrics {
	return &serverMetrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_fleet_watch_answers_total",
			Help: "Answers to data planes' watch requests, by answer (delta, full, not_modified)."}, []string{"answer"}),
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_fleet_sent_bytes_total",
			Help: "Bundle bytes sent to data planes (after compression), by kind (delta, full)."}, []string{"kind"}),
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_fleet_joins_total",
			Help: "Join requests, by result (ok, refused)."}, []string{"result"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_fleet_auth_failures_total",
			Help: "Fleet requests refused for their client certificate, by reason (no_tls, no_certificate, certificate, unknown, revoked, replaced)."}, []string{"reason"}),
		renewals: prometheus.NewCounter(prometheus.CounterOpts{Name: "stoa_fleet_certificate_renewals_total",
			Help: "Data plane certificates renewed."}),
	}
}

func (m *serverMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.answers, m.sentBytes, m.joins, m.authFailures, m.renewals}
}

// Collector returns the control plane's fleet metrics, for the daemon's
// registry.
func (s *Server) Collector() prometheus.Collector { return multi(s.metrics.collectors()) }

// multi is several collectors as one.
type multi []prometheus.Collector

func (m multi) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m {
		c.Describe(ch)
	}
}

func (m multi) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m {
		c.Collect(ch)
	}
}
