package plan

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// quickstart loads examples/quickstart: two tenants with every kind of
// reference (a ToolSet's tools, Subscriptions to a tool and to a toolSet).
func quickstart(t *testing.T) []*spec.Object {
	t.Helper()
	objs, diags := spec.Load([]string{"../../examples/quickstart"}, nil)
	if diags.HasErrors() {
		t.Fatalf("quickstart: %v", diags)
	}
	for _, o := range objs {
		spec.Default(o)
	}
	return objs
}

func without(objs []*spec.Object, gone ...spec.Ref) []*spec.Object {
	var out []*spec.Object
	for _, o := range objs {
		if !slices.Contains(gone, o.Ref()) {
			out = append(out, o)
		}
	}
	return out
}

// TestReferencesMatchValidation keeps References in step with the
// reference checks of spec.Validate: removing any one object leaves
// exactly the dangling references Referrers names, field by field.
func TestReferencesMatchValidation(t *testing.T) {
	objs := quickstart(t)
	for _, o := range objs {
		ref := o.Ref()
		t.Run(ref.String(), func(t *testing.T) {
			var fromValidate []string
			for _, d := range spec.Validate(without(objs, ref), spec.ValidateOptions{}) {
				if d.Severity == spec.SeverityError {
					fromValidate = append(fromValidate, d.Object.String()+" "+d.Path)
				}
			}
			var fromPlan []string
			for _, r := range Referrers(objs, []spec.Ref{ref}) {
				if r.To != ref {
					t.Errorf("referrer %v points at %v, not the deleted %v", r.From, r.To, ref)
				}
				fromPlan = append(fromPlan, r.From.String()+" "+r.Path)
			}
			sort.Strings(fromValidate)
			sort.Strings(fromPlan)
			if !slices.Equal(fromValidate, fromPlan) {
				t.Fatalf("removing %v\nspec.Validate reports:\n  %s\nplan.Referrers names:\n  %s", ref,
					strings.Join(fromValidate, "\n  "), strings.Join(fromPlan, "\n  "))
			}
		})
	}
}

func refStrings(refs []spec.Ref) string {
	s := make([]string, len(refs))
	for i, r := range refs {
		s[i] = r.String()
	}
	return strings.Join(s, "\n")
}

func TestCascade(t *testing.T) {
	objs := quickstart(t)
	for _, tc := range []struct {
		delete []spec.Ref
		want   []string
	}{
		{[]spec.Ref{{Kind: spec.KindTool, Namespace: "acme", Name: "inventory-api"}},
			[]string{"Subscription/acme/web-shop-tools", "ToolSet/acme/acme-tools", "Tool/acme/inventory-api"}},
		{[]spec.Ref{{Kind: spec.KindPlan, Namespace: "globex", Name: "free"}},
			[]string{"Subscription/globex/forecast-bot-weather", "Plan/globex/free"}},
		{[]spec.Ref{{Kind: spec.KindSubscription, Namespace: "acme", Name: "web-shop-tools"}},
			[]string{"Subscription/acme/web-shop-tools"}},
		// A Tenant takes everything in it, in reverse dependency order.
		{[]spec.Ref{{Kind: spec.KindTenant, Name: "acme"}}, []string{
			"Subscription/acme/web-shop-tools", "Consumer/acme/web-shop", "Plan/acme/standard", "ToolSet/acme/acme-tools",
			"Tool/acme/inventory-api", "Tool/acme/billing-api", "Tenant/acme"}},
		// Naming a referrer too changes nothing; names are not repeated.
		{[]spec.Ref{{Kind: spec.KindTool, Namespace: "globex", Name: "weather-api"}, {Kind: spec.KindSubscription, Namespace: "globex", Name: "forecast-bot-weather"},
			{Kind: spec.KindTool, Namespace: "globex", Name: "weather-api"}},
			[]string{"Subscription/globex/forecast-bot-weather", "Tool/globex/weather-api"}},
	} {
		t.Run(tc.delete[0].String(), func(t *testing.T) {
			got := Cascade(objs, tc.delete)
			if refStrings(got) != strings.Join(tc.want, "\n") {
				t.Fatalf("cascade:\n%s\nwant:\n%s", refStrings(got), strings.Join(tc.want, "\n"))
			}
			// What Cascade returns can go at once: nothing dangles.
			if refs := Referrers(objs, got); len(refs) != 0 {
				t.Fatalf("after the cascade %d references dangle: %v", len(refs), refs)
			}
			next := without(objs, got...)
			if diags := spec.Validate(next, spec.ValidateOptions{}); diags.HasErrors() {
				t.Fatalf("the state after the cascade is invalid: %v", diags)
			}
		})
	}
}

func TestReferrersMessage(t *testing.T) {
	objs := quickstart(t)
	inv := spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: "inventory-api"}
	billing := spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: "billing-api"}
	weather := spec.Ref{Kind: spec.KindTool, Namespace: "globex", Name: "weather-api"}
	for _, tc := range []struct {
		name   string
		delete []spec.Ref
		want   string
	}{
		{"one referrer", []spec.Ref{inv}, `delete Tool/acme/inventory-api: 1 object still refers to it
  ToolSet/acme/acme-tools  spec.tools[1]`},
		{"several targets", []spec.Ref{inv, billing, weather}, `delete Tool/acme/billing-api, Tool/acme/inventory-api, Tool/globex/weather-api: 2 objects still refer to them
  ToolSet/acme/acme-tools                   spec.tools[0] → Tool/acme/billing-api
  ToolSet/acme/acme-tools                   spec.tools[1] → Tool/acme/inventory-api
  Subscription/globex/forecast-bot-weather  spec.tool → Tool/globex/weather-api`},
		{"a tenant", []spec.Ref{{Kind: spec.KindTenant, Name: "globex"}}, `delete Tenant/globex: 4 objects still refer to it
  Tool/globex/weather-api                   metadata.namespace
  Plan/globex/free                          metadata.namespace
  Consumer/globex/forecast-bot              metadata.namespace
  Subscription/globex/forecast-bot-weather  metadata.namespace`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReferrersMessage(Referrers(objs, tc.delete)); got != tc.want {
				t.Fatalf("message:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}

	// A tenant with many objects: the list stops at 20 and counts the rest.
	many := []*spec.Object{tenant("big")}
	for i := range 25 {
		many = append(many, tool("big", fmt.Sprintf("t%02d", i), "http://a"))
	}
	msg := ReferrersMessage(Referrers(many, []spec.Ref{{Kind: spec.KindTenant, Name: "big"}}))
	lines := strings.Split(msg, "\n")
	if lines[0] != "delete Tenant/big: 25 objects still refer to it" || len(lines) != 22 || lines[21] != "  … and 5 more" {
		t.Fatalf("long list:\n%s", msg)
	}
}
