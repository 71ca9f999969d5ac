package mcprt

import (
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/policy"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
)

func polRevision(tenantRule string, toolSetRules map[string]string, toolRules map[string]string) *state.Revision {
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
	objs := []*spec.Object{{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "acme"},
		Spec: &spec.TenantSpec{Policy: pol("deny", tenantRule)}}}
	for name, expr := range toolSetRules {
		objs = append(objs, &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindToolSet, Metadata: spec.Metadata{Name: name, Namespace: "acme"},
			Spec: &spec.ToolSetSpec{Tools: []string{"billing"}, Policy: pol("allow", expr)}})
	}
	for _, name := range []string{"billing", "plain"} {
		objs = append(objs, &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool, Metadata: spec.Metadata{Name: name, Namespace: "acme"},
			Spec: &spec.ToolSpec{Upstream: "http://127.0.0.1:1", Policy: pol("allow", toolRules[name])}})
	}
	return state.New(1, objs)
}

// TestCompilePolicies: a Tool's chain holds its Tenant's, its ToolSets'
// and its own rules; a Tool no rule reaches has no chain; an unchanged
// policy is not compiled again on the next revision; a policy that does
// not compile fails the reload.
func TestCompilePolicies(t *testing.T) {
	var c policyCache
	st := polRevision("", map[string]string{"fin": `"finance" in caller.groups`}, nil)
	pols, err := c.compilePolicies(st)
	if err != nil {
		t.Fatal(err)
	}
	billing := spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: "billing"}
	plain := spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: "plain"}
	if pols.chain(plain) != nil {
		t.Error("plain has a chain: no rule reaches it")
	}
	ch := pols.chain(billing)
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
	for _, p := range c.m {
		prog = p
	}
	// Next revision: the same ToolSet policy (reused), and a Tenant deny.
	pols, err = c.compilePolicies(polRevision(`caller.method == "none"`, map[string]string{"fin": `"finance" in caller.groups`}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.m) != 2 {
		t.Fatalf("cache holds %d programs, want 2", len(c.m))
	}
	reused := false
	for _, p := range c.m {
		reused = reused || p == prog
	}
	if !reused {
		t.Error("the unchanged ToolSet policy was compiled again")
	}
	if d := pols.chain(plain).Decide(&policy.Input{}); d.Allowed() || !strings.Contains(d.Reason(), `Tenant acme policy rule "r"`) {
		t.Errorf("anonymous on plain: %s", d)
	}
	// A policy that does not compile (validation bypassed) fails.
	_, err = c.compilePolicies(polRevision("", nil, map[string]string{"plain": "caller.grups == 1"}))
	if err == nil || !strings.Contains(err.Error(), "Tool acme/plain: spec.policy.rules[0].allow") {
		t.Errorf("bad policy: %v", err)
	}
	if len(c.m) != 2 {
		t.Error("a failed compile replaced the cache")
	}
}
