package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/specload"
)

func newBundleCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Build, sign and verify configuration bundles (offline)",
		Long: `A bundle is one revision of the whole configuration as canonical JSON, named
by its SHA-256 digest and signed with a cosign key: the unit a control plane
ships to data planes in fleet mode. These commands work offline, without
stoad. Keys and signatures are cosign's, so cosign verify-blob checks a
stoa-signed bundle and stoa checks a cosign-signed one; see docs/bundles.md.`,
		Example: `  stoa bundle keygen
  stoa bundle build -f specs/ --revision 42 --out bundle.json
  stoa bundle sign bundle.json --key cosign.key
  stoa bundle verify bundle.json --key cosign.pub`,
	}
	cmd.AddCommand(newBundleBuildCmd(f), newBundleSignCmd(f), newBundleVerifyCmd(f), newBundleKeygenCmd(f))
	return cmd
}

// bindOutFile binds --out, the file a command writes its artifact to.
// These commands write artifacts (a bundle, a signature, keys), not data
// reports, so the global -o (an output format) does not apply to them.
func bindOutFile(cmd *cobra.Command, p *string, what string) {
	cmd.Flags().StringVar(p, "out", "", what)
	_ = cmd.MarkFlagFilename("out")
}

// BundleBuildOptions are the inputs of `stoa bundle build`.
type BundleBuildOptions struct {
	F        *Factory
	Files    fileFlags
	Revision int64
	Out      string
}

func newBundleBuildCmd(f *Factory) *cobra.Command {
	o := &BundleBuildOptions{F: f}
	cmd := &cobra.Command{
		Use:   "build -f PATH... [--revision N] [--out FILE]",
		Short: "Make a bundle of specs: canonical JSON with a SHA-256 digest",
		Long: `Build loads specs with the loader stoa validate uses, fills in defaults exactly
as stoad stores objects, checks them (references must resolve within the
files: a bundle is a whole configuration), and writes the bundle: canonical
JSON, one object per line in dependency order. The same specs and revision
always give the same bytes, so the digest printed on stderr names the
configuration. Data planes refuse a revision older than the one they serve:
give each new bundle a higher --revision.`,
		Example: `  stoa bundle build -f specs/ --revision 42 --out bundle.json
  stoa bundle build -f specs/ --revision "$(git rev-list --count HEAD)" > bundle.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.Run() },
	}
	o.Files.bind(cmd)
	cmd.Flags().Int64Var(&o.Revision, "revision", 1, "revision number of the bundle (1 or more)")
	bindOutFile(cmd, &o.Out, "write the bundle to FILE instead of stdout")
	return noOutput(cmd)
}

// Run builds the bundle.
func (o *BundleBuildOptions) Run() error {
	if err := o.Files.required(); err != nil {
		return err
	}
	if o.Revision < 1 || o.Revision > bundle.MaxRevision {
		return fmt.Errorf("bundle build: --revision %d: revisions run from 1 to %d", o.Revision, int64(bundle.MaxRevision))
	}
	// A bundle is a whole configuration: every reference must resolve
	// within the files.
	res, err := load(o.F, o.Files.Paths, specload.Options{References: specload.ReferencesStrict}, true)
	if err != nil {
		return err
	}
	b, err := bundle.Build(o.Revision, res.Objects)
	if err != nil {
		return err
	}
	if err := writeOutput(o.F, o.Out, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bundle build: %w", err)
	}
	fmt.Fprintf(o.F.IO.ErrOut, "bundle revision %d: %d %s, %d bytes, %s\n", b.Revision(), b.Len(), plural(b.Len(), "object", "objects"), len(b.Bytes()), b.Digest())
	return nil
}

// writeOutput writes data to name (stdout for "" or "-"); a file is
// replaced atomically, so a failed run never leaves half a bundle.
func writeOutput(f *Factory, name string, data []byte, mode os.FileMode) error {
	if name == "" || name == "-" {
		_, err := f.IO.Out.Write(data)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// BundleSignOptions are the inputs of `stoa bundle sign`.
type BundleSignOptions struct {
	F      *Factory
	Bundle string
	Key    string
	Out    string
}

func newBundleSignCmd(f *Factory) *cobra.Command {
	o := &BundleSignOptions{F: f}
	cmd := &cobra.Command{
		Use:   "sign BUNDLE --key cosign.key [--out BUNDLE.sig]",
		Short: "Sign a bundle with a cosign private key",
		Long: `Sign writes the bundle's signature as cosign sign-blob --key does: ECDSA P-256
over the SHA-256 of the file, base64, into BUNDLE.sig (or --out FILE; --out - for
stdout). Only canonical bundles (stoa bundle build) are signed. The key's
password comes from COSIGN_PASSWORD, else from a prompt on a terminal.`,
		Example: `  stoa bundle sign bundle.json --key cosign.key
  COSIGN_PASSWORD=... stoa bundle sign bundle.json --key cosign.key --out bundle.sig`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Bundle = args[0]
			return o.Run()
		},
	}
	cmd.Flags().StringVar(&o.Key, "key", "", "cosign private key file (cosign.key) (required)")
	_ = cmd.MarkFlagFilename("key", "key")
	bindOutFile(cmd, &o.Out, "write the signature to FILE (default BUNDLE.sig; - for stdout)")
	return noOutput(cmd)
}

// Run signs the bundle.
func (o *BundleSignOptions) Run() error {
	if err := checkKeyFlag(o.Key, "cosign.key"); err != nil {
		return err
	}
	raw, err := os.ReadFile(o.Bundle)
	if err != nil {
		return fmt.Errorf("bundle sign: %w", err)
	}
	b, err := bundle.Parse(raw)
	if err != nil {
		return fmt.Errorf("bundle sign: %s: %w", o.Bundle, err)
	}
	pw, err := readPassword(o.F, false)
	if err != nil {
		return err
	}
	signer, err := bundle.LoadSignerFile(o.Key, pw)
	if err != nil {
		return err
	}
	sig, err := bundle.Sign(b.Bytes(), signer)
	if err != nil {
		return err
	}
	out := o.Out
	if out == "" {
		out = o.Bundle + ".sig"
	}
	if err := writeOutput(o.F, out, sig, 0o644); err != nil {
		return fmt.Errorf("bundle sign: %w", err)
	}
	if out != "-" {
		fmt.Fprintf(o.F.IO.ErrOut, "signed %s (revision %d, %s): signature in %s\n", o.Bundle, b.Revision(), b.Digest(), out)
	}
	return nil
}

// BundleVerifyOptions are the inputs of `stoa bundle verify`.
type BundleVerifyOptions struct {
	F         *Factory
	Bundle    string
	Key       string
	Signature string
	Digest    string
}

// BundleVerifyResult is `stoa bundle verify -o json`'s output.
type BundleVerifyResult struct {
	Verified  bool   `json:"verified"`
	File      string `json:"file"`
	Signature string `json:"signature"`
	Revision  int64  `json:"revision,omitempty"`
	Objects   int    `json:"objects,omitempty"`
	Bytes     int    `json:"bytes,omitempty"`
	Digest    string `json:"digest,omitempty"`
	// Reason is why verification failed: signature, digest or malformed.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// Valid reports whether a verified bundle's configuration passes
	// validation; Diagnostics lists its problems (and warnings).
	Valid       bool             `json:"valid"`
	Diagnostics spec.Diagnostics `json:"diagnostics,omitempty"`
}

func newBundleVerifyCmd(f *Factory) *cobra.Command {
	o := &BundleVerifyOptions{F: f}
	cmd := &cobra.Command{
		Use:   "verify BUNDLE --key cosign.pub [--signature BUNDLE.sig] [--digest sha256:...]",
		Short: "Check a bundle's signature (and digest) as a data plane would",
		Long: `Verify checks the signature in BUNDLE.sig (or --signature) over the bundle
with a cosign public key, with --digest that it is the bundle announced
under that digest, then that the bundle is canonical and its configuration
valid. Exit 0 when it verifies, 4 for a bad signature or digest, 3 for a
signed file that is not a canonical bundle or holds an invalid
configuration. -o json prints the result as JSON either way.`,
		Example: `  stoa bundle verify bundle.json --key cosign.pub
  stoa bundle verify bundle.json --key cosign.pub --digest sha256:4f2a... -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Bundle = args[0]
			return o.Run()
		},
	}
	cmd.Flags().StringVar(&o.Key, "key", "", "cosign public key file (cosign.pub) (required)")
	cmd.Flags().StringVar(&o.Signature, "signature", "", "signature file (default BUNDLE.sig)")
	cmd.Flags().StringVar(&o.Digest, "digest", "", "expected digest, sha256:<hex>")
	_ = cmd.MarkFlagFilename("key", "pub")
	_ = cmd.MarkFlagFilename("signature", "sig")
	return cmd
}

// Run verifies the bundle.
func (o *BundleVerifyOptions) Run() error {
	if err := checkKeyFlag(o.Key, "cosign.pub"); err != nil {
		return err
	}
	if o.Signature == "" {
		o.Signature = o.Bundle + ".sig"
	}
	var want bundle.Digest
	if o.Digest != "" {
		d, err := bundle.ParseDigest(o.Digest)
		if err != nil {
			return fmt.Errorf("bundle verify: --digest: %w", err)
		}
		want = d
	}
	raw, err := os.ReadFile(o.Bundle)
	if err != nil {
		return fmt.Errorf("bundle verify: %w", err)
	}
	sig, err := os.ReadFile(o.Signature)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &hintError{fmt.Errorf("bundle verify: %w", err), "sign the bundle with stoa bundle sign, or name its signature with --signature"}
		}
		return fmt.Errorf("bundle verify: %w", err)
	}
	v, err := bundle.LoadVerifierFile(o.Key)
	if err != nil {
		return err
	}
	res := BundleVerifyResult{File: o.Bundle, Signature: o.Signature}
	b, verr := bundle.Open(raw, sig, v, bundle.OpenOptions{Digest: want})
	if verr == nil && o.Digest != "" && want.IsZero() {
		// Open reads a zero digest as "none announced"; the user did announce one.
		verr = &bundle.DigestError{Want: want, Got: b.Digest()}
	}
	if verr == nil {
		res.Verified, res.Revision, res.Objects, res.Bytes, res.Digest = true, b.Revision(), b.Len(), len(raw), b.Digest().String()
		// A data plane validates what it will prepare; a bundle from
		// another builder, or an older stoa, may not pass.
		res.Diagnostics = spec.Validate(b.Objects(), spec.ValidateOptions{})
		res.Diagnostics.Sort()
		res.Valid = !res.Diagnostics.HasErrors()
	} else {
		res.Reason, res.Error = bundle.Reason(verr), verr.Error()
	}
	code := ExitFailure
	switch {
	case res.Reason == "signature" || res.Reason == "digest":
		code = ExitForbidden
	case res.Reason == "malformed" || (res.Verified && !res.Valid):
		code = ExitInvalid
	}
	if done, err := printed(o.F, res); done {
		if err == nil && !(res.Verified && res.Valid) {
			return silent(code)
		}
		return err
	}
	if verr != nil {
		return &ExitError{Code: code, Err: fmt.Errorf("%s: %w", o.Bundle, verr)}
	}
	if len(res.Diagnostics) > 0 {
		res.Diagnostics.Format(o.F.IO.ErrOut, o.F.IO.ColorErr())
	}
	if !res.Valid {
		n := 0
		for _, d := range res.Diagnostics {
			if d.Severity != spec.SeverityWarning {
				n++
			}
		}
		return &ExitError{Code: code, Err: &hintError{fmt.Errorf("%s: the signature verifies, but the configuration is invalid (%d %s)", o.Bundle, n, plural(n, "error", "errors")),
			"data planes would refuse it: fix the specs and rebuild the bundle with stoa bundle build"}}
	}
	fmt.Fprintf(o.F.IO.Out, "Verified OK: %s is revision %d, %d %s, %s\n", o.Bundle, b.Revision(), b.Len(), plural(b.Len(), "object", "objects"), b.Digest())
	return nil
}

// checkKeyFlag requires --key and refuses key URIs (KMS, k8s://), which
// cosign supports and stoa does not yet.
func checkKeyFlag(key, example string) error {
	if key == "" {
		return &hintError{errors.New("--key is required"), "pass --key " + example + " (stoa bundle keygen or cosign generate-key-pair writes one)"}
	}
	if strings.Contains(key, "://") {
		return &hintError{fmt.Errorf("--key %s: only key files are supported", key),
			"KMS and Kubernetes key references are not supported yet; export the key to a file (cosign public-key --key ... > cosign.pub)"}
	}
	return nil
}

// BundleKeygenOptions are the inputs of `stoa bundle keygen`.
type BundleKeygenOptions struct {
	F      *Factory
	Prefix string
	Force  bool
}

func newBundleKeygenCmd(f *Factory) *cobra.Command {
	o := &BundleKeygenOptions{F: f}
	cmd := &cobra.Command{
		Use:   "keygen [--output-key-prefix cosign]",
		Short: "Write a cosign key pair (cosign.key, cosign.pub) for signing bundles",
		Long: `Keygen writes an ECDSA P-256 key pair in the files cosign generate-key-pair
writes: PREFIX.key, the private key encrypted under a password (mode 0600),
and PREFIX.pub, the public key that data planes verify with. The password
comes from COSIGN_PASSWORD (which may be set empty, leaving the key
unprotected), else from a prompt on a terminal. Existing files are kept
unless --force.`,
		Example: `  stoa bundle keygen
  COSIGN_PASSWORD=... stoa bundle keygen --output-key-prefix keys/prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.Run() },
	}
	cmd.Flags().StringVar(&o.Prefix, "output-key-prefix", "cosign", "write PREFIX.key and PREFIX.pub")
	cmd.Flags().BoolVar(&o.Force, "force", false, "overwrite existing key files")
	return noOutput(cmd)
}

// Run writes the key pair.
func (o *BundleKeygenOptions) Run() error {
	if o.Prefix == "" {
		return errors.New("bundle keygen: --output-key-prefix must not be empty")
	}
	keyPath, pubPath := o.Prefix+".key", o.Prefix+".pub"
	if !o.Force {
		for _, p := range []string{keyPath, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return &hintError{fmt.Errorf("bundle keygen: %s already exists", p),
					"keep it, choose another --output-key-prefix, or pass --force to replace the key pair (bundles signed with the old key will no longer verify with the new one)"}
			}
		}
	}
	pw, err := readPassword(o.F, true)
	if err != nil {
		return err
	}
	if len(pw) == 0 {
		fmt.Fprintf(o.F.IO.ErrOut, "warning: the password is empty: anyone who reads %s can sign bundles\n", keyPath)
	}
	priv, pub, err := bundle.GenerateKeyPair(pw)
	if err != nil {
		return err
	}
	// The private key is written first, 0600, and the public key only
	// after it, so a failure never leaves a public key without its pair.
	if err := writeOutput(o.F, keyPath, priv, 0o600); err != nil {
		return fmt.Errorf("bundle keygen: %w", err)
	}
	if err := writeOutput(o.F, pubPath, pub, 0o644); err != nil {
		return fmt.Errorf("bundle keygen: %w", err)
	}
	fmt.Fprintf(o.F.IO.ErrOut, "Private key written to %s\nPublic key written to %s\n", keyPath, pubPath)
	return nil
}

// readPassword gets a key's password the way cosign does: COSIGN_PASSWORD
// when set (even empty), else a prompt on the terminal (twice, when
// confirm). Without either it fails rather than block on a pipe.
func readPassword(f *Factory, confirm bool) ([]byte, error) {
	if pw, ok := os.LookupEnv("COSIGN_PASSWORD"); ok {
		return []byte(pw), nil
	}
	in, ok := f.IO.In.(*os.File)
	if !ok || !f.IO.InTTY {
		return nil, &hintError{errors.New("no password for the private key: COSIGN_PASSWORD is not set and stdin is not a terminal"),
			"set COSIGN_PASSWORD (empty for a key without password)"}
	}
	prompt := func(msg string) ([]byte, error) {
		fmt.Fprint(f.IO.ErrOut, msg)
		pw, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(f.IO.ErrOut)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		return pw, nil
	}
	pw, err := prompt("Enter password for private key: ")
	if err != nil || !confirm {
		return pw, err
	}
	again, err := prompt("Enter password for private key again: ")
	if err != nil {
		return nil, err
	}
	if string(pw) != string(again) {
		return nil, errors.New("read password: the passwords do not match")
	}
	return pw, nil
}
