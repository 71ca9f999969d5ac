package stats

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// TestStreamMatchesSampler runs the streamer and Sampler side by side
// over random traffic, health flips and reloads of a few hundred tools,
// and wants the same bytes from both at every sample: the caches never
// show a stale entry.
func TestStreamMatchesSampler(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	build := func(rev int64, n int, opName string) []*spec.Object {
		objs := []*spec.Object{scriptTenant("t0"), scriptTenant("t1"), scriptTenant("t2"), scriptTenant("empty")}
		for i := range n {
			ns := fmt.Sprintf("t%d", i%3)
			var ups []spec.WeightedUpstream
			up := fmt.Sprintf("http://10.0.%d.%d", i%4, i%7)
			if i%5 == 0 {
				ups, up = []spec.WeightedUpstream{{URL: up, Weight: 3}, {URL: fmt.Sprintf("http://10.1.0.%d", i%3), Weight: 1}}, ""
			}
			objs = append(objs, scriptTool(ns, fmt.Sprintf("tool-%03d", (i*37)%n), ups, up,
				spec.Operation{Name: "get", Method: "GET", Path: "/x"},
				spec.Operation{Name: opName, Method: "POST", Path: "/y"}))
		}
		plan.SortObjects(objs)
		return objs
	}
	src := &scriptSource{rev: state.New(1, build(1, 300, "put"))}
	reg := telemetry.NewRegistry()
	registerSeries(reg, src.rev)
	health := map[string]bool{}
	o := Options{Source: src, Registry: reg,
		Health: func() map[string]bool { return health },
		XDP:    func() XDPReading { return XDPReading{Mode: "native", Attached: true} }}
	sm, st := NewSampler(o), newStreamer(o)
	now := time.Unix(1_700_000_000, 0)
	for step := range 40 {
		switch step {
		case 15: // more tools, a renamed operation
			src.rev = state.New(2, build(2, 340, "update"))
			registerSeries(reg, src.rev)
		case 25: // fewer
			src.rev = state.New(3, build(3, 200, "update"))
			registerSeries(reg, src.rev)
		case 30: // a series dropped and made again under the same revision
			reg.Retain(telemetry.KindHTTP, map[[2]string]bool{})
			registerSeries(reg, src.rev)
		}
		all := reg.All()
		for range rng.IntN(40) {
			s := all[rng.IntN(len(all))]
			codes := []int{200, 201, 301, 404, 429, 502, 99}
			s.Observe(codes[rng.IntN(len(codes))], time.Duration(rng.IntN(50_000))*time.Microsecond)
			switch rng.IntN(6) {
			case 0:
				s.Limited.Add(1)
			case 1:
				s.UpstreamErrors.Add(1)
			case 2:
				s.Errors.Add(1)
			}
		}
		if step%3 == 0 {
			for range 3 {
				u := fmt.Sprintf("http://10.0.%d.%d", rng.IntN(4), rng.IntN(7))
				if rng.IntN(3) == 0 {
					delete(health, u)
				} else {
					health[u] = rng.IntN(2) == 0
				}
			}
		}
		now = now.Add(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
		want := encodeSample(t, sm.Sample(now))
		got, err := st.sample(now)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("step %d: streamer differs from Sampler:\n got: %s\nwant: %s", step, got, want)
		}
	}
}

// TestStreamReload checks that the sample after a reload shows the
// revision's tools: an added tool, a removed one gone, a renamed
// operation under its new MCP name.
func TestStreamReload(t *testing.T) {
	op := func(name string) spec.Operation { return spec.Operation{Name: name, Method: "GET", Path: "/x"} }
	src := &scriptSource{rev: state.New(1, []*spec.Object{scriptTenant("acme"),
		scriptTool("acme", "a", nil, "http://a", op("get")),
		scriptTool("acme", "b", nil, "http://b", op("get"))})}
	reg := telemetry.NewRegistry()
	reg.Get(telemetry.KindHTTP, "acme", "a").Observe(200, time.Millisecond)
	reg.Get(telemetry.KindHTTP, "acme", "b")
	reg.Get(telemetry.KindMCP, "acme", "acme__a__get")
	reg.Get(telemetry.KindMCP, "acme", "acme__b__get")
	st := newStreamer(Options{Source: src, Registry: reg})
	now := time.Unix(1_700_000_000, 0)
	sample := func() api.StatsSample {
		now = now.Add(time.Second)
		line, err := st.sample(now)
		if err != nil {
			t.Fatal(err)
		}
		var s api.StatsSample
		if err := json.Unmarshal(line, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	tools := func(s api.StatsSample) (names []string) {
		for _, tl := range s.Tenants[0].Tools {
			names = append(names, fmt.Sprintf("%s:%d", tl.Name, tl.Requests))
		}
		for _, m := range s.MCP {
			names = append(names, m.Name+"="+m.Tool+"/"+m.Operation)
		}
		return names
	}
	sample()
	if got, want := fmt.Sprint(tools(sample())), "[a:1 b:0 acme__a__get=a/get acme__b__get=b/get]"; got != want {
		t.Fatalf("before the reload: %s, want %s", got, want)
	}

	// b goes, c comes, a's operation is renamed.
	src.rev = state.New(2, []*spec.Object{scriptTenant("acme"),
		scriptTool("acme", "a", nil, "http://a", op("fetch")),
		scriptTool("acme", "c", nil, "http://c", op("get"))})
	reg.Get(telemetry.KindHTTP, "acme", "c")
	reg.Get(telemetry.KindMCP, "acme", "acme__a__fetch")
	reg.Get(telemetry.KindMCP, "acme", "acme__c__get")
	reg.Retain(telemetry.KindHTTP, map[[2]string]bool{{"acme", "a"}: true, {"acme", "c"}: true})
	reg.Retain(telemetry.KindMCP, map[[2]string]bool{{"acme", "acme__a__fetch"}: true, {"acme", "acme__c__get"}: true})
	s := sample()
	if got, want := fmt.Sprint(tools(s)), "[a:1 c:0 acme__a__fetch=a/fetch acme__c__get=c/get]"; got != want || s.Revision != 2 {
		t.Fatalf("after the reload: revision %d %s, want 2 %s", s.Revision, got, want)
	}

	// A revision that only renames the operation again, with no series
	// change: the MCP map follows the revision, not only the registry.
	src.rev = state.New(3, []*spec.Object{scriptTenant("acme"),
		scriptTool("acme", "a", nil, "http://a", spec.Operation{Name: "read", Method: "GET", Path: "/x", MCPName: "acme__a__fetch"}),
		scriptTool("acme", "c", nil, "http://c", op("get"))})
	if got, want := fmt.Sprint(tools(sample())), "[a:1 c:0 acme__a__fetch=a/read acme__c__get=c/get]"; got != want {
		t.Fatalf("after renaming an operation: %s, want %s", got, want)
	}
}
