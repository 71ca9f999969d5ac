package policy

import (
	"encoding/json"
	"testing"
)

// withoutFast returns a copy of p whose rules run on cel-go only, to
// measure what the fast path saves.
func withoutFast(p *Program) *Program {
	q := &Program{Owner: p.Owner}
	for _, r := range p.Rules {
		c := *r
		c.fast = nil
		q.Rules = append(q.Rules, &c)
		if c.Effect == Deny {
			q.deny = append(q.deny, &c)
		} else {
			q.allow = append(q.allow, &c)
		}
	}
	return q
}

func benchInput() *Input {
	return &Input{
		Caller: &Caller{
			Tenant: "acme", Subject: "alice", Issuer: "https://idp.example.com", Method: "jwt",
			Scopes: []string{"openid", "billing:read", "billing:write"},
			Groups: []string{"staff", "finance"},
			Claims: map[string]any{"dept": "finance", "level": json.Number("3"), "email_verified": true},
		},
		Target:   &Target{Tenant: "acme", Tool: "billing-api", Operation: "get_invoice"},
		Method:   "GET",
		Path:     "/billing/invoices/42",
		Host:     "api.example.com",
		Headers:  HeaderMap{"accept": "application/json", "x-request-id": "abc", "user-agent": "curl/8"},
		SourceIP: "192.0.2.10",
	}
}

var benchPolicies = []struct {
	name  string
	rules []RuleSpec
}{
	{"two-rule", []RuleSpec{
		{Name: "no-deletes", Deny: `request.method == "DELETE"`},
		{Name: "finance", Allow: `"finance" in caller.groups`},
	}},
	{"claim-eq", []RuleSpec{{Allow: `caller.claims.dept == "finance"`}}},
	{"scope-in", []RuleSpec{{Allow: `"billing:read" in caller.scopes`}}},
	{"header-presence", []RuleSpec{{Deny: `"x-debug" in request.headers`}, {Allow: `has(request.headers.accept)`}}},
	{"method-in-const", []RuleSpec{{Allow: `request.method in ["GET", "HEAD"]`}}},
	{"path-prefix", []RuleSpec{{Deny: `request.path.startsWith("/billing/admin")`}, {Allow: `true`}}},
	{"mixed", []RuleSpec{
		{Name: "verified", Deny: `!has(caller.claims.email_verified) || caller.claims.email_verified != true`},
		{Name: "readers", Allow: `request.method in ["GET", "HEAD"] && "billing:read" in caller.scopes`},
		{Name: "finance-writers", Allow: `caller.claims.dept == "finance" && caller.claims.level >= 3`},
	}},
	{"exists-macro", []RuleSpec{{Allow: `caller.groups.exists(g, g.startsWith("fin"))`}}},
}

func BenchmarkDecide(b *testing.B) {
	for _, bp := range benchPolicies {
		p, diags := Compile(Owner{Kind: "Tool", Namespace: "acme", Name: "billing-api"}, Spec{Rules: bp.rules})
		if diags != nil {
			b.Fatal(diags)
		}
		for _, mode := range []string{"fast", "cel"} {
			prog := p
			if mode == "cel" {
				prog = withoutFast(p)
			}
			chain := NewChain(nil, nil, prog)
			in := benchInput()
			if d := chain.Decide(in); !d.Allowed() {
				b.Fatalf("%s: %s", bp.name, d)
			}
			b.Run(bp.name+"/"+mode, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if !chain.Decide(in).Allowed() {
						b.Fatal("denied")
					}
				}
			})
		}
	}
}

func BenchmarkVisible(b *testing.B) {
	p, diags := Compile(Owner{Kind: "Tool", Namespace: "acme", Name: "billing-api"}, Spec{Rules: benchPolicies[6].rules})
	if diags != nil {
		b.Fatal(diags)
	}
	chain := NewChain(nil, nil, p)
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := chain.Visible(in, KnownIdentity); !ok {
			b.Fatal("hidden")
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	c := DefaultCompiler()
	b.ReportAllocs()
	for b.Loop() {
		if _, diags := c.Compile(Owner{Kind: "Tool", Name: "t"}, Spec{Rules: benchPolicies[6].rules}); diags != nil {
			b.Fatal(diags)
		}
	}
}

// The typical shapes cost no allocation on the fast path. Counting
// allocations is deterministic, unlike timing, so a test can hold it.
func TestFastPathZeroAllocs(t *testing.T) {
	for _, bp := range benchPolicies {
		if bp.name == "exists-macro" {
			continue // a macro: cel-go's path
		}
		p := mustCompile(t, nil, toolOwner, bp.rules...)
		for _, r := range p.Rules {
			if !r.Fast() {
				t.Fatalf("%s: %s is not on the fast path", bp.name, r.Describe())
			}
		}
		chain := NewChain(nil, nil, p)
		in := benchInput()
		if n := testing.AllocsPerRun(100, func() { chain.Decide(in) }); n != 0 {
			t.Errorf("%s: %v allocations per decision, want 0", bp.name, n)
		}
	}
}
