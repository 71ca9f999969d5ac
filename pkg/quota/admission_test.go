package quota

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

func defaulted(kind spec.Kind, ns, name string, s spec.Spec) *spec.Object {
	o := obj(kind, ns, name, s)
	spec.Default(o)
	return o
}

// admissionState is one API-key tool with a subscription under a plan
// with a daily and a monthly quota.
func admissionState(daily int64) *state.Revision {
	return state.New(1, []*spec.Object{
		defaulted(spec.KindTenant, "", "acme", &spec.TenantSpec{}),
		defaulted(spec.KindTool, "acme", "api", &spec.ToolSpec{Upstream: "http://127.0.0.1:1", Auth: &spec.ToolAuth{Type: "apiKey"}}),
		defaulted(spec.KindPlan, "acme", "gold", &spec.PlanSpec{Quota: &spec.Quota{Daily: daily, Monthly: 1 << 51}}),
		defaulted(spec.KindConsumer, "acme", "shop", &spec.ConsumerSpec{}),
		defaulted(spec.KindSubscription, "acme", "sub", &spec.SubscriptionSpec{Consumer: "shop", Plan: "gold", Tool: "api"}),
	})
}

// TestAdmissionCheckDoesNotAllocate pins the hot-path promise: admitting
// takes no lock and allocates nothing.
func TestAdmissionCheckDoesNotAllocate(t *testing.T) {
	a := &Admission{q: New(Options{})}
	a.q.Swap(a.q.Compile(admissionState(1 << 50)))
	p := &auth.Principal{Method: auth.MethodAPIKey, Tenant: "acme", Consumer: "shop"}
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		if rej := a.Check("acme", "api", p, now); rej != nil {
			t.Fatalf("refused: %+v", rej)
		}
	}); n != 0 {
		t.Fatalf("Check allocates %.1f times per call", n)
	}
	if rej := a.Check("acme", "api", &auth.Principal{Tenant: "acme", Consumer: "nobody"}, now); rej == nil || rej.Code != "no_subscription" {
		t.Fatalf("unsubscribed consumer: %+v", rej)
	}
}

// BenchmarkAdmissionCheck is the Admit hook alone: subscription lookup
// and quota charge for an admitted API-key caller.
func BenchmarkAdmissionCheck(b *testing.B) {
	a := &Admission{q: New(Options{})}
	a.q.Swap(a.q.Compile(admissionState(1 << 50)))
	p := &auth.Principal{Method: auth.MethodAPIKey, Tenant: "acme", Consumer: "shop"}
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if a.Check("acme", "api", p, now) != nil {
			b.Fatal("refused")
		}
	}
}

// TestAdmissionRuntime runs the runtime on a real store: it admits and
// refuses with the gateway's codes, announces the used-up quota as an
// event and the subscription's first state after the reload, and flushes
// the counters (and what AlsoFlush adds) when it stops.
func TestAdmissionRuntime(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	evl := events.NewLog(st, log)
	var alsoFlushed atomic.Int64
	a, err := NewAdmission(AdmissionOptions{Store: st, Events: evl, Metrics: prometheus.NewRegistry(), Log: log,
		AlsoFlush: func() error { alsoFlushed.Add(1); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if c := a.Status(); c.State != "starting" {
		t.Fatalf("status before a revision: %+v", c)
	}
	swap, err := a.Prepare(admissionState(2))
	if err != nil {
		t.Fatal(err)
	}
	swap()
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := &auth.Principal{Method: auth.MethodAPIKey, Tenant: "acme", Consumer: "shop"}
	now := a.Now()
	for i := range 2 {
		if rej := a.Check("acme", "api", p, now); rej != nil {
			t.Fatalf("call %d refused: %+v", i, rej)
		}
	}
	rej := a.Check("acme", "api", p, now)
	if rej == nil || rej.Status != 429 || rej.Code != "quota_exceeded" || rej.RetryAfter <= 0 ||
		!strings.Contains(rej.Message, "daily quota of 2 calls used up (subscription sub, plan gold)") {
		t.Fatalf("third call: %+v", rej)
	}
	if !a.Covers("acme", "api", p) || a.Covers("acme", "api", &auth.Principal{Tenant: "acme", Consumer: "nobody"}) {
		t.Fatal("Covers does not follow the subscriptions")
	}
	if c := a.Status(); c.State != "ok" || c.Detail != "1 subscriptions (1 active)" {
		t.Fatalf("status: %+v", c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := evl.Read(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		types := map[string]bool{}
		for _, e := range evs {
			types[e.Type] = true
		}
		if types["quota.exhausted"] && types["subscription.created"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events: %+v", evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if alsoFlushed.Load() == 0 {
		t.Fatal("Stop did not run AlsoFlush")
	}
	// The counters were flushed.
	var used int64
	err = st.View(context.Background(), func(tx store.Tx) error {
		all, err := tx.Quota().List(context.Background())
		for _, u := range all {
			used += u.DayCount
		}
		return err
	})
	if err != nil || used != 2 {
		t.Fatalf("stored usage %d (%v), want 2", used, err)
	}
}
