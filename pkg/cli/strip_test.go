package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// strippedObjects loads spec files, defaults them as stoad stores them, and
// returns each with its stripped encoding.
func loadDefaulted(t *testing.T, paths ...string) []*spec.Object {
	t.Helper()
	objs, diags := spec.Load(paths, nil)
	if diags.HasErrors() {
		t.Fatalf("load %v: %v", paths, diags)
	}
	for _, o := range objs {
		spec.Default(o)
		o.Source = nil
	}
	return objs
}

// TestStripDefaultsRoundTrip: for every object of the examples and the
// spec package's valid test set, the stripped form decodes and defaults
// back to exactly the stored object, and is smaller.
func TestStripDefaultsRoundTrip(t *testing.T) {
	objs := loadDefaulted(t, quickstartDir, filepath.Join("..", "spec", "testdata", "valid"))
	if len(objs) < 10 {
		t.Fatalf("only %d objects", len(objs))
	}
	for _, o := range objs {
		t.Run(o.Ref().String(), func(t *testing.T) {
			want, _ := defaultedJSON(o)
			got, err := stripDefaults(o)
			if err != nil {
				t.Fatal(err)
			}
			var back spec.Object
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("stripped form does not decode: %v\n%s", err, got)
			}
			again, _ := defaultedJSON(&back)
			if string(again) != string(want) {
				t.Fatalf("stripped form defaults to something else:\nstripped: %s\nback:     %s\nwant:     %s", got, again, want)
			}
			if o.Kind == spec.KindTool && len(got) >= len(want) {
				t.Errorf("nothing stripped from a Tool:\n%s", got)
			}
		})
	}
}

// TestStripDefaultsDropsDefaultsKeepsChoices: what defaults fill in goes;
// what differs from a default — even an explicit 0 where missing means
// something else — stays.
func TestStripDefaultsDropsDefaultsKeepsChoices(t *testing.T) {
	const doc = `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: api, namespace: acme, labels: {team: a}}
spec:
  upstream: http://127.0.0.1:1
  retries: {attempts: 0}
  timeouts: {connect: 5s}
  route: {pathPrefix: /custom}
  operations:
    - {name: get_x, method: GET, path: /x}
    - {name: put_x, method: PUT, path: /x, annotations: {idempotent: false}}
`
	objs, diags := spec.Load([]string{"-"}, strings.NewReader(doc))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	o := objs[0]
	spec.Default(o)
	b, err := stripDefaults(o)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, gone := range []string{`"protocol"`, `"header"`, `"total"`, `"circuitBreaker"`, `"readOnly"`, `"destructive"`, `"type":"none"`} {
		if strings.Contains(got, gone) {
			t.Errorf("default %s kept:\n%s", gone, got)
		}
	}
	for _, kept := range []string{`"attempts":0`, `"connect":"5s"`, `"pathPrefix":"/custom"`, `"idempotent":false`, `"labels":{"team":"a"}`} {
		if !strings.Contains(got, kept) {
			t.Errorf("choice %s lost:\n%s", kept, got)
		}
	}
	// Field order follows the types: metadata before spec, name first.
	if !strings.HasPrefix(got, `{"apiVersion":"stoa.io/v1alpha1","kind":"Tool","metadata":{"name":"api"`) {
		t.Errorf("field order changed:\n%s", got)
	}
}

// BenchmarkStripDefaults is the export's cost per object (the quickstart's
// largest Tool: three operations with schemas).
func BenchmarkStripDefaults(b *testing.B) {
	objs, _ := spec.Load([]string{quickstartDir}, nil)
	var tool *spec.Object
	for _, o := range objs {
		if o.Metadata.Name == "billing-api" {
			tool = o
		}
	}
	spec.Default(tool)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := stripDefaults(tool); err != nil {
			b.Fatal(err)
		}
	}
}

// defaultedJSON is the canonical encoding of o with defaults applied.
func defaultedJSON(o *spec.Object) ([]byte, error) {
	c := spec.Clone(o)
	spec.Default(c)
	return json.Marshal(c)
}
