package stats

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/internal/golden"
	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// scriptSource is a daemon whose revision a test replaces, started at a
// fixed instant (the golden holds uptimes).
type scriptSource struct{ rev *state.Revision }

var scriptStart = time.Unix(1_700_000_000, 0).UTC()

func (s *scriptSource) Live() *state.Revision { return s.rev }
func (s *scriptSource) Ready() bool           { return true }
func (s *scriptSource) Status() api.Status {
	return api.Status{StartedAt: scriptStart, Revision: s.rev.Revision, Listeners: []api.Listener{{Name: "proxy", Address: "127.0.0.1:8080"}},
		Components: []api.Component{{Name: "proxy", State: "ok", Detail: "serving"}, {Name: "mcp", State: "ok"}}}
}

func scriptTool(ns, name string, ups []spec.WeightedUpstream, up string, ops ...spec.Operation) *spec.Object {
	return &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool,
		Metadata: spec.Metadata{Name: name, Namespace: ns},
		Spec:     &spec.ToolSpec{Protocol: "rest", Upstream: up, Upstreams: ups, Operations: ops}}
}

func scriptTenant(name string) *spec.Object {
	return &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: name}, Spec: &spec.TenantSpec{}}
}

// streamScript drives a stream through a small daemon's life: traffic on
// some tools and MCP tools, quiet intervals, upstreams going down, and a
// reload that adds a tool, removes one and renames an operation. It calls
// sample at every step and returns the revision-2 objects' source.
func streamScript(t *testing.T, sample func(src *scriptSource, reg *telemetry.Registry, o Options, now time.Time)) {
	t.Helper()
	getOp := spec.Operation{Name: "get_thing", Method: "GET", Path: "/things/{id}"}
	listOp := spec.Operation{Name: "list_things", Method: "GET", Path: "/things", MCPName: "things_list"}
	rev1 := []*spec.Object{
		scriptTenant("acme"), scriptTenant("beta"), scriptTenant("idle"),
		scriptTool("acme", "inventory-api", nil, "http://127.0.0.1:9001/inventory", getOp),
		scriptTool("acme", "billing-api", []spec.WeightedUpstream{{URL: "http://10.0.0.1:80", Weight: 9}, {URL: "http://10.0.0.2:80", Weight: 1}}, "", getOp, listOp),
		scriptTool("beta", "search", nil, "http://127.0.0.1:9002/\"q\"<&>", getOp),
		scriptTool("beta", "old-tool", nil, "http://127.0.0.1:9003", getOp),
	}
	plan.SortObjects(rev1)
	src := &scriptSource{rev: state.New(1, rev1)}
	reg := telemetry.NewRegistry()
	registerSeries(reg, src.rev)
	health := map[string]bool{"http://10.0.0.1:80": true, "http://10.0.0.2:80": true}
	xdp := XDPReading{Mode: "generic", Attached: true, Passed: 10, TopSources: []api.XDPSource{{Addr: "192.0.2.1", Dropped: 3}}}
	o := Options{Source: src, Registry: reg,
		Health: func() map[string]bool { return health },
		XDP:    func() XDPReading { return xdp }}
	now := time.Unix(1_700_000_100, 0)
	step := func(d time.Duration) {
		now = now.Add(d)
		sample(src, reg, o, now)
	}
	http := func(ns, name string) *telemetry.Series { return reg.Get(telemetry.KindHTTP, ns, name) }
	mcp := func(ns, name string) *telemetry.Series { return reg.Get(telemetry.KindMCP, ns, name) }

	http("acme", "billing-api").Observe(200, 3*time.Millisecond) // before the stream
	step(0)
	for i := range 7 {
		http("acme", "billing-api").Observe(200, time.Duration(i+1)*time.Millisecond)
	}
	http("acme", "billing-api").Observe(429, 100*time.Microsecond)
	http("acme", "billing-api").Limited.Add(1)
	http("beta", "search").Observe(502, 40*time.Millisecond)
	http("beta", "search").UpstreamErrors.Add(1)
	mcp("acme", "acme__billing-api__get_thing").Observe(200, 3*time.Millisecond)
	mcp("acme", "things_list").Observe(200, 5*time.Millisecond)
	mcp("acme", "things_list").Errors.Add(1)
	xdp.Passed, xdp.DroppedRate = 40, 6
	step(1500 * time.Millisecond)
	health["http://10.0.0.2:80"] = false
	http("acme", "inventory-api").Observe(301, 7*time.Millisecond)
	step(time.Second)
	step(time.Second) // quiet
	health["http://10.0.0.1:80"] = false
	step(999 * time.Millisecond)

	// Reload: beta/old-tool goes, beta/new-tool comes, billing-api's
	// list_things is renamed (its MCP name with it), acme gets a tool.
	renamed := spec.Operation{Name: "list_all", Method: "GET", Path: "/things"}
	rev2 := []*spec.Object{
		scriptTenant("acme"), scriptTenant("beta"), scriptTenant("idle"),
		scriptTool("acme", "inventory-api", nil, "http://127.0.0.1:9001/inventory", getOp),
		scriptTool("acme", "billing-api", []spec.WeightedUpstream{{URL: "http://10.0.0.1:80", Weight: 9}, {URL: "http://10.0.0.2:80", Weight: 1}}, "", getOp, renamed),
		scriptTool("acme", "audit", nil, "http://10.0.0.2:80", getOp),
		scriptTool("beta", "search", nil, "http://127.0.0.1:9002/\"q\"<&>", getOp),
		scriptTool("beta", "new-tool", nil, "http://127.0.0.1:9004", getOp),
	}
	plan.SortObjects(rev2)
	src.rev = state.New(2, rev2)
	registerSeries(reg, src.rev)
	health["http://10.0.0.1:80"] = true
	http("beta", "new-tool").Observe(200, time.Millisecond)
	mcp("acme", "acme__billing-api__list_all").Observe(200, 2*time.Millisecond)
	step(time.Second)
	http("acme", "audit").Observe(200, 9*time.Millisecond)
	http("acme", "billing-api").Observe(500, 12*time.Millisecond)
	step(time.Second)
	step(time.Second)
}

var pidRE = regexp.MustCompile(`"pid":[0-9]+,`)

// TestStreamGolden checks the stream's bytes against the golden written
// by the sampler before the stream cached anything (base c979455), for
// both the streamer the Hub runs and Sampler: the content and shape of a
// sample do not depend on how it is built.
func TestStreamGolden(t *testing.T) {
	var got, ref bytes.Buffer
	var sm *Sampler
	var st *streamer
	streamScript(t, func(src *scriptSource, reg *telemetry.Registry, o Options, now time.Time) {
		if sm == nil {
			sm, st = NewSampler(o), newStreamer(o)
		}
		line, err := st.sample(now)
		if err != nil {
			t.Fatal(err)
		}
		got.Write(pidRE.ReplaceAll(line, []byte(`"pid":0,`)))
		ref.Write(pidRE.ReplaceAll(encodeSample(t, sm.Sample(now)), []byte(`"pid":0,`)))
	})
	// The reference is checked last, so that -update writes its bytes.
	golden.Check(t, "testdata/stream.golden", got.Bytes())
	golden.Check(t, "testdata/stream.golden", ref.Bytes())
}

// encodeSample encodes a sample as the stream did before it cached.
func encodeSample(t testing.TB, s api.StatsSample) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// registerSeries gives every tool of rev its HTTP series and every
// operation its MCP series, and drops the series of tools rev no longer
// has, as the proxy's and MCP runtime's reloads do.
func registerSeries(reg *telemetry.Registry, rev *state.Revision) {
	keepH, keepM := map[[2]string]bool{}, map[[2]string]bool{}
	for _, o := range rev.OfKind(spec.KindTool) {
		ts := o.Spec.(*spec.ToolSpec)
		ns, name := o.Metadata.Namespace, o.Metadata.Name
		reg.Get(telemetry.KindHTTP, ns, name)
		keepH[[2]string{ns, name}] = true
		for i := range ts.Operations {
			n := spec.MCPToolName(ns, name, &ts.Operations[i])
			reg.Get(telemetry.KindMCP, ns, n)
			keepM[[2]string{ns, n}] = true
		}
	}
	reg.Retain(telemetry.KindHTTP, keepH)
	reg.Retain(telemetry.KindMCP, keepM)
}
