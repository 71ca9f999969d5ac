package bundle

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cosignCLI runs the real cosign binary offline: no transparency log, and
// a TUF mirror that does not exist, so cosign never tries the network (as
// root it also runs in a network namespace of its own, to be sure).
type cosignCLI struct {
	t      *testing.T
	bin    string
	dir    string
	prefix []string
}

func newCosign(t *testing.T) *cosignCLI {
	t.Helper()
	bin, err := exec.LookPath("cosign")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("cosign is not on PATH; .ci/run installs it (go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5)")
		}
		t.Skip("cosign is not on PATH: install it with go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 to run the interoperability test")
	}
	c := &cosignCLI{t: t, bin: bin, dir: t.TempDir()}
	if os.Geteuid() == 0 {
		if err := exec.Command("unshare", "-n", "true").Run(); err == nil {
			c.prefix = []string{"unshare", "-n"}
		}
	}
	out, _ := c.run("version")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "GitVersion:") {
			t.Logf("cosign %s", strings.TrimSpace(strings.TrimPrefix(l, "GitVersion:")))
		}
	}
	return c
}

// run runs cosign in c.dir and returns its combined output.
func (c *cosignCLI) run(args ...string) (string, error) {
	argv := append(append(append([]string(nil), c.prefix...), c.bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.dir
	tuf := filepath.Join(c.dir, "tuf")
	os.MkdirAll(tuf, 0o700)
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=cosign-test", "HOME="+c.dir,
		"TUF_ROOT="+tuf, "TUF_MIRROR=file://"+tuf)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *cosignCLI) write(name string, data []byte) string {
	c.t.Helper()
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *cosignCLI) read(name string) []byte {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// verifyBlob is the command docs/bundles.md gives operators.
func (c *cosignCLI) verifyBlob(pub, sig, blob string, tlogFlag string) (string, error) {
	return c.run("verify-blob", "--key", pub, "--signature", sig, tlogFlag, blob)
}

func TestCosignInterop(t *testing.T) {
	c := newCosign(t)
	b := mustBuild(t, 3, testObjects(t))
	c.write("bundle.json", b.Bytes())
	c.write("tampered.json", bytes.Replace(b.Bytes(), []byte("Globex"), []byte("Globey"), 1))

	t.Run("cosign verifies what stoa signs", func(t *testing.T) {
		priv, pub, err := GenerateKeyPair([]byte("cosign-test"))
		if err != nil {
			t.Fatal(err)
		}
		c.write("stoa.key", priv)
		c.write("stoa.pub", pub)
		s, err := LoadSignerFile(filepath.Join(c.dir, "stoa.key"), []byte("cosign-test"))
		if err != nil {
			t.Fatal(err)
		}
		c.write("bundle.json.sig", mustSign(t, b.Bytes(), s))
		for _, flag := range []string{"--insecure-ignore-tlog=true", "--private-infrastructure=true"} {
			out, err := c.verifyBlob("stoa.pub", "bundle.json.sig", "bundle.json", flag)
			if err != nil || !strings.Contains(out, "Verified OK") {
				t.Fatalf("cosign verify-blob %s: %v\n%s", flag, err, out)
			}
		}
		if out, err := c.verifyBlob("stoa.pub", "bundle.json.sig", "tampered.json", "--insecure-ignore-tlog=true"); err == nil {
			t.Fatalf("cosign verified a tampered bundle:\n%s", out)
		}
	})

	t.Run("cosign signs with a stoa key", func(t *testing.T) {
		out, err := c.run("sign-blob", "--key", "stoa.key", "--tlog-upload=false", "--output-signature", "by-cosign-stoa-key.sig", "bundle.json")
		if err != nil {
			t.Fatalf("cosign sign-blob with a stoa key: %v\n%s", err, out)
		}
		v, err := LoadVerifierFile(filepath.Join(c.dir, "stoa.pub"))
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(b.Bytes(), c.read("by-cosign-stoa-key.sig"), v); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("stoa verifies what cosign signs", func(t *testing.T) {
		out, err := c.run("generate-key-pair")
		if err != nil {
			t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
		}
		out, err = c.run("sign-blob", "--key", "cosign.key", "--tlog-upload=false", "--output-signature", "by-cosign.sig", "bundle.json")
		if err != nil {
			t.Fatalf("cosign sign-blob: %v\n%s", err, out)
		}
		v, err := LoadVerifierFile(filepath.Join(c.dir, "cosign.pub"))
		if err != nil {
			t.Fatal(err)
		}
		sig := c.read("by-cosign.sig")
		got, err := Open(c.read("bundle.json"), sig, v, OpenOptions{Digest: b.Digest()})
		if err != nil || got.Digest() != b.Digest() {
			t.Fatalf("Open(cosign-signed bundle) = %v", err)
		}
		if err := Verify(c.read("tampered.json"), sig, v); Reason(err) != "signature" {
			t.Fatalf("tampered bundle with cosign's signature: %v", err)
		}
	})

	t.Run("stoa signs with a cosign key", func(t *testing.T) {
		s, err := LoadSignerFile(filepath.Join(c.dir, "cosign.key"), []byte("cosign-test"))
		if err != nil {
			t.Fatalf("load cosign.key: %v", err)
		}
		if _, err := LoadSignerFile(filepath.Join(c.dir, "cosign.key"), []byte("wrong")); Reason(err) != "" || err == nil {
			t.Fatalf("wrong password: %v", err)
		}
		c.write("by-stoa-cosign-key.sig", mustSign(t, b.Bytes(), s))
		out, err := c.verifyBlob("cosign.pub", "by-stoa-cosign-key.sig", "bundle.json", "--insecure-ignore-tlog=true")
		if err != nil || !strings.Contains(out, "Verified OK") {
			t.Fatalf("cosign verify-blob: %v\n%s", err, out)
		}
	})
}
