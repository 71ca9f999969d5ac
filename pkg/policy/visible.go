package policy

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
)

// tri is a rule's outcome when some variables are unknown.
type tri uint8

const (
	triFalse tri = iota
	triTrue
	triError
	triUnknown
)

// unknownPatterns[k] are the attribute patterns of every variable whose
// group is not in the known set k.
var unknownPatterns [GroupSource << 1][]*cel.AttributePatternType

func init() {
	for k := range unknownPatterns {
		for i := range Variables {
			if Variables[i].Group&Known(k) == 0 {
				unknownPatterns[k] = append(unknownPatterns[k], cel.AttributePattern(Variables[i].Name))
			}
		}
	}
}

// partialEval evaluates the rule with only the known groups of in bound.
func (r *Rule) partialEval(in *Input, known Known) (tri, error) {
	if r.reads&^known == 0 {
		// Everything the rule reads is known: a plain evaluation.
		hit, err := r.Eval(in)
		switch {
		case err != nil:
			return triError, err
		case hit:
			return triTrue, nil
		}
		return triFalse, nil
	}
	a := getActivation(in)
	defer a.release()
	vars, err := cel.PartialVars(a, unknownPatterns[known&(GroupSource<<1-1)]...)
	if err != nil {
		return triError, err
	}
	out, _, err := r.partial.Eval(vars)
	switch {
	case types.IsUnknown(out):
		return triUnknown, nil
	case err != nil:
		return triError, err
	case out == types.True:
		return triTrue, nil
	case out == types.False:
		return triFalse, nil
	}
	return triError, nil
}

// Visible reports whether some request with the known parts of in could
// be allowed. tools/list calls it with KnownIdentity (the caller, the tool
// and the operation filled in, the request fields left empty) to hide the
// tools the caller's policy can never allow; it is not an authorization
// decision — tools/call still runs Decide. When it reports false, the
// Decision says which rule, or which policies' allow rules, rule the
// caller out.
func (c *Chain) Visible(in *Input, known Known) (bool, Decision) {
	if c.Empty() {
		return true, Decision{}
	}
	// A deny rule that may or may not apply leaves the tool visible; one
	// that surely applies or surely fails hides it.
	var failed *Rule
	var failure error
	for _, r := range c.deny {
		t, err := r.partialEval(in, known)
		switch {
		case t == triTrue:
			return false, Decision{Outcome: OutcomeDenied, Rule: r}
		case t == triError && failed == nil:
			failed, failure = r, err
		}
	}
	if failed != nil {
		return false, Decision{Outcome: OutcomeError, Rule: failed, Err: failure}
	}
	if len(c.allow) == 0 {
		return true, Decision{}
	}
	// Any allow rule that is or may be true makes the tool callable.
	for _, r := range c.allow {
		t, err := r.partialEval(in, known)
		switch {
		case t == triTrue || t == triUnknown:
			return true, Decision{}
		case t == triError && failed == nil:
			failed, failure = r, err
		}
	}
	if failed != nil {
		return false, Decision{Outcome: OutcomeError, Rule: failed, Err: failure}
	}
	return false, Decision{Outcome: OutcomeNoMatch, Policies: c.allowLevel}
}
