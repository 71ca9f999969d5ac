// Package cliconfig keeps the stoa CLI's contexts: named targets (the
// local daemon's unix socket, or a remote control plane over HTTPS with an
// OIDC issuer) in $XDG_CONFIG_HOME/stoa/config.yaml, and which one is
// current, the way kubectl's kubeconfig does.
//
// The built-in context "local" is the local daemon's LocalAPI socket: it
// is never stored, always present and cannot be deleted or redefined.
// A command picks its context with Resolve, by precedence: the --context
// flag, then $STOA_CONTEXT, then the file's current-context, then local.
// $STOA_TOKEN, when set, is the bearer token to use instead of the stored
// one.
//
// The file is decoded strictly (unknown fields are errors, reported with
// file:line:col) and written atomically (temporary file and rename) with
// mode 0600 in a 0700 directory. Writing it drops YAML comments.
package cliconfig

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// LocalContext is the built-in context for the local daemon's socket.
const LocalContext = "local"

// Environment variables the package reads.
const (
	EnvContext = "STOA_CONTEXT"
	EnvToken   = "STOA_TOKEN"
	EnvConfig  = "STOA_CONFIG"
)

// Context is one target of the CLI.
type Context struct {
	// Name identifies the context (1-63 of [A-Za-z0-9._-]).
	Name string `yaml:"name" json:"name"`
	// Server is the control plane's URL (https://host[:port][/path]; http
	// only on loopback) or another daemon's socket (unix:///abs/path). For
	// the built-in local context it is empty: the CLI's default socket.
	Server string `yaml:"server,omitempty" json:"server,omitempty"`
	// Issuer is the OIDC issuer to log in with (https, or http on
	// loopback for a development issuer).
	Issuer string `yaml:"issuer,omitempty" json:"issuer,omitempty"`
	// ClientID is the OAuth client the CLI logs in as; empty means
	// "stoa-cli".
	ClientID string `yaml:"clientID,omitempty" json:"clientID,omitempty"`
	// Audience is requested for access tokens, for issuers that choose aud
	// from the request.
	Audience string `yaml:"audience,omitempty" json:"audience,omitempty"`
	// Scopes replace the default login scopes.
	Scopes []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`
	// Fingerprint pins the server's TLS certificate (SHA-256), for a
	// control plane with a self-signed certificate. Stored normalised.
	Fingerprint string `yaml:"fingerprint,omitempty" json:"fingerprint,omitempty"`
	// IssuerFingerprint pins the issuer's certificate likewise (a
	// development issuer).
	IssuerFingerprint string `yaml:"issuerFingerprint,omitempty" json:"issuerFingerprint,omitempty"`
}

// Local returns the built-in local context.
func Local() Context { return Context{Name: LocalContext} }

// IsLocal reports whether the context talks to a daemon over a unix
// socket (the built-in local context or a unix:// server) rather than to a
// remote control plane.
func (c Context) IsLocal() bool {
	return c.Name == LocalContext && c.Server == "" || strings.HasPrefix(c.Server, "unix://")
}

// SocketPath returns the socket of a unix:// server ("" for the built-in
// local context: the CLI's default socket).
func (c Context) SocketPath() string {
	if p, ok := strings.CutPrefix(c.Server, "unix://"); ok {
		return p
	}
	return ""
}

// ServerFingerprint parses Fingerprint (ok is false when none is set).
func (c Context) ServerFingerprint() (tlspin.Fingerprint, bool, error) {
	return optFingerprint(c.Fingerprint)
}

// IssuerPin parses IssuerFingerprint (ok is false when none is set).
func (c Context) IssuerPin() (tlspin.Fingerprint, bool, error) {
	return optFingerprint(c.IssuerFingerprint)
}

func optFingerprint(s string) (tlspin.Fingerprint, bool, error) {
	if s == "" {
		return tlspin.Fingerprint{}, false, nil
	}
	f, err := tlspin.Parse(s)
	return f, err == nil, err
}

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	clientRE = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)
	scopeRE  = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]+$`) // RFC 6749 scope-token
)

// FieldError is a problem with one field of a context.
type FieldError struct {
	Context string
	Field   string // yaml name
	Message string
	Hint    string
}

func (e *FieldError) Error() string {
	s := fmt.Sprintf("context %q: %s: %s", e.Context, e.Field, e.Message)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Normalize checks the context and returns it with fingerprints in their
// canonical form.
func (c Context) Normalize() (Context, error) {
	bad := func(field, msg, hint string) (Context, error) {
		return c, &FieldError{Context: c.Name, Field: field, Message: msg, Hint: hint}
	}
	if !nameRE.MatchString(c.Name) {
		return bad("name", fmt.Sprintf("%q is not a valid name", c.Name), "use 1-63 of [A-Za-z0-9._-], starting with a letter or digit")
	}
	if c.Name == LocalContext {
		return bad("name", `"local" is the built-in context for the local daemon`, "pick another name")
	}
	if c.Server == "" {
		return bad("server", "missing", "set the control plane's URL, e.g. https://cp.example.com:7443")
	}
	u, err := url.Parse(c.Server)
	if err != nil {
		return bad("server", fmt.Sprintf("%q is not a URL", c.Server), "e.g. https://cp.example.com:7443")
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !path.IsAbs(u.Path) || u.RawQuery != "" || u.Fragment != "" {
			return bad("server", fmt.Sprintf("%q: want unix:///absolute/path/to.sock", c.Server), "")
		}
		if c.Issuer != "" || c.Fingerprint != "" || c.IssuerFingerprint != "" || c.ClientID != "" || c.Audience != "" || len(c.Scopes) > 0 {
			return bad("server", "a unix socket context takes no issuer, client, audience, scopes or fingerprints", "the daemon authenticates socket peers by their credentials")
		}
		return c, nil
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return bad("server", fmt.Sprintf("%q uses plain http", c.Server), "tokens would travel unencrypted: use https (plain http only on loopback)")
		}
	default:
		return bad("server", fmt.Sprintf("%q: want https:// or unix://", c.Server), "")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return bad("server", fmt.Sprintf("%q: want scheme://host[:port][/path] without credentials, query or fragment", c.Server), "")
	}
	if c.Issuer != "" {
		iu, err := url.Parse(c.Issuer)
		switch {
		case err != nil || iu.Host == "" || iu.User != nil || iu.RawQuery != "" || iu.Fragment != "":
			return bad("issuer", fmt.Sprintf("%q is not an issuer URL", c.Issuer), "e.g. https://idp.example.com/realms/acme")
		case iu.Scheme == "https":
		case iu.Scheme == "http" && isLoopback(iu.Hostname()):
		default:
			return bad("issuer", fmt.Sprintf("%q: want https://", c.Issuer), "plain http only for a development issuer on loopback")
		}
	}
	if c.ClientID != "" && !clientRE.MatchString(c.ClientID) {
		return bad("clientID", fmt.Sprintf("%q is not a client id", c.ClientID), "printable ASCII without spaces")
	}
	if (c.ClientID != "" || c.Audience != "" || len(c.Scopes) > 0 || c.IssuerFingerprint != "") && c.Issuer == "" {
		return bad("issuer", "missing, but login settings are set", "set the issuer the CLI logs in with")
	}
	for _, s := range c.Scopes {
		if !scopeRE.MatchString(s) {
			return bad("scopes", fmt.Sprintf("%q is not a scope", s), "scopes have no spaces, quotes or backslashes")
		}
	}
	if c.Fingerprint != "" {
		f, err := tlspin.Parse(c.Fingerprint)
		if err != nil {
			return bad("fingerprint", err.Error(), "")
		}
		if u.Scheme != "https" {
			return bad("fingerprint", "set on a server without https", "only TLS certificates can be pinned")
		}
		c.Fingerprint = f.String()
	}
	if c.IssuerFingerprint != "" {
		f, err := tlspin.Parse(c.IssuerFingerprint)
		if err != nil {
			return bad("issuerFingerprint", err.Error(), "")
		}
		if !strings.HasPrefix(c.Issuer, "https://") {
			return bad("issuerFingerprint", "set on an issuer without https", "only TLS certificates can be pinned")
		}
		c.IssuerFingerprint = f.String()
	}
	c.Scopes = slices.Clone(c.Scopes)
	return c, nil
}

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// ErrNoContext is returned (wrapped) for a context name that does not
// exist.
var ErrNoContext = errors.New("no such context")
