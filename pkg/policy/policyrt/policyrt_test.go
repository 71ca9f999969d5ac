package policyrt

import (
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/policy"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// chains compiles a revision of one Tenant (acme, with tenantRule as a
// deny rule), ToolSets listing billing (allow rules) and the Tools
// billing and plain (allow rules).
func chains(c *Compiler, tenantRule string, toolSetRules map[string]string, toolRules map[string]string) (map[spec.Ref]*policy.Chain, error) {
	pol := func(kind, expr string) *spec.Policy {
		if expr == "" {
			return nil
		}
		r := spec.PolicyRule{Name: "r"}
		if kind == "deny" {
			r.Deny = expr
		} else {
			r.Allow = expr
		}
		return &spec.Policy{Rules: []spec.PolicyRule{r}}
	}
	tenants := []*spec.Object{{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "acme"},
		Spec: &spec.TenantSpec{Policy: pol("deny", tenantRule)}}}
	var sets, tools []*spec.Object
	for name, expr := range toolSetRules {
		sets = append(sets, &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindToolSet, Metadata: spec.Metadata{Name: name, Namespace: "acme"},
			Spec: &spec.ToolSetSpec{Tools: []string{"billing"}, Policy: pol("allow", expr)}})
	}
	for _, name := range []string{"billing", "plain"} {
		tools = append(tools, &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool, Metadata: spec.Metadata{Name: name, Namespace: "acme"},
			Spec: &spec.ToolSpec{Upstream: "http://127.0.0.1:1", Policy: pol("allow", toolRules[name])}})
	}
	return c.Chains(tenants, sets, tools)
}

// TestChains: a Tool's chain holds its Tenant's, its ToolSets'
// and its own rules; a Tool no rule reaches has no chain; an unchanged
// policy is not compiled again on the next revision; a policy that does
// not compile fails the reload.
func TestChains(t *testing.T) {
	var c Compiler
	pols, err := chains(&c, "", map[string]string{"fin": `"finance" in caller.groups`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	billing := spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: "billing"}
	plain := spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: "plain"}
	if pols[plain] != nil {
		t.Error("plain has a chain: no rule reaches it")
	}
	ch := pols[billing]
	if ch == nil {
		t.Fatal("billing has no chain: its ToolSet's rule applies")
	}
	fin := &policy.Caller{Tenant: "acme", Method: "jwt", Groups: []string{"finance"}}
	if d := ch.Decide(&policy.Input{Caller: fin}); !d.Allowed() {
		t.Errorf("finance caller: %s", d)
	}
	if d := ch.Decide(&policy.Input{Caller: &policy.Caller{Tenant: "acme", Method: "jwt"}}); d.Allowed() || !strings.Contains(d.Reason(), "ToolSet acme/fin") {
		t.Errorf("other caller: %s", d)
	}
	var prog *policy.Program
	for _, p := range c.programs {
		prog = p
	}
	// Next revision: the same ToolSet policy (reused), and a Tenant deny.
	pols, err = chains(&c, `caller.method == "none"`, map[string]string{"fin": `"finance" in caller.groups`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.programs) != 2 {
		t.Fatalf("cache holds %d programs, want 2", len(c.programs))
	}
	reused := false
	for _, p := range c.programs {
		reused = reused || p == prog
	}
	if !reused {
		t.Error("the unchanged ToolSet policy was compiled again")
	}
	if d := pols[plain].Decide(&policy.Input{}); d.Allowed() || !strings.Contains(d.Reason(), `Tenant acme policy rule "r"`) {
		t.Errorf("anonymous on plain: %s", d)
	}
	// A policy that does not compile (validation bypassed) fails.
	_, err = chains(&c, "", nil, map[string]string{"plain": "caller.grups == 1"})
	if err == nil || !strings.Contains(err.Error(), "Tool acme/plain: spec.policy.rules[0].allow") {
		t.Errorf("bad policy: %v", err)
	}
	if len(c.programs) != 2 {
		t.Error("a failed compile replaced the cache")
	}
}
