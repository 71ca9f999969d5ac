package spec

import (
	"strings"
	"sync"

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
	diags := compiledPolicies.check(o, ps)
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

// policyResults remembers what compiling a policy text reported. The
// result depends on the text alone, and stoad validates the whole desired
// state on every apply, so a policy is compiled once per process rather
// than once per apply (about 0.1 ms a rule). Bounded: the memo is dropped
// when it holds too much text.
type policyResults struct {
	mu       sync.Mutex
	m        map[string][]policy.Diagnostic
	bytes    int
	compiles int // for tests
}

const maxPolicyMemoBytes = 16 << 20

var compiledPolicies policyResults

// check returns the diagnostics of compiling ps (owned by o).
func (r *policyResults) check(o *Object, ps policy.Spec) []policy.Diagnostic {
	key := policyKey(ps)
	r.mu.Lock()
	diags, ok := r.m[key]
	r.mu.Unlock()
	if ok {
		return diags
	}
	owner := policy.Owner{Kind: string(o.Kind), Namespace: o.Metadata.Namespace, Name: o.Metadata.Name}
	_, diags = policy.Compile(owner, ps)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.compiles++
	if r.m == nil || r.bytes+len(key) > maxPolicyMemoBytes {
		r.m, r.bytes = map[string][]policy.Diagnostic{}, 0
	}
	if _, dup := r.m[key]; !dup {
		r.m[key] = diags
		r.bytes += len(key)
	}
	return diags
}

// counts reports how many policy texts are remembered and how many
// compilations were run.
func (r *policyResults) counts() (size, compiles int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m), r.compiles
}
