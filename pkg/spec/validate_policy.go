package spec

import (
	"strings"

	"github.com/stoa-gateway/stoa/pkg/policy"
)

// PolicySpec converts p to pkg/policy's form, for Compile.
func (p *Policy) PolicySpec() policy.Spec {
	out := policy.Spec{Rules: make([]policy.RuleSpec, len(p.Rules))}
	for i, r := range p.Rules {
		out.Rules[i] = policy.RuleSpec(r)
	}
	return out
}

// policyField compiles the policy at path (spec.policy) of o with
// pkg/policy, as the runtimes will, and reports each problem where it is:
// a problem inside an expression at its character in the file, whatever
// the scalar's style (plain, quoted, folded or literal block).
func (v *validator) policyField(o *Object, path string, p *Policy) {
	if p == nil {
		return
	}
	ps := p.PolicySpec()
	diags, ok := v.policyCache[policyKey(ps)]
	if !ok {
		owner := policy.Owner{Kind: string(o.Kind), Namespace: o.Metadata.Namespace, Name: o.Metadata.Name}
		_, diags = policy.Compile(owner, ps)
		if v.policyCache == nil {
			v.policyCache = map[string][]policy.Diagnostic{}
		}
		v.policyCache[policyKey(ps)] = diags
	}
	for _, d := range diags {
		pe := v.add(o, SeverityError, false, path+"."+d.Path(), d.Hint, d.Message)
		if d.Offset < 0 || d.Rule < 0 || d.Rule >= len(p.Rules) {
			continue
		}
		expr := p.Rules[d.Rule].Allow
		if d.Field == "deny" {
			expr = p.Rules[d.Rule].Deny
		}
		d := d
		pe.refine = func(out *Diagnostic, s *Source) {
			data, ok := s.text()
			if !ok {
				return
			}
			at := d.Locate(data, policy.Position{Line: out.Line, Column: out.Column}, expr)
			out.Line, out.Column = at.Line, at.Column
			out.SourceLine = s.doc.file.line(at.Line)
		}
	}
}

// policyKey identifies a policy's text: the same rules compile to the same
// diagnostics whoever owns them, and generated specs repeat policies.
func policyKey(p policy.Spec) string {
	var b strings.Builder
	for _, r := range p.Rules {
		b.WriteString(r.Name)
		b.WriteByte(0)
		b.WriteString(r.Allow)
		b.WriteByte(0)
		b.WriteString(r.Deny)
		b.WriteByte(1)
	}
	return b.String()
}
