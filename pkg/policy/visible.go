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
	// A deny rule that may or may not apply leaves the tool visible.
	for _, r := range c.deny {
		t, err := r.partialEval(in, known)
		switch t {
		case triTrue:
			return false, Decision{Outcome: OutcomeDenied, Rule: r}
		case triError:
			return false, Decision{Outcome: OutcomeError, Rule: r, Err: err}
		}
	}
	if len(c.allow) == 0 {
		return true, Decision{}
	}
	// Allow rules run in order and the first error denies, so an allow rule
	// is reachable only if no rule before it is surely true or an error.
	for _, r := range c.allow {
		t, err := r.partialEval(in, known)
		switch t {
		case triTrue, triUnknown:
			return true, Decision{}
		case triError:
			return false, Decision{Outcome: OutcomeError, Rule: r, Err: err}
		}
	}
	return false, Decision{Outcome: OutcomeNoMatch, Policies: c.allowLevel}
}
