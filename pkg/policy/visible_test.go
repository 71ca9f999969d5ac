package policy

import (
	"math/rand/v2"
	"testing"
)

func TestVisible(t *testing.T) {
	alice := &Caller{Subject: "alice", Tenant: "acme", Groups: []string{"finance"}, Claims: map[string]any{"dept": "finance"}}
	bob := &Caller{Subject: "bob", Tenant: "acme", Groups: []string{"staff"}, Claims: map[string]any{}}
	admin := &Caller{Subject: "root", Tenant: "acme", Admin: true}
	other := &Caller{Subject: "eve", Tenant: "globex", Groups: []string{"finance"}}
	get := &Target{Tenant: "acme", Tool: "billing-api", Operation: "get_invoice"}
	del := &Target{Tenant: "acme", Tool: "billing-api", Operation: "delete_all"}

	cases := []struct {
		name    string
		rules   []RuleSpec
		caller  *Caller
		target  *Target
		known   Known
		visible bool
		outcome Outcome // when hidden
	}{
		{"identity allow, member", []RuleSpec{{Allow: `"finance" in caller.groups`}}, alice, get, KnownIdentity, true, 0},
		{"identity allow, not a member", []RuleSpec{{Allow: `"finance" in caller.groups`}}, bob, get, KnownIdentity, false, OutcomeNoMatch},
		{"mixed allow: identity part false", []RuleSpec{{Allow: `"finance" in caller.groups && request.method == "GET"`}}, bob, get, KnownIdentity, false, OutcomeNoMatch},
		{"mixed allow: identity part true, request unknown", []RuleSpec{{Allow: `"finance" in caller.groups && request.method == "GET"`}}, alice, get, KnownIdentity, true, 0},
		{"mixed allow: request part may be true", []RuleSpec{{Allow: `"admin" in caller.groups || request.method == "GET"`}}, bob, get, KnownIdentity, true, 0},
		{"request-only allow stays visible", []RuleSpec{{Allow: `request.path.startsWith("/public")`}}, bob, get, KnownIdentity, true, 0},
		{"deny by operation for non-admins", []RuleSpec{{Deny: `!caller.admin && operation.name == "delete_all"`}}, bob, del, KnownIdentity, false, OutcomeDenied},
		{"deny by operation, admin", []RuleSpec{{Deny: `!caller.admin && operation.name == "delete_all"`}}, admin, del, KnownIdentity, true, 0},
		{"deny by operation, other operation", []RuleSpec{{Deny: `!caller.admin && operation.name == "delete_all"`}}, bob, get, KnownIdentity, true, 0},
		{"operation unknown when only the caller is known", []RuleSpec{{Deny: `!caller.admin && operation.name == "delete_all"`}}, bob, del, GroupCaller, true, 0},
		{"cross-tenant guard", []RuleSpec{{Deny: `caller.tenant != tool.tenant`}}, other, get, KnownIdentity, false, OutcomeDenied},
		{"deny on a header may not apply", []RuleSpec{{Deny: `request.headers["x-debug"] == "1"`}, {Allow: `true`}}, bob, get, KnownIdentity, true, 0},
		{"missing claim fails closed", []RuleSpec{{Allow: `caller.claims.dept == "finance"`}}, bob, get, KnownIdentity, false, OutcomeError},
		{"missing claim, request part unknown", []RuleSpec{{Allow: `caller.claims.dept == "finance" || request.method == "GET"`}}, bob, get, KnownIdentity, true, 0},
		{"a failing allow rule does not hide when another may allow", []RuleSpec{{Allow: `caller.claims.dept == "finance"`}, {Allow: `source.ip == "10.0.0.1"`}}, bob, get, KnownIdentity, true, 0},
		{"deny-only policy that cannot apply", []RuleSpec{{Deny: `"banned" in caller.groups`}}, bob, get, KnownIdentity, true, 0},
		{"mcp arguments unknown", []RuleSpec{{Allow: `mcp.arguments.amount < 100.0 && "finance" in caller.groups`}}, alice, get, KnownIdentity, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, nil, toolOwner, tc.rules...)
			ok, d := NewChain(nil, nil, p).Visible(&Input{Caller: tc.caller, Target: tc.target}, tc.known)
			if ok != tc.visible {
				t.Fatalf("visible = %v, want %v (%s)", ok, tc.visible, d)
			}
			if !ok && d.Outcome != tc.outcome {
				t.Fatalf("hidden by %s, want %s (%s)", d.Outcome, tc.outcome, d)
			}
		})
	}
}

// Visible is sound: a tool it hides is denied for every request of that
// caller. The check draws policies and inputs from the differential
// test's grammar and decides with the request fields the input happens
// to carry.
func TestVisibleSound(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	hidden := 0
	for range 1500 {
		b := make([]byte, 96)
		for j := range b {
			b[j] = byte(r.IntN(256))
		}
		g := &exprGen{b: b}
		rules := []RuleSpec{{Deny: g.boolExpr(2)}, {Allow: g.boolExpr(2)}}
		p, diags := Compile(toolOwner, Spec{Rules: rules})
		if diags != nil {
			continue
		}
		c := NewChain(nil, nil, p)
		in := g.input()
		ok, hd := c.Visible(in, KnownIdentity)
		if ok {
			continue
		}
		hidden++
		if d := c.Decide(in); d.Allowed() {
			t.Fatalf("rules %+v: hidden (%s) but allowed (%s)", rules, hd, d)
		}
	}
	if hidden == 0 {
		t.Fatal("no case was hidden; the test proves nothing")
	}
	t.Logf("%d hidden cases all denied", hidden)
}
