package proxy

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/policy/policyrt"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
)

// describeRoutes is what the table's routes enforce, without pointers.
func describeRoutes(tb *table) string {
	var lines []string
	for k, r := range tb.byTool {
		var ups []string
		if r.upstreams != nil {
			for _, u := range r.upstreams.members {
				ups = append(ups, u.key)
			}
		}
		pol := r.policy != nil
		lines = append(lines, fmt.Sprintf("%v host=%q prefix=%q susp=%v fed=%v auth=%+v tenantLimit=%+v toolLimit=%+v sourceLimit=%+v sets=%+v plans=%+v ups=%v policy=%v retries=%d",
			k, r.Host, r.Prefix, r.suspended, r.federated, r.auth, r.tenantLimit, r.toolLimit, r.sourceLimit, r.toolSets, r.planLimits, ups, pol, r.retries))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// nextRevision is st with the objects of specs added or replacing those
// with their refs; every other object is st's own (as a data plane's delta
// leaves them).
func nextRevision(t *testing.T, st *state.Revision, specs string) *state.Revision {
	t.Helper()
	objs, diags := spec.Parse("next.yaml", []byte(specs))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	out := slices.Clone(st.Objects)
	for _, o := range objs {
		i := slices.IndexFunc(out, func(p *spec.Object) bool { return p.Ref() == o.Ref() })
		if i >= 0 {
			out[i] = o
		} else {
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, func(a, b *spec.Object) int {
		switch {
		case a.Ref().Less(b.Ref()):
			return -1
		case b.Ref().Less(a.Ref()):
			return 1
		}
		return 0
	})
	return state.New(st.Revision+1, out)
}

// TestCompileReusesUnchangedRoutes: a table compiled from the previous one
// enforces exactly what a table compiled from scratch does, through
// changes to a Tool, its Tenant, a ToolSet, a Plan and a Subscription, and
// shares the routes of the Tools nothing touched.
func TestCompileReusesUnchangedRoutes(t *testing.T) {
	const tenant = "---\napiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: %s}\nspec: {defaults: {rateLimit: %s}%s}\n"
	base := fmt.Sprintf(tenant, "acme", "100/s", "") + fmt.Sprintf(tenant, "beta", "50/s", "") +
		tool("acme", "a", "http://127.0.0.1:1", "") +
		tool("acme", "b", "http://127.0.0.1:2", "rateLimit: 5/s") +
		tool("beta", "c", "http://127.0.0.1:3", "") +
		tool("beta", "d", "http://127.0.0.1:3", "route: {pathPrefix: /beta/dee}")
	st := snapshot(t, 1, base)
	pools, reg := newPoolRegistry(slog.Default(), nil), telemetry.NewRegistry()
	comp := &policyrt.Compiler{}
	compileWith := func(st *state.Revision, pools *poolRegistry, reg *telemetry.Registry, prev *table, c *policyrt.Compiler) (*table, error) {
		chains, err := policyChains(c, st)
		if err != nil {
			return nil, err
		}
		tb, err := compile(st, pools, reg, prev, chains)
		if err == nil {
			attachPolicies(chains, tb)
		}
		return tb, err
	}
	prev, err := compileWith(st, pools, reg, nil, comp)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name, specs string
		changed     []string // tools whose routes must not be shared
	}{
		{"one tool", tool("acme", "b", "http://127.0.0.1:2", "rateLimit: 7/s"), []string{"b"}},
		{"tenant suspended", fmt.Sprintf(tenant, "acme", "100/s", ", suspended: true"), []string{"a", "b"}},
		{"tenant defaults", fmt.Sprintf(tenant, "beta", "10/s", ""), []string{"c", "d"}},
		{"toolset limit", "---\napiVersion: stoa.io/v1alpha1\nkind: ToolSet\nmetadata: {name: set, namespace: beta}\nspec: {tools: [c], policies: {rateLimit: 3/s, auth: required}}\n", []string{"c"}},
		{"plan and subscription", "---\napiVersion: stoa.io/v1alpha1\nkind: Consumer\nmetadata: {name: bob, namespace: acme}\nspec: {}\n" +
			"---\napiVersion: stoa.io/v1alpha1\nkind: Plan\nmetadata: {name: gold, namespace: acme}\nspec: {rateLimit: 9/s}\n" +
			"---\napiVersion: stoa.io/v1alpha1\nkind: Subscription\nmetadata: {name: bob-a, namespace: acme}\nspec: {consumer: bob, plan: gold, tool: a}\n", []string{"a"}},
		{"plan changed", "---\napiVersion: stoa.io/v1alpha1\nkind: Plan\nmetadata: {name: gold, namespace: acme}\nspec: {rateLimit: 11/s}\n", []string{"a"}},
		{"new tool", tool("beta", "e", "http://127.0.0.1:4", ""), []string{"e"}},
		{"tenant policy", fmt.Sprintf(tenant, "beta", "10/s", ", policy: {rules: [{name: no-admin, deny: 'request.path.endsWith(\"/admin\")'}]}"), []string{"c", "d", "e"}},
		{"route moved", tool("beta", "d", "http://127.0.0.1:3", "route: {pathPrefix: /beta/d2}"), []string{"d"}},
		{"tenant policy removed", fmt.Sprintf(tenant, "beta", "10/s", ""), []string{"c", "d", "e"}},
	}
	for _, step := range steps {
		st = nextRevision(t, st, step.specs)
		got, err := compileWith(st, pools, reg, prev, comp)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		want, err := compileWith(st, newPoolRegistry(slog.Default(), nil), telemetry.NewRegistry(), nil, &policyrt.Compiler{})
		if err != nil {
			t.Fatal(err)
		}
		if g, w := describeRoutes(got), describeRoutes(want); g != w {
			t.Fatalf("%s: reused table\n%s\nwant (compiled whole)\n%s", step.name, g, w)
		}
		for k, r := range got.byTool {
			old := prev.byTool[k]
			shared := old != nil && r.upstreams == old.upstreams && r.stats == old.stats && r.src == old.src
			if want := !slices.Contains(step.changed, k.tool); shared != want {
				t.Errorf("%s: route %v shared %v, want %v", step.name, k, shared, want)
			}
			if r == old && (r.policy != nil || old.policy != nil) {
				t.Errorf("%s: route %v with a policy is the live table's own (policies are attached to copies)", step.name, k)
			}
		}
		if l := got.lookup(nil, []byte("/beta/d2")); step.name == "route moved" && (l == nil || l.Tool != "d") {
			t.Fatalf("%s: /beta/d2 routes to %v", step.name, l)
		}
		// Only the new tool changes the set of HTTP series to keep.
		if want := step.name != "new tool"; got.sameRoutes != want {
			t.Errorf("%s: sameRoutes %v, want %v", step.name, got.sameRoutes, want)
		}
		prev = got
	}
}
