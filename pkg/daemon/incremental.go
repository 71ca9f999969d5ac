package daemon

import (
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// A change to a few objects of a large configuration — a one-tool apply,
// a data plane's next bundle — costs what it changes, not what the
// configuration holds: the plan compares the objects a delta left alone
// by identity (plan.Compute), the next set is merged, not sorted
// (plan.Apply), and validation checks the changed objects and those that
// refer to them against the rest (validateNext). The runtimes reuse what
// they compiled from unchanged objects.

// validateNext validates next, the configuration changes turn live into,
// and returns its diagnostics. When the change is small and touches
// neither the Gateway nor a Tenant (whose settings every object of the
// tenant is checked against), only the changed objects and the objects
// that refer to a changed or deleted one are checked, with the others as
// the live context: their references resolve against it and uniqueness
// (routes, MCP names) is checked against it. Everything else was valid in
// live and depends on nothing that changed, so the verdict is the full
// validation's (TestIncrementalValidationMatchesFull).
func validateNext(live, next []*spec.Object, changes []plan.Change) spec.Diagnostics {
	if subject, rest, ok := validationScope(live, next, changes); ok {
		return spec.Validate(subject, spec.ValidateOptions{Live: rest})
	}
	return spec.Validate(next, spec.ValidateOptions{})
}

// validationScope splits next into what validateNext checks and its
// context; ok is false when everything must be checked.
func validationScope(live, next []*spec.Object, changes []plan.Change) (subject, rest []*spec.Object, ok bool) {
	// Past a quarter of the objects, a partial check costs about as much
	// as a full one.
	if len(live) == 0 || 4*len(changes) > len(next) {
		return nil, nil, false
	}
	touched := make(map[spec.Ref]bool, len(changes))
	for _, c := range changes {
		if c.Ref.Kind == spec.KindGateway || c.Ref.Kind == spec.KindTenant {
			return nil, nil, false
		}
		touched[c.Ref] = true
	}
	rest = make([]*spec.Object, 0, len(next))
	for _, o := range next {
		if touched[o.Ref()] || refersTo(o, touched) {
			subject = append(subject, o)
		} else {
			rest = append(rest, o)
		}
	}
	return subject, rest, true
}

// refersTo reports whether o refers to one of refs (plan.References:
// the references spec.Validate resolves).
func refersTo(o *spec.Object, refs map[spec.Ref]bool) bool {
	for _, r := range plan.References(o) {
		if refs[r.To] {
			return true
		}
	}
	return false
}
