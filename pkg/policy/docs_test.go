package policy

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docs/policy.md lists every variable with its type, and nothing else.
func TestDocsListVariables(t *testing.T) {
	doc := readDoc(t)
	for _, v := range Variables {
		row := "| `" + v.Name + "` | " + v.Type + " |"
		if !strings.Contains(doc, row) {
			t.Errorf("docs/policy.md lacks the row %q", row)
		}
	}
	rows := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| ").FindAllStringSubmatch(doc, -1)
	for _, r := range rows {
		if _, ok := varByName(r[1]); !ok {
			t.Errorf("docs/policy.md lists %q, which is not declared", r[1])
		}
	}
}

// docObjects compiles the policies of the YAML examples in docs/policy.md,
// by object name.
func docObjects(t *testing.T) map[string]*Program {
	t.Helper()
	doc := readDoc(t)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	progs := map[string]*Program{}
	for _, b := range blocks {
		for _, d := range strings.Split(b[1], "\n---\n") {
			var obj struct {
				Kind     string
				Metadata struct{ Name, Namespace string }
				Spec     struct{ Policy *Spec }
				Policy   *Spec
			}
			if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
				t.Fatalf("docs/policy.md example does not parse: %v\n%s", err, d)
			}
			p := obj.Spec.Policy
			if p == nil {
				p = obj.Policy
			}
			if p == nil {
				continue
			}
			owner := Owner{Kind: obj.Kind, Namespace: obj.Metadata.Namespace, Name: obj.Metadata.Name}
			prog, diags := Compile(owner, *p)
			if diags != nil {
				t.Fatalf("docs/policy.md example %s does not compile: %v", owner, diags)
			}
			progs[obj.Metadata.Name] = prog
		}
	}
	return progs
}

// The worked examples of docs/policy.md hold.
func TestDocsWorkedExamples(t *testing.T) {
	p := docObjects(t)
	names := make([]string, 0, len(p))
	for n := range p {
		names = append(names, n)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != ",acme,billing-api,finance-tools" {
		t.Fatalf("doc examples define policies for %v", names)
	}
	billing := NewChain(p["acme"], []*Program{p["finance-tools"]}, p["billing-api"])
	plain := NewChain(p["acme"], nil, nil)
	billingTarget := &Target{Tenant: "acme", Tool: "billing-api", Operation: "get_invoice"}
	jwt := func(sub string, groups []string, claims map[string]any) *Caller {
		if claims == nil {
			claims = map[string]any{}
		}
		claims["email_verified"] = true
		return &Caller{Tenant: "acme", Subject: sub, Method: "jwt", Groups: groups, Claims: claims}
	}
	cases := []struct {
		name   string
		chain  *Chain
		in     Input
		reason string
	}{
		{"alice", billing, Input{Caller: jwt("alice", []string{"staff"}, map[string]any{"dept": "finance"}), Target: billingTarget, Method: "GET"},
			`allowed by ToolSet acme/finance-tools policy rule "finance"`},
		{"bob", billing, Input{Caller: jwt("bob", []string{"staff"}, map[string]any{"dept": "sales"}), Target: billingTarget, Method: "GET"},
			`denied: no allow rule of ToolSet acme/finance-tools policy matched`},
		{"bob elsewhere", plain, Input{Caller: jwt("bob", []string{"staff"}, map[string]any{"dept": "sales"}), Target: &Target{Tenant: "acme", Tool: "wiki"}, Method: "GET"},
			`allowed by Tenant acme policy rule "staff"`},
		{"alice by API key", billing, Input{Caller: &Caller{Tenant: "acme", Method: "api_key", Groups: []string{"finance"}}, Target: billingTarget, Method: "POST"},
			`denied by Tool acme/billing-api policy rule "read-only-for-agents"`},
		{"eve", billing, Input{Caller: &Caller{Tenant: "globex", Method: "jwt", Claims: map[string]any{"email_verified": true}}, Target: billingTarget, Method: "GET"},
			`denied by Tenant acme policy rule "own-tenant-only"`},
		{"alice without dept", billing, Input{Caller: jwt("alice", []string{"finance"}, nil), Target: billingTarget, Method: "GET"},
			`allowed by ToolSet acme/finance-tools policy rule "finance"`},
		{"carol", billing, Input{Caller: jwt("carol", nil, nil), Target: billingTarget, Method: "GET"},
			`denied: ToolSet acme/finance-tools policy rule "finance" could not be evaluated`},
	}
	for _, tc := range cases {
		if got := tc.chain.Decide(&tc.in).Reason(); got != tc.reason {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.reason)
		}
	}
}
