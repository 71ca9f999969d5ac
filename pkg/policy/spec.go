package policy

import (
	"fmt"
	"strconv"
)

// Spec is the `policy` field of a Tenant, ToolSet or Tool.
type Spec struct {
	// Rules are evaluated deny rules first, then allow rules, each group in
	// the order written; see docs/policy.md for how levels combine.
	Rules []RuleSpec `json:"rules"`
}

// RuleSpec is one rule: a name and exactly one of Allow or Deny, a CEL
// expression of type bool.
type RuleSpec struct {
	// Name identifies the rule in decisions, 403 bodies and the audit
	// trail. Optional; an unnamed rule is called "rules[i]".
	Name string `json:"name,omitempty"`
	// Allow grants the request when the expression is true.
	Allow string `json:"allow,omitempty"`
	// Deny refuses the request when the expression is true.
	Deny string `json:"deny,omitempty"`
}

// Owner names the object a policy belongs to.
type Owner struct {
	Kind      string // "Tenant", "ToolSet" or "Tool"
	Namespace string // the tenant; empty for a Tenant
	Name      string
}

// String renders the owner as "Tool acme/billing-api" (or "Tenant acme").
func (o Owner) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Diagnostic is one problem Compile found. Rule and Field say which YAML
// value it is about (Path renders them as a field path under the policy);
// for problems inside an expression Offset is the byte offset into that
// expression and Line/Column (1-based, columns in characters) the position
// within it, which MapOffset turns into a file position.
type Diagnostic struct {
	Rule  int    // index into Spec.Rules; -1 for the policy as a whole
	Field string // "allow", "deny", "name" or "" (the rule or policy itself)
	// Offset is the byte offset inside the expression, or -1 when the
	// diagnostic is about the whole value.
	Offset       int
	Line, Column int
	Message      string
	Hint         string
}

// Path is the field path below the policy, e.g. "rules[1].allow".
func (d Diagnostic) Path() string {
	if d.Rule < 0 {
		return "rules"
	}
	p := "rules[" + strconv.Itoa(d.Rule) + "]"
	if d.Field != "" {
		p += "." + d.Field
	}
	return p
}

// String renders "rules[1].allow:1:9: message (hint: …)".
func (d Diagnostic) String() string {
	s := d.Path()
	if d.Offset >= 0 {
		s += fmt.Sprintf(":%d:%d", d.Line, d.Column)
	}
	s += ": " + d.Message
	if d.Hint != "" {
		s += " (hint: " + d.Hint + ")"
	}
	return s
}

// Locate returns the file position the diagnostic points at. start is
// where the YAML value at "spec.policy." + d.Path() begins (pkg/spec's
// Source.Position), src the file's text and value the expression as
// decoded. A diagnostic about a whole value points at its start; one
// inside an expression at the character, through MapOffset, or at the
// value's start if the scalar cannot be re-read.
func (d Diagnostic) Locate(src string, start Position, value string) Position {
	if d.Offset < 0 {
		return start
	}
	p, _ := MapOffset(src, start, value, d.Offset)
	return p
}
