package policy

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/internal/golden"
)

// compileErrorCases are policies that must not compile, each with the
// diagnostics it gives in testdata/compile_errors.golden.
var compileErrorCases = []struct {
	name  string
	rules []RuleSpec
}{
	{"no rules", nil},
	{"neither allow nor deny", []RuleSpec{{Name: "x"}}},
	{"both allow and deny", []RuleSpec{{Allow: "true", Deny: "false"}}},
	{"empty expression", []RuleSpec{{Allow: "  "}}},
	{"bad and duplicate names", []RuleSpec{{Name: "Bad Name", Allow: "true"}, {Name: "a", Allow: "true"}, {Name: "a", Deny: "false"}}},
	{"unknown variable", []RuleSpec{{Allow: `reqest.method == "GET"`}}},
	{"unknown variable, short name", []RuleSpec{{Allow: `method == "GET"`}}},
	{"type error", []RuleSpec{{Deny: `request.method == 1`}}},
	{"type error on second line", []RuleSpec{{Deny: "request.method == \"GET\" &&\n  caller.scopes == \"x\""}}},
	{"not bool", []RuleSpec{{Allow: `caller.claims.admin`}}},
	{"string result", []RuleSpec{{Allow: `request.path`}}},
	{"syntax error", []RuleSpec{{Allow: `request.method == "GET" &&& true`}}},
	{"unterminated string", []RuleSpec{{Allow: `request.method == "GET`}}},
	{"syntax error after multibyte text", []RuleSpec{{Allow: `caller.subject == "zoë" ) true`}}},
	{"map macro is not available", []RuleSpec{{Allow: `caller.groups.map(g, g + "x").size() > 0`}}},
	{"filter macro is not available", []RuleSpec{{Allow: `size(caller.groups.filter(g, g == "a")) > 0`}}},
	{"upper-case header name", []RuleSpec{{Deny: `request.headers["X-Debug"] == "1"`}, {Deny: `"X-Trace" in request.headers`}}},
	{"invalid regex", []RuleSpec{{Allow: `request.path.matches("^/a[")`}}},
	{"unknown function", []RuleSpec{{Allow: `request.path.lowerAscii() == "/a"`}}},
	{"too long", []RuleSpec{{Allow: strings.Repeat("true && ", 600) + "true"}}},
	{"errors in several rules", []RuleSpec{{Allow: `true`}, {Deny: `caller.grups == []`}, {Allow: `tool.name = "x"`}}},
}

func TestCompileErrorsGolden(t *testing.T) {
	var b strings.Builder
	for _, tc := range compileErrorCases {
		p, diags := Compile(toolOwner, Spec{Rules: tc.rules})
		if p != nil || len(diags) == 0 {
			t.Errorf("%s: compiled, want diagnostics", tc.name)
			continue
		}
		fmt.Fprintf(&b, "== %s\n", tc.name)
		for _, d := range diags {
			b.WriteString(d.String())
			b.WriteByte('\n')
			// The offset and the line/column must point at the same place.
			if d.Offset >= 0 {
				expr := tc.rules[d.Rule].Allow + tc.rules[d.Rule].Deny
				if got := byteOffset(expr, d.Line, d.Column); got != d.Offset {
					t.Errorf("%s: offset %d, but line %d col %d is byte %d", tc.name, d.Offset, d.Line, d.Column, got)
				}
				if d.Offset > len(expr) {
					t.Errorf("%s: offset %d past the expression (%d bytes)", tc.name, d.Offset, len(expr))
				}
			}
		}
	}
	golden.Check(t, filepath.Join("testdata", "compile_errors.golden"), []byte(b.String()))
}

// Exact positions of type errors inside expressions, including past
// multi-byte characters and on later lines.
func TestCompileErrorPositions(t *testing.T) {
	cases := []struct {
		expr         string
		line, col    int
		offset       int
		messageStart string
	}{
		{`request.method == 1`, 1, 16, 15, "found no matching overload"},
		{`caller.subject == "zoë" && caller.scopes == "x"`, 1, 42, 42, "found no matching overload"},
		{"true &&\n  request.headers == 3", 2, 19, 26, "found no matching overload"},
		{"true ||\n\n     nosuch", 3, 6, 14, `unknown variable or function "nosuch"`},
		{"caller.claims.a == 1 || reqest.method == \"x\"", 1, 25, 24, `unknown variable or function "reqest.method"`},
	}
	for _, tc := range cases {
		_, diags := Compile(toolOwner, Spec{Rules: []RuleSpec{{Allow: tc.expr}}})
		if len(diags) != 1 {
			t.Fatalf("%q: %d diagnostics: %v", tc.expr, len(diags), diags)
		}
		d := diags[0]
		if d.Line != tc.line || d.Column != tc.col || d.Offset != tc.offset || !strings.HasPrefix(d.Message, tc.messageStart) {
			t.Errorf("%q: got %d:%d offset %d %q, want %d:%d offset %d %q…", tc.expr, d.Line, d.Column, d.Offset, d.Message,
				tc.line, tc.col, tc.offset, tc.messageStart)
		}
		if d.Path() != "rules[0].allow" {
			t.Errorf("path %q", d.Path())
		}
	}
}

func TestIdentityOnly(t *testing.T) {
	cases := []struct {
		expr     string
		identity bool
		reads    Group
	}{
		{`"finance" in caller.groups`, true, GroupCaller},
		{`caller.claims.dept == "x" && caller.admin`, true, GroupCaller},
		{`true`, true, 0},
		{`request.method == "GET"`, false, GroupRequest},
		{`"a" in caller.scopes && request.path.startsWith("/a")`, false, GroupCaller | GroupRequest},
		{`operation.name == "delete" && !caller.admin`, false, GroupCaller | GroupTool},
		{`mcp.arguments.amount < 100.0`, false, GroupMCP},
		{`source.ip == "10.0.0.1"`, false, GroupSource},
		{`caller.groups.exists(g, g == tool.name)`, false, GroupCaller | GroupTool},
	}
	for _, tc := range cases {
		p := mustCompile(t, nil, toolOwner, RuleSpec{Allow: tc.expr})
		r := p.Rules[0]
		if r.IdentityOnly() != tc.identity || r.Reads() != tc.reads {
			t.Errorf("%q: identity-only %v reads %b, want %v %b", tc.expr, r.IdentityOnly(), r.Reads(), tc.identity, tc.reads)
		}
	}
}

// Every declared variable type-checks with the type docs/policy.md gives.
func TestVariablesDeclared(t *testing.T) {
	for _, v := range Variables {
		var expr string
		switch v.Type {
		case "string":
			expr = v.Name + ` == ""`
		case "bool":
			expr = v.Name
		case "list(string)":
			expr = `"x" in ` + v.Name
		case "map(string, string)":
			expr = v.Name + `["x"] == ""`
		case "map(string, dyn)":
			expr = `has(` + v.Name + `.x)`
		default:
			t.Fatalf("%s: no test expression for type %s", v.Name, v.Type)
		}
		p := mustCompile(t, nil, toolOwner, RuleSpec{Allow: expr})
		if !p.Rules[0].Fast() {
			t.Errorf("%s: %q does not run on the fast path", v.Name, expr)
		}
	}
}

// FuzzCompile feeds arbitrary text to the compiler: it must not panic,
// every diagnostic must point inside the expression, and a policy that
// compiles must evaluate (to a decision, never a panic).
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`request.method == "GET"`, `"finance" in caller.groups`, `has(caller.claims.dept)`,
		`caller.claims.?tier.orValue("free") == "gold"`, `request.path.matches("^/v[0-9]+/")`,
		"true &&\n  false", `caller.groups.exists(g, g.startsWith("a"))`, `"`, `((((`, `a.b.c.d`,
		`cidr("10.0.0.0/8").containsIP(ip(source.ip))`, `request.headers["x"] == "é"`, "\x00", `1 / 0 == 1`,
		`[1,2,3].all(x, x > 0)`, `{"a": 1}.a == 1`, `caller.claims.level >= 3`,
	} {
		f.Add(s)
	}
	in := benchInput()
	f.Fuzz(func(t *testing.T, expr string) {
		for _, rs := range []RuleSpec{{Allow: expr}, {Deny: expr}} {
			p, diags := Compile(toolOwner, Spec{Rules: []RuleSpec{rs}})
			for _, d := range diags {
				if d.Offset > len(expr) || d.Offset < -1 {
					t.Fatalf("%q: diagnostic offset %d outside the expression: %s", expr, d.Offset, d)
				}
				if d.Offset >= 0 && (d.Line < 1 || d.Column < 1) {
					t.Fatalf("%q: bad position %s", expr, d)
				}
			}
			if p == nil {
				continue
			}
			c := NewChain(nil, nil, p)
			c.Decide(in)
			c.Decide(&Input{})
			c.Visible(in, KnownIdentity)
		}
	})
}

// A rule that could never finish within the cost limit is a spec error,
// not a denial of every request.
func TestCompileCostFloor(t *testing.T) {
	c := testCompiler(t, Limits{Cost: 1})
	_, diags := c.Compile(toolOwner, Spec{Rules: []RuleSpec{{Allow: `request.path.startsWith("/a") && request.method == "GET"`}}})
	if len(diags) != 1 || !strings.HasPrefix(diags[0].Message, "expression costs at least") || diags[0].Offset != -1 {
		t.Fatalf("diagnostics %v, want one about the cost floor of the whole expression", diags)
	}
	if _, diags := c.Compile(toolOwner, Spec{Rules: []RuleSpec{{Allow: `true`}}}); diags != nil {
		t.Fatalf("a constant rule: %v", diags)
	}
}
