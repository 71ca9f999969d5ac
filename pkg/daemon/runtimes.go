package daemon

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"os"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/proxy"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// Shared data-plane state: one authenticator, one limiter and one stats
// registry serve the proxy and MCP alike.
type dataPlane struct {
	auth    *auth.Authenticator
	limiter *limits.Limiter
	stats   *telemetry.Registry
	proxy   *proxy.Proxy
	keys    *keyService
	mgmt    *mgmtPlane // subscriptions, quotas, snapshots, webhooks, audit (admission_plane.go)
}

// DefaultRuntimes builds the runtimes stoad serves; each is compiled from
// every revision and swapped in transactionally.
func DefaultRuntimes(d *Daemon) ([]Runtime, error) {
	dp := &dataPlane{
		auth:    &auth.Authenticator{},
		limiter: limits.New(limits.Options{IdleTTL: 10 * time.Minute}),
		stats:   telemetry.NewRegistry(),
	}
	d.dp = dp
	d.registerStats() // GET /v1/stats (pkg/daemon/stats.go)
	d.metrics.MustRegister(dp.stats.Collector())
	keys, err := newKeyService(d, dp.auth)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	dp.keys = keys
	xdpRT := newXDPRuntime(d) // pkg/daemon/xdp.go: kernel limiter, escalation, /v1/xdp
	if dp.mgmt, err = newMgmtPlane(d, dp.auth); err != nil {
		return nil, fmt.Errorf("api management: %w", err)
	}
	dp.proxy = proxy.New(proxy.Options{
		Listen:   d.cfg.Listen,
		Log:      d.log.With("component", "proxy"),
		Auth:     dp.auth,
		Limiter:  dp.limiter,
		Stats:    dp.stats,
		OnEvent:  d.Emit,
		OnReject: xdpRT.onReject,
		// The XDP fallback limits connections at accept time while XDP is off.
		WrapListener: xdpRT.wrapListener,
		AccessLog:    os.Stderr,
		Admit:        dp.mgmt.admission.Check,
		Refund:       dp.mgmt.admission.Refund,
		OnFailure:    dp.mgmt.snapshots.OnFailure,
	})
	d.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stoa_http_active_connections", Help: "Open client connections to the proxy listener.",
	}, func() float64 { return float64(dp.proxy.ActiveConnections()) }))
	ident := newIdentityRuntime(dp.auth, d.resourceURL, d.log.With("component", "identity"))
	// MCP mounts on the proxy, so it is built before the proxy starts and
	// swapped after it (its tools call the proxy's routes).
	mcpRT, err := newMCPRuntime(d, dp)
	if err != nil {
		return nil, err
	}
	// xdp before the proxy: the program is attached before the proxy
	// listens, and detached only after the proxy has stopped.
	// API management before the proxy: started before it serves, stopped
	// (flushing quota counters) after it has drained.
	rts := append([]Runtime{ident, xdpRT}, dp.mgmt.runtimes()...)
	return append(rts, dp.proxy, &limiterRuntime{l: dp.limiter}, mcpRT), nil
}

// resourceURL is the gateway's MCP resource URL, the default token audience.
func (d *Daemon) resourceURL() string {
	if gw := d.State().Gateway(); gw.MCP != nil && gw.MCP.Resource != "" {
		return gw.MCP.Resource
	}
	return "http://" + d.cfg.Listen + "/mcp"
}
