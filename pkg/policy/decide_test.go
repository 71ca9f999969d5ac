package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

func mustCompile(t testing.TB, c *Compiler, owner Owner, rules ...RuleSpec) *Program {
	t.Helper()
	if c == nil {
		c = DefaultCompiler()
	}
	p, diags := c.Compile(owner, Spec{Rules: rules})
	if diags != nil {
		t.Fatalf("compile %s: %v", owner, diags)
	}
	return p
}

var (
	tenantOwner = Owner{Kind: "Tenant", Name: "acme"}
	setOwner    = Owner{Kind: "ToolSet", Namespace: "acme", Name: "finance-tools"}
	set2Owner   = Owner{Kind: "ToolSet", Namespace: "acme", Name: "public-tools"}
	toolOwner   = Owner{Kind: "Tool", Namespace: "acme", Name: "billing-api"}
)

func TestDecide(t *testing.T) {
	alice := &Caller{Tenant: "acme", Subject: "alice", Method: "jwt", Groups: []string{"staff", "finance"},
		Claims: map[string]any{"dept": "finance"}}
	bob := &Caller{Tenant: "acme", Subject: "bob", Method: "jwt", Groups: []string{"staff"},
		Claims: map[string]any{"dept": "sales"}}
	partner := &Caller{Tenant: "acme", Subject: "p1", Method: "jwt", Groups: []string{"partner"}, Claims: map[string]any{}}

	tenantOnlyStaff := mustCompile(t, nil, tenantOwner,
		RuleSpec{Name: "staff", Allow: `"staff" in caller.groups`})
	tenantGuard := mustCompile(t, nil, tenantOwner,
		RuleSpec{Name: "no-trace", Deny: `request.method == "TRACE"`},
		RuleSpec{Name: "staff", Allow: `"staff" in caller.groups`})
	setFinance := mustCompile(t, nil, setOwner,
		RuleSpec{Name: "finance", Allow: `caller.claims.dept == "finance"`})
	setPublic := mustCompile(t, nil, set2Owner,
		RuleSpec{Name: "partners", Allow: `"partner" in caller.groups`})
	toolPartners := mustCompile(t, nil, toolOwner,
		RuleSpec{Name: "partners", Allow: `"partner" in caller.groups`})
	toolDenyOnly := mustCompile(t, nil, toolOwner,
		RuleSpec{Name: "no-deletes", Deny: `request.method == "DELETE"`})
	toolReadOnly := mustCompile(t, nil, toolOwner,
		RuleSpec{Name: "no-writes", Deny: `!(request.method in ["GET", "HEAD"])`},
		RuleSpec{Name: "bob", Allow: `caller.subject == "bob"`})

	type chainSpec struct {
		tenant *Program
		sets   []*Program
		tool   *Program
	}
	tests := []struct {
		name    string
		chain   chainSpec
		caller  *Caller
		method  string
		outcome Outcome
		rule    string // the deciding rule's String(), or the policies for no_match
	}{
		{"no policy allows", chainSpec{}, bob, "GET", OutcomeOpen, ""},
		{"tenant allow matches", chainSpec{tenant: tenantOnlyStaff}, bob, "GET", OutcomeAllowed, `Tenant acme policy rule "staff"`},
		{"tenant allow does not match: default deny", chainSpec{tenant: tenantOnlyStaff}, partner, "GET", OutcomeNoMatch, "Tenant acme policy"},
		{"anonymous caller, tenant allow", chainSpec{tenant: tenantOnlyStaff}, nil, "GET", OutcomeNoMatch, "Tenant acme policy"},
		{"tool allow overrides tenant allow (most specific decides)", chainSpec{tenant: tenantOnlyStaff, tool: toolPartners}, partner, "GET", OutcomeAllowed, `Tool acme/billing-api policy rule "partners"`},
		{"tool allow replaces tenant allow for staff too", chainSpec{tenant: tenantOnlyStaff, tool: toolPartners}, bob, "GET", OutcomeNoMatch, "Tool acme/billing-api policy"},
		{"tool with only deny rules keeps the tenant's allow rules", chainSpec{tenant: tenantOnlyStaff, tool: toolDenyOnly}, partner, "GET", OutcomeNoMatch, "Tenant acme policy"},
		{"tool deny on top of tenant allow", chainSpec{tenant: tenantOnlyStaff, tool: toolDenyOnly}, bob, "DELETE", OutcomeDenied, `Tool acme/billing-api policy rule "no-deletes"`},
		{"tool deny-only, tenant allow passes", chainSpec{tenant: tenantOnlyStaff, tool: toolDenyOnly}, bob, "GET", OutcomeAllowed, `Tenant acme policy rule "staff"`},
		{"tenant deny is a guardrail the tool cannot lift", chainSpec{tenant: tenantGuard, tool: toolPartners}, partner, "TRACE", OutcomeDenied, `Tenant acme policy rule "no-trace"`},
		{"toolset allow overrides tenant", chainSpec{tenant: tenantOnlyStaff, sets: []*Program{setFinance}}, bob, "GET", OutcomeNoMatch, "ToolSet acme/finance-tools policy"},
		{"toolset allow matches", chainSpec{tenant: tenantOnlyStaff, sets: []*Program{setFinance}}, alice, "GET", OutcomeAllowed, `ToolSet acme/finance-tools policy rule "finance"`},
		{"toolsets' allow rules are a union; a failing one grants nothing but blocks nothing", chainSpec{sets: []*Program{setFinance, setPublic}}, partner, "GET", OutcomeAllowed, `ToolSet acme/public-tools policy rule "partners"`},
		{"failing allow rule is the reason when nothing allows", chainSpec{sets: []*Program{setFinance}}, &Caller{Groups: []string{"x"}}, "GET", OutcomeError, `ToolSet acme/finance-tools policy rule "finance"`},
		{"a true deny rule is named over a failing one", chainSpec{tenant: mustCompile(t, nil, tenantOwner, RuleSpec{Name: "f", Deny: `caller.claims.x == 1`}, RuleSpec{Name: "d", Deny: `request.method == "GET"`})}, bob, "GET", OutcomeDenied, `Tenant acme policy rule "d"`},
		{"a failing deny rule denies", chainSpec{tenant: mustCompile(t, nil, tenantOwner, RuleSpec{Name: "f", Deny: `caller.claims.x == 1`}), tool: toolPartners}, partner, "GET", OutcomeError, `Tenant acme policy rule "f"`},
		{"toolsets' union, first set matches", chainSpec{sets: []*Program{setFinance, setPublic}}, alice, "GET", OutcomeAllowed, `ToolSet acme/finance-tools policy rule "finance"`},
		{"toolsets' union, none matches", chainSpec{sets: []*Program{setFinance, setPublic}}, bob, "GET", OutcomeNoMatch, "ToolSet acme/finance-tools, ToolSet acme/public-tools policies"},
		{"tool allow overrides toolset allow", chainSpec{sets: []*Program{setFinance}, tool: toolPartners}, alice, "GET", OutcomeNoMatch, "Tool acme/billing-api policy"},
		{"deny before allow within one policy", chainSpec{tool: toolReadOnly}, bob, "POST", OutcomeDenied, `Tool acme/billing-api policy rule "no-writes"`},
		{"allow after deny within one policy", chainSpec{tool: toolReadOnly}, bob, "GET", OutcomeAllowed, `Tool acme/billing-api policy rule "bob"`},
		{"missing claim fails closed", chainSpec{sets: []*Program{setFinance}}, partner, "GET", OutcomeError, `ToolSet acme/finance-tools policy rule "finance"`},
		{"deny-only chain allows the rest", chainSpec{tool: toolDenyOnly}, partner, "GET", OutcomeOpen, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChain(tt.chain.tenant, tt.chain.sets, tt.chain.tool)
			in := &Input{Caller: tt.caller, Method: tt.method}
			d := c.Decide(in)
			if d.Outcome != tt.outcome {
				t.Fatalf("outcome %s, want %s (%s)", d.Outcome, tt.outcome, d)
			}
			if d.Allowed() != (tt.outcome == OutcomeOpen || tt.outcome == OutcomeAllowed) {
				t.Fatalf("Allowed() = %v for %s", d.Allowed(), d.Outcome)
			}
			var got string
			switch {
			case d.Rule != nil:
				got = d.Rule.String()
			case d.Policies != nil:
				got = policiesString(d.Policies)
			}
			if got != tt.rule {
				t.Fatalf("decided by %q, want %q", got, tt.rule)
			}
			if d.Outcome == OutcomeError && d.Err == nil {
				t.Fatal("error outcome without an error")
			}
		})
	}
}

func TestDecisionText(t *testing.T) {
	p := mustCompile(t, nil, toolOwner,
		RuleSpec{Name: "no-deletes", Deny: `request.method == "DELETE"`},
		RuleSpec{Allow: `caller.claims.dept == "finance"`})
	c := NewChain(nil, nil, p)
	cases := []struct {
		in             *Input
		reason, detail string
	}{
		{&Input{Method: "DELETE"},
			`denied by Tool acme/billing-api policy rule "no-deletes"`,
			`denied by Tool acme/billing-api policy rule "no-deletes": request.method == "DELETE"`},
		{&Input{Method: "GET", Caller: &Caller{Claims: map[string]any{"dept": "finance"}}},
			`allowed by Tool acme/billing-api policy rules[1]`,
			`allowed by Tool acme/billing-api policy rules[1]: caller.claims.dept == "finance"`},
		{&Input{Method: "GET", Caller: &Caller{Claims: map[string]any{"dept": "sales"}}},
			`denied: no allow rule of Tool acme/billing-api policy matched`,
			`denied: no allow rule of Tool acme/billing-api policy matched`},
		{&Input{Method: "GET"},
			`denied: Tool acme/billing-api policy rules[1] could not be evaluated`,
			`denied: Tool acme/billing-api policy rules[1] could not be evaluated: caller.claims.dept == "finance": no such key: dept`},
	}
	for _, tc := range cases {
		d := c.Decide(tc.in)
		if d.Reason() != tc.reason {
			t.Errorf("Reason() = %q, want %q", d.Reason(), tc.reason)
		}
		if d.String() != tc.detail {
			t.Errorf("String() = %q, want %q", d.String(), tc.detail)
		}
	}
	// The caller-facing reason never carries the expression.
	for _, tc := range cases {
		if r := c.Decide(tc.in).Reason(); strings.Contains(r, "caller.claims") || strings.Contains(r, "request.method") {
			t.Errorf("Reason() reveals the expression: %q", r)
		}
	}
}

// Evaluation failures of every kind deny, on the fast path and on cel-go.
func TestFailClosed(t *testing.T) {
	small := testCompiler(t, Limits{Cost: 50})
	cases := []struct {
		name string
		c    *Compiler
		rule RuleSpec
		in   *Input
		want error // nil: any error
	}{
		{"missing claim in allow", nil, RuleSpec{Allow: `caller.claims.dept == "x"`}, &Input{}, nil},
		{"missing claim in deny", nil, RuleSpec{Deny: `caller.claims.dept == "x"`}, &Input{}, nil},
		{"missing header", nil, RuleSpec{Deny: `request.headers["x-a"] == "1"`}, &Input{Headers: HeaderMap{}}, nil},
		{"no headers at all", nil, RuleSpec{Deny: `request.headers["x-a"] == "1"`}, &Input{}, nil},
		{"claim of the wrong type", nil, RuleSpec{Allow: `caller.claims.dept.startsWith("f")`}, &Input{Caller: &Caller{Claims: map[string]any{"dept": true}}}, nil},
		{"index out of range", nil, RuleSpec{Allow: `caller.claims.roles[3] == "a"`}, &Input{Caller: &Caller{Claims: map[string]any{"roles": []any{"a"}}}}, nil},
		{"NaN ordering", nil, RuleSpec{Allow: `caller.claims.n < 1.0`}, &Input{Caller: &Caller{Claims: map[string]any{"n": "x"}}}, nil},
		{"cost limit", small, RuleSpec{Allow: `caller.groups.exists(a, caller.groups.exists(b, a + b == "x"))`},
			&Input{Caller: &Caller{Groups: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}}}, ErrCostLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			if c == nil {
				c = DefaultCompiler()
			}
			p := mustCompile(t, c, toolOwner, tc.rule)
			d := NewChain(nil, nil, p).Decide(tc.in)
			if d.Allowed() || d.Outcome != OutcomeError || d.Err == nil {
				t.Fatalf("got %s (%v), want a denial for an evaluation error", d.Outcome, d)
			}
			if tc.want != nil && !errors.Is(d.Err, tc.want) {
				t.Fatalf("error %v, want %v", d.Err, tc.want)
			}
		})
	}
}

// A rule too costly for the fast path's bounds runs on cel-go and is cut
// off there; one within them runs natively.
func TestFastPathEligibility(t *testing.T) {
	c := testCompiler(t, Limits{Cost: 100, MaxList: 8, MaxString: 64})
	p := mustCompile(t, c, toolOwner,
		RuleSpec{Allow: `"a" in caller.groups`},
		RuleSpec{Allow: `caller.groups.exists(g, g == "a")`},
		RuleSpec{Allow: `caller.claims.?dept.orValue("") == "x"`})
	if !p.Rules[0].Fast() || p.Rules[1].Fast() || p.Rules[2].Fast() {
		t.Fatalf("fast = %v %v %v, want true false false", p.Rules[0].Fast(), p.Rules[1].Fast(), p.Rules[2].Fast())
	}
	// A list beyond MaxList bails out to cel-go, which gives the same answer.
	many := make([]string, 50)
	for i := range many {
		many[i] = "x"
	}
	many[49] = "a"
	in := &Input{Caller: &Caller{Groups: many}}
	if v := p.Rules[0].fast.eval(in); v.k != kBail {
		t.Fatalf("fast path did not bail on a list of %d", len(many))
	}
	if hit, err := p.Rules[0].Eval(in); !hit || err != nil {
		t.Fatalf("Eval = %v, %v", hit, err)
	}
	// Far beyond the bounds, cel-go's runtime cost limit stops it: the
	// fast path never evaluates what the limit would refuse.
	huge := make([]string, 1000)
	huge[999] = "a"
	if _, err := p.Rules[0].Eval(&Input{Caller: &Caller{Groups: huge}}); !errors.Is(err, ErrCostLimit) {
		t.Fatalf("Eval over 1000 groups with cost limit 100: %v, want %v", err, ErrCostLimit)
	}
}

// Rules that need cel-go's library beyond the fast path's shapes work.
func TestCELLibrary(t *testing.T) {
	cases := []struct {
		expr string
		in   *Input
		want bool
	}{
		{`cidr("10.0.0.0/8").containsIP(ip(source.ip))`, &Input{SourceIP: "10.1.2.3"}, true},
		{`cidr("10.0.0.0/8").containsIP(ip(source.ip))`, &Input{SourceIP: "192.0.2.1"}, false},
		{`caller.claims.?tier.orValue("free") == "free"`, &Input{}, true},
		{`caller.claims.?tier.orValue("free") == "gold"`, &Input{Caller: &Caller{Claims: map[string]any{"tier": "gold"}}}, true},
		{`caller.groups.exists(g, g.startsWith("fin-"))`, &Input{Caller: &Caller{Groups: []string{"x", "fin-ops"}}}, true},
		{`request.headers.exists(k, k.startsWith("x-debug"))`, &Input{Headers: HeaderMap{"x-debug-level": "1"}}, true},
		{`size(request.headers) == 2`, &Input{Headers: HeaderMap{"a": "1", "b": "2"}}, true},
		{`caller.claims.level >= 3`, &Input{Caller: &Caller{Claims: map[string]any{"level": json.Number("3")}}}, true},
		{`caller.claims.roles.exists(r, r == "admin")`, &Input{Caller: &Caller{Claims: map[string]any{"roles": []any{"user", "admin"}}}}, true},
		{`caller.claims.realm_access.roles[0] == "user"`, &Input{Caller: &Caller{Claims: map[string]any{"realm_access": map[string]any{"roles": []any{"user"}}}}}, true},
	}
	for _, tc := range cases {
		p := mustCompile(t, nil, toolOwner, RuleSpec{Allow: tc.expr})
		got, err := p.Rules[0].Eval(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %v, %v; want %v", tc.expr, got, err, tc.want)
		}
		// cel-go alone agrees.
		if cg, err := p.Rules[0].EvalCEL(tc.in); err != nil || cg != tc.want {
			t.Errorf("%s on cel-go: got %v, %v; want %v", tc.expr, cg, err, tc.want)
		}
	}
}

func TestDecideConcurrent(t *testing.T) {
	p := mustCompile(t, nil, toolOwner,
		RuleSpec{Deny: `request.path.startsWith("/admin")`},
		RuleSpec{Allow: `caller.groups.exists(g, g == "staff")`}, // cel-go path
		RuleSpec{Allow: `caller.claims.dept == "finance"`})
	c := NewChain(nil, nil, p)
	caller := &Caller{Groups: []string{"staff"}, Claims: map[string]any{"dept": "finance"}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				path := "/x"
				if (g+i)%3 == 0 {
					path = "/admin/x"
				}
				d := c.Decide(&Input{Caller: caller, Path: path})
				if d.Allowed() == (path == "/admin/x") {
					t.Errorf("path %s: %s", path, d)
					return
				}
			}
		}()
	}
	wg.Wait()
}
