package bundle

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// FuzzParse checks that no input panics Parse, that every refusal is a
// *FormatError, and the property digests rest on: whatever Parse accepts
// is exactly what Build makes of the parsed objects, so one content has
// one encoding.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/specs.bundle.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"apiVersion":"stoa.io/v1alpha1","kind":"Bundle","revision":1,"objects":[` + "\n]}\n"))
	f.Add([]byte(`{"apiVersion":"stoa.io/v1alpha1","kind":"Bundle","revision":1,"objects":[` + "\n" +
		`{"apiVersion":"stoa.io/v1alpha1","kind":"Tenant","metadata":{"name":"a"},"spec":{}}` + "\n]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data)
		if err != nil {
			if Reason(err) != "malformed" {
				t.Fatalf("Parse error %v is not a *FormatError", err)
			}
			return
		}
		again, err := Build(b.Revision(), b.Objects())
		if err != nil {
			t.Fatalf("Build(Parse(x)): %v", err)
		}
		if !bytes.Equal(again.Bytes(), data) {
			t.Fatalf("Parse accepted a non-canonical encoding:\n%q\ncanonical:\n%q", data, again.Bytes())
		}
	})
}

// FuzzDelta checks that no delta panics ParseDelta or Apply, and that an
// applied delta always yields the digest it announced.
func FuzzDelta(f *testing.F) {
	base := mustBuild(f, 1, testObjects(f))
	next := mustBuild(f, 2, testObjects(f)[:6])
	seed, _ := json.Marshal(Diff(base, next))
	f.Add(seed)
	f.Add([]byte(`{"apiVersion":"stoa.io/v1alpha1","kind":"BundleDelta","from":{"revision":1,"digest":"` + base.Digest().String() + `"},"to":{"revision":2,"digest":"sha256:` + string(bytes.Repeat([]byte("0"), 64)) + `"},"delete":[{"kind":"Tool","namespace":"acme","name":"billing-api"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDelta(data)
		if err != nil {
			return
		}
		got, err := d.Apply(base)
		if err != nil {
			if Reason(err) == "" {
				t.Fatalf("Apply error %v has no reason", err)
			}
			return
		}
		if got.Digest() != d.To.Digest || got.Revision() != d.To.Revision {
			t.Fatalf("Apply gave %d %s, delta announced %d %s", got.Revision(), got.Digest(), d.To.Revision, d.To.Digest)
		}
	})
}
