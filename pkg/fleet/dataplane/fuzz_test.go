package dataplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

var (
	fuzzOnce sync.Once
	fuzzSV   signature.SignerVerifier
	fuzzV    signature.Verifier
	fuzzErr  error
)

// fuzzKey is a cosign-format key pair made without scrypt (which the
// fuzzer's instrumentation makes very slow).
func fuzzKey(t testing.TB) (signature.SignerVerifier, signature.Verifier) {
	fuzzOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			fuzzErr = err
			return
		}
		if fuzzSV, fuzzErr = signature.LoadECDSASignerVerifier(k, crypto.SHA256); fuzzErr != nil {
			return
		}
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			fuzzErr = err
			return
		}
		fuzzV, fuzzErr = bundle.LoadVerifier(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	})
	if fuzzErr != nil {
		t.Fatal(fuzzErr)
	}
	return fuzzSV, fuzzV
}

func fuzzObjects(t testing.TB, salt string) []*spec.Object {
	objs, diags := spec.Parse("f.yaml", []byte(`apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata:
  name: acme
spec:
  displayName: Acme `+salt+`
`))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, o := range objs {
		spec.Default(o)
	}
	return objs
}

// FuzzReceive feeds a data plane arbitrary watch answers (content type,
// announced revision, digest and signature headers, body): it must never
// panic, and never serve anything but a bundle the pinned key signed.
func FuzzReceive(f *testing.F) {
	sv, v := fuzzKey(f)
	b1, _ := bundle.Build(1, fuzzObjects(f, "one"))
	b2, _ := bundle.Build(2, fuzzObjects(f, "two"))
	sig2, _ := bundle.Sign(b2.Bytes(), sv)
	d := bundle.Diff(b1, b2)
	d.Signature = sig2
	delta, _ := json.Marshal(d)
	signed := map[bundle.Digest]bool{b2.Digest(): true}

	f.Add(uint8(0), "2", b2.Digest().String(), string(sig2), b2.Bytes())
	f.Add(uint8(1), "2", b2.Digest().String(), "", delta)
	f.Add(uint8(0), "1", b1.Digest().String(), string(sig2), b1.Bytes())
	f.Add(uint8(1), "x", "sha256:zz", "", []byte(`{"apiVersion":"stoa.io/v1alpha1","kind":"BundleDelta"}`))
	f.Add(uint8(2), "", "", "", []byte("junk"))
	f.Fuzz(func(t *testing.T, kind uint8, rev, digest, sig string, body []byte) {
		s := &Syncer{cfg: Config{Verifier: v, StateDir: t.TempDir(), Apply: func(int64, []*spec.Object) error { return nil },
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}, metrics: newMetrics(), hbNow: make(chan struct{}, 1), persistKick: make(chan struct{}, 1)}
		s.serving = b1
		h := http.Header{}
		h.Set(fleet.HeaderRevision, rev)
		h.Set(fleet.HeaderDigest, digest)
		h.Set(fleet.HeaderSignature, sig)
		ctype := []string{fleet.ContentTypeBundle, fleet.ContentTypeDelta, "text/plain"}[int(kind)%3]
		s.receive(h, ctype, len(body), body)
		if s.serving != b1 && !signed[s.serving.Digest()] {
			t.Fatalf("serving revision %d (%s), which the key never signed", s.serving.Revision(), s.serving.Digest())
		}
	})
}

// FuzzLoadIdentity reads arbitrary identity files: errors, never a panic,
// and never an identity whose certificate is not for its key.
func FuzzLoadIdentity(f *testing.F) {
	f.Add([]byte(`{"controlPlane":"https://cp","name":"edge-1","key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, identityFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		id, err := loadIdentity(dir)
		if err != nil {
			return
		}
		if id.key == nil {
			t.Fatal("identity without a key")
		}
		if id.cert != nil && !id.cert.Leaf.PublicKey.(interface{ Equal(any) bool }).Equal(&id.key.PublicKey) {
			t.Fatal("certificate for another key")
		}
	})
}
