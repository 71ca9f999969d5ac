package spec

import (
	"reflect"
	"strings"
	"testing"
)

func reflectValue(v any) reflect.Value { return reflect.ValueOf(v) }

func TestMCPToolName(t *testing.T) {
	op := &Operation{Name: "get_invoice"}
	if got := MCPToolName("acme", "billing", op); got != "acme__billing__get_invoice" {
		t.Errorf("generated name %q", got)
	}
	op.MCPName = "invoice"
	if got := MCPToolName("acme", "billing", op); got != "invoice" {
		t.Errorf("explicit name %q", got)
	}
}

func TestCheckDNSLabel(t *testing.T) {
	for s, ok := range map[string]bool{
		"a": true, "acme": true, "a-1": true, strings.Repeat("a", 63): true,
		"": false, "1a": false, "-a": false, "a-": false, "A": false, "a_b": false, "a.b": false, strings.Repeat("a", 64): false,
	} {
		if got := checkDNSLabel(s) == ""; got != ok {
			t.Errorf("checkDNSLabel(%q) ok = %v, want %v", s, got, ok)
		}
	}
}

func TestLabels(t *testing.T) {
	for k, ok := range map[string]bool{
		"team": true, "example.com/team": true, "a.b_c-d": true,
		"": false, "/x": false, "-x": false, "Exa_mple.com/x": false, "x/": false, strings.Repeat("a", 64): false,
	} {
		if got := checkLabelKey(k) == ""; got != ok {
			t.Errorf("checkLabelKey(%q) ok = %v, want %v", k, got, ok)
		}
	}
	for v, ok := range map[string]bool{"": true, "gold": true, "v1.2_3": true, "a b": false, "-a": false, strings.Repeat("a", 64): false} {
		if got := checkLabelValue(v) == ""; got != ok {
			t.Errorf("checkLabelValue(%q) ok = %v, want %v", v, got, ok)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"upstream", "upstreams", "pathPrefix", "operations", "rateLimit"}
	for in, want := range map[string]string{
		"upstrem": "upstream", "path_prefix": "pathPrefix", "ratelimit": "rateLimit", "operation": "operations",
		"opertaions": "operations", "zzz": "", "x": "", "completelydifferent": "",
	} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSuggestMCPName(t *testing.T) {
	long := strings.Repeat("t", 62)
	if got := suggestMCPName("acme", "billing", "get"); got != "billing__get" {
		t.Errorf("got %q", got)
	}
	if got := suggestMCPName("acme", long, "get"); got != "acme__get" {
		t.Errorf("got %q", got)
	}
	if got := suggestMCPName(long, long, strings.Repeat("o", 70)); len(got) != 64 {
		t.Errorf("got %q", got)
	}
}

func TestDNSLabelHint(t *testing.T) {
	if got := dnsLabelHint("Acme_Corp"); got != `for example "acme-corp"` {
		t.Errorf("got %q", got)
	}
	if got := dnsLabelHint("---"); !strings.HasPrefix(got, "use lower-case") {
		t.Errorf("got %q", got)
	}
}
