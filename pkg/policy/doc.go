// Package policy compiles and evaluates the CEL access policies that
// Tenants, ToolSets and Tools carry in their `policy` field.
//
// A policy is a list of rules, each either `allow` or `deny`, whose CEL
// expression reads the request (method, path, headers), the caller (tenant,
// consumer, claims, scopes, groups), the target (tool, operation), the MCP
// arguments and the source address. Policies are compiled and type-checked
// when specs are validated (Compile), evaluated on every request (Chain.Decide)
// and, for tools/list, partially evaluated with the caller known and the
// request unknown (Chain.Visible). docs/policy.md is the user-facing rule
// book; this comment only says how the code is organised:
//
//   - spec.go: the YAML shape (Spec, RuleSpec) and Diagnostic.
//   - env.go: the CEL environment: declared variables, macros, limits.
//   - compile.go: Compile → *Program, one compiled Rule per rule.
//   - input.go, activation.go: what a request gives a policy, and the
//     allocation-light CEL activation over it.
//   - decide.go: Chain (Tenant → ToolSets → Tool) and Decision.
//   - visible.go: partial evaluation for hiding tools a caller can never call.
//   - fast*.go: a native evaluator for the common expression shapes that
//     keeps CEL's semantics without allocating; rules it cannot handle, and
//     inputs larger than the bounds it was proven for, run on cel-go.
//   - yamlpos.go: maps an offset inside an expression to file:line:col.
package policy
