package daemon

import (
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/audit"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/auth/identity"
	"github.com/stoa-gateway/stoa/pkg/keys"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/limits/limitsrt"
	"github.com/stoa-gateway/stoa/pkg/localapi"
	"github.com/stoa-gateway/stoa/pkg/mcp/mcprt"
	"github.com/stoa-gateway/stoa/pkg/proxy"
	"github.com/stoa-gateway/stoa/pkg/quota"
	"github.com/stoa-gateway/stoa/pkg/snapshot"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
	"github.com/stoa-gateway/stoa/pkg/telemetry/stats"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
	"github.com/stoa-gateway/stoa/pkg/version"
	"github.com/stoa-gateway/stoa/pkg/webhook"
	"github.com/stoa-gateway/stoa/pkg/xdp/xdprt"
)

// dataPlane is what the proxy and MCP share: one authenticator, one
// limiter and one statistics registry, and the key service that keeps
// the authenticator's keys.
type dataPlane struct {
	auth    *auth.Authenticator
	limiter *limits.Limiter // the local backend
	limits  *limitsrt.Runtime
	stats   *telemetry.Registry
	proxy   *proxy.Proxy
	keys    *keys.Service
	// tracer is shared by the runtimes that record spans; configured by
	// the tracing runtime from the Gateway's spec.tracing.
	tracing *tracing.Runtime
}

// DefaultRuntimes builds the runtimes stoad serves, each compiled from
// every revision and swapped in transactionally, and the LocalAPI
// services they offer. The order is the start order (and the reverse the
// stop order).
func DefaultRuntimes(d *Daemon) ([]state.Runtime, error) {
	dp := &dataPlane{
		auth:    &auth.Authenticator{},
		limiter: limits.New(limits.Options{IdleTTL: 10 * time.Minute}),
		stats:   telemetry.NewRegistry(),
		tracing: &tracing.Runtime{Tracer: tracing.New(d.log.With("component", "tracing")), Version: version.Version},
	}
	d.dp = dp
	d.metrics.MustRegister(dp.stats.Collector())
	d.metrics.MustRegister(dp.tracing.Collectors()...)
	var err error
	if dp.keys, err = keys.New(keys.Options{Store: d.store, Auth: dp.auth, Events: d.events, Log: d.log}); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	xdpRT := xdprt.New(xdprt.Options{Listen: d.cfg.Listen, Events: d.events, Metrics: d.metrics, Log: d.log, Store: d.store})

	// API management: subscriptions and quotas, the audit trail, error
	// snapshots and webhooks.
	admission, err := quota.NewAdmission(quota.AdmissionOptions{Store: d.store, Events: d.events, Metrics: d.metrics, Log: d.log,
		AlsoFlush: dp.keys.FlushUsage})
	if err != nil {
		return nil, fmt.Errorf("api management: %w", err)
	}
	trail, err := audit.NewTrail(audit.TrailOptions{Store: d.store, Events: d.events, Log: d.log,
		Revision: func() int64 { return d.Live().Revision }})
	if err != nil {
		return nil, fmt.Errorf("api management: %w", err)
	}
	snapshots, err := snapshot.NewRuntime(snapshot.RuntimeOptions{Store: d.store, Metrics: d.metrics, Log: d.log,
		Live: d.Live, Audit: trail})
	if err != nil {
		return nil, fmt.Errorf("api management: %w", err)
	}
	webhooks, err := webhook.NewRuntime(webhook.RuntimeOptions{Store: d.store, Events: d.events, Metrics: d.metrics,
		Log: d.log, Audit: trail, AllowPrivate: envTrue("STOAD_WEBHOOK_ALLOW_PRIVATE")})
	if err != nil {
		return nil, fmt.Errorf("api management: %w", err)
	}

	// Rate limits: the local limiter, or Redis shared by the fleet when
	// the Gateway says limits.backend: redis — then quotas and XDP blocks
	// are shared through it too.
	dp.limits = limitsrt.New(limitsrt.Options{Local: dp.limiter, Events: d.events, Log: d.log, Quotas: admission, Blocks: xdpRT})
	d.metrics.MustRegister(dp.limits.Collector())

	dp.proxy = proxy.New(proxy.Options{
		Listen:   d.cfg.Listen,
		Tracer:   dp.tracing.Tracer,
		Log:      d.log.With("component", "proxy"),
		Auth:     dp.auth,
		Limiter:  dp.limits.Checker(),
		Stats:    dp.stats,
		OnEvent:  d.events.Emit,
		OnReject: xdpRT.OnReject,
		// The XDP fallback limits connections at accept time while XDP is off.
		WrapListener: xdpRT.WrapListener,
		AccessLog:    os.Stderr,
		// quota.Refusal has proxy.Rejection's shape: handed over as it is.
		Admit: func(tenant, tool string, p *auth.Principal, now time.Time) *proxy.Rejection {
			return (*proxy.Rejection)(admission.Check(tenant, tool, p, now))
		},
		Refund:    admission.Refund,
		OnFailure: snapshots.OnFailure,
	})
	d.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stoa_http_active_connections", Help: "Open client connections to the proxy listener.",
	}, func() float64 { return float64(dp.proxy.ActiveConnections()) }))
	ident := identity.New(dp.auth, d.resourceURL, d.log.With("component", "identity"))
	// MCP mounts on the proxy, so it is built before the proxy starts and
	// swapped after it (its tools call the proxy's routes).
	mcpRT, err := mcprt.New(mcprt.Options{Store: d.store, Log: d.log, Listen: d.cfg.Listen, Socket: d.cfg.MCPSocket,
		Auth: dp.auth, Proxy: dp.proxy, Stats: dp.stats, Snapshots: snapshots, Admission: admission, Platform: d, Metrics: d.metrics,
		Events: d.events.Emit, Tracer: dp.tracing.Tracer})
	if err != nil {
		return nil, err
	}
	d.services = localapi.Services{Keys: dp.keys, Quotas: admission, Snapshots: snapshots, Webhooks: webhooks, Audit: trail,
		XDP: xdpRT, Stats: stats.NewHub(stats.Options{Source: d, Registry: dp.stats, Health: dp.proxy.UpstreamHealth,
			XDP: xdpRT.XDPStats, Log: d.log})}
	// xdp before the proxy: the program is attached before the proxy
	// listens, and detached only after the proxy has stopped.
	// API management before the proxy: started before it serves, stopped
	// (flushing quota counters) after it has drained.
	// tracing first: configured before anything records spans, stopped
	// last, after the proxy has drained, so the last requests' spans are
	// flushed. The limits runtime before the proxy: its backend is swapped
	// in first, and closed (leased tokens returned) after the proxy drained.
	return []state.Runtime{dp.tracing, ident, xdpRT, admission, trail, snapshots, webhooks, dp.limits, dp.proxy, mcpRT, mcpRT.Federation()}, nil
}

// envTrue reports whether the environment variable name is 1 or true.
func envTrue(name string) bool {
	v := os.Getenv(name)
	return v == "1" || v == "true"
}

// resourceURL is the gateway's MCP resource URL, the default token audience.
func (d *Daemon) resourceURL() string {
	if gw := d.Live().Gateway(); gw.MCP != nil && gw.MCP.Resource != "" {
		return gw.MCP.Resource
	}
	return "http://" + d.cfg.Listen + "/mcp"
}
