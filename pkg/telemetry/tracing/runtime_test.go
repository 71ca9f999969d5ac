package tracing

import (
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

// TestConfigFromSpec: headers split by value and secret, trusted clients
// from spec.tracing or else the Gateway's trusted proxies (an address is
// a one-address prefix), the sample ratio as given.
func TestConfigFromSpec(t *testing.T) {
	ratio := 0.25
	tr := &spec.Tracing{Enabled: true, Endpoint: "http://c:4318", SampleRatio: &ratio,
		Headers: []spec.NamedValue{{Name: "X-Scope", Value: "a"}, {Name: "Authorization", SecretRef: &spec.SecretRef{Env: "T"}}}}
	c := ConfigFromSpec(tr, []string{"10.0.0.0/8", "192.0.2.7"}, "1.2.3")
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	if !reflect.DeepEqual(c.Trusted, want) || c.SampleRatio != 0.25 || c.ServiceVersion != "1.2.3" ||
		c.Headers["X-Scope"] != "a" || c.SecretHeaders["Authorization"].Env != "T" || len(c.Headers) != 1 {
		t.Errorf("config %+v", c)
	}
	tr.TrustedClients = []string{"203.0.113.0/24"}
	if c := ConfigFromSpec(tr, []string{"10.0.0.0/8"}, ""); len(c.Trusted) != 1 || c.Trusted[0].String() != "203.0.113.0/24" {
		t.Errorf("trustedClients do not replace trustedProxies: %v", c.Trusted)
	}
	if c := ConfigFromSpec(nil, nil, ""); c.Enabled {
		t.Error("no spec.tracing is on")
	}
}

// TestRuntimeFollowsRevisions: the runtime turns tracing on, off and on
// again with the revisions, and reports it.
func TestRuntimeFollowsRevisions(t *testing.T) {
	col := otlptest.NewServer(t)
	rt := &Runtime{Tracer: New(slog.New(slog.DiscardHandler)), Version: "test"}
	rev := func(n int64, tr *spec.Tracing) *state.Revision {
		o := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindGateway, Metadata: spec.Metadata{Name: "default"},
			Spec: &spec.GatewaySpec{Tracing: tr}}
		return state.New(n, []*spec.Object{o})
	}
	apply := func(r *state.Revision) {
		t.Helper()
		swap, err := rt.Prepare(r)
		if err != nil {
			t.Fatal(err)
		}
		swap()
	}
	one := 1.0
	apply(rev(1, &spec.Tracing{Enabled: true, Endpoint: col.Endpoint(), SampleRatio: &one}))
	if !rt.Tracer.Enabled() || rt.Status().State != "ok" || !strings.Contains(rt.Status().Detail, col.Endpoint()) {
		t.Fatalf("on: %+v", rt.Status())
	}
	apply(rev(2, nil))
	if rt.Tracer.Enabled() || rt.Status().State != "off" {
		t.Fatalf("off: %+v", rt.Status())
	}
	if _, err := rt.Prepare(rev(3, &spec.Tracing{Enabled: true, Endpoint: "ftp://c"})); err == nil || !strings.Contains(err.Error(), "endpoint") {
		t.Fatalf("a bad endpoint: %v", err)
	}
	if rt.Tracer.Enabled() {
		t.Fatal("a refused revision turned tracing on")
	}
}
