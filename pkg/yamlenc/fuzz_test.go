package yamlenc_test

import (
	"encoding/json"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/yamlenc"
)

// FuzzRoundTrip feeds arbitrary bytes as JSON: what encoding/json rejects
// yamlenc must reject, and what it accepts must read back from the YAML
// through goccy/go-yaml unchanged. Seeds: testdata/fuzz/FuzzRoundTrip.
func FuzzRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 {
			return // size adds nothing but time here
		}
		var ref any
		refErr := json.Unmarshal(data, &ref)
		out, err := yamlenc.FromJSON(data)
		if refErr != nil {
			if err == nil {
				t.Fatalf("FromJSON accepted what encoding/json rejects (%v): %q\n%s", refErr, data, out)
			}
			return
		}
		if err != nil {
			t.Fatalf("FromJSON(%q): %v", data, err)
		}
		roundTrip(t, data)
	})
}

// FuzzString puts one arbitrary string in every place a string can stand
// (document, value, key, sequence item, nested) and round-trips it.
// Seeds: testdata/fuzz/FuzzString.
func FuzzString(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		in, err := json.Marshal([]any{s, map[string]any{s: []any{s, map[string]any{"k": s}}}})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, in)
	})
}
