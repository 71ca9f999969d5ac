package bundle

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

func TestSignVerify(t *testing.T) {
	s, v := testKey(t)
	b := mustBuild(t, 1, testObjects(t)).Bytes()
	sig := mustSign(t, b, s)
	if _, err := base64.StdEncoding.DecodeString(string(sig)); err != nil {
		t.Fatalf("signature is not base64: %q", sig)
	}
	if err := Verify(b, sig, v); err != nil {
		t.Fatal(err)
	}
	// A .sig file may end with a newline (editors, echo).
	if err := Verify(b, append(bytes.Clone(sig), '\n'), v); err != nil {
		t.Fatalf("trailing newline: %v", err)
	}

	_, otherPub, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadVerifier(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(b)
	flipped[len(flipped)/2] ^= 1
	der, _ := base64.StdEncoding.DecodeString(string(sig))
	der[len(der)-1] ^= 1
	for _, tc := range []struct {
		name string
		b    []byte
		sig  []byte
		v    signature.Verifier
	}{
		{"one bit of the bundle", flipped, sig, v},
		{"bundle cut", b[:len(b)-1], sig, v},
		{"bundle grown", append(bytes.Clone(b), ' '), sig, v},
		{"another key", b, sig, other},
		{"signature changed", b, []byte(base64.StdEncoding.EncodeToString(der)), v},
		{"signature not base64", b, []byte("not base64!"), v},
		{"signature empty", b, nil, v},
		{"signature blank", b, []byte(" \n"), v},
		{"no verifier", b, sig, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.b, tc.sig, tc.v)
			var se *SignatureError
			if !errors.As(err, &se) || !errors.Is(err, ErrSignature) || Reason(err) != "signature" {
				t.Fatalf("Verify = %v (%T), want a *SignatureError", err, err)
			}
			if se.Hint() == "" {
				t.Fatal("no hint")
			}
		})
	}
}

func TestKeyPairFormat(t *testing.T) {
	priv, pub, err := GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	// The private key is what cosign writes: an encrypted PKCS #8 P-256
	// key in an "ENCRYPTED SIGSTORE PRIVATE KEY" block.
	blk, rest := pem.Decode(priv)
	if blk == nil || blk.Type != "ENCRYPTED SIGSTORE PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("private key PEM: %q", priv)
	}
	if _, err := encrypted.Decrypt(blk.Bytes, []byte("other")); err == nil {
		t.Fatal("the private key decrypts with another password")
	}
	der, err := encrypted.Decrypt(blk.Bytes, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("key is %T, want ECDSA P-256", k)
	}
	pblk, _ := pem.Decode(pub)
	if pblk == nil || pblk.Type != "PUBLIC KEY" {
		t.Fatalf("public key PEM: %q", pub)
	}
	pk, err := x509.ParsePKIXPublicKey(pblk.Bytes)
	if err != nil || !ec.PublicKey.Equal(pk) {
		t.Fatalf("public key does not match the private key: %v", err)
	}
	// Two key pairs differ.
	priv2, pub2, _ := GenerateKeyPair([]byte("pw"))
	if bytes.Equal(priv, priv2) || bytes.Equal(pub, pub2) {
		t.Fatal("GenerateKeyPair repeats itself")
	}
}

func TestLoadSignerErrors(t *testing.T) {
	priv, pub, err := GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(priv, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	// cosign v1 keys carry the older PEM type, with the same contents.
	blk, _ := pem.Decode(priv)
	legacy := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED COSIGN PRIVATE KEY", Bytes: blk.Bytes})
	if _, err := LoadSigner(legacy, []byte("pw")); err != nil {
		t.Fatalf("cosign v1 key: %v", err)
	}
	p384 := encryptedKey(t, mustKey(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)))
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey := encryptedKey(t, mustKey(rsa.GenerateKey(rand.Reader, 2048)))
	for _, tc := range []struct {
		name string
		pem  []byte
		pw   string
		want string
	}{
		{"wrong password", priv, "nope", "wrong password"},
		{"no password", priv, "", "wrong password"},
		{"public key", pub, "pw", "this is a public key"},
		{"not PEM", []byte("hello"), "pw", "no PEM block"},
		{"plain PKCS #8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), "pw", `unsupported PEM type "PRIVATE KEY"`},
		{"damaged", pem.EncodeToMemory(&pem.Block{Type: PrivateKeyPEMType, Bytes: []byte("{}")}), "pw", "wrong password"},
		{"P-384", p384, "pw", "ECDSA P-384 key"},
		{"Ed25519", encryptedKey(t, edPriv), "pw", "Ed25519 key"},
		{"RSA", rsaKey, "pw", "RSA key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSigner(tc.pem, []byte(tc.pw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadSigner error %v, want %q", err, tc.want)
			}
			var h interface{ Hint() string }
			if !errors.As(err, &h) || h.Hint() == "" {
				t.Fatalf("error %v has no hint", err)
			}
		})
	}
	_, err = LoadSigner(priv, []byte("nope"))
	if !errors.Is(err, ErrPassword) {
		t.Fatalf("wrong password: %v does not match ErrPassword", err)
	}
}

func TestLoadVerifierErrors(t *testing.T) {
	priv, _, err := GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := mustKey(rsa.GenerateKey(rand.Reader, 2048))
	rsaPub, _ := cryptoutils.MarshalPublicKeyToPEM(rsaKey.Public())
	p384 := mustKey(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	p384Pub, _ := cryptoutils.MarshalPublicKeyToPEM(p384.Public())
	for _, tc := range []struct {
		name string
		pem  []byte
		want string
	}{
		{"private key", priv, "this is a private key"},
		{"not PEM", []byte("ssh-ed25519 AAAA"), "no PEM block"},
		{"RSA", rsaPub, "RSA key"},
		{"P-384", p384Pub, "ECDSA P-384 key"},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}}), "load public key"},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), "load public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LoadVerifier(tc.pem); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadVerifier error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := LoadVerifierFile("testdata/missing.pub"); err == nil {
		t.Fatal("missing file accepted")
	}
	if _, err := LoadSignerFile("testdata/missing.key", nil); err == nil {
		t.Fatal("missing file accepted")
	}
}

func mustKey[K any](k K, err error) K {
	if err != nil {
		panic(err)
	}
	return k
}

// encryptedKey wraps any private key the way cosign stores one.
func encryptedKey(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encrypted.Encrypt(der, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: PrivateKeyPEMType, Bytes: enc})
}

func TestOpen(t *testing.T) {
	s, v := testKey(t)
	objs := testObjects(t)
	b5 := mustBuild(t, 5, objs)
	sig5 := mustSign(t, b5.Bytes(), s)
	b6 := mustBuild(t, 6, objs[:len(objs)-1])
	sig6 := mustSign(t, b6.Bytes(), s)
	b5other := mustBuild(t, 5, objs[:len(objs)-1])
	sig5other := mustSign(t, b5other.Bytes(), s)
	// Signed, but not canonical: what a buggy or hostile signer could send.
	loose := bytes.Replace(b6.Bytes(), []byte(`"displayName":"Globex"`), []byte(`"displayName": "Globex"`), 1)
	sigLoose := mustSign(t, loose, s)

	got, err := Open(b6.Bytes(), sig6, v, OpenOptions{Digest: b6.Digest(), Serving: b5})
	if err != nil || got.Digest() != b6.Digest() || got.Revision() != 6 || got.Len() != b6.Len() {
		t.Fatalf("Open = %v, %v", got, err)
	}
	if _, err := Open(b5.Bytes(), sig5, v, OpenOptions{}); err != nil {
		t.Fatalf("first bundle: %v", err)
	}
	if got, err := Open(b5.Bytes(), sig5, v, OpenOptions{Serving: b5}); err != nil || got.Digest() != b5.Digest() {
		t.Fatalf("the served bundle again: %v", err)
	}

	for _, tc := range []struct {
		name    string
		raw     []byte
		sig     []byte
		opts    OpenOptions
		reason  string
		errType any
	}{
		{"older revision", b5.Bytes(), sig5, OpenOptions{Serving: b6}, "stale", new(*RevisionError)},
		{"same revision, other content", b5other.Bytes(), sig5other, OpenOptions{Serving: b5}, "conflict", new(*RevisionError)},
		{"announced digest differs", b6.Bytes(), sig6, OpenOptions{Digest: b5.Digest()}, "digest", new(*DigestError)},
		{"signature of another bundle", b6.Bytes(), sig5, OpenOptions{}, "signature", new(*SignatureError)},
		{"tampered", bytes.Replace(b6.Bytes(), []byte("Globex"), []byte("Globey"), 1), sig6, OpenOptions{Serving: b5}, "signature", new(*SignatureError)},
		{"signed but not canonical", loose, sigLoose, OpenOptions{}, "malformed", new(*FormatError)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Open(tc.raw, tc.sig, v, tc.opts)
			if got != nil || Reason(err) != tc.reason {
				t.Fatalf("Open = %v, %v; want reason %q", got, err, tc.reason)
			}
			if !errors.As(err, tc.errType) {
				t.Fatalf("error %T, want %T", err, tc.errType)
			}
			var h interface{ Hint() string }
			if !errors.As(err, &h) || h.Hint() == "" {
				t.Fatalf("error %v has no hint", err)
			}
		})
	}
}

// TestOpenVerifiesBeforeParsing: bytes that are not signed never reach
// the parser, so a parser bug cannot be reached by an unsigned input.
func TestOpenVerifiesBeforeParsing(t *testing.T) {
	_, v := testKey(t)
	_, err := Open([]byte("not a bundle"), []byte("AAAA"), v, OpenOptions{})
	if Reason(err) != "signature" {
		t.Fatalf("Open(garbage) = %v, want a signature error first", err)
	}
}

func TestReason(t *testing.T) {
	if Reason(nil) != "" || Reason(errors.New("disk full")) != "" {
		t.Fatal("Reason names ordinary errors")
	}
	stale := &RevisionError{Serving: 7, Got: 6}
	if !errors.Is(stale, ErrStale) || errors.Is(stale, ErrConflict) || !strings.Contains(stale.Error(), "older than the served revision 7") {
		t.Fatalf("stale: %v", stale)
	}
	conflict := &RevisionError{Serving: 7, Got: 7}
	if !errors.Is(conflict, ErrConflict) || errors.Is(conflict, ErrStale) {
		t.Fatalf("conflict: %v", conflict)
	}
}
