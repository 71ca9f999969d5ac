package daemon

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// SourceConfig makes stoad a read-only server of signed bundles: a data
// plane of a control plane (--join), or of a bundle file (--bundle). Its
// configuration then comes only from there; the LocalAPI refuses
// applies.
type SourceConfig struct {
	// Join is the control plane's https URL.
	Join string
	// JoinToken (or the file JoinTokenFile names) is the single-use
	// token to join with; needed only until the data plane has an
	// identity in FleetDir.
	JoinToken, JoinTokenFile string
	// JoinFingerprint pins the control plane's TLS certificate.
	JoinFingerprint string
	// Name is the data plane's name (empty: the join token's).
	Name string
	// Advertise is the address the control plane lists for this data
	// plane (default: --listen).
	Advertise string
	// BundleKey is the cosign public key bundles must be signed with.
	BundleKey string
	// FleetDir holds the identity and the last good bundle (default
	// STATE/fleet).
	FleetDir string
	// Bundle is a signed bundle file to serve, BundleSignature its
	// signature (default Bundle + ".sig"), BundlePoll how often it is
	// checked for changes.
	Bundle, BundleSignature string
	BundlePoll              time.Duration
}

// Enabled reports whether stoad serves bundles instead of taking applies.
func (c *SourceConfig) Enabled() bool { return c.Join != "" || c.Bundle != "" }

// dir is the directory of the identity and the last good bundle.
func (c *SourceConfig) dir(stateDir string) string {
	if c.FleetDir != "" {
		return c.FleetDir
	}
	return filepath.Join(stateDir, "fleet")
}

// signature is the bundle file's signature file.
func (c *SourceConfig) signature() string {
	if c.BundleSignature != "" {
		return c.BundleSignature
	}
	return c.Bundle + ".sig"
}

func (c *SourceConfig) defs() []flagDef {
	return []flagDef{
		{name: "join", env: "STOAD_JOIN", str: &c.Join, usage: "data plane: take the configuration from this control plane (https://host:port); the LocalAPI then refuses applies"},
		{name: "join-token", env: "STOAD_JOIN_TOKEN", str: &c.JoinToken, usage: "data plane: single-use join token (stoa fleet join-token create on the control plane); needed only for the first start"},
		{name: "join-token-file", env: "STOAD_JOIN_TOKEN_FILE", str: &c.JoinTokenFile, usage: "data plane: read the join token from this file (keeps it out of the process list)"},
		{name: "join-fingerprint", env: "STOAD_JOIN_FINGERPRINT", str: &c.JoinFingerprint, usage: "data plane: trust only the control plane certificate with this SHA-256 fingerprint (SHA256:AB:CD:…)"},
		{name: "name", env: "STOAD_NAME", str: &c.Name, usage: "data plane: its name at the control plane (default: the name the join token admits)"},
		{name: "advertise", env: "STOAD_ADVERTISE", str: &c.Advertise, usage: "data plane: the address the control plane lists for it (default --listen)"},
		{name: "bundle-key", env: "STOAD_BUNDLE_KEY", str: &c.BundleKey, usage: "cosign public key (cosign.pub) every bundle must be signed with; required with --join and --bundle"},
		{name: "fleet-dir", env: "STOAD_FLEET_DIR", str: &c.FleetDir, usage: "data plane identity and last good bundle (default STATE-DIR/fleet)"},
		{name: "bundle", env: "STOAD_BUNDLE", str: &c.Bundle, usage: "serve this signed bundle file (stoa bundle build|sign), re-read on SIGHUP and when it changes; the LocalAPI then refuses applies"},
		{name: "bundle-signature", env: "STOAD_BUNDLE_SIGNATURE", str: &c.BundleSignature, usage: "signature of --bundle (default BUNDLE.sig)"},
		{name: "bundle-poll", env: "STOAD_BUNDLE_POLL", dur: &c.BundlePoll, def: "2s", usage: "how often --bundle is checked for changes"},
	}
}

// allDefs is every flag: the base ones, with the bundle source's before
// --version.
func (c *Config) allDefs() []flagDef {
	base := c.defs()
	n := len(base)
	if n > 0 && base[n-1].name == "version" {
		return append(append(base[:n-1:n-1], c.Source.defs()...), base[n-1])
	}
	return append(base, c.Source.defs()...)
}

// checkSource refuses flag combinations that make no sense: one source
// of configuration at a time, each with what it needs.
func (c *Config) checkSource(fs *flag.FlagSet, getenv func(string) string) error {
	s := &c.Source
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, d := range s.defs() {
		if getenv(d.env) != "" {
			given[d.name] = true
		}
	}
	for _, f := range []string{"join-token", "join-token-file", "join-fingerprint", "name", "advertise"} {
		if given[f] && s.Join == "" {
			return fmt.Errorf("--%s configures a data plane: add --join https://CONTROL-PLANE", f)
		}
	}
	for _, f := range []string{"bundle-signature", "bundle-poll"} {
		if given[f] && s.Bundle == "" {
			return fmt.Errorf("--%s goes with --bundle FILE", f)
		}
	}
	switch {
	case s.Join != "" && s.Bundle != "":
		return errors.New("--join and --bundle are two sources of configuration: give one (a data plane keeps its last good bundle by itself)")
	case !s.Enabled() && (s.BundleKey != "" || given["fleet-dir"]):
		return errors.New("--bundle-key and --fleet-dir go with --join URL (a data plane) or --bundle FILE")
	case !s.Enabled():
		return nil
	case c.SpecsDir != "":
		return errors.New("--specs cannot be combined with --join or --bundle: the configuration comes from the signed bundles alone")
	case c.Role == RoleControlPlane:
		return errors.New("--join and --bundle make a data plane, which a control plane is not: run the control plane and its data planes as separate stoads")
	case c.Store != "":
		return errors.New("--store cannot be combined with --join or --bundle: a data plane keeps its own embedded state in --state-dir")
	case s.BundleKey == "":
		return errors.New("--join and --bundle need --bundle-key cosign.pub: bundles are verified against it before anything is served")
	case s.JoinToken != "" && s.JoinTokenFile != "":
		return errors.New("--join-token and --join-token-file: give one")
	case s.Bundle != "" && s.BundlePoll <= 0:
		return fmt.Errorf("--bundle-poll %s: want a positive duration", s.BundlePoll)
	}
	if s.Join != "" {
		u, err := url.Parse(s.Join)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("--join %q: want the control plane's https:// URL (https://cp.example:8443)", s.Join)
		}
		s.Join = strings.TrimRight(s.Join, "/")
	}
	if s.Name != "" {
		if err := fleet.CheckName(s.Name); err != nil {
			return fmt.Errorf("--name: %w", err)
		}
	}
	if s.JoinFingerprint != "" {
		if _, err := tlspin.Parse(s.JoinFingerprint); err != nil {
			return fmt.Errorf("--join-fingerprint: %w", err)
		}
	}
	return nil
}

// joinToken is the token from --join-token or --join-token-file.
func (c *SourceConfig) joinToken() (string, error) {
	if c.JoinTokenFile == "" {
		return strings.TrimSpace(c.JoinToken), nil
	}
	b, err := os.ReadFile(c.JoinTokenFile)
	if err != nil {
		return "", fmt.Errorf("read join token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("read join token: %s is empty", c.JoinTokenFile)
	}
	return tok, nil
}
