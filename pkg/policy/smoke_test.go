package policy

import "testing"

func TestSmoke(t *testing.T) {
	p, diags := Compile(Owner{Kind: "Tool", Namespace: "acme", Name: "billing"}, Spec{Rules: []RuleSpec{
		{Name: "no-deletes", Deny: `request.method == "DELETE"`},
		{Name: "finance", Allow: `"finance" in caller.groups && caller.claims.dept == "fin"`},
	}})
	if diags != nil {
		t.Fatal(diags)
	}
	for _, r := range p.Rules {
		t.Logf("%s fast=%v cost=%d reads=%b", r.Describe(), r.Fast(), r.MaxCost(), r.Reads())
	}
	c := NewChain(nil, nil, p)
	in := &Input{Method: "GET", Caller: &Caller{Groups: []string{"finance"}, Claims: map[string]any{"dept": "fin"}}}
	t.Log(c.Decide(in))
	in.Method = "DELETE"
	t.Log(c.Decide(in))
	in.Method = "GET"
	in.Caller = &Caller{Groups: []string{"finance"}}
	t.Log(c.Decide(in))
	_, diags = Compile(Owner{Kind: "Tool", Namespace: "acme", Name: "billing"}, Spec{Rules: []RuleSpec{
		{Name: "x", Deny: "reqest.method == 'x'"},
		{Name: "y", Deny: "request.method == 1"},
		{Name: "z", Deny: "caller.claims.x"},
		{Name: "w", Deny: "request.method ==\n  'a' &&& b"},
		{Name: "v", Allow: "request.headers['X-A'] == 'b' && request.path.matches('[')"},
		{Name: "u", Allow: "[1,2].map(x, x > 1).size() > 0"},
	}})
	for _, d := range diags {
		t.Log(d)
	}
}
