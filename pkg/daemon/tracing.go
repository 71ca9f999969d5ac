package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// tracingRuntime configures the daemon's one Tracer from each revision's
// Gateway spec.tracing (docs/tracing.md): Prepare validates the
// configuration, reads its secret headers and builds the exporter; the
// swap installs it atomically (spans in flight finish on the old one).
// The Tracer is shared by the runtimes that record spans (MCP today).
type tracingRuntime struct {
	tr *tracing.Tracer
}

func newTracingRuntime(log *slog.Logger) *tracingRuntime {
	return &tracingRuntime{tr: tracing.New(log.With("component", "tracing"))}
}

func (r *tracingRuntime) Name() string { return "tracing" }

func (r *tracingRuntime) Prepare(st *state.Revision) (func(), error) {
	cfg, err := tracingConfig(st.Gateway())
	if err != nil {
		return nil, err
	}
	swap, err := r.tr.Prepare(cfg)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return swap, nil
}

func (r *tracingRuntime) Start(context.Context) error { return nil }

func (r *tracingRuntime) Stop(ctx context.Context) error { return r.tr.Stop(ctx) }

func (r *tracingRuntime) Status() api.Component {
	s := r.tr.Status()
	if !s.Enabled {
		return api.Component{Name: "tracing", State: "off", Detail: "off (Gateway spec.tracing)"}
	}
	c := api.Component{Name: "tracing", State: "ok",
		Detail: fmt.Sprintf("OTLP/HTTP to %s, sample ratio %g, accept %s; %d spans exported, %d failed", s.Endpoint, s.SampleRatio, s.Accept, s.Exported, s.Failed),
		Data:   map[string]any{"exported": s.Exported, "failed": s.Failed}}
	if s.LastError != "" {
		c.State = "degraded"
		c.Detail += "; last error: " + s.LastError
	}
	return c
}

// tracingConfig maps the Gateway's spec.tracing (defaulted by pkg/spec)
// onto the tracer's configuration: headers with a value or a secretRef,
// trustedClients (else the Gateway's trustedProxies) as prefixes.
func tracingConfig(gw *spec.GatewaySpec) (tracing.Config, error) {
	t := gw.Tracing
	if t == nil || !t.Enabled {
		return tracing.Config{}, nil
	}
	cfg := tracing.Config{Enabled: true, Endpoint: t.Endpoint, SampleRatio: 1, Accept: t.Accept,
		ServiceName: t.ServiceName, ServiceVersion: version.Version, ResourceAttributes: t.ResourceAttributes,
		Compression: t.Compression, CAFile: t.CAFile, ExportTimeout: t.ExportTimeout.D(), BatchTimeout: t.BatchTimeout.D(),
		QueueSize: t.QueueSize, DrainTimeout: t.DrainTimeout.D()}
	if t.SampleRatio != nil {
		cfg.SampleRatio = *t.SampleRatio
	}
	for _, h := range t.Headers {
		if h.SecretRef != nil {
			if cfg.SecretHeaders == nil {
				cfg.SecretHeaders = map[string]spec.SecretRef{}
			}
			cfg.SecretHeaders[h.Name] = *h.SecretRef
			continue
		}
		if cfg.Headers == nil {
			cfg.Headers = map[string]string{}
		}
		cfg.Headers[h.Name] = h.Value
	}
	trusted := t.TrustedClients
	if len(trusted) == 0 {
		trusted = gw.TrustedProxies
	}
	for _, s := range trusted {
		p, err := parsePrefix(s)
		if err != nil {
			return tracing.Config{}, fmt.Errorf("tracing: trusted client %q: %w", s, err)
		}
		cfg.Trusted = append(cfg.Trusted, p)
	}
	return cfg, nil
}

// parsePrefix accepts a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
