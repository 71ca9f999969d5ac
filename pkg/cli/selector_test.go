package cli

import (
	"strings"
	"testing"
)

func TestParseSelector(t *testing.T) {
	labels := map[string]string{"team": "billing", "tier": "gold", "example.com/owner": "ann"}
	for _, tc := range []struct {
		sel   string
		match bool
		err   string
	}{
		{"team=billing", true, ""},
		{"team==billing", true, ""},
		{"team=ops", false, ""},
		{"team!=ops", true, ""},
		{"team!=billing", false, ""},
		{"missing!=x", true, ""},
		{"tier", true, ""},
		{"!tier", false, ""},
		{"!legacy", true, ""},
		{"team=billing, tier=gold , example.com/owner=ann", true, ""},
		{"team=billing,tier=silver", false, ""},
		{"", true, ""},
		{"team=billing,,tier", false, "empty requirement"},
		{"=x", false, "not a label key"},
		{"te am=x", false, "not a label key"},
		{"team=a=b", false, "may not contain"},
		{"!", false, "not a label key"},
	} {
		sel, err := parseSelector(tc.sel)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseSelector(%q) error %v, want %q", tc.sel, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseSelector(%q): %v", tc.sel, err)
			continue
		}
		if got := sel.Matches(labels); got != tc.match {
			t.Errorf("%q matches %v = %v, want %v", tc.sel, labels, got, tc.match)
		}
		if again, err := parseSelector(sel.String()); err != nil || again.String() != sel.String() {
			t.Errorf("%q: String() %q does not parse back: %v", tc.sel, sel.String(), err)
		}
	}
}

func TestSelectorEqualities(t *testing.T) {
	sel, _ := parseSelector("a=1,b=2")
	if m, err := sel.equalities("-l"); err != nil || len(m) != 2 || m["b"] != "2" {
		t.Fatalf("equalities = %v, %v", m, err)
	}
	sel, _ = parseSelector("a=1,b!=2")
	if _, err := sel.equalities("-l"); err == nil || !strings.Contains(err.Error(), "only key=value") {
		t.Fatalf("want an error for !=, got %v", err)
	}
}

// FuzzParseSelector: any input either fails to parse or yields a selector
// whose rendering parses back to the same selector.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"team=billing", "a!=b,!c,d", "example.com/x==y", ",,", "!", "a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := parseSelector(s)
		if err != nil {
			return
		}
		again, err := parseSelector(sel.String())
		if err != nil || again.String() != sel.String() {
			t.Fatalf("%q → %q → %q, %v", s, sel.String(), again.String(), err)
		}
		sel.Matches(map[string]string{"a": "b"})
	})
}
