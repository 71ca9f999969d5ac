package bundle

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestLastGoodRoundTrip(t *testing.T) {
	s, v := testKey(t)
	dir := filepath.Join(t.TempDir(), "bundles")
	if _, _, err := ReadLastGood(dir, v); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("empty store: %v, want fs.ErrNotExist", err)
	}
	objs := testObjects(t)
	b1 := mustBuild(t, 1, objs)
	sig1 := mustSign(t, b1.Bytes(), s)
	if err := WriteFileAtomic(dir, b1, sig1); err != nil {
		t.Fatal(err)
	}
	got, sig, err := ReadLastGood(dir, v)
	if err != nil || got.Digest() != b1.Digest() || !bytes.Equal(sig, sig1) {
		t.Fatalf("ReadLastGood = %v, %v", got, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("store directory mode: %v %v", fi.Mode(), err)
	}

	b2 := mustBuild(t, 2, objs[:3])
	sig2 := mustSign(t, b2.Bytes(), s)
	// Leftovers of a crash mid-write are cleaned up by the next write.
	os.WriteFile(filepath.Join(dir, ".tmp-bundle-x.json-123"), []byte("half"), 0o600)
	if err := WriteFileAtomic(dir, b2, sig2); err != nil {
		t.Fatal(err)
	}
	got, _, err = ReadLastGood(dir, v)
	if err != nil || got.Revision() != 2 || got.Digest() != b2.Digest() {
		t.Fatalf("after a second write: %v, %v", got, err)
	}
	bname, sname := pairNames(b2.Digest())
	want := []string{bname, sname, "last-good.json"}
	slices.Sort(want)
	if names := dirNames(t, dir); !slices.Equal(names, want) {
		t.Fatalf("store holds %v, want %v", names, want)
	}
	// The files are what cosign verify-blob checks as they are.
	raw, _ := os.ReadFile(filepath.Join(dir, bname))
	onDisk, _ := os.ReadFile(filepath.Join(dir, sname))
	if !bytes.Equal(raw, b2.Bytes()) || Verify(raw, onDisk, v) != nil {
		t.Fatal("stored pair does not verify as files")
	}
	// Writing the same bundle again is harmless.
	if err := WriteFileAtomic(dir, b2, sig2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadLastGood(dir, v); err != nil {
		t.Fatal(err)
	}
}

// TestLastGoodCrashBetweenSteps: a crash after the new pair was written
// but before the pointer moved leaves the old bundle as the last good.
func TestLastGoodCrashBetweenSteps(t *testing.T) {
	s, v := testKey(t)
	dir := t.TempDir()
	objs := testObjects(t)
	b1 := mustBuild(t, 1, objs)
	if err := WriteFileAtomic(dir, b1, mustSign(t, b1.Bytes(), s)); err != nil {
		t.Fatal(err)
	}
	b2 := mustBuild(t, 2, objs[:4])
	bname, sname := pairNames(b2.Digest())
	if err := writeFile(dir, bname, b2.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(dir, sname, mustSign(t, b2.Bytes(), s)); err != nil {
		t.Fatal(err)
	}
	got, _, err := ReadLastGood(dir, v)
	if err != nil || got.Revision() != 1 {
		t.Fatalf("after a crash before the pointer moved: %v, %v", got, err)
	}
}

func TestLastGoodReverifies(t *testing.T) {
	s, v := testKey(t)
	objs := testObjects(t)
	b := mustBuild(t, 9, objs)
	sig := mustSign(t, b.Bytes(), s)
	bname, sname := pairNames(b.Digest())
	_, otherPub, _ := GenerateKeyPair(nil)
	other, _ := LoadVerifier(otherPub)
	for _, tc := range []struct {
		name   string
		damage func(dir string)
		v      signature.Verifier
		reason string
		want   string
	}{
		{"bundle rotted", func(dir string) {
			p := filepath.Join(dir, bname)
			raw, _ := os.ReadFile(p)
			raw[100] ^= 1
			os.WriteFile(p, raw, 0o600)
		}, v, "digest", ""},
		{"signature replaced", func(dir string) {
			os.WriteFile(filepath.Join(dir, sname), mustSign(t, []byte("other"), s), 0o600)
		}, v, "signature", ""},
		{"another key", func(string) {}, other, "signature", ""},
		{"bundle missing", func(dir string) { os.Remove(filepath.Join(dir, bname)) }, v, "malformed", "which is missing"},
		{"signature missing", func(dir string) { os.Remove(filepath.Join(dir, sname)) }, v, "malformed", "which is missing"},
		{"pointer garbage", func(dir string) { os.WriteFile(filepath.Join(dir, pointerName), []byte("{"), 0o600) }, v, "malformed", ""},
		{"pointer unknown field", func(dir string) {
			os.WriteFile(filepath.Join(dir, pointerName), []byte(`{"revision":9,"digest":"`+b.Digest().String()+`","path":"/etc/passwd"}`), 0o600)
		}, v, "malformed", ""},
		{"pointer revision lies", func(dir string) {
			os.WriteFile(filepath.Join(dir, pointerName), []byte(`{"revision":10,"digest":"`+b.Digest().String()+`"}`), 0o600)
		}, v, "malformed", "says revision 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteFileAtomic(dir, b, sig); err != nil {
				t.Fatal(err)
			}
			tc.damage(dir)
			got, _, err := ReadLastGood(dir, tc.v)
			if got != nil || Reason(err) != tc.reason || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadLastGood = %v, %v; want reason %q and %q", got, err, tc.reason, tc.want)
			}
		})
	}
}

func TestWriteFileAtomicErrors(t *testing.T) {
	s, _ := testKey(t)
	b := mustBuild(t, 1, nil)
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o600)
	if err := WriteFileAtomic(filepath.Join(file, "sub"), b, mustSign(t, b.Bytes(), s)); err == nil {
		t.Fatal("wrote below a regular file")
	}
}
