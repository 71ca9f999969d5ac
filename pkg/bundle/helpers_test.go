package bundle

import (
	"os"
	"sync"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/stoa-gateway/stoa/internal/benchspecs"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// loadSpecs reads YAML specs with the real loader and defaults them as
// stoad stores them.
func loadSpecs(t testing.TB, name string, data []byte) []*spec.Object {
	t.Helper()
	objs, diags := spec.Parse(name, data)
	if diags.HasErrors() {
		t.Fatalf("parse %s: %v", name, diags)
	}
	for _, o := range objs {
		spec.Default(o)
	}
	if diags := spec.Validate(objs, spec.ValidateOptions{}); diags.HasErrors() {
		t.Fatalf("validate %s: %v", name, diags)
	}
	return objs
}

// testObjects are testdata/specs.yaml's objects.
func testObjects(t testing.TB) []*spec.Object {
	t.Helper()
	b, err := os.ReadFile("testdata/specs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return loadSpecs(t, "testdata/specs.yaml", b)
}

func mustBuild(t testing.TB, rev int64, objs []*spec.Object) *Bundle {
	t.Helper()
	b, err := Build(rev, objs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// toolsYAML generates n tools across m tenants, the shape
// scripts/bench-apply.sh uses; salt changes every tool's description.
func toolsYAML(n, m int, salt string) []byte { return benchspecs.YAML(n, m, salt) }

var (
	bigOnce sync.Once
	bigObjs []*spec.Object
)

// bigConfig is 10,000 tools across 20 tenants, parsed once per test binary.
func bigConfig(t testing.TB) []*spec.Object {
	t.Helper()
	bigOnce.Do(func() { bigObjs = loadSpecs(t, "big.yaml", toolsYAML(10000, 20, "")) })
	if bigObjs == nil {
		t.Fatal("big configuration failed to load")
	}
	return bigObjs
}

// withToolDescription returns objs with one tool's description changed
// (a copy of that tool; the others are shared).
func withToolDescription(objs []*spec.Object, ref spec.Ref, desc string) []*spec.Object {
	out := make([]*spec.Object, len(objs))
	copy(out, objs)
	for i, o := range out {
		if o.Ref() == ref {
			ts := *o.Spec.(*spec.ToolSpec)
			ts.Description = desc
			c := *o
			c.Spec = &ts
			out[i] = &c
		}
	}
	return out
}

var (
	keyOnce sync.Once
	keySV   signature.SignerVerifier
	keyPub  []byte
	keyPriv []byte
)

// testKey is one key pair per test binary (scrypt makes each costly).
func testKey(t testing.TB) (signature.SignerVerifier, signature.Verifier) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		keyPriv, keyPub, err = GenerateKeyPair([]byte("test-password"))
		if err != nil {
			t.Fatal(err)
		}
		if keySV, err = LoadSigner(keyPriv, []byte("test-password")); err != nil {
			t.Fatal(err)
		}
	})
	v, err := LoadVerifier(keyPub)
	if err != nil {
		t.Fatal(err)
	}
	return keySV, v
}

func mustSign(t testing.TB, b []byte, s signature.Signer) []byte {
	t.Helper()
	sig, err := Sign(b, s)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}
