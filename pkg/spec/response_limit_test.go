package spec

import (
	"strings"
	"testing"
)

// TestMaxResponseBytes: limits.maxResponseBytes is optional (0 means no
// cap, and the default leaves it so), and a negative value is an error
// pointing at the field.
func TestMaxResponseBytes(t *testing.T) {
	const doc = "apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata: {name: default}\nspec:\n  limits:\n    maxResponseBytes: %s\n"
	for _, c := range []struct {
		value string
		ok    bool
	}{{"0", true}, {"1073741824", true}, {"-1", false}} {
		objs, diags := Parse("gw.yaml", []byte(strings.Replace(doc, "%s", c.value, 1)))
		if diags.HasErrors() {
			t.Fatalf("%s: parse: %v", c.value, diags)
		}
		Default(objs[0])
		diags = Validate(objs, ValidateOptions{})
		if c.ok != !diags.HasErrors() {
			t.Fatalf("maxResponseBytes %s: diagnostics %v, want ok=%v", c.value, diags, c.ok)
		}
		if !c.ok {
			d := diags[0]
			if d.Path != "spec.limits.maxResponseBytes" || d.Line != 6 || !strings.Contains(d.Message, "negative") {
				t.Fatalf("diagnostic %+v, want spec.limits.maxResponseBytes at line 6", d)
			}
		}
		if got := objs[0].Spec.(*GatewaySpec).Limits.MaxResponseBytes; c.ok && got < 0 {
			t.Fatalf("default changed the value to %d", got)
		}
	}
}
