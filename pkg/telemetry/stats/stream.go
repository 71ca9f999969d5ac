package stats

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"sort"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// streamer builds the stream's encoded samples: byte for byte what
// encoding a Sampler's sample gives, at a cost that follows the tools
// with traffic rather than the catalog. What depends only on the live
// revision and the registry's series (the tools in output order, the MCP
// name -> operation map, the series of each entry) is kept until either
// changes; each tool and MCP tool keeps its encoded entry, reused while
// its counters and upstream health stand still and its rates are zero.
// An idle entry then costs a few atomic loads and a copy. It is not safe
// for concurrent use.
type streamer struct {
	o       Options
	prevAt  time.Time
	prevXDP *XDPReading

	rev     *state.Revision // the view below is of this revision
	regGen  uint64          // and of the registry at this generation
	built   bool
	tools   []toolEntry         // live tools in revision order (the order sums run in)
	tenants []tenantEntry       // by name
	mcp     []seriesEntry       // MCP series by tenant and name
	series  []*telemetry.Series // of tools then mcp (nil: a tool without one)
	cur     []counters          // their counters in this sample
	spans   []span              // their encodings

	encBuf bytes.Buffer
	enc    *json.Encoder
	encErr error
	ups    []api.UpstreamHealth // scratch
	// prevOut is the previous sample, where unchanged entries are copied
	// from (in runs: neighbours that stay neighbours are one copy); fresh
	// holds the entries encoded anew for the sample being built.
	prevOut, fresh []byte
	scratch        []byte // the parts around the entries
	heads          []int  // where each tenant's header ends in scratch
}

// seriesEntry is one series' baseline: its counters and latency at the
// previous sample.
type seriesEntry struct {
	s                     *telemetry.Series // nil: a tool without a series
	tenant, name          string
	tool, op              string // MCP: the operation the name is of
	codes                 [6]uint64
	limited, upErrs, errs uint64
	lat                   *telemetry.HistogramSnapshot // latency at the previous sample; nil: empty
	seen                  bool                         // has a baseline (else counts from zero)
	// quiet: the entry's encoding (its span) was built with no rates and
	// no quantiles, so it holds while the counters and the health stand
	// still.
	quiet bool
}

type toolEntry struct {
	seriesEntry
	ts       *spec.ToolSpec
	tenantIx int     // index in tenants
	health   []uint8 // per upstream at the previous sample: 0 unknown, 1 down, 2 up
}

type tenantEntry struct {
	name  string
	tools []int32 // indexes in tools, by name
	acc   acc
}

func newStreamer(o Options) *streamer {
	sm := &streamer{o: o}
	sm.enc = json.NewEncoder(&sm.encBuf)
	sm.enc.SetEscapeHTML(false)
	return sm
}

// value appends v encoded as the stream's encoder does.
func (sm *streamer) value(out []byte, v any) []byte {
	sm.encBuf.Reset()
	if err := sm.enc.Encode(v); err != nil {
		sm.encErr = err
		return out
	}
	b := sm.encBuf.Bytes()
	return append(out, b[:len(b)-1]...) // without the newline
}

// rebuild derives the view of the revision and the registry's series,
// carrying every series' baseline over.
func (sm *streamer) rebuild(st *state.Revision, regGen uint64) {
	old := make(map[*telemetry.Series]*seriesEntry, len(sm.tools)+len(sm.mcp))
	for i := range sm.tools {
		if e := &sm.tools[i].seriesEntry; e.s != nil {
			old[e.s] = e
		}
	}
	for i := range sm.mcp {
		old[sm.mcp[i].s] = &sm.mcp[i]
	}
	carry := func(s *telemetry.Series) seriesEntry {
		e := seriesEntry{s: s}
		if o := old[s]; o != nil {
			e.codes, e.limited, e.upErrs, e.errs, e.lat, e.seen = o.codes, o.limited, o.upErrs, o.errs, o.lat, o.seen
		}
		return e
	}

	var series []*telemetry.Series
	if sm.o.Registry != nil {
		series = sm.o.Registry.All()
	}
	httpBy := map[[2]string]*telemetry.Series{}
	var mcpSeries []*telemetry.Series
	for _, s := range series {
		switch s.Kind {
		case telemetry.KindHTTP:
			httpBy[[2]string{s.Tenant, s.Name}] = s
		case telemetry.KindMCP:
			mcpSeries = append(mcpSeries, s)
		}
	}

	tenantIdx := map[string]int{}
	var names []string
	tenantOf := func(name string) {
		if _, ok := tenantIdx[name]; !ok {
			tenantIdx[name] = -1
			names = append(names, name)
		}
	}
	for _, o := range st.OfKind(spec.KindTenant) {
		tenantOf(o.Metadata.Name)
	}
	type opRef struct{ tool, op string }
	mcpNames := map[[2]string]opRef{}
	tools := make([]toolEntry, 0, len(sm.tools))
	for _, o := range st.OfKind(spec.KindTool) {
		ts, ok := o.Spec.(*spec.ToolSpec)
		if !ok {
			continue
		}
		ns, name := o.Metadata.Namespace, o.Metadata.Name
		for i := range ts.Operations {
			mcpNames[[2]string{ns, spec.MCPToolName(ns, name, &ts.Operations[i])}] = opRef{name, ts.Operations[i].Name}
		}
		tenantOf(ns)
		var e toolEntry
		if s := httpBy[[2]string{ns, name}]; s != nil {
			e.seriesEntry = carry(s)
		}
		e.seriesEntry.tenant, e.seriesEntry.name = ns, name
		e.ts = ts
		n := len(ts.Upstreams)
		if ts.Upstream != "" {
			n++
		}
		e.health = make([]uint8, n)
		tools = append(tools, e)
	}
	sort.Strings(names)
	tenants := make([]tenantEntry, len(names))
	for i, n := range names {
		tenants[i].name = n
		tenantIdx[n] = i
	}
	for i := range tools {
		ti := tenantIdx[tools[i].seriesEntry.tenant]
		tools[i].tenantIx = ti
		tenants[ti].tools = append(tenants[ti].tools, int32(i))
	}
	for i := range tenants {
		ix := tenants[i].tools
		sort.Slice(ix, func(a, b int) bool { return tools[ix[a]].seriesEntry.name < tools[ix[b]].seriesEntry.name })
	}
	mcp := make([]seriesEntry, len(mcpSeries))
	for i, s := range mcpSeries {
		mcp[i] = carry(s)
		mcp[i].tenant, mcp[i].name = s.Tenant, s.Name
		if ref, ok := mcpNames[[2]string{s.Tenant, s.Name}]; ok {
			mcp[i].tool, mcp[i].op = ref.tool, ref.op
		}
	}
	sm.tools, sm.tenants, sm.mcp = tools, tenants, mcp
	sm.series = make([]*telemetry.Series, 0, len(tools)+len(mcp))
	for i := range tools {
		sm.series = append(sm.series, tools[i].s)
	}
	for i := range mcp {
		sm.series = append(sm.series, mcp[i].s)
	}
	sm.cur = make([]counters, len(sm.series))
	sm.spans = make([]span, len(sm.series))
	sm.rev, sm.regGen, sm.built = st, regGen, true
}

// counters are a series' counters at one instant.
type counters struct {
	codes                 [6]uint64
	limited, upErrs, errs uint64
}

// loadCounters reads every series' counters. Alone in a tight loop, the
// cache misses of 30,000 series scattered over the heap overlap rather
// than queue behind the rest of a sample's work.
func (sm *streamer) loadCounters() {
	cur := sm.cur[:len(sm.series)]
	for i, s := range sm.series {
		if s == nil {
			continue
		}
		c := &cur[i]
		for j := range s.Codes {
			c.codes[j] = s.Codes[j].Load()
		}
		c.limited, c.upErrs, c.errs = s.Limited.Load(), s.UpstreamErrors.Load(), s.Errors.Load()
	}
}

// read takes a series' figures (its counters c) as Sampler.read does. moved is false when
// no counter moved since the previous sample: the traffic then has no
// rates and lat is not filled (the interval's latency is empty).
func (e *seriesEntry) read(c *counters, dt float64, lat *telemetry.HistogramSnapshot) (t api.Traffic, filled, moved bool) {
	s := e.s
	if s == nil {
		return api.Traffic{}, false, false
	}
	codes, limited, upErrs, errs := c.codes, c.limited, c.upErrs, c.errs
	t = api.Traffic{
		Codes:   api.StatusClasses{Other: codes[0] + codes[1], S2xx: codes[2], S3xx: codes[3], S4xx: codes[4], S5xx: codes[5]},
		Limited: limited, UpstreamErrors: upErrs, Errors: errs,
	}
	for _, c := range codes {
		t.Requests += c
	}
	if e.seen && codes == e.codes && limited == e.limited && upErrs == e.upErrs && errs == e.errs {
		return t, false, false
	}
	if !e.seen { // appeared since the last sample: from zero
		e.codes, e.limited, e.upErrs, e.errs, e.lat = [6]uint64{}, 0, 0, 0, nil
	}
	var cur telemetry.HistogramSnapshot
	if t.Requests > 0 {
		cur = s.Latency()
	}
	if dt > 0 {
		var d [6]float64
		for i := range d {
			if codes[i] >= e.codes[i] {
				d[i] = float64(codes[i]-e.codes[i]) / dt
			}
		}
		t.RPS = d[0] + d[1] + d[2] + d[3] + d[4] + d[5]
		t.CodeRates = api.StatusRates{S2xx: d[2], S3xx: d[3], S4xx: d[4], S5xx: d[5]}
		if limited >= e.limited {
			t.LimitedRate = float64(limited-e.limited) / dt
		}
		if e.lat != nil {
			*lat = cur.Sub(*e.lat)
		} else {
			*lat = cur
		}
		filled = true
	}
	e.codes, e.limited, e.upErrs, e.errs, e.seen = codes, limited, upErrs, errs, true
	if t.Requests > 0 {
		if e.lat == nil {
			e.lat = new(telemetry.HistogramSnapshot)
		}
		*e.lat = cur
	} else {
		e.lat = nil
	}
	return t, filled, true
}

// upstreams fills the tool's health per upstream and reports whether it
// changed since the previous sample.
func (e *toolEntry) upstreams(health map[string]bool) bool {
	changed := false
	i := 0
	look := func(url string) {
		var h uint8
		if avail, ok := health[url]; ok {
			h = 1
			if avail {
				h = 2
			}
		}
		if e.health[i] != h {
			e.health[i], changed = h, true
		}
		i++
	}
	if e.ts.Upstream != "" {
		look(e.ts.Upstream)
	}
	for _, u := range e.ts.Upstreams {
		look(u.URL)
	}
	return changed
}

// encodeTool encodes the tool's entry as the stream does.
func (sm *streamer) encodeTool(k int, e *toolEntry, t api.Traffic) {
	ups := sm.ups[:0]
	if e.ts.Upstream != "" {
		ups = append(ups, api.UpstreamHealth{URL: e.ts.Upstream, Weight: 1})
	}
	for _, u := range e.ts.Upstreams {
		ups = append(ups, api.UpstreamHealth{URL: u.URL, Weight: u.Weight})
	}
	known, up := 0, 0
	for i := range ups {
		if h := e.health[i]; h != 0 {
			known++
			ups[i].Available = h == 2
			if h == 2 {
				up++
			}
		}
	}
	health := "degraded"
	switch {
	case known == 0:
		health = "unknown"
	case up == known:
		health = "ok"
	case up == 0:
		health = "down"
	}
	sm.ups = ups
	sm.encodeEntry(k, api.ToolStats{Tenant: e.seriesEntry.tenant, Name: e.seriesEntry.name, Traffic: t, Health: health, Upstreams: ups})
}

// sample builds one encoded sample (an NDJSON line) at now and makes it
// the next baseline.
func (sm *streamer) sample(now time.Time) ([]byte, error) {
	sm.encErr = nil
	st := sm.o.Source.Live()
	status := sm.o.Source.Status()
	var regGen uint64
	if sm.o.Registry != nil {
		regGen = sm.o.Registry.Gen()
	}
	if !sm.built || st != sm.rev || regGen != sm.regGen {
		sm.rebuild(st, regGen)
	}
	daemon := api.DaemonInfo{
		Version: version.Version, Commit: version.Commit, PID: os.Getpid(),
		StartedAt: status.StartedAt, UptimeSeconds: math.Round(now.Sub(status.StartedAt).Seconds()),
		Listeners: status.Listeners,
	}
	for _, c := range status.Components {
		daemon.Components = append(daemon.Components, api.Component{Name: c.Name, State: c.State, Detail: c.Detail})
	}
	dt := 0.0
	if !sm.prevAt.IsZero() {
		dt = now.Sub(sm.prevAt).Seconds()
	}
	var health map[string]bool
	if sm.o.Health != nil {
		health = sm.o.Health()
	}

	sm.loadCounters()
	// Tools in revision order: the sums run in the order Sampler's do.
	var lat telemetry.HistogramSnapshot
	var total acc
	nt := len(sm.tools) // the MCP entries' spans follow the tools'
	for i := range sm.tenants {
		sm.tenants[i].acc = acc{}
	}
	for i := range sm.tools {
		e := &sm.tools[i]
		t, filled, moved := e.read(&sm.cur[i], dt, &lat)
		healthMoved := e.upstreams(health)
		a := &sm.tenants[e.tenantIx].acc
		a.add(t, &lat, filled)
		total.add(t, &lat, filled)
		if moved || healthMoved || !e.quiet || !sm.spans[i].have {
			sm.encodeTool(i, e, roundTraffic(t, &lat, filled))
			e.quiet = !moved || dt == 0
		}
	}
	for i := range sm.mcp {
		e := &sm.mcp[i]
		t, filled, moved := e.read(&sm.cur[nt+i], dt, &lat)
		if moved || !e.quiet || !sm.spans[nt+i].have {
			sm.encodeEntry(nt+i, api.MCPToolStats{Tenant: e.tenant, Name: e.name, Tool: e.tool, Operation: e.op,
				Traffic: roundTraffic(t, &lat, filled)})
			e.quiet = !moved || dt == 0
		}
	}

	// The parts around the entries first, to allocate the sample once at
	// its size.
	sc := sm.scratch[:0]
	sc = append(sc, `{"time":`...)
	sc = sm.value(sc, now.UTC())
	sc = append(sc, `,"intervalSeconds":`...)
	sc = sm.value(sc, math.Round(dt*1000)/1000)
	sc = append(sc, `,"revision":`...)
	sc = sm.value(sc, st.Revision)
	sc = append(sc, `,"daemon":`...)
	sc = sm.value(sc, daemon)
	sc = append(sc, `,"totals":`...)
	sc = sm.value(sc, total.traffic())
	sc = append(sc, `,"tenants":[`...)
	heads := append(sm.heads[:0], len(sc))
	for i := range sm.tenants {
		te := &sm.tenants[i]
		if i > 0 {
			sc = append(sc, ',')
		}
		sc = append(sc, `{"name":`...)
		sc = sm.value(sc, te.name)
		sc = append(sc, `,"total":`...)
		sc = sm.value(sc, te.acc.traffic())
		sc = append(sc, `,"tools":[`...)
		heads = append(heads, len(sc))
	}
	sc = append(sc, `],"mcp":[`...)
	tailAt := len(sc)
	sc = append(sc, ']')
	if sm.o.XDP != nil {
		r := sm.o.XDP()
		sc = append(sc, `,"xdp":`...)
		sc = sm.value(sc, xdpStats(r, sm.prevXDP, dt))
		sm.prevXDP = &r
	}
	sc = append(sc, "}\n"...)
	size := len(sc) + 2*len(sm.tenants)
	for i := range sm.spans {
		size += int(sm.spans[i].n) + 1
	}

	out := append(make([]byte, 0, size), sc[:heads[0]]...)
	for i := range sm.tenants {
		out = append(out, sc[heads[i]:heads[i+1]]...)
		w := runWriter{out: out, prev: sm.prevOut}
		for j, ix := range sm.tenants[i].tools {
			sm.put(&w, int(ix), j == 0)
		}
		out = append(w.done(), "]}"...)
	}
	out = append(out, sc[heads[len(heads)-1]:tailAt]...)
	w := runWriter{out: out, prev: sm.prevOut}
	for i := range sm.mcp {
		sm.put(&w, nt+i, i == 0)
	}
	out = append(w.done(), sc[tailAt:]...)
	sm.scratch, sm.heads = sc, heads
	sm.prevAt = now
	sm.prevOut, sm.fresh = out, sm.fresh[:0]
	if sm.encErr != nil {
		// Some entry is missing from out: build everything anew next time.
		sm.built, sm.prevOut = false, nil
		return nil, sm.encErr
	}
	return out, nil
}

// span is where entry k's encoding lies: in the previous sample (have),
// or, while a sample is built, in fresh when it changed. Apart from the
// entries, so the pass that writes a sample reads 12 bytes an entry.
type span struct {
	off, n      int32
	have, fresh bool
}

// encodeEntry encodes entry k, which changed, into fresh.
func (sm *streamer) encodeEntry(k int, v any) {
	e := &sm.spans[k]
	off := len(sm.fresh)
	sm.fresh = sm.value(sm.fresh, v)
	e.off, e.n, e.fresh = int32(off), int32(len(sm.fresh)-off), true
}

// runWriter appends entries to a sample, copying unchanged ones from the
// previous sample in runs.
type runWriter struct {
	out, prev []byte
	lo, hi    int // pending run prev[lo:hi]
	open      bool
}

func (w *runWriter) flush() {
	if w.open {
		w.out = append(w.out, w.prev[w.lo:w.hi]...)
		w.open = false
	}
}

func (w *runWriter) done() []byte {
	w.flush()
	return w.out
}

// put writes e (after a comma unless first) and records where it lies in
// the sample being built.
func (sm *streamer) put(w *runWriter, k int, first bool) {
	e := &sm.spans[k]
	off, n := int(e.off), int(e.n)
	if !e.fresh && w.open && !first && off == w.hi+1 && w.prev[w.hi] == ',' {
		// The previous neighbour's too: the run grows.
		at := len(w.out) + w.hi - w.lo + 1
		w.hi = off + n
		e.off = int32(at)
		return
	}
	w.flush()
	if !first {
		w.out = append(w.out, ',')
	}
	at := len(w.out)
	if e.fresh {
		w.out = append(w.out, sm.fresh[off:off+n]...)
	} else {
		w.lo, w.hi, w.open = off, off+n, true
	}
	e.off, e.fresh, e.have = int32(at), false, true
}
