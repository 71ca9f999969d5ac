package daemon

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// Config is stoad's process configuration: addresses, paths and
// directories. Every field has a flag and an environment variable.
// Runtime policy (limits, XDP, …) lives in the Gateway spec instead.
type Config struct {
	StateDir    string
	Socket      string
	SocketGroup string
	Listen      string
	OpsListen   string
	MCPSocket   string
	SpecsDir    string
	SpecsPoll   time.Duration
	LogLevel    string
	LogFormat   string
	Pprof       bool
	ShowVersion bool
	// Source makes stoad serve signed bundles (source_config.go).
	Source SourceConfig

	// Store is the state store: empty for the embedded bbolt file in
	// StateDir, or a postgres:// URL (a control plane of several
	// replicas on one database).
	Store string

	// Role is RoleStandalone (the single-machine gateway) or
	// RoleControlPlane. The fields below configure a control plane.
	Role string
	// APIListen is the control plane's HTTPS address for the LocalAPI.
	APIListen string
	// TLSCert and TLSKey are the API listener's certificate; without
	// them a self-signed one is made (and kept in StateDir).
	TLSCert, TLSKey string
	// OIDCIssuers are the issuers whose access tokens are accepted, for
	// OIDCAudience.
	OIDCIssuers  []string
	OIDCAudience string
	// AdminGroups and AdminSubjects are cluster admins from the command
	// line (the bootstrap: no Gateway names any before the first apply).
	AdminGroups, AdminSubjects []string
	// DevIssuer embeds a development OIDC issuer on the API listener.
	DevIssuer bool
	// BundleSigningKey is the cosign private key that signs the bundles
	// data planes pull (its password in $COSIGN_PASSWORD); without it
	// the control plane serves no data planes.
	BundleSigningKey string
}

// The roles of a stoad.
const (
	RoleStandalone   = "standalone"
	RoleControlPlane = "control-plane"
	// RoleDataPlane is reported, not chosen: --join or --bundle make one.
	RoleDataPlane = "data-plane"
)

// ControlPlane reports whether c runs a control plane.
func (c *Config) ControlPlane() bool { return c.Role == RoleControlPlane }

type flagDef struct {
	name, env, usage string
	str              *string
	dur              *time.Duration
	boolean          *bool
	list             *[]string // repeatable; the environment variable separates values with commas
	def              string
	// controlPlane marks flags that only a control plane takes.
	controlPlane bool
}

// listFlag is a repeatable string flag.
type listFlag struct {
	values *[]string
	set    bool // a flag replaces the environment's values
}

func (l *listFlag) String() string {
	if l.values == nil {
		return ""
	}
	return strings.Join(*l.values, ",")
}

func (l *listFlag) Set(v string) error {
	if !l.set {
		*l.values, l.set = nil, true
	}
	*l.values = append(*l.values, v)
	return nil
}

// splitList splits an environment variable's comma-separated values.
func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (c *Config) defs() []flagDef {
	return []flagDef{
		{name: "state-dir", env: "STOAD_STATE_DIR", str: &c.StateDir, def: api.DefaultStateDir(), usage: "directory of the embedded state database"},
		{name: "socket", env: "STOAD_SOCKET", str: &c.Socket, def: api.DefaultSocket(), usage: "LocalAPI unix socket (mode 0600, or 0660 with --socket-group)"},
		{name: "socket-group", env: "STOAD_SOCKET_GROUP", str: &c.SocketGroup, usage: "group allowed to use the LocalAPI socket (makes it 0660)"},
		{name: "listen", env: "STOAD_LISTEN", str: &c.Listen, def: "127.0.0.1:8080", usage: "proxy and MCP (Streamable HTTP) address"},
		{name: "ops-listen", env: "STOAD_OPS_LISTEN", str: &c.OpsListen, def: "127.0.0.1:9090", usage: "health and metrics address (/healthz, /readyz, /metrics); empty disables"},
		{name: "mcp-socket", env: "STOAD_MCP_SOCKET", str: &c.MCPSocket, def: api.DefaultMCPSocket(), usage: "MCP unix socket for local agents; empty disables"},
		{name: "specs", env: "STOAD_SPECS", str: &c.SpecsDir, usage: "apply this directory at start and whenever it changes (GitOps mode; SIGHUP re-reads it)"},
		{name: "specs-poll", env: "STOAD_SPECS_POLL", dur: &c.SpecsPoll, def: "2s", usage: "how often --specs is checked for changes"},
		{name: "log-level", env: "STOAD_LOG_LEVEL", str: &c.LogLevel, def: "info", usage: "debug, info, warn or error"},
		{name: "log-format", env: "STOAD_LOG_FORMAT", str: &c.LogFormat, def: "text", usage: "text or json"},
		{name: "pprof", env: "STOAD_PPROF", boolean: &c.Pprof, usage: "serve Go profiles on the ops listener under /debug/pprof/"},
		{name: "store", env: "STOAD_STORE", str: &c.Store, usage: "state store: empty for the embedded database in --state-dir, or postgres://user:password@host:5432/db (PostgreSQL, shared by control plane replicas)"},
		{name: "role", env: "STOAD_ROLE", str: &c.Role, def: RoleStandalone, usage: "standalone (the gateway) or control-plane (the API over HTTPS with OIDC tokens and roles; serves no traffic)"},
		{name: "api-listen", env: "STOAD_API_LISTEN", str: &c.APIListen, def: "127.0.0.1:8443", controlPlane: true, usage: "control plane: HTTPS address of the API"},
		{name: "tls-cert", env: "STOAD_TLS_CERT", str: &c.TLSCert, controlPlane: true, usage: "control plane: PEM certificate (chain) of the API listener; without it a self-signed one is made and its fingerprint logged"},
		{name: "tls-key", env: "STOAD_TLS_KEY", str: &c.TLSKey, controlPlane: true, usage: "control plane: PEM private key of --tls-cert"},
		{name: "oidc-issuer", env: "STOAD_OIDC_ISSUER", list: &c.OIDCIssuers, controlPlane: true, usage: "control plane: issuer URL whose access tokens are accepted (repeatable)"},
		{name: "oidc-audience", env: "STOAD_OIDC_AUDIENCE", str: &c.OIDCAudience, controlPlane: true, usage: "control plane: audience the tokens must name (the control plane's identifier at the issuer)"},
		{name: "admin-group", env: "STOAD_ADMIN_GROUP", list: &c.AdminGroups, controlPlane: true, usage: "control plane: a group whose members are cluster admins (repeatable; ISSUER#GROUP pins an issuer)"},
		{name: "admin-subject", env: "STOAD_ADMIN_SUBJECT", list: &c.AdminSubjects, controlPlane: true, usage: "control plane: a token subject that is cluster admin (repeatable; ISSUER#SUB pins an issuer)"},
		{name: "dev-issuer", env: "STOAD_DEV_ISSUER", boolean: &c.DevIssuer, controlPlane: true, usage: "control plane: embed a DEVELOPMENT OIDC issuer under /dev-idp on the API listener (loopback only; never in production)"},
		{name: "bundle-signing-key", env: "STOAD_BUNDLE_SIGNING_KEY", str: &c.BundleSigningKey, controlPlane: true, usage: "control plane: cosign private key that signs the bundles data planes pull (password in $COSIGN_PASSWORD); enables the /v1/fleet/ routes"},
		{name: "version", boolean: &c.ShowVersion, usage: "print the version and exit"},
	}
}

// ParseFlags reads args and the environment into a Config. Flags win over
// environment variables, which win over defaults.
func ParseFlags(args []string, getenv func(string) string, stderr io.Writer) (*Config, error) {
	c := &Config{}
	fs := flag.NewFlagSet("stoad", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defs := c.allDefs()
	for _, d := range defs {
		def := d.def
		if d.env != "" {
			if v := getenv(d.env); v != "" {
				def = v
			}
		}
		switch {
		case d.str != nil:
			fs.StringVar(d.str, d.name, def, d.usage)
		case d.dur != nil:
			dv, err := time.ParseDuration(def)
			if err != nil {
				return nil, fmt.Errorf("%s=%q: %w", d.env, def, err)
			}
			fs.DurationVar(d.dur, d.name, dv, d.usage)
		case d.boolean != nil:
			fs.BoolVar(d.boolean, d.name, def == "1" || def == "true", d.usage)
		case d.list != nil:
			*d.list = splitList(def)
			fs.Var(&listFlag{values: d.list}, d.name, d.usage)
		}
	}
	fs.Usage = func() { usage(stderr, defs) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (stoad takes only flags; see stoad --help)", fs.Arg(0))
	}
	// Enum flags fail loudly: a typo must not start the daemon with a
	// setting nobody asked for (--log-level loud would otherwise run at info).
	for _, e := range []struct {
		flag, env string
		value     *string
		values    []string
	}{
		{"--log-level", "STOAD_LOG_LEVEL", &c.LogLevel, []string{"debug", "info", "warn", "error"}},
		{"--log-format", "STOAD_LOG_FORMAT", &c.LogFormat, []string{"text", "json"}},
		{"--role", "STOAD_ROLE", &c.Role, []string{RoleStandalone, RoleControlPlane}},
	} {
		*e.value = strings.ToLower(*e.value)
		if !slices.Contains(e.values, *e.value) {
			return nil, fmt.Errorf("%s %q (or %s): want %s%s", e.flag, *e.value, e.env, strings.Join(e.values, ", "), closest(*e.value, e.values))
		}
	}
	if err := c.checkSource(fs, getenv); err != nil {
		return nil, err
	}
	if err := c.checkRole(defs, getenv, fs); err != nil {
		return nil, err
	}
	return c, nil
}

// checkRole refuses control plane flags without the role, and a control
// plane that could accept no token or has half a certificate.
func (c *Config) checkRole(defs []flagDef, getenv func(string) string, fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, d := range defs {
		if d.env != "" && getenv(d.env) != "" {
			given[d.name] = true
		}
	}
	if !c.ControlPlane() {
		for _, d := range defs {
			if d.controlPlane && given[d.name] {
				return fmt.Errorf("--%s configures a control plane: add --role control-plane", d.name)
			}
		}
		return nil
	}
	if s := c.Store; s != "" && !strings.HasPrefix(s, "postgres://") && !strings.HasPrefix(s, "postgresql://") {
		return fmt.Errorf("--store: want a postgres:// URL, or nothing for the embedded database in --state-dir")
	}
	switch {
	case len(c.OIDCIssuers) == 0 && !c.DevIssuer:
		return fmt.Errorf("a control plane needs an identity provider: --oidc-issuer URL --oidc-audience AUD (or --dev-issuer to try it on this machine)")
	case len(c.OIDCIssuers) > 0 && c.OIDCAudience == "":
		return fmt.Errorf("--oidc-issuer needs --oidc-audience: the audience the issuer puts in access tokens for this control plane")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return fmt.Errorf("--tls-cert and --tls-key go together (without both, a self-signed certificate is made)")
	}
	for i, iss := range c.OIDCIssuers {
		if slices.Contains(c.OIDCIssuers[:i], iss) {
			return fmt.Errorf("--oidc-issuer %s is given twice", iss)
		}
	}
	return nil
}

// closest is `; did you mean "x"?` when s is a prefix of one value or one
// edit away from it.
func closest(s string, values []string) string {
	for _, v := range values {
		if (len(s) >= 2 && strings.HasPrefix(v, s)) || oneEdit(s, v) {
			return fmt.Sprintf("; did you mean %q?", v)
		}
	}
	return ""
}

// oneEdit reports whether a and b differ by one insertion, deletion,
// substitution or swap of neighbours.
func oneEdit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		if i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:] {
			return true // swapped neighbours
		}
		return i == len(a) || a[i+1:] == b[i+1:]
	}
	return a[i:] == b[i+1:]
}

func usage(w io.Writer, defs []flagDef) {
	fmt.Fprint(w, `stoad — the stoa gateway daemon.

Serves applied specs as an HTTP reverse proxy and as MCP tools, with embedded
state. Drive it with the stoa CLI over the LocalAPI socket.

Usage:
  stoad [flags]

Flags (each can also be set by the environment variable shown):
`)
	for _, d := range defs {
		name := "--" + d.name
		switch {
		case d.str != nil:
			name += " string"
		case d.dur != nil:
			name += " duration"
		case d.list != nil:
			name += " value"
		}
		fmt.Fprintf(w, "  %-26s %s", name, d.usage)
		var extra []string
		if d.env != "" {
			extra = append(extra, "env "+d.env)
		}
		if d.def != "" {
			extra = append(extra, "default "+d.def)
		}
		if len(extra) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(extra, ", "))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, `
Data plane (docs/fleet.md): stoad --join https://cp:8443 --join-token T --bundle-key cosign.pub
Signed bundle file:         stoad --bundle bundle.json --bundle-key cosign.pub

Control plane (docs/fleet.md): stoad --role control-plane --store postgres://…
  --oidc-issuer https://idp.example.com --oidc-audience stoa --admin-group platform
or, to try it on this machine: stoad --role control-plane --dev-issuer

Signals: SIGTERM/SIGINT shut down gracefully; SIGHUP re-reads --specs or --bundle.
`)
}
