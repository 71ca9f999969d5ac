package plan

import (
	"bytes"
	"fmt"
	"maps"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// TestEncodedChangesMatchCanonical checks the encodings a plan keeps for
// its changes: with and without live digests, an update's encoding (taken
// while comparing), every other change's (EncodeChanges, in parallel
// batches) and the digests after the changes all equal what Canonical and
// DigestOf give for the same objects; with live digests, the encoding of
// what a change replaces or deletes is recognised as such.
func TestEncodedChangesMatchCanonical(t *testing.T) {
	var live, desired []*spec.Object
	live = append(live, tenant("acme"))
	desired = append(desired, tenant("acme"), tenant("globex"))
	for i := range 300 { // several batches of EncodeChanges
		name := fmt.Sprintf("t%03d", i)
		switch i % 3 {
		case 0: // unchanged
			live = append(live, tool("acme", name, "http://a"))
			desired = append(desired, tool("acme", name, "http://a"))
		case 1: // updated
			live = append(live, tool("acme", name, "http://a"))
			desired = append(desired, tool("acme", name, "http://b/<&>"))
		default: // created, or deleted by the prune
			desired = append(desired, tool("globex", name, "http://c"))
			live = append(live, tool("acme", name+"-old", "http://d"))
		}
	}
	prune := Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }}
	for _, digests := range []Digests{nil, DigestAll(live)} {
		opts := prune
		opts.LiveDigests = digests
		changes, sum := Compute(live, desired, opts)
		if sum != (Summary{Create: 101, Update: 100, Delete: 100, Unchanged: 101}) {
			t.Fatalf("summary %+v", sum)
		}
		if err := EncodeChanges(changes); err != nil {
			t.Fatal(err)
		}
		for i := range changes {
			c := &changes[i]
			if c.Before != nil {
				var before bytes.Buffer
				if err := Canonical(&before, c.Before); err != nil {
					t.Fatal(err)
				}
				if got := c.EncodesBefore(before.Bytes()); got != (digests != nil) {
					t.Fatalf("%s %s: EncodesBefore(its own encoding) = %v with live digests %v", c.Op, c.Ref, got, digests != nil)
				}
				if c.EncodesBefore(append(before.Bytes(), ' ')) || c.EncodesBefore(nil) {
					t.Fatalf("%s %s: EncodesBefore accepts other bytes", c.Op, c.Ref)
				}
			}
			got, err := c.AfterJSON()
			if err != nil {
				t.Fatal(err)
			}
			if c.After == nil {
				if got != nil {
					t.Fatalf("%s %s: encoding %q without an object", c.Op, c.Ref, got)
				}
				continue
			}
			var want bytes.Buffer
			if err := Canonical(&want, c.After); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("%s %s: kept encoding\n%s\nwant\n%s", c.Op, c.Ref, got, want.Bytes())
			}
		}
		if got, want := DigestAll(live).Next(changes), DigestAll(Apply(live, changes)); !maps.Equal(got, want) {
			t.Fatalf("digests after the changes differ from the digests of the result")
		}
	}
}
