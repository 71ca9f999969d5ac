package daemon

import (
	"fmt"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// TestTracingConfig: the Gateway's spec.tracing maps onto the tracer's
// configuration: off when absent or disabled, value headers and secret
// headers apart, trustedClients (single addresses too), else the
// Gateway's trustedProxies.
func TestTracingConfig(t *testing.T) {
	if cfg, err := tracingConfig(&spec.GatewaySpec{}); err != nil || cfg.Enabled {
		t.Errorf("no tracing: %+v %v", cfg, err)
	}
	ratio := 0.25
	gw := &spec.GatewaySpec{TrustedProxies: []string{"10.0.0.0/8"}, Tracing: &spec.Tracing{
		Enabled: true, Endpoint: "http://collector:4318", SampleRatio: &ratio, Accept: "trusted",
		Headers: []spec.NamedValue{{Name: "X-Scope", Value: "stoa"}, {Name: "Authorization", SecretRef: &spec.SecretRef{Env: "OTEL_TOKEN"}}},
	}}
	cfg, err := tracingConfig(gw)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Enabled || cfg.SampleRatio != 0.25 || cfg.Headers["X-Scope"] != "stoa" || cfg.SecretHeaders["Authorization"].Env != "OTEL_TOKEN" ||
		len(cfg.Headers) != 1 || fmt.Sprint(cfg.Trusted) != "[10.0.0.0/8]" || cfg.ServiceVersion == "" {
		t.Errorf("config %+v", cfg)
	}
	gw.Tracing.TrustedClients = []string{"192.0.2.7", "2001:db8::/32"}
	gw.Tracing.SampleRatio = nil
	cfg, _ = tracingConfig(gw)
	if fmt.Sprint(cfg.Trusted) != "[192.0.2.7/32 2001:db8::/32]" || cfg.SampleRatio != 1 {
		t.Errorf("trustedClients: %v ratio %v", cfg.Trusted, cfg.SampleRatio)
	}
	gw.Tracing.TrustedClients = []string{"not-an-ip"}
	if _, err := tracingConfig(gw); err == nil {
		t.Error("a bad trusted client was accepted")
	}
}
