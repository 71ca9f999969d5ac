package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

// Chain is every policy that applies to one tool: its Tenant's, those of
// the ToolSets that contain it, and its own. How they combine (see
// docs/policy.md):
//
//  1. Deny rules of every level are evaluated, Tenant first, then the
//     ToolSets in the order given, then the Tool; the first that is true
//     denies. A deny is a guardrail: nothing below it can lift it.
//  2. Allow rules come from the most specific level that has any: the
//     Tool's if it has allow rules, else those of all its ToolSets
//     together, else the Tenant's. The first true one allows; if none is
//     true the request is denied.
//  3. If no level has allow rules, a request no deny rule refused is
//     allowed.
//
// A rule that fails to evaluate (a missing claim, a type error, the cost
// limit) never allows: a failing deny rule denies, a failing allow rule
// grants nothing. Policies fail closed.
type Chain struct {
	deny       []*Rule    // every level's deny rules, Tenant → ToolSets → Tool
	allow      []*Rule    // the deciding level's allow rules
	allowLevel []*Program // the policies those allow rules come from
}

// NewChain builds the chain for one tool; any of the programs may be nil.
// Build it when the route table is built and share it between requests.
func NewChain(tenant *Program, toolSets []*Program, tool *Program) *Chain {
	c := &Chain{}
	levels := make([]*Program, 0, len(toolSets)+2)
	levels = append(levels, tenant)
	levels = append(levels, toolSets...)
	levels = append(levels, tool)
	for _, p := range levels {
		if p != nil {
			c.deny = append(c.deny, p.deny...)
		}
	}
	switch {
	case tool.HasAllow():
		c.allowLevel = []*Program{tool}
	case anyAllow(toolSets):
		for _, p := range toolSets {
			if p.HasAllow() {
				c.allowLevel = append(c.allowLevel, p)
			}
		}
	case tenant.HasAllow():
		c.allowLevel = []*Program{tenant}
	}
	for _, p := range c.allowLevel {
		c.allow = append(c.allow, p.allow...)
	}
	return c
}

func anyAllow(ps []*Program) bool {
	for _, p := range ps {
		if p.HasAllow() {
			return true
		}
	}
	return false
}

// Empty reports whether no rule applies (every request is allowed).
func (c *Chain) Empty() bool { return c == nil || len(c.deny)+len(c.allow) == 0 }

// Outcome is how a decision came about.
type Outcome uint8

// The outcomes.
const (
	// OutcomeOpen: no deny rule was true and no level has allow rules.
	OutcomeOpen Outcome = iota
	// OutcomeAllowed: an allow rule was true (Decision.Rule).
	OutcomeAllowed
	// OutcomeDenied: a deny rule was true (Decision.Rule).
	OutcomeDenied
	// OutcomeNoMatch: the deciding level has allow rules and none was true
	// (Decision.Policies).
	OutcomeNoMatch
	// OutcomeError: a rule failed to evaluate (Decision.Rule, Decision.Err).
	OutcomeError
)

func (o Outcome) String() string {
	switch o {
	case OutcomeAllowed:
		return "allowed"
	case OutcomeDenied:
		return "denied"
	case OutcomeNoMatch:
		return "no_match"
	case OutcomeError:
		return "error"
	}
	return "open"
}

// Decision is the result of evaluating a chain for one request. It points
// at the shared Rule and Program that decided; making one allocates
// nothing.
type Decision struct {
	Outcome Outcome
	// Rule decided (Allowed, Denied, Error).
	Rule *Rule
	// Policies are those whose allow rules all were false (NoMatch).
	Policies []*Program
	// Err is why Rule failed to evaluate (Error).
	Err error
}

// Allowed reports whether the request may proceed.
func (d Decision) Allowed() bool { return d.Outcome == OutcomeOpen || d.Outcome == OutcomeAllowed }

// Reason says why, for the caller (a 403 body, an MCP isError result): the
// rule's name and owner, never its expression or the evaluation error,
// which may reveal more of the policy than the caller should learn.
func (d Decision) Reason() string {
	switch d.Outcome {
	case OutcomeAllowed:
		return "allowed by " + d.Rule.String()
	case OutcomeDenied:
		return "denied by " + d.Rule.String()
	case OutcomeNoMatch:
		return "denied: no allow rule of " + policiesString(d.Policies) + " matched"
	case OutcomeError:
		return "denied: " + d.Rule.String() + " could not be evaluated"
	}
	return "allowed: no policy rule applies"
}

// String is the full account, for logs, events and the audit trail: the
// reason plus the expression and the evaluation error.
func (d Decision) String() string {
	switch d.Outcome {
	case OutcomeAllowed, OutcomeDenied:
		return d.Reason() + ": " + d.Rule.Expr
	case OutcomeError:
		return d.Reason() + ": " + d.Rule.Expr + ": " + d.Err.Error()
	}
	return d.Reason()
}

func policiesString(ps []*Program) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Owner.String()
	}
	if len(names) == 1 {
		return names[0] + " policy"
	}
	return strings.Join(names, ", ") + " policies"
}

// Decide evaluates the chain for one request. Rules of one kind combine
// like CEL's ||: a deny rule that is true denies whatever the others say,
// a failing deny rule denies unless a true one names itself first; an
// allow rule that is true allows even if another allow rule fails, since
// a failing rule never grants anything. Without a true allow rule a
// failure is reported as the reason for the denial.
func (c *Chain) Decide(in *Input) Decision {
	if c == nil {
		return Decision{}
	}
	var failed *Rule
	var failure error
	for _, r := range c.deny {
		hit, err := r.Eval(in)
		if hit {
			return Decision{Outcome: OutcomeDenied, Rule: r}
		}
		if err != nil && failed == nil {
			failed, failure = r, err
		}
	}
	if failed != nil {
		return Decision{Outcome: OutcomeError, Rule: failed, Err: failure}
	}
	if len(c.allow) == 0 {
		return Decision{}
	}
	for _, r := range c.allow {
		hit, err := r.Eval(in)
		if hit {
			return Decision{Outcome: OutcomeAllowed, Rule: r}
		}
		if err != nil && failed == nil {
			failed, failure = r, err
		}
	}
	if failed != nil {
		return Decision{Outcome: OutcomeError, Rule: failed, Err: failure}
	}
	return Decision{Outcome: OutcomeNoMatch, Policies: c.allowLevel}
}

// ErrCostLimit is wrapped by the error of an evaluation that exceeded the
// cost limit.
var ErrCostLimit = errors.New("cost limit exceeded")

// Eval evaluates the rule's expression: the fast path when it has one and
// it answers, else cel-go.
func (r *Rule) Eval(in *Input) (bool, error) {
	if r.fast != nil {
		if v := r.fast.eval(in); v.k == kBool {
			return v.b, nil
		}
	}
	return r.EvalCEL(in)
}

// EvalCEL evaluates the rule on cel-go, with the cost limit, never on the
// fast path (benchmarks and the differential tests compare the two).
func (r *Rule) EvalCEL(in *Input) (bool, error) {
	a := getActivation(in)
	out, _, err := r.prog.Eval(a)
	a.release()
	if err != nil {
		var cancel interpreter.EvalCancelledError
		if errors.As(err, &cancel) && cancel.Cause == interpreter.CostLimitExceeded {
			return false, fmt.Errorf("%w (%s)", ErrCostLimit, cancel.Message)
		}
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expression returned %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}

// Describe names the rule and its expression on one line, for explain
// output: `deny rule "no-deletes": request.method == "DELETE"`.
func (r *Rule) Describe() string {
	return r.Effect.String() + " " + r.Label() + ": " + strconv.Quote(r.Expr)
}
