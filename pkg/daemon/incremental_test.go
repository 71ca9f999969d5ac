package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// The incremental reload (plan by identity, merged next set, partial
// validation, runtimes reusing what they compiled from unchanged objects)
// must serve exactly what a full reload serves. These tests drive random
// sequences of changes through both and compare what clients observe.

// configGen makes random valid-or-not configurations over a small
// universe of names: 3 tenants, 5 tools, 2 toolsets, 2 plans, 3 consumers
// and 2 subscriptions per tenant.
type configGen struct {
	rng      *rand.Rand
	upstream string
	objs     map[spec.Ref]*spec.Object
	// routes lets tools take custom routes (after the first, valid,
	// configuration).
	routes bool
}

var (
	genTenants   = []string{"t0", "t1", "t2"}
	genTools     = []string{"tool-a", "tool-b", "tool-c", "tool-d", "tool-e"}
	genToolSets  = []string{"set-x", "set-y"}
	genPlans     = []string{"gold", "free"}
	genConsumers = []string{"c1", "c2", "c3"}
	genSubs      = []string{"s1", "s2"}
)

func (g *configGen) pick(names []string) string { return names[g.rng.IntN(len(names))] }

func (g *configGen) rate() *spec.RateLimit {
	// High enough never to refuse a probe (what is refused when would
	// depend on timing); which limit applies shows in RateLimit-Limit.
	return rateOf([]string{"", "1000/s", "2000/s", "90000/min"}[g.rng.IntN(4)])
}

func rateOf(s string) *spec.RateLimit {
	if s == "" {
		return nil
	}
	r := new(spec.RateLimit)
	if err := r.UnmarshalJSON([]byte(strconv.Quote(s))); err != nil {
		panic(err)
	}
	return r
}

func (g *configGen) put(kind spec.Kind, ns, name string, s spec.Spec) {
	o := &spec.Object{APIVersion: spec.APIVersion, Kind: kind, Metadata: spec.Metadata{Name: name, Namespace: ns}, Spec: s}
	spec.Default(o)
	g.objs[o.Ref()] = o
}

func (g *configGen) tool(ns, name string) {
	auth := []string{"none", "apiKey"}[g.rng.IntN(2)]
	ops := []spec.Operation{{Name: "get_item", Method: "GET", Path: "/items/{id}", Description: fmt.Sprintf("Fetch one item (%d).", g.rng.IntN(3))}}
	if g.rng.IntN(2) == 0 {
		ops = append(ops, spec.Operation{Name: "create_item", Method: "POST", Path: "/items", RateLimit: g.rate()})
	}
	ts := &spec.ToolSpec{Protocol: "rest", Description: fmt.Sprintf("Tool %s v%d.", name, g.rng.IntN(4)),
		Upstream: g.upstream + "/" + ns + "/" + name, Auth: &spec.ToolAuth{Type: auth}, RateLimit: g.rate(), Operations: ops}
	if g.routes && g.rng.IntN(6) == 0 {
		// Another tool's route, or one of its own: a conflict with a
		// tool the change leaves alone must be found all the same.
		ts.Route = &spec.Route{PathPrefix: "/" + ns + "/" + g.pick(genTools)}
	}
	g.put(spec.KindTool, ns, name, ts)
}

// step makes one to three random changes: add or modify a Tool, ToolSet,
// Plan, Consumer or Subscription, delete one, or delete a Tenant with
// everything in it. Some leave references dangling: both reloads must
// refuse those alike.
func (g *configGen) step() {
	for range 1 + g.rng.IntN(3) {
		ns := g.pick(genTenants)
		op := g.rng.IntN(14)
		if _, ok := g.objs[spec.Ref{Kind: spec.KindTenant, Name: ns}]; !ok && op < 8 && g.rng.IntN(8) != 0 {
			// Mostly into a tenant that exists (creating it with the
			// object), sometimes not: that must be refused.
			g.put(spec.KindTenant, "", ns, &spec.TenantSpec{})
		}
		switch op {
		case 0:
			g.put(spec.KindTenant, "", ns, &spec.TenantSpec{DisplayName: fmt.Sprintf("Tenant %s v%d", ns, g.rng.IntN(3))})
		case 1, 2, 3, 12, 13:
			g.tool(ns, g.pick(genTools))
		case 4:
			var tools []string
			for _, t := range genTools {
				if g.rng.IntN(3) == 0 {
					tools = append(tools, t)
				}
			}
			if len(tools) == 0 {
				tools = []string{g.pick(genTools)}
			}
			ts := &spec.ToolSetSpec{Tools: tools}
			if r := g.rate(); r != nil || g.rng.IntN(2) == 0 {
				ts.Policies = &spec.ToolSetPolicies{RateLimit: r}
			}
			g.put(spec.KindToolSet, ns, g.pick(genToolSets), ts)
		case 5:
			g.put(spec.KindPlan, ns, g.pick(genPlans), &spec.PlanSpec{RateLimit: rateOf([]string{"500/s", "5000/s", "60000/min"}[g.rng.IntN(3)])})
		case 6:
			g.put(spec.KindConsumer, ns, g.pick(genConsumers), &spec.ConsumerSpec{DisplayName: fmt.Sprintf("Consumer v%d", g.rng.IntN(3))})
		case 7:
			g.put(spec.KindSubscription, ns, g.pick(genSubs), &spec.SubscriptionSpec{Consumer: g.pick(genConsumers), Plan: g.pick(genPlans), ToolSet: g.pick(genToolSets)})
		case 8, 9, 10:
			// Delete one object of the tenant; deleting a Tool usually
			// takes it out of the tenant's ToolSets too.
			var refs []spec.Ref
			for r := range g.objs {
				if r.Namespace == ns {
					refs = append(refs, r)
				}
			}
			if len(refs) == 0 {
				continue
			}
			slices.SortFunc(refs, func(a, b spec.Ref) int { return strings.Compare(a.String(), b.String()) })
			r := refs[g.rng.IntN(len(refs))]
			delete(g.objs, r)
			if r.Kind == spec.KindTool && g.rng.IntN(4) != 0 {
				for _, o := range g.objs {
					if ts, ok := o.Spec.(*spec.ToolSetSpec); ok && o.Metadata.Namespace == ns && slices.Contains(ts.Tools, r.Name) {
						c := *ts
						c.Tools = slices.DeleteFunc(slices.Clone(ts.Tools), func(n string) bool { return n == r.Name })
						if len(c.Tools) == 0 {
							delete(g.objs, o.Ref())
							continue
						}
						g.put(spec.KindToolSet, ns, o.Metadata.Name, &c)
					}
				}
			}
		case 11:
			// A Tenant deleted with everything in it.
			for r := range g.objs {
				if r.Namespace == ns || (r.Kind == spec.KindTenant && r.Name == ns) {
					delete(g.objs, r)
				}
			}
		}
	}
}

// sorted returns the configuration in dependency order.
func (g *configGen) sorted() []*spec.Object {
	out := make([]*spec.Object, 0, len(g.objs))
	for _, o := range g.objs {
		out = append(out, o)
	}
	plan.SortObjects(out)
	return out
}

// fresh returns a copy of o decoded from its canonical encoding, as a
// full bundle hands it over: nothing shared with any revision.
func fresh(t *testing.T, o *spec.Object) *spec.Object {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	c := new(spec.Object)
	if err := c.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	spec.Default(c)
	return c
}

// observed is what clients see of a daemon: every route's answer without
// and with an API key of the tenant, the rate limit it announces, the
// MCP tools and resources, and the keys' states.
func observed(t *testing.T, ld *liveDaemon, mcpSock string) string {
	t.Helper()
	var b strings.Builder
	ctx := context.Background()
	keys, err := ld.c.Keys(ctx, client.KeysOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var kl []string
	for _, k := range keys.Items {
		kl = append(kl, fmt.Sprintf("key %s/%s %s %s", k.Tenant, k.Consumer, k.Name, k.State))
	}
	slices.Sort(kl)
	for _, l := range kl {
		b.WriteString(l + "\n")
	}
	for _, ns := range genTenants {
		secret := ld.apiKeys[ns]
		for _, tool := range genTools {
			creds := []string{""}
			if secret != "" {
				creds = append(creds, secret)
			}
			for _, cred := range creds {
				req, _ := http.NewRequest("GET", ld.proxyURL()+"/"+ns+"/"+tool+"/items/1", nil)
				if cred != "" {
					req.Header.Set("X-Api-Key", cred)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var e struct {
					Error struct{ Code string } `json:"error"`
				}
				_ = json.Unmarshal(body, &e)
				fmt.Fprintf(&b, "GET /%s/%s key=%v: %d %s limit=%s\n", ns, tool, cred != "", resp.StatusCode, e.Error.Code,
					resp.Header.Get("RateLimit-Limit"))
			}
		}
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", mcpSock)
	}}}
	cl := sdk.NewClient(&sdk.Implementation{Name: "incremental-test", Version: "1"}, nil)
	sess, err := cl.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: "http://stoad/mcp", HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("mcp connect: %v", err)
	}
	defer sess.Close()
	for tool, err := range sess.Tools(ctx, nil) {
		if err != nil {
			t.Fatalf("mcp tools/list: %v", err)
		}
		j, _ := json.Marshal(tool)
		b.WriteString("mcp " + string(j) + "\n")
	}
	for res, err := range sess.Resources(ctx, nil) {
		if err != nil {
			t.Fatalf("mcp resources/list: %v", err)
		}
		j, _ := json.Marshal(res)
		b.WriteString("mcp resource " + string(j) + "\n")
	}
	return b.String()
}

// TestIncrementalReloadMatchesFull applies random sequences of changes to
// two daemons: one as a data plane receives deltas (every unchanged object
// is the live revision's own, so everything incremental applies), one with
// every object decoded afresh (nothing can be reused: the full reload).
// After each step both must have accepted or refused alike, and serve
// alike; at the end a daemon started on the final revision from scratch
// must serve the same again.
func TestIncrementalReloadMatchesFull(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("STOA_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d", seed)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }))
	defer up.Close()
	start := func() (*liveDaemon, string) {
		sock := filepath.Join(sockDir(t), "m.sock")
		ld := startDaemon(t, func(c *Config) { c.MCPSocket = sock; c.LogLevel = "warn" })
		ld.apiKeys = map[string]string{}
		return ld, sock
	}
	inc, incSock := start()
	full, fullSock := start()
	g := &configGen{rng: rand.New(rand.NewPCG(seed, 14)), upstream: up.URL, objs: map[spec.Ref]*spec.Object{}}
	for _, ns := range genTenants {
		g.put(spec.KindTenant, "", ns, &spec.TenantSpec{})
		for _, tool := range genTools {
			g.tool(ns, tool)
		}
	}
	g.routes = true
	accepted := map[spec.Ref]*spec.Object{}
	steps := 60
	if testing.Short() {
		steps = 12
	}
	rev, refused := int64(0), 0
	for step := range steps {
		if step > 0 {
			g.step()
		}
		rev++
		next := g.sorted()
		// The data plane's objects: the live one for each object the
		// change left alone, as bundle.Delta.Apply hands them over.
		live := inc.d.Live()
		incObjs := make([]*spec.Object, len(next))
		fullObjs := make([]*spec.Object, len(next))
		for i, o := range next {
			incObjs[i] = fresh(t, o)
			if l := live.Get(o.Ref()); l != nil && accepted[o.Ref()] == o {
				incObjs[i] = l
			}
			fullObjs[i] = fresh(t, o)
		}
		errInc := inc.d.applyBundle(rev, incObjs, "test", "incremental")
		errFull := full.d.applyBundle(rev, fullObjs, "test", "full")
		wantValid := !spec.Validate(fullObjs, spec.ValidateOptions{}).HasErrors()
		if (errInc == nil) != (errFull == nil) || (errFull == nil) != wantValid {
			t.Fatalf("step %d: incremental: %v; full: %v; valid by a full validation: %v", step, errInc, errFull, wantValid)
		}
		if errInc != nil {
			refused++
			// Refused: the generator goes back to what is served.
			g.objs = maps(accepted)
			continue
		}
		accepted = maps(g.objs)
		// A key for each new consumer, on both.
		for _, o := range next {
			if o.Kind != spec.KindConsumer {
				continue
			}
			for _, ld := range []*liveDaemon{inc, full} {
				ks, err := ld.c.Keys(context.Background(), client.KeysOptions{Namespace: o.Metadata.Namespace, Consumer: o.Metadata.Name})
				if err != nil {
					t.Fatal(err)
				}
				if slices.ContainsFunc(ks.Items, func(k api.KeyInfo) bool { return k.State == "active" }) {
					continue
				}
				k, err := ld.c.CreateKey(context.Background(), &api.KeyCreateRequest{Tenant: o.Metadata.Namespace, Consumer: o.Metadata.Name, Name: "k"})
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := ld.apiKeys[o.Metadata.Namespace]; !ok {
					ld.apiKeys[o.Metadata.Namespace] = k.Key
				}
			}
		}
		a, b := observed(t, inc, incSock), observed(t, full, fullSock)
		if a != b {
			t.Fatalf("step %d (revision %d): the incremental reload serves otherwise than the full one:\n%s", step, rev, lineDiff(b, a))
		}
	}
	t.Logf("%d revisions served alike, %d refused alike; %d objects at the end", steps-refused, refused, len(g.objs))
	scratch, scratchSock := start()
	var objs []*spec.Object
	for _, o := range g.sorted() {
		objs = append(objs, fresh(t, o))
	}
	if err := scratch.d.applyBundle(inc.d.Live().Revision, objs, "test", "from scratch"); err != nil {
		t.Fatal(err)
	}
	// Keys live in each daemon's store: compare everything else.
	strip := func(s string) string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, "key ") && !strings.Contains(l, "key=true") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	if a, b := strip(observed(t, inc, incSock)), strip(observed(t, scratch, scratchSock)); a != b {
		t.Fatalf("the final revision, reloaded incrementally, serves otherwise than built from scratch:\n%s", lineDiff(b, a))
	}
}

func maps(m map[spec.Ref]*spec.Object) map[spec.Ref]*spec.Object {
	out := make(map[spec.Ref]*spec.Object, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// lineDiff lists the lines only in want (-) and only in got (+), or both
// whole when they differ only in order or repetition.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "want:\n" + want + "\ngot:\n" + got
	}
	return b.String()
}

// TestIncrementalValidationMatchesFull checks validateNext, which checks
// only what a small change touches, against a full validation of the
// next configuration: the same verdict, over random sequences of changes
// to a valid configuration (validNext's premise: live is valid).
func TestIncrementalValidationMatchesFull(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	g := &configGen{rng: rand.New(rand.NewPCG(seed, 15)), upstream: "http://127.0.0.1:1", objs: map[spec.Ref]*spec.Object{}}
	for _, ns := range genTenants {
		g.put(spec.KindTenant, "", ns, &spec.TenantSpec{})
		for _, tool := range genTools {
			g.tool(ns, tool)
		}
	}
	g.routes = true
	live := g.sorted()
	accepted := maps(g.objs)
	partial, refused := 0, 0
	for range 3000 {
		g.step()
		desired := g.sorted()
		changes, _ := plan.Compute(live, desired, plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }})
		next := plan.Apply(live, changes)
		if !slices.EqualFunc(next, desired, func(a, b *spec.Object) bool { return a.Ref() == b.Ref() && plan.Equal(a, b) }) {
			t.Fatalf("plan.Apply: the next set is not the desired one")
		}
		// The verdict must be the full validation's. The errors may name
		// the other object of a conflict: a full validation blames the
		// one it meets second, a partial one the changed object (and
		// names the other "live").
		got := errorSet(validateNext(live, next, changes))
		want := errorSet(spec.Validate(next, spec.ValidateOptions{}))
		if (got == "") != (want == "") {
			t.Fatalf("changes %v: partial validation\n%s\nfull validation\n%s", refsOf(changes), got, want)
		}
		if _, _, ok := validationScope(live, next, changes); ok {
			partial++
		}
		if want != "" {
			refused++
			g.objs = maps(accepted)
			continue
		}
		live, accepted = next, maps(g.objs)
	}
	t.Logf("%d changes validated partially, %d refused", partial, refused)
	if partial == 0 || refused == 0 {
		t.Fatalf("the generator made %d partial validations and %d refusals: the test checks nothing", partial, refused)
	}
}

func errorSet(diags spec.Diagnostics) string {
	var out []string
	for _, d := range diags.OnlyErrors() {
		out = append(out, fmt.Sprintf("%v %s: %s", d.Object, d.Path, d.Message))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func refsOf(changes []plan.Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, string(c.Op)+" "+c.Ref.String())
	}
	return out
}
