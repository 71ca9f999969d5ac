package tracing

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
)

// Runtime applies the Gateway's spec.tracing to a Tracer on every
// revision (state.Runtime): Prepare validates it, reads its secrets and
// builds the exporter; the swap installs it with one atomic store.
type Runtime struct {
	Tracer *Tracer
	// Version is the resource's service.version.
	Version string
}

// ConfigFromSpec maps spec.tracing onto a Config. Trusted is the tracing
// spec's trustedClients, else the Gateway's trustedProxies.
func ConfigFromSpec(tr *spec.Tracing, trustedProxies []string, version string) Config {
	if tr == nil {
		return Config{}
	}
	c := Config{
		Enabled: tr.Enabled, Endpoint: tr.Endpoint, Accept: tr.Accept, ServiceName: tr.ServiceName, ServiceVersion: version,
		ResourceAttributes: tr.ResourceAttributes, Compression: tr.Compression, CAFile: tr.CAFile,
		ExportTimeout: tr.ExportTimeout.D(), BatchTimeout: tr.BatchTimeout.D(), QueueSize: tr.QueueSize, DrainTimeout: tr.DrainTimeout.D(),
	}
	if tr.SampleRatio != nil {
		c.SampleRatio = *tr.SampleRatio
	}
	for _, h := range tr.Headers {
		if h.SecretRef != nil {
			if c.SecretHeaders == nil {
				c.SecretHeaders = map[string]spec.SecretRef{}
			}
			c.SecretHeaders[h.Name] = *h.SecretRef
			continue
		}
		if c.Headers == nil {
			c.Headers = map[string]string{}
		}
		c.Headers[h.Name] = h.Value
	}
	trusted := tr.TrustedClients
	if len(trusted) == 0 {
		trusted = trustedProxies
	}
	for _, s := range trusted {
		if p, err := netip.ParsePrefix(s); err == nil {
			c.Trusted = append(c.Trusted, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			c.Trusted = append(c.Trusted, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return c
}

// Name implements state.Runtime.
func (r *Runtime) Name() string { return "tracing" }

// Prepare implements state.Runtime.
func (r *Runtime) Prepare(rev *state.Revision) (func(), error) {
	gw := rev.Gateway()
	swap, err := r.Tracer.Prepare(ConfigFromSpec(gw.Tracing, gw.TrustedProxies, r.Version))
	if err != nil {
		return nil, fmt.Errorf("prepare tracing: %w", err)
	}
	return swap, nil
}

// Start implements state.Runtime: exporting starts with the first swap.
func (r *Runtime) Start(context.Context) error { return nil }

// Stop turns tracing off and flushes what is queued within ctx.
func (r *Runtime) Stop(ctx context.Context) error { return r.Tracer.Stop(ctx) }

// Collectors are the exporter's counters for stoad's /metrics: spans
// exported, spans whose export failed, and spans dropped because the
// export queue was full.
func (r *Runtime) Collectors() []prometheus.Collector {
	counter := func(name, help string, v func(Status) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(r.Tracer.Status())) })
	}
	return []prometheus.Collector{
		counter("stoa_tracing_spans_exported_total", "Spans sent to the OTLP collector.",
			func(s Status) uint64 { return s.Exported }),
		counter("stoa_tracing_spans_failed_total", "Spans whose export request failed.",
			func(s Status) uint64 { return s.Failed }),
		counter("stoa_tracing_spans_dropped_total", "Spans dropped because the export queue was full (the collector slower than the spans came).",
			func(s Status) uint64 { return s.Dropped }),
	}
}

// Status reports the exporter in `stoa status`: never a header value.
func (r *Runtime) Status() api.Component {
	s := r.Tracer.Status()
	c := api.Component{Name: "tracing", State: "off"}
	if !s.Enabled {
		return c
	}
	c.State = "ok"
	c.Detail = fmt.Sprintf("%s, sampling %g, %d spans exported, %d failed, %d dropped", s.Endpoint, s.SampleRatio, s.Exported, s.Failed, s.Dropped)
	if s.LastError != "" {
		c.State = "degraded"
		c.Detail += ", last error: " + s.LastError
	}
	c.Data = map[string]any{"endpoint": s.Endpoint, "sampleRatio": s.SampleRatio, "accept": s.Accept,
		"exported": s.Exported, "failed": s.Failed, "dropped": s.Dropped, "draining": s.Draining}
	return c
}
