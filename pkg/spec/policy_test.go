package spec

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stoa-gateway/stoa/pkg/policy"
)

// wantAt returns the 1-based line and column (in characters) of the first
// occurrence of marker in src.
func wantAt(t *testing.T, src, marker string) (int, int) {
	t.Helper()
	i := strings.Index(src, marker)
	if i < 0 {
		t.Fatalf("%q not in the document", marker)
	}
	line := 1 + strings.Count(src[:i], "\n")
	start := strings.LastIndexByte(src[:i], '\n') + 1
	return line, utf8.RuneCountInString(src[start:i]) + 1
}

// TestPolicyErrorsInsideExpressions: a problem inside a CEL expression is
// reported at its character in the file, in every scalar style a rule may
// be written in, and in each kind that has a policy.
func TestPolicyErrorsInsideExpressions(t *testing.T) {
	const head = "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: acme}\nspec:\n  policy:\n    rules:\n"
	for _, tc := range []struct {
		name, rule, marker string
	}{
		{"plain", `      - allow: '"staff" in caller.grups'` + "\n", "caller.grups"},
		{"plain unquoted", "      - deny: request.method == \"DELETE\" && caller.grups == []\n", "caller.grups"},
		{"single quoted with escape", `      - allow: 'caller.subject == ''x'' && caller.grups == []'` + "\n", "caller.grups"},
		{"double quoted with escapes", `      - allow: "caller.subject == \"a\\tb\" && caller.grups == []"` + "\n", "caller.grups"},
		{"flow mapping", `      - {name: r, allow: 'caller.grups == []'}` + "\n", "caller.grups"},
		{"folded block", "      - deny: >-\n          request.method == \"DELETE\" &&\n          caller.grups == []\n", "caller.grups"},
		{"literal block", "      - deny: |\n          request.method == \"DELETE\"\n            && caller.grups == []\n", "caller.grups"},
		{"multi-line double quoted", "      - allow: \"request.method == 'GET'\n          && caller.grups == []\"\n", "caller.grups"},
		{"non-ASCII before", "      - allow: 'caller.subject == \"Zoë\" && caller.grups == []'\n", "caller.grups"},
		{"type error", "      - allow: 'caller.scopes == \"billing:read\"'\n", "=="},
		{"bad regexp", "      - deny: 'request.path.matches(\"[a-\")'\n", `"[a-"`},
		{"header case", "      - deny: '\"X-Foo\" in request.headers'\n", `"X-Foo"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := head + tc.rule
			objs := mustParse(t, src)
			diags := Validate(objs, ValidateOptions{SkipReferences: true})
			if len(diags) != 1 || !diags[0].IsError() {
				t.Fatalf("want one error, got:\n%v", diags)
			}
			d := diags[0]
			line, col := wantAt(t, src, tc.marker)
			if d.Line != line || d.Column != col || !strings.HasPrefix(d.Path, "spec.policy.rules[0].") {
				t.Errorf("%s:%d:%d %s: %s; want line %d col %d", d.File, d.Line, d.Column, d.Path, d.Message, line, col)
			}
			if want := strings.Split(src, "\n")[line-1]; d.SourceLine != want {
				t.Errorf("source line %q, want %q", d.SourceLine, want)
			}
		})
	}
}

// TestPolicyValueProblems: problems about a whole rule or policy point at
// the field, and the limits and rules of pkg/policy apply.
func TestPolicyValueProblems(t *testing.T) {
	doc := func(kind, ns, policy string) string {
		s := "apiVersion: stoa.io/v1alpha1\nkind: " + kind + "\nmetadata: {name: x"
		if ns != "" {
			s += ", namespace: " + ns
		}
		s += "}\nspec:\n"
		switch kind {
		case "Tool":
			s += "  upstream: http://127.0.0.1:1\n"
		case "ToolSet":
			s += "  tools: [a]\n"
		}
		return s + "  policy:\n" + policy
	}
	many := "    rules:\n" + strings.Repeat("      - allow: 'true'\n", 65)
	long := "    rules:\n      - allow: '" + strings.Repeat("true && ", 600) + "true'\n"
	for _, tc := range []struct {
		name, kind, ns, policy, path, msg string
	}{
		{"no rules", "Tenant", "", "    rules: []\n", "spec.policy.rules", "policy has no rules"},
		{"empty policy", "Tool", "acme", "    {}\n", "spec.policy.rules", "policy has no rules"},
		{"both", "ToolSet", "acme", "    rules:\n      - {allow: 'true', deny: 'false'}\n", "spec.policy.rules[0].deny", "both allow and deny"},
		{"neither", "Tool", "acme", "    rules:\n      - name: r\n", "spec.policy.rules[0]", "neither allow nor deny"},
		{"duplicate name", "Tenant", "", "    rules:\n      - {name: r, allow: 'true'}\n      - {name: r, deny: 'false'}\n", "spec.policy.rules[1].name", `duplicate rule name "r"`},
		{"bad name", "Tenant", "", "    rules:\n      - {name: Staff Only, allow: 'true'}\n", "spec.policy.rules[0].name", "invalid rule name"},
		{"too many", "Tenant", "", many, "spec.policy.rules", "65 rules, more than the limit of 64"},
		{"too long", "Tool", "acme", long, "spec.policy.rules[0].allow", "more than the limit of 4096"},
		{"not bool", "Tenant", "", "    rules:\n      - allow: caller.claims.admin\n", "spec.policy.rules[0].allow", "want bool"},
		{"macro", "Tenant", "", "    rules:\n      - allow: 'caller.groups.map(g, g).size() > 0'\n", "spec.policy.rules[0].allow", "map() is not available"},
		{"empty", "Tenant", "", "    rules:\n      - allow: ' '\n", "spec.policy.rules[0].allow", "empty expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := mustParse(t, doc(tc.kind, tc.ns, tc.policy))
			diags := Validate(objs, ValidateOptions{SkipReferences: true})
			d := findDiag(diags, tc.path, tc.msg)
			if d == nil || !d.IsError() || d.Line == 0 || d.Hint == "" {
				t.Fatalf("want an error at %s containing %q with a hint, got:\n%v", tc.path, tc.msg, diags)
			}
		})
	}
}

// TestPolicyCompiledOncePerText: generated specs repeat one policy on many
// objects, and stoad validates every apply; a policy text is compiled once,
// and every object still gets its own diagnostics at its own position.
func TestPolicyCompiledOncePerText(t *testing.T) {
	var b strings.Builder
	const marker = `caller.grups == ["compiled-once"]`
	for _, n := range []string{"a", "b", "c"} {
		b.WriteString("---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: " + n + ", namespace: acme}\nspec:\n  upstream: http://127.0.0.1:1\n  policy:\n    rules:\n      - allow: '" + marker + "'\n")
	}
	objs := mustParse(t, b.String())
	_, before := compiledPolicies.counts()
	diags := Validate(objs, ValidateOptions{SkipReferences: true})
	Validate(objs, ValidateOptions{SkipReferences: true})
	if _, after := compiledPolicies.counts(); after-before > 1 {
		t.Errorf("%d compilations of one policy text", after-before)
	}
	if len(diags) != 3 || diags[0].Line == diags[1].Line || diags[1].Line == diags[2].Line {
		t.Fatalf("want three errors on three lines:\n%v", diags)
	}
	for _, d := range diags {
		if d.Column != strings.Index(d.SourceLine, "caller.grups")+1 {
			t.Errorf("%d:%d points at %q", d.Line, d.Column, d.SourceLine)
		}
	}
	// The memo stays bounded.
	var r policyResults
	big := strings.Repeat("x", maxPolicyMemoBytes/2)
	for i := range 3 {
		r.check(objs[0], policy.Spec{Rules: []policy.RuleSpec{{Name: strconv.Itoa(i), Allow: "true || '" + big + "' == ''"}}})
	}
	if n, compiles := r.counts(); r.bytes > maxPolicyMemoBytes || n == 0 || compiles != 3 {
		t.Errorf("memo holds %d bytes in %d entries after %d compilations", r.bytes, n, compiles)
	}
}
