package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/overloads"
)

// Effect is what a rule does when its expression is true.
type Effect uint8

// The effects.
const (
	Allow Effect = iota + 1
	Deny
)

func (e Effect) String() string {
	if e == Deny {
		return "deny"
	}
	return "allow"
}

// Rule is one compiled rule. Rules are immutable and shared by every
// request; a Decision points at the Rule that decided.
type Rule struct {
	Owner  Owner
	Index  int    // position in the policy's rules
	Name   string // as written; "" when unnamed
	Effect Effect
	Expr   string

	reads   Group  // the variable groups the expression reads
	maxCost uint64 // static worst case within Limits' size bounds
	prog    cel.Program
	partial cel.Program
	fast    node // nil: the rule runs on cel-go only
}

// Label names the rule inside its policy: `rule "no-deletes"`, or
// "rules[2]" for an unnamed rule.
func (r *Rule) Label() string {
	if r.Name != "" {
		return "rule " + strconv.Quote(r.Name)
	}
	return "rules[" + strconv.Itoa(r.Index) + "]"
}

// String names the rule fully: `Tool acme/billing policy rule "no-deletes"`.
func (r *Rule) String() string { return r.Owner.String() + " policy " + r.Label() }

// Reads reports the groups of variables the rule's expression reads.
func (r *Rule) Reads() Group { return r.reads }

// IdentityOnly reports whether the rule reads nothing but the caller
// (caller.*): its outcome is fixed for a given caller.
func (r *Rule) IdentityOnly() bool { return r.reads&^GroupCaller == 0 }

// Fast reports whether the rule runs on the native fast path (for inputs
// within the compiler's size bounds).
func (r *Rule) Fast() bool { return r.fast != nil }

// MaxCost is the static worst-case CEL cost of the rule for inputs within
// the compiler's size bounds.
func (r *Rule) MaxCost() uint64 { return r.maxCost }

// Program is a compiled policy.
type Program struct {
	Owner Owner
	Rules []*Rule // as written

	deny, allow []*Rule
}

// HasAllow reports whether the policy has allow rules.
func (p *Program) HasAllow() bool { return p != nil && len(p.allow) > 0 }

var ruleNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

// Compile compiles and type-checks p. It returns a nil Program when there
// are diagnostics; every diagnostic is an error.
func (c *Compiler) Compile(owner Owner, p Spec) (*Program, []Diagnostic) {
	var diags []Diagnostic
	whole := func(rule int, field, msg, hint string) {
		diags = append(diags, Diagnostic{Rule: rule, Field: field, Offset: -1, Message: msg, Hint: hint})
	}
	if len(p.Rules) == 0 {
		whole(-1, "", "policy has no rules", "add a rule (- name: …, allow: <CEL>) or remove the policy field")
		return nil, diags
	}
	if len(p.Rules) > c.limits.MaxRules {
		whole(-1, "", fmt.Sprintf("policy has %d rules, more than the limit of %d", len(p.Rules), c.limits.MaxRules),
			"combine conditions with || and && or split the tools across ToolSets")
		return nil, diags
	}
	prog := &Program{Owner: owner}
	names := map[string]int{}
	for i, rs := range p.Rules {
		if rs.Name != "" {
			if !ruleNameRE.MatchString(rs.Name) {
				whole(i, "name", fmt.Sprintf("invalid rule name %q", rs.Name),
					"use at most 63 lower-case letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
			} else if j, dup := names[rs.Name]; dup {
				whole(i, "name", fmt.Sprintf("duplicate rule name %q (also rules[%d])", rs.Name, j), "give every rule of a policy its own name")
			} else {
				names[rs.Name] = i
			}
		}
		var effect Effect
		var field, expr string
		switch {
		case rs.Allow != "" && rs.Deny != "":
			whole(i, "deny", "rule sets both allow and deny", "split it into two rules, one allow and one deny")
			continue
		case rs.Allow != "":
			effect, field, expr = Allow, "allow", rs.Allow
		case rs.Deny != "":
			effect, field, expr = Deny, "deny", rs.Deny
		default:
			whole(i, "", "rule has neither allow nor deny", "add allow: <CEL expression> or deny: <CEL expression>")
			continue
		}
		if strings.TrimSpace(expr) == "" {
			whole(i, field, "empty expression", `write a CEL expression of type bool, e.g. "admin" in caller.groups`)
			continue
		}
		r, ds := c.compileRule(owner, i, field, expr)
		diags = append(diags, ds...)
		if r == nil {
			continue
		}
		r.Name, r.Effect = rs.Name, effect
		prog.Rules = append(prog.Rules, r)
		if effect == Deny {
			prog.deny = append(prog.deny, r)
		} else {
			prog.allow = append(prog.allow, r)
		}
	}
	if len(diags) > 0 {
		return nil, diags
	}
	return prog, nil
}

// compileRule parses, checks, estimates and plans one expression.
func (c *Compiler) compileRule(owner Owner, index int, field, expr string) (*Rule, []Diagnostic) {
	var diags []Diagnostic
	at := func(loc common.Location, msg, hint string) {
		line, col := 1, 1
		if loc != nil && loc.Line() > 0 {
			line, col = loc.Line(), max(loc.Column()+1, 1)
		}
		off := byteOffset(expr, line, col)
		diags = append(diags, Diagnostic{Rule: index, Field: field, Offset: off, Line: line, Column: col, Message: msg, Hint: hint})
	}
	whole := func(msg, hint string) {
		diags = append(diags, Diagnostic{Rule: index, Field: field, Offset: -1, Message: msg, Hint: hint})
	}
	if n := utf8.RuneCountInString(expr); n > c.limits.MaxExprLen {
		whole(fmt.Sprintf("expression is %d characters long, more than the limit of %d", n, c.limits.MaxExprLen),
			"a policy rule is a condition, not a program: split it into several rules")
		return nil, diags
	}
	checked, iss := c.env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			if name, ok := disabledMacro(e.Message); ok {
				// The rest are the macro's loop variable, "undeclared".
				diags = diags[:0]
				at(e.Location, name+"() is not available in policies",
					"a rule answers yes or no: use exists(), all() or exists_one()")
				break
			}
			msg, hint := explainCELError(e.Message)
			at(e.Location, msg, hint)
			if name, ok := strings.CutPrefix(msg, "unknown variable or function "); ok {
				// cel-go points at the last dot of a dotted name; point at
				// its start.
				name, _ = strconv.Unquote(name)
				d := &diags[len(diags)-1]
				for i := d.Offset; i >= 0 && i >= d.Offset-len(name); i-- {
					if strings.HasPrefix(expr[i:], name) {
						d.Column -= utf8.RuneCountInString(expr[i:d.Offset])
						d.Offset = i
						break
					}
				}
			}
		}
		return nil, diags
	}
	if t := checked.OutputType(); !t.IsExactType(cel.BoolType) {
		hint := "a rule must be true or false; compare the value, e.g. caller.claims.admin == true"
		at(common.NewLocation(1, 0), fmt.Sprintf("expression has type %s, want bool", t), hint)
		return nil, diags
	}
	native := checked.NativeRep()
	info := native.SourceInfo()
	r := &Rule{Owner: owner, Index: index, Expr: expr}
	celast.PostOrderVisit(native.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if ref, ok := native.ReferenceMap()[e.ID()]; ok && ref.Name != "" {
			if id, ok := varByName(ref.Name); ok {
				r.reads |= Variables[id].Group
			}
		}
		if e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		args := call.Args()
		// request.headers["X-Foo"] can never match: names are lower case.
		if call.FunctionName() == "_[_]" && len(args) == 2 && isVar(native, args[0], vRequestHeaders) {
			if k, ok := constString(args[1]); ok && k != strings.ToLower(k) {
				at(info.GetStartLocation(args[1].ID()), fmt.Sprintf("header name %q has upper-case letters; request.headers keys are lower case", k),
					"write "+strconv.Quote(strings.ToLower(k)))
			}
		}
		if call.FunctionName() == "@in" && len(args) == 2 && isVar(native, args[1], vRequestHeaders) {
			if k, ok := constString(args[0]); ok && k != strings.ToLower(k) {
				at(info.GetStartLocation(args[0].ID()), fmt.Sprintf("header name %q has upper-case letters; request.headers keys are lower case", k),
					"write "+strconv.Quote(strings.ToLower(k)))
			}
		}
		// A constant pattern is compiled now, so a bad one is a spec error
		// rather than a denial on every request.
		if call.FunctionName() == overloads.Matches {
			pat := args[len(args)-1]
			if s, ok := constString(pat); ok {
				if _, err := regexp.Compile(s); err != nil {
					at(info.GetStartLocation(pat.ID()), "invalid regular expression: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "),
						"patterns use RE2 syntax (https://github.com/google/re2/wiki/Syntax)")
				}
			}
		}
	}))
	if len(diags) > 0 {
		return nil, diags
	}
	est, err := c.env.EstimateCost(checked, sizeEstimator{c.limits})
	if err != nil {
		whole("estimate cost: "+err.Error(), "")
		return nil, diags
	}
	if est.Min > c.limits.Cost {
		whole(fmt.Sprintf("expression costs at least %d, more than the limit of %d", est.Min, c.limits.Cost),
			"simplify the expression: it would fail, and deny, on every request")
		return nil, diags
	}
	r.maxCost = est.Max
	r.prog, err = c.env.Program(checked, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(c.limits.Cost))
	if err == nil {
		r.partial, err = c.env.Program(checked, cel.EvalOptions(cel.OptOptimize, cel.OptPartialEval), cel.CostLimit(c.limits.Cost))
	}
	if err != nil {
		whole("plan expression: "+err.Error(), "")
		return nil, diags
	}
	if est.Max <= c.limits.Cost {
		r.fast = compileFast(native, c.limits)
	}
	return r, nil
}

// isVar reports whether e reads the declared variable id.
func isVar(a *celast.AST, e celast.Expr, id varID) bool {
	ref, ok := a.ReferenceMap()[e.ID()]
	return ok && ref.Name == Variables[id].Name
}

// constString returns e's value when e is a string literal.
func constString(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().Value().(string)
	return s, ok
}

// byteOffset converts a 1-based line and character column inside expr to a
// byte offset.
func byteOffset(expr string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(expr[off:], '\n')
		if i < 0 {
			return len(expr)
		}
		off += i + 1
	}
	for c := 1; c < col && off < len(expr) && expr[off] != '\n'; c++ {
		_, n := utf8.DecodeRuneInString(expr[off:])
		off += n
	}
	return off
}

// disabledMacro recognises a call of a macro the environment leaves out.
func disabledMacro(msg string) (string, bool) {
	for _, m := range []string{"map", "filter", "transformList", "transformMap"} {
		if strings.HasPrefix(msg, "undeclared reference to '"+m+"'") {
			return m, true
		}
	}
	return "", false
}

// explainCELError turns a cel-go message into ours, with a hint.
func explainCELError(msg string) (string, string) {
	msg = strings.TrimSuffix(msg, " (in container '')")
	if rest, ok := strings.CutPrefix(msg, "undeclared reference to '"); ok {
		name, _, _ := strings.Cut(rest, "'")
		hint := "policies can read: request.*, caller.*, tool.*, operation.name, mcp.arguments, source.ip (see docs/policy.md)"
		if s := suggestVar(name); s != "" {
			hint = "did you mean " + s + "?"
		}
		return "unknown variable or function " + strconv.Quote(name), hint
	}
	if strings.HasPrefix(msg, "found no matching overload for") {
		return msg, "the operand types do not fit; claims are dyn: compare them with a literal of the claim's JSON type (numbers are doubles)"
	}
	if strings.HasPrefix(msg, "Syntax error:") {
		return strings.TrimSpace(strings.TrimPrefix(msg, "Syntax error:")), "see https://cel.dev for CEL syntax"
	}
	if len(msg) > 0 {
		r, n := utf8.DecodeRuneInString(msg)
		msg = string(unicode.ToLower(r)) + msg[n:]
	}
	return msg, ""
}

// suggestVar finds the declared variable closest to name.
func suggestVar(name string) string {
	best, bestD := "", 4
	for i := range Variables {
		v := Variables[i].Name
		if d := editDistance(name, v); d < bestD {
			best, bestD = v, d
		}
		// "claims.dept" for "caller.claims.dept", "method" for "request.method".
		if _, last, ok := strings.Cut(v, "."); ok && (name == last || strings.HasPrefix(name, last+".")) && best == "" {
			best = v
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
