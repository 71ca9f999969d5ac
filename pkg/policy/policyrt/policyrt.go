// Package policyrt compiles a revision's CEL policies (pkg/policy) into
// one Chain per Tool, for the runtimes that enforce them: the proxy and
// the MCP runtime.
package policyrt

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/stoa-gateway/stoa/pkg/policy"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Compiler turns the policies of one revision after another into a Chain
// per Tool (Tenant → its ToolSets in name order → Tool, docs/policy.md).
// It keeps the Program of every policy whose owner and rules did not
// change, so a reload compiles only what changed. The proxy and the MCP
// runtime each hold one; it is safe for concurrent use.
type Compiler struct {
	mu       sync.Mutex
	programs map[string]*policy.Program
}

// Chains compiles the policies of tenants, toolSets and tools (a
// revision's objects of each kind; the slices are not modified) and
// returns the chain of every Tool that has a rule, by its ref. Validation
// compiled each policy already, so an error here is a revision that
// bypassed it: callers fail the reload rather than serve a tool without
// its policy.
func (c *Compiler) Chains(tenants, toolSets, tools []*spec.Object) (map[spec.Ref]*policy.Chain, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[string]*policy.Program{}
	var errs []error
	compile := func(o *spec.Object, p *spec.Policy) *policy.Program {
		if p == nil || len(p.Rules) == 0 {
			return nil
		}
		owner := policy.Owner{Kind: string(o.Kind), Namespace: o.Metadata.Namespace, Name: o.Metadata.Name}
		key := programKey(owner, p)
		if prog, ok := next[key]; ok {
			return prog
		}
		prog, ok := c.programs[key]
		if !ok {
			var diags []policy.Diagnostic
			if prog, diags = policy.Compile(owner, p.PolicySpec()); len(diags) > 0 {
				errs = append(errs, fmt.Errorf("%s: spec.policy.%s: %s", owner, diags[0].Path(), diags[0].Message))
				return nil
			}
		}
		next[key] = prog
		return prog
	}
	byTenant := map[string]*policy.Program{}
	for _, o := range tenants {
		if prog := compile(o, o.Spec.(*spec.TenantSpec).Policy); prog != nil {
			byTenant[o.Metadata.Name] = prog
		}
	}
	sets := append([]*spec.Object(nil), toolSets...)
	sort.SliceStable(sets, func(i, j int) bool { return sets[i].Metadata.Name < sets[j].Metadata.Name })
	inSets := map[spec.Ref][]*policy.Program{}
	for _, o := range sets {
		ts := o.Spec.(*spec.ToolSetSpec)
		if prog := compile(o, ts.Policy); prog != nil {
			for _, name := range ts.Tools {
				ref := spec.Ref{Kind: spec.KindTool, Namespace: o.Metadata.Namespace, Name: name}
				inSets[ref] = append(inSets[ref], prog)
			}
		}
	}
	chains := map[spec.Ref]*policy.Chain{}
	for _, o := range tools {
		ref := o.Ref()
		tool, tenant := compile(o, o.Spec.(*spec.ToolSpec).Policy), byTenant[o.Metadata.Namespace]
		if tool == nil && tenant == nil && len(inSets[ref]) == 0 {
			continue
		}
		if ch := policy.NewChain(tenant, inSets[ref], tool); !ch.Empty() {
			chains[ref] = ch
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("compile policies: %w", errors.Join(errs...))
	}
	c.programs = next
	return chains, nil
}

// programKey identifies a policy by its owner and rules.
func programKey(owner policy.Owner, p *spec.Policy) string {
	var b strings.Builder
	b.WriteString(owner.String())
	for _, r := range p.Rules {
		b.WriteByte(0)
		b.WriteString(r.Name)
		b.WriteByte(1)
		b.WriteString(r.Allow)
		b.WriteByte(2)
		b.WriteString(r.Deny)
	}
	return b.String()
}
