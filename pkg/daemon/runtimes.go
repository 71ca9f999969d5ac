package daemon

import (
	"fmt"
	"net/netip"
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
	d.metrics.MustRegister(dp.stats.Collector())
	keys, err := newKeyService(d, dp.auth)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	dp.keys = keys
	dp.proxy = proxy.New(proxy.Options{
		Listen:    d.cfg.Listen,
		Log:       d.log.With("component", "proxy"),
		Auth:      dp.auth,
		Limiter:   dp.limiter,
		Stats:     dp.stats,
		OnEvent:   d.Emit,
		OnReject:  func(netip.Addr) {},
		AccessLog: os.Stderr,
	})
	ident := newIdentityRuntime(dp.auth, d.resourceURL, d.log.With("component", "identity"))
	return []Runtime{ident, dp.proxy, &limiterRuntime{l: dp.limiter}}, nil
}

// resourceURL is the gateway's MCP resource URL, the default token audience.
func (d *Daemon) resourceURL() string {
	if gw := d.State().Gateway(); gw.MCP != nil && gw.MCP.Resource != "" {
		return gw.MCP.Resource
	}
	return "http://" + d.cfg.Listen + "/mcp"
}
