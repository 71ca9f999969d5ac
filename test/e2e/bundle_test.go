package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// TestBundleMatchesDaemon: `stoa bundle build` of some specs gives the
// bytes (and so the digest) that a control plane gets from the objects
// stoad stored when the same specs were applied, and the offline
// keygen → sign → verify path works with the real binary and its exit codes.
func TestBundleMatchesDaemon(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	expect(t, d.Stoa("apply", "-f", quickstart), 0, "apply")
	rev := revisionOf(t, d)

	var live []*spec.Object
	for _, k := range spec.Kinds {
		r := d.Stoa("get", strings.ToLower(string(k))+"s", "-A", "-o", "json")
		expect(t, r, 0, "get "+string(k))
		var list struct{ Items []*spec.Object }
		if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
			t.Fatalf("get %s -o json: %v", k, err)
		}
		live = append(live, list.Items...)
	}
	fromDaemon, err := bundle.Build(rev, live)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	r := d.Stoa("bundle", "build", "-f", quickstart, "--revision", fmt.Sprint(rev), "--out", p("bundle.json"))
	expect(t, r, 0, "bundle build")
	raw, err := os.ReadFile(p("bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, fromDaemon.Bytes()) {
		t.Fatalf("stoa bundle build differs from the daemon's stored objects:\n--- built\n%s--- stored\n%s", raw, fromDaemon.Bytes())
	}
	if !strings.Contains(r.Stderr, fromDaemon.Digest().String()) {
		t.Fatalf("build does not print the digest %s:\n%s", fromDaemon.Digest(), r)
	}

	t.Setenv("COSIGN_PASSWORD", "e2e")
	expect(t, d.Stoa("bundle", "keygen", "--output-key-prefix", p("cosign")), 0, "keygen")
	expect(t, d.Stoa("bundle", "sign", p("bundle.json"), "--key", p("cosign.key")), 0, "sign")
	r = d.Stoa("bundle", "verify", p("bundle.json"), "--key", p("cosign.pub"), "--digest", fromDaemon.Digest().String())
	expect(t, r, 0, "verify")
	if !strings.HasPrefix(r.Stdout, "Verified OK") {
		t.Fatalf("verify output:\n%s", r)
	}
	os.WriteFile(p("bundle.json"), bytes.Replace(raw, []byte("billing"), []byte("bi11ing"), 1), 0o644)
	r = d.Stoa("bundle", "verify", p("bundle.json"), "--key", p("cosign.pub"), "-o", "json")
	expect(t, r, 4, "verify a tampered bundle")
	if !strings.Contains(r.Stdout, `"reason": "signature"`) {
		t.Fatalf("verify -o json of a tampered bundle:\n%s", r)
	}
}
