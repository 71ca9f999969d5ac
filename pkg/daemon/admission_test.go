package daemon

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/proxy"
	"github.com/stoa-gateway/stoa/pkg/quota"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

func benchObj(kind spec.Kind, ns, name string, s spec.Spec) *spec.Object {
	o := &spec.Object{APIVersion: spec.APIVersion, Kind: kind, Metadata: spec.Metadata{Name: name, Namespace: ns}, Spec: s}
	spec.Default(o)
	return o
}

// admissionState is one API-key tool with a subscription under a plan
// with a (never reached) daily and monthly quota.
func admissionState(upstream string) *state.Revision {
	return state.New(1, []*spec.Object{
		benchObj(spec.KindTenant, "", "acme", &spec.TenantSpec{}),
		benchObj(spec.KindTool, "acme", "api", &spec.ToolSpec{Upstream: upstream, Auth: &spec.ToolAuth{Type: "apiKey"}}),
		benchObj(spec.KindPlan, "acme", "gold", &spec.PlanSpec{Quota: &spec.Quota{Daily: 1 << 50, Monthly: 1 << 51}}),
		benchObj(spec.KindConsumer, "acme", "shop", &spec.ConsumerSpec{}),
		benchObj(spec.KindSubscription, "acme", "sub", &spec.SubscriptionSpec{Consumer: "shop", Plan: "gold", Tool: "api"}),
	})
}

// newAdmission is a quota.Admission on a fresh store with st swapped in.
func newAdmission(b *testing.B, st *state.Revision) *quota.Admission {
	b.Helper()
	db, err := boltstore.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	ad, err := quota.NewAdmission(quota.AdmissionOptions{Store: db, Events: events.NewLog(db, log), Metrics: prometheus.NewRegistry(), Log: log})
	if err != nil {
		b.Fatal(err)
	}
	swap, err := ad.Prepare(st)
	if err != nil {
		b.Fatal(err)
	}
	swap()
	return ad
}

// BenchmarkProxyAdmission serves an API-key request through the whole
// proxy (fasthttp parsing, auth, admission, limits, upstream exchange)
// with and without the Admit hook: the cost of subscriptions and quotas on
// the hot path. The client side is in memory; the upstream is a loopback
// TCP server (the proxy's pools dial real addresses).
func BenchmarkProxyAdmission(b *testing.B) {
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.SetContentType("application/json")
		ctx.Response.SetBodyString(`{"ok":true}`)
	}}
	go up.Serve(upLn) //nolint:errcheck
	b.Cleanup(func() { up.Shutdown() })
	st := admissionState("http://" + upLn.Addr().String())
	key, rec, err := auth.GenerateKey(auth.KeyOptions{Tenant: "acme", Consumer: "shop"})
	if err != nil {
		b.Fatal(err)
	}
	ix, err := auth.NewKeyIndex([]auth.KeyRecord{rec})
	if err != nil {
		b.Fatal(err)
	}
	for _, withAdmit := range []bool{false, true} {
		name := "without-admit"
		if withAdmit {
			name = "with-admit"
		}
		b.Run(name, func(b *testing.B) {
			a := &auth.Authenticator{}
			a.SetKeys(ix)
			front := fasthttputil.NewInmemoryListener()
			opts := proxy.Options{Listen: "127.0.0.1:0", Auth: a, Limiter: limits.New(limits.Options{}), Stats: telemetry.NewRegistry(),
				WrapListener: func(tcp net.Listener) net.Listener { tcp.Close(); return front }}
			if withAdmit {
				// As DefaultRuntimes wires it.
				ad := newAdmission(b, st)
				opts.Admit = func(tenant, tool string, p *auth.Principal, now time.Time) *proxy.Rejection {
					return (*proxy.Rejection)(ad.Check(tenant, tool, p, now))
				}
			}
			p := proxy.New(opts)
			swap, err := p.Prepare(st)
			if err != nil {
				b.Fatal(err)
			}
			swap()
			if err := p.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				p.Stop(ctx)
			}()
			client := &fasthttp.HostClient{Addr: "gw", Dial: func(string) (net.Conn, error) { return front.Dial() }}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://gw/acme/api/v1/items/42")
			req.Header.Set("X-Api-Key", key)
			for i := 0; i < 200; i++ {
				if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					b.Fatalf("warm-up: %v %d %s", err, resp.StatusCode(), resp.Body())
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := client.Do(req, resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
