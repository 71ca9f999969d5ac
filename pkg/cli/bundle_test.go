package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// runStoa runs one stoa invocation in-process.
func runStoa(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errb})
	return code, out.String(), errb.String()
}

const bundleSpecs = `apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: acme}
spec: {displayName: Acme}
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: billing, namespace: acme}
spec:
  upstream: http://127.0.0.1:9001/billing
  auth: {type: apiKey}
  operations:
    - {name: get_invoice, method: GET, path: "/invoices/{id}"}
`

// bundleDir writes specs and a key pair to a temp dir.
func bundleDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "specs.yaml"), []byte(bundleSpecs), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COSIGN_PASSWORD", "s3cret")
	if code, _, stderr := runStoa(t, "bundle", "keygen", "--output-key-prefix", filepath.Join(dir, "cosign")); code != 0 {
		t.Fatalf("keygen: exit %d\n%s", code, stderr)
	}
	return dir
}

func TestBundleBuildSignVerify(t *testing.T) {
	dir := bundleDir(t)
	p := func(name string) string { return filepath.Join(dir, name) }

	code, stdout, stderr := runStoa(t, "bundle", "build", "-f", p("specs.yaml"), "--revision", "7", "--out", p("bundle.json"))
	if code != 0 || stdout != "" || !strings.Contains(stderr, "bundle revision 7: 2 objects") {
		t.Fatalf("build: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	raw, _ := os.ReadFile(p("bundle.json"))
	b, err := bundle.Parse(raw)
	if err != nil || b.Revision() != 7 || !strings.Contains(stderr, b.Digest().String()) {
		t.Fatalf("built bundle: %v; stderr %q", err, stderr)
	}
	// Without -o the bundle is the only thing on stdout.
	if code, stdout, _ := runStoa(t, "bundle", "build", "-f", p("specs.yaml"), "--revision", "7"); code != 0 || stdout != string(raw) {
		t.Fatalf("build to stdout: exit %d, differs from the file", code)
	}

	if code, _, stderr := runStoa(t, "bundle", "sign", p("bundle.json"), "--key", p("cosign.key")); code != 0 || !strings.Contains(stderr, "bundle.json.sig") {
		t.Fatalf("sign: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr = runStoa(t, "bundle", "verify", p("bundle.json"), "--key", p("cosign.pub"))
	if code != 0 || !strings.HasPrefix(stdout, "Verified OK: ") || !strings.Contains(stdout, b.Digest().String()) || stderr != "" {
		t.Fatalf("verify: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = runStoa(t, "bundle", "verify", p("bundle.json"), "--key", p("cosign.pub"), "--digest", b.Digest().String(), "-o", "json")
	var res BundleVerifyResult
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || !res.Verified || !res.Valid || res.Revision != 7 || res.Objects != 2 || res.Digest != b.Digest().String() {
		t.Fatalf("verify -o json: exit %d, %+v, %v", code, res, err)
	}
	// sign -o - prints the signature alone; it verifies like the file.
	code, sig, _ := runStoa(t, "bundle", "sign", p("bundle.json"), "--key", p("cosign.key"), "--out", "-")
	if code != 0 || strings.ContainsAny(sig, " \n") {
		t.Fatalf("sign -o -: exit %d, %q", code, sig)
	}
	os.WriteFile(p("other.sig"), []byte(sig), 0o644)
	if code, _, stderr := runStoa(t, "bundle", "verify", p("bundle.json"), "--key", p("cosign.pub"), "--signature", p("other.sig")); code != 0 {
		t.Fatalf("verify --signature: exit %d\n%s", code, stderr)
	}
}

func TestBundleVerifyRefusals(t *testing.T) {
	dir := bundleDir(t)
	p := func(name string) string { return filepath.Join(dir, name) }
	if code, _, stderr := runStoa(t, "bundle", "build", "-f", p("specs.yaml"), "--out", p("bundle.json")); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := runStoa(t, "bundle", "sign", p("bundle.json"), "--key", p("cosign.key")); code != 0 {
		t.Fatal(stderr)
	}
	raw, _ := os.ReadFile(p("bundle.json"))
	sig, _ := os.ReadFile(p("bundle.json.sig"))
	os.WriteFile(p("tampered.json"), bytes.Replace(raw, []byte("Acme"), []byte("Acne"), 1), 0o644)
	os.WriteFile(p("tampered.json.sig"), sig, 0o644)
	// A file signed with the right key but not canonical: data planes
	// refuse it, and so does verify.
	loose := bytes.Replace(raw, []byte(`"displayName":"Acme"`), []byte(`"displayName": "Acme"`), 1)
	os.WriteFile(p("loose.json"), loose, 0o644)
	signer, err := bundle.LoadSignerFile(p("cosign.key"), []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	looseSig, _ := bundle.Sign(loose, signer)
	os.WriteFile(p("loose.json.sig"), looseSig, 0o644)
	// Signed and canonical, but a ToolSet names a tool the bundle lacks:
	// what a buggy control plane could ship.
	dangling, diags := spec.Parse("d.yaml", []byte(bundleSpecs+"---\napiVersion: stoa.io/v1alpha1\nkind: ToolSet\nmetadata: {name: set, namespace: acme}\nspec: {tools: [ghost]}\n"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, o := range dangling {
		spec.Default(o)
	}
	invalid, err := bundle.Build(3, dangling)
	if err != nil {
		t.Fatal(err)
	}
	invalidSig, _ := bundle.Sign(invalid.Bytes(), signer)
	os.WriteFile(p("invalid.json"), invalid.Bytes(), 0o644)
	os.WriteFile(p("invalid.json.sig"), invalidSig, 0o644)
	t.Setenv("COSIGN_PASSWORD", "other")
	if code, _, stderr := runStoa(t, "bundle", "keygen", "--output-key-prefix", p("other")); code != 0 {
		t.Fatal(stderr)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		reason string
		stderr string
	}{
		{"tampered", []string{p("tampered.json"), "--key", p("cosign.pub")}, ExitForbidden, "signature", "hint: the bundle was changed after signing"},
		{"another key", []string{p("bundle.json"), "--key", p("other.pub")}, ExitForbidden, "signature", "verify signature"},
		{"another bundle's signature", []string{p("bundle.json"), "--key", p("cosign.pub"), "--signature", p("loose.json.sig")}, ExitForbidden, "signature", "verify signature"},
		{"digest not the announced one", []string{p("bundle.json"), "--key", p("cosign.pub"), "--digest", "sha256:" + strings.Repeat("ab", 32)}, ExitForbidden, "digest", "check digest"},
		{"zero digest announced", []string{p("bundle.json"), "--key", p("cosign.pub"), "--digest", "sha256:" + strings.Repeat("0", 64)}, ExitForbidden, "digest", "check digest"},
		{"signed but not canonical", []string{p("loose.json"), "--key", p("cosign.pub")}, ExitInvalid, "malformed", "not in canonical form"},
		{"signed but invalid", []string{p("invalid.json"), "--key", p("cosign.pub")}, ExitInvalid, "", "ToolSet/acme/set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"bundle", "verify"}, tc.args...)
			code, stdout, stderr := runStoa(t, args...)
			if code != tc.code || stdout != "" || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want %q)", code, tc.code, stdout, stderr, tc.stderr)
			}
			code, stdout, _ = runStoa(t, append(args, "-o", "json")...)
			var res BundleVerifyResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != tc.code || res.Valid || res.Reason != tc.reason {
				t.Fatalf("-o json: exit %d, %q", code, stdout)
			}
			// Only a signature that verifies reports the configuration.
			if res.Verified != (tc.reason == "") || (res.Error == "") != res.Verified || (len(res.Diagnostics) > 0) != res.Verified {
				t.Fatalf("-o json: %+v", res)
			}
		})
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no key", []string{p("bundle.json")}, "--key is required"},
		{"KMS key", []string{p("bundle.json"), "--key", "awskms:///alias/x"}, "only key files are supported"},
		{"private key", []string{p("bundle.json"), "--key", p("cosign.key")}, "this is a private key"},
		{"missing signature", []string{p("specs.yaml"), "--key", p("cosign.pub")}, "hint: sign the bundle with stoa bundle sign"},
		{"bad digest flag", []string{p("bundle.json"), "--key", p("cosign.pub"), "--digest", "abc"}, "want sha256:<64 hex digits>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runStoa(t, append([]string{"bundle", "verify"}, tc.args...)...)
			if code != ExitFailure || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.want)
			}
		})
	}
}

func TestBundleBuildErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.yaml"), []byte(bundleSpecs), 0o644)
	// A ToolSet naming a tool the files lack: a bundle is a whole
	// configuration, so references must resolve within it.
	os.WriteFile(filepath.Join(dir, "dangling.yaml"), []byte(bundleSpecs+`---
apiVersion: stoa.io/v1alpha1
kind: ToolSet
metadata: {name: set, namespace: acme}
spec: {tools: [billing, ghost]}
`), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: x, namespace: acme}\nspec: {upstrem: http://x}\n"), 0o644)
	out := filepath.Join(dir, "bundle.json")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no specs", nil, ExitFailure, "no specs given"},
		{"invalid spec", []string{"-f", filepath.Join(dir, "bad.yaml"), "--out", out}, ExitInvalid, `bad.yaml:4:8: unknown field "upstrem"`},
		{"dangling reference", []string{"-f", filepath.Join(dir, "dangling.yaml"), "--out", out}, ExitInvalid, "ghost"},
		{"revision 0", []string{"-f", filepath.Join(dir, "ok.yaml"), "--revision", "0"}, ExitFailure, "revisions run from 1"},
		{"-o json", []string{"-f", filepath.Join(dir, "ok.yaml"), "-o", "json"}, ExitFailure, "-o json does not apply"},
		{"unwritable output", []string{"-f", filepath.Join(dir, "ok.yaml"), "--out", filepath.Join(dir, "missing", "b.json")}, ExitFailure, "bundle build:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runStoa(t, append([]string{"bundle", "build"}, tc.args...)...)
			if code != tc.code || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want %q)", code, tc.code, stdout, stderr, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("a failed build left a bundle behind")
			}
		})
	}
}

// TestBundleBuildIsStoredForm: the bundle holds objects as stoad stores
// them (defaults applied), whatever the order of files and documents.
func TestBundleBuildIsStoredForm(t *testing.T) {
	dir := t.TempDir()
	docs := strings.Split(bundleSpecs, "---\n")
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(docs[1]), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(docs[0]), 0o644)
	_, one, _ := runStoa(t, "bundle", "build", "-f", filepath.Join(dir, "a.yaml"), "-f", filepath.Join(dir, "b.yaml"))
	_, two, _ := runStoa(t, "bundle", "build", "-f", filepath.Join(dir, "b.yaml"), "-f", filepath.Join(dir, "a.yaml"))
	if one == "" || one != two {
		t.Fatalf("file order changed the bundle:\n%s\n%s", one, two)
	}
	b, err := bundle.Parse([]byte(one))
	if err != nil {
		t.Fatal(err)
	}
	tool := b.Objects()[1].Spec.(*spec.ToolSpec)
	if tool.Protocol != "rest" || tool.Route == nil || tool.Timeouts == nil {
		t.Fatalf("defaults not applied: %+v", tool)
	}
}

func TestBundleSignErrors(t *testing.T) {
	dir := bundleDir(t)
	p := func(name string) string { return filepath.Join(dir, name) }
	runStoa(t, "bundle", "build", "-f", p("specs.yaml"), "--out", p("bundle.json"))
	for _, tc := range []struct {
		name string
		pw   *string
		args []string
		want string
	}{
		{"wrong password", ptr("nope"), []string{p("bundle.json"), "--key", p("cosign.key")}, "hint: set COSIGN_PASSWORD to the password"},
		{"no password, no terminal", nil, []string{p("bundle.json"), "--key", p("cosign.key")}, "COSIGN_PASSWORD is not set and stdin is not a terminal"},
		{"public key", ptr("s3cret"), []string{p("bundle.json"), "--key", p("cosign.pub")}, "this is a public key"},
		{"not a bundle", ptr("s3cret"), []string{p("specs.yaml"), "--key", p("cosign.key")}, "not a stoa bundle"},
		{"missing bundle", ptr("s3cret"), []string{p("nope.json"), "--key", p("cosign.key")}, "no such file"},
		{"no key", ptr("s3cret"), []string{p("bundle.json")}, "--key is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.pw == nil {
				t.Setenv("COSIGN_PASSWORD", "")
				os.Unsetenv("COSIGN_PASSWORD")
			} else {
				t.Setenv("COSIGN_PASSWORD", *tc.pw)
			}
			code, _, stderr := runStoa(t, append([]string{"bundle", "sign"}, tc.args...)...)
			if code != ExitFailure || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(p("bundle.json.sig")); err == nil {
				t.Fatal("a failed sign left a signature behind")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestBundleKeygen(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	t.Setenv("COSIGN_PASSWORD", "")
	code, stdout, stderr := runStoa(t, "bundle", "keygen", "--output-key-prefix", prefix)
	if code != 0 || stdout != "" || !strings.Contains(stderr, "warning: the password is empty") || !strings.Contains(stderr, "Public key written to "+prefix+".pub") {
		t.Fatalf("keygen: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for name, mode := range map[string]os.FileMode{"k.key": 0o600, "k.pub": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v, mode %v; want %v", name, err, fi.Mode().Perm(), mode)
		}
	}
	key, _ := os.ReadFile(prefix + ".key")
	if _, err := bundle.LoadSigner(key, nil); err != nil {
		t.Fatalf("key with empty password: %v", err)
	}
	code, _, stderr = runStoa(t, "bundle", "keygen", "--output-key-prefix", prefix)
	if code != ExitFailure || !strings.Contains(stderr, "k.key already exists") {
		t.Fatalf("second keygen: exit %d, %q", code, stderr)
	}
	if again, _ := os.ReadFile(prefix + ".key"); !bytes.Equal(again, key) {
		t.Fatal("keygen replaced an existing key without --force")
	}
	t.Setenv("COSIGN_PASSWORD", "new")
	if code, _, stderr := runStoa(t, "bundle", "keygen", "--output-key-prefix", prefix, "--force"); code != 0 {
		t.Fatalf("keygen --force: %q", stderr)
	}
	if again, _ := os.ReadFile(prefix + ".key"); bytes.Equal(again, key) {
		t.Fatal("--force kept the old key")
	}
	if _, err := bundle.LoadSignerFile(prefix+".key", []byte("new")); err != nil {
		t.Fatal(err)
	}
}

// bundleCases are the unit cases of the offline stoa bundle commands
// (TestCommands); TestBundle* above cover the files they write.
func bundleBuildCases() []cmdCase {
	return []cmdCase{
		{name: "to a file", args: []string{"-f", quickstartDir, "--revision", "3", "--out", "$TMP/b.json"}, calls: []string{},
			errOut: []string{"bundle revision 3: 12 objects"}, noGolden: true},
		{name: "invalid specs", args: []string{"-f", badDir, "--out", "$TMP/b.json"}, code: ExitInvalid, errOut: []string{"upstrem"}},
		{name: "no files", code: ExitFailure, flagErr: true, errOut: []string{"no specs given"}},
		{name: "-o is a format", args: []string{"-f", quickstartDir, "-o", "json"}, code: ExitFailure, flagErr: true, errOut: []string{"prints no data"}},
	}
}

func bundleSignCases() []cmdCase {
	keyDir := func(t *testing.T) map[string]string {
		dir := t.TempDir()
		priv, _, err := bundle.GenerateKeyPair([]byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join("testdata", "bundle", "bundle.json"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "cosign.key"), priv, 0o600)
		os.WriteFile(filepath.Join(dir, "bundle.json"), b, 0o644)
		return map[string]string{"$KEYS": dir}
	}
	return []cmdCase{
		{name: "signs", args: []string{"$KEYS/bundle.json", "--key", "$KEYS/cosign.key"}, vars: keyDir,
			env: map[string]string{"COSIGN_PASSWORD": "pw"}, calls: []string{}, errOut: []string{"signature in $KEYS/bundle.json.sig"}},
		{name: "missing key", args: []string{filepath.Join("testdata", "bundle", "bundle.json"), "--key", "$TMP/none.key", "--out", "$TMP/s"},
			env: map[string]string{"COSIGN_PASSWORD": ""}, code: ExitFailure, errOut: []string{"none.key"}},
		{name: "no bundle", code: ExitFailure, flagErr: true, errOut: []string{"accepts 1 arg"}},
	}
}

func bundleVerifyCases() []cmdCase {
	b := filepath.Join("testdata", "bundle", "bundle.json")
	pub := filepath.Join("testdata", "bundle", "cosign.pub")
	return []cmdCase{
		{name: "good", args: []string{b, "--key", pub}, formats: formats(shapeObject), calls: []string{}},
		{name: "wrong digest", args: []string{b, "--key", pub, "--digest", "sha256:" + strings.Repeat("0", 64)}, code: ExitForbidden},
		{name: "no key", args: []string{b}, code: ExitFailure, flagErr: true, errOut: []string{"--key"}},
	}
}

func bundleKeygenCases() []cmdCase {
	return []cmdCase{
		{name: "writes a pair", args: []string{"--output-key-prefix", "$TMP/k"}, env: map[string]string{"COSIGN_PASSWORD": "pw"},
			calls: []string{}, errOut: []string{"Public key written to $TMP/k.pub"}},
		{name: "stray argument", args: []string{"x"}, code: ExitFailure, flagErr: true, errOut: []string{"unknown command"}},
	}
}
