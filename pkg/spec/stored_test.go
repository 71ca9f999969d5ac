package spec_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// TestStoredObjectsReencodeIdentically reads objects as stoad stored them
// (bbolt JSON, canonical encoding) before durations and rates became typed
// values, and requires the same bytes back: re-encoding, defaulting again
// and loading testdata/stored/objects.yaml afresh. A changed byte would
// change the object's digest, and every object of every upgraded stoad
// would show as changed in the next diff.
func TestStoredObjectsReencodeIdentically(t *testing.T) {
	f, err := os.Open("testdata/stored/stored.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stored [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		stored = append(stored, append(append([]byte(nil), sc.Bytes()...), '\n'))
	}
	if len(stored) < 7 {
		t.Fatalf("%d stored objects", len(stored))
	}
	fresh, diags := spec.Load([]string{"testdata/stored/objects.yaml"}, nil)
	if diags.HasErrors() || len(fresh) != len(stored) {
		t.Fatalf("load: %d objects, %v", len(fresh), diags)
	}
	for i, line := range stored {
		var o spec.Object
		if err := json.Unmarshal(line, &o); err != nil {
			t.Fatalf("decode stored %s: %v", line, err)
		}
		for _, step := range []string{"decoded", "defaulted again"} {
			if step == "defaulted again" {
				spec.Default(&o)
			}
			var buf bytes.Buffer
			if err := plan.Canonical(&buf, &o); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), line) {
				t.Errorf("%s %s re-encodes differently:\nstored %s\nnow    %s", step, o.Ref(), line, buf.Bytes())
			}
		}
		spec.Default(fresh[i])
		got, want := plan.DigestOf(fresh[i]), plan.DigestOf(&o)
		if o.Ref().Name == "public" {
			// The one intended change: a Tool written without auth was
			// public and is now apiKey-protected. Its stored form keeps
			// auth: {type: none} (the default was written into it), so
			// it stays public until re-applied, and that diff shows it.
			if got == want || o.Spec.(*spec.ToolSpec).Auth.Type != "none" || fresh[i].Spec.(*spec.ToolSpec).Auth.Type != "apiKey" {
				t.Errorf("%s: stored auth %+v, loaded afresh %+v", o.Ref(), o.Spec.(*spec.ToolSpec).Auth, fresh[i].Spec.(*spec.ToolSpec).Auth)
			}
			continue
		}
		if got != want {
			t.Errorf("%s: loading the YAML gives digest %s, the stored object %s", o.Ref(), got, want)
		}
	}
}
