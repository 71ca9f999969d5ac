// Package federation puts existing MCP servers ("upstreams") behind stoa's
// MCP endpoint: a Tool with protocol: mcp names an upstream reached over
// Streamable HTTP (either protocol era) or a stdio command that stoad starts
// and supervises. Its tools (and, when enabled, resources) appear in the
// tenant's catalog as {tenant}__{tool}__{name}, filtered and renamed by the
// Tool's configuration; calls go upstream with stoad's own credential, never
// the caller's.
//
// An Upstream owns one upstream: its session (initialized once, re-created
// when the upstream forgets it), the tool and resource lists (refreshed on
// notifications/*/list_changed), a health state that makes calls fail fast
// while the upstream is down, and for stdio the child process (restarted with
// exponential backoff and jitter, limited, killed with its process group on
// stop). A Manager holds the upstreams of a configuration revision and
// reconciles them against the next one, keeping sessions and processes whose
// configuration did not change. See docs/federation.md.
package federation

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Transport says how stoad reaches an upstream.
type Transport string

const (
	// TransportHTTP is the Streamable HTTP transport (2025-03-26 and later,
	// including the stateless 2026-07-28 revision).
	TransportHTTP Transport = "streamable-http"
	// TransportStdio runs a command and speaks newline-delimited JSON-RPC
	// over its stdin and stdout.
	TransportStdio Transport = "stdio"
)

// Protocol versions this client speaks.
const (
	VersionModern = "2026-07-28"
	VersionLegacy = "2025-11-25"
)

// legacyVersions are the initialize-era versions accepted from an upstream,
// newest first.
var legacyVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26"}

// Defaults.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	// DefaultStartTimeout is a stdio upstream's default ConnectTimeout:
	// starting a runtime (node, python, a JVM) and initializing takes longer
	// than a TCP connect.
	DefaultStartTimeout = 30 * time.Second
)

// Config is one upstream: the mcp section of a Tool with protocol: mcp,
// already decoded. Two equal Configs (Equal) describe the same upstream, so
// a Manager keeps its session or process across reloads.
type Config struct {
	// Tenant and Tool name the Tool object; they prefix every exposed name.
	Tenant string
	Tool   string
	// Transport is TransportHTTP or TransportStdio.
	Transport Transport

	// URL of the MCP endpoint (streamable-http), http or https.
	URL string
	// ProtocolVersion pins the era: VersionModern, VersionLegacy (or another
	// legacy version), or "" to try 2026-07-28 (server/discover) first and
	// fall back to initialize, as the official SDK clients do.
	ProtocolVersion string
	// Auth is the credential stoad sends upstream (streamable-http only). The
	// caller's own credential is never forwarded.
	Auth *Auth

	// Command is the program and its arguments (stdio). A program without a
	// '/' is looked up in the child's PATH.
	Command []string
	// Dir is the child's working directory; default stoad's.
	Dir string
	// Env sets variables of the child, literally or from a secretRef.
	Env []EnvVar
	// InheritEnv names variables of stoad passed to the child as they are,
	// besides PATH, HOME, LANG, LC_ALL, TZ and TMPDIR. Nothing else of stoad's
	// environment (which holds secretRef values) reaches the child.
	InheritEnv []string
	// Limits bound the child's resources.
	Limits Limits

	// Tools selects and renames the upstream's tools.
	Tools ToolFilter
	// Resources, when Expose is set, lists the upstream's resources under
	// ResourcePrefix(Tenant, Tool), filtered by URI.
	Resources ResourceFilter

	// Timeout bounds one call (tools/call, resources/read, a list page);
	// default DefaultTimeout.
	Timeout time.Duration
	// ConnectTimeout bounds a TCP/TLS connect and the whole handshake
	// (initialize or server/discover; for stdio the process start too);
	// default DefaultConnectTimeout, DefaultStartTimeout for stdio.
	ConnectTimeout time.Duration
}

// Auth is the credential sent to an HTTP upstream.
type Auth struct {
	// Header to set; default "Authorization".
	Header string
	// Prefix before the secret; default "Bearer " for Authorization, else "".
	Prefix string
	// SecretRef holds the credential; it is read when a session is
	// (re)initialized, so a rotated file is picked up on the next session.
	SecretRef spec.SecretRef
}

// EnvVar is one variable of a stdio child: Value, or the secret SecretRef
// points at.
type EnvVar struct {
	Name      string
	Value     string
	SecretRef *spec.SecretRef
}

// Limits bound a stdio child. Zero means no limit. They are applied with
// prlimit(2) right after the child starts (Linux; elsewhere a Config with
// limits is refused).
type Limits struct {
	// MemoryBytes is RLIMIT_AS, the address-space size. Runtimes that reserve
	// large virtual ranges (V8, the JVM) need generous values.
	MemoryBytes uint64
	// CPUSeconds is RLIMIT_CPU, total CPU time; the kernel sends SIGXCPU and
	// then SIGKILL, and the supervisor restarts the child.
	CPUSeconds uint64
	// OpenFiles is RLIMIT_NOFILE.
	OpenFiles uint64
	// Processes is RLIMIT_NPROC (counted per user, not per child: useful
	// only when children run as their own user).
	Processes uint64
}

// ToolFilter selects and renames upstream tools.
type ToolFilter struct {
	Filter
	// Rename maps an upstream tool name to the last segment of its exposed
	// name: {tenant}__{tool}__{new}. Renames apply after filtering (the
	// filter sees upstream names).
	Rename map[string]string
}

// ResourceFilter selects upstream resources by URI.
type ResourceFilter struct {
	// Expose lists and serves the upstream's resources; off by default (a
	// filesystem or database server's resources are often more than an
	// operator means to publish).
	Expose bool
	Filter
}

// Key identifies an upstream: tenant/tool.
func (c *Config) Key() string { return c.Tenant + "/" + c.Tool }

func (c *Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Config) connectTimeout() time.Duration {
	if c.ConnectTimeout > 0 {
		return c.ConnectTimeout
	}
	if c.Transport == TransportStdio {
		return DefaultStartTimeout
	}
	return DefaultConnectTimeout
}

// Problem is one configuration error, at a path inside the Tool's spec
// (e.g. "spec.mcp.tools.rename.search"), with a hint saying how to fix it.
type Problem struct {
	Path    string
	Message string
	Hint    string
}

func (p Problem) String() string {
	s := p.Path + ": " + p.Message
	if p.Hint != "" {
		s += " (" + p.Hint + ")"
	}
	return s
}

// ConfigError lists every problem of a Config.
type ConfigError struct {
	Key      string
	Problems []Problem
}

func (e *ConfigError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "validate mcp upstream " + e.Key + ": " + strings.Join(parts, "; ")
}

// Validate checks c. The returned error is a *ConfigError listing every
// problem, with paths relative to the Tool object ("spec.mcp...."), so the
// spec layer can point at the offending line.
func (c *Config) Validate() error {
	var ps []Problem
	add := func(path, msg, hint string) { ps = append(ps, Problem{"spec.mcp" + path, msg, hint}) }
	prefix := Prefix(c.Tenant, c.Tool)
	if len(prefix) >= spec.MaxMCPNameLen-1 {
		add("", fmt.Sprintf("tenant and tool names leave no room for tool names (%q is %d of %d characters)", prefix, len(prefix), spec.MaxMCPNameLen),
			"use a shorter Tool name")
	}
	switch c.Transport {
	case TransportHTTP:
		u, err := url.Parse(c.URL)
		switch {
		case c.URL == "":
			add(".url", "missing url", "for example url: https://mcp.example.com/mcp")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			add(".url", fmt.Sprintf("url %q is not an absolute http(s) URL", c.URL), "for example url: https://mcp.example.com/mcp")
		case u.User != nil:
			add(".url", "credentials must not be part of the URL", "use upstreamAuth with a secretRef")
		case u.Fragment != "":
			add(".url", "url must not have a fragment", "remove the #... part")
		}
		if len(c.Command) > 0 || c.Dir != "" || len(c.Env) > 0 || len(c.InheritEnv) > 0 || c.Limits != (Limits{}) {
			add(".command", "command, dir, env, inheritEnv and limits apply to transport: stdio only", "remove them or set transport: stdio")
		}
	case TransportStdio:
		if len(c.Command) == 0 || c.Command[0] == "" {
			add(".command", "missing command", `for example command: ["npx", "-y", "@modelcontextprotocol/server-everything"]`)
		}
		if c.URL != "" {
			add(".url", "url applies to transport: streamable-http only", "remove it or set transport: streamable-http")
		}
		if c.Auth != nil {
			add(".upstreamAuth", "upstreamAuth applies to transport: streamable-http only",
				"pass a stdio server its credential through env with a secretRef")
		}
		if c.ProtocolVersion == VersionModern {
			add(".protocolVersion", "stdio upstreams are spoken to with initialize (2025-11-25)", "remove protocolVersion")
		}
		seen := map[string]bool{}
		for i, e := range c.Env {
			p := fmt.Sprintf(".env[%d]", i)
			if e.Name == "" || strings.ContainsAny(e.Name, "=\x00") {
				add(p, fmt.Sprintf("invalid variable name %q", e.Name), "use a name without '=' such as API_TOKEN")
			}
			if seen[e.Name] {
				add(p, fmt.Sprintf("variable %s is set twice", e.Name), "keep one")
			}
			seen[e.Name] = true
			if e.SecretRef != nil && e.Value != "" {
				add(p, "set value or secretRef, not both", "keep one")
			}
			if strings.ContainsRune(e.Value, 0) {
				add(p, "value contains a NUL byte", "remove it")
			}
		}
		if limitsUnsupported && c.Limits != (Limits{}) {
			add(".limits", "resource limits are applied on Linux only", "remove limits on this platform")
		}
	case "":
		add(".transport", "missing transport", "set transport: streamable-http or transport: stdio")
	default:
		add(".transport", fmt.Sprintf("unknown transport %q", c.Transport), "use streamable-http or stdio")
	}
	switch v := c.ProtocolVersion; {
	case v == "" || v == VersionModern:
	case contains(legacyVersions, v):
	default:
		add(".protocolVersion", fmt.Sprintf("unsupported protocol version %q", v),
			"use "+VersionModern+", one of "+strings.Join(legacyVersions, ", ")+", or leave it unset to negotiate")
	}
	if c.Auth != nil {
		if h := c.Auth.Header; h != "" && !isToken(h) {
			add(".upstreamAuth.header", fmt.Sprintf("%q is not a header name", h), "for example header: X-Api-Key")
		} else if reservedHeader(h) {
			add(".upstreamAuth.header", fmt.Sprintf("header %s is set by the transport and cannot carry a credential", h), "for example header: X-Api-Key")
		}
		if strings.ContainsAny(c.Auth.Prefix, "\r\n\x00") {
			add(".upstreamAuth.prefix", "prefix contains a control character", "remove it")
		}
		if (c.Auth.SecretRef.Env == "") == (c.Auth.SecretRef.File == "") {
			add(".upstreamAuth.secretRef", "set exactly one of env and file", "for example secretRef: {env: UPSTREAM_TOKEN}")
		}
	}
	for i, p := range c.Tools.Allow {
		if p == "" {
			add(fmt.Sprintf(".tools.allow[%d]", i), "empty pattern", `use "*" for every tool`)
		}
	}
	for i, p := range c.Tools.Deny {
		if p == "" {
			add(fmt.Sprintf(".tools.deny[%d]", i), "empty pattern", "remove it")
		}
	}
	olds := make([]string, 0, len(c.Tools.Rename))
	for old := range c.Tools.Rename {
		olds = append(olds, old)
	}
	sort.Strings(olds)
	targets := map[string]string{}
	for _, old := range olds {
		nw := c.Tools.Rename[old]
		path := ".tools.rename." + old
		full := prefix + nw
		switch {
		case nw == "":
			add(path, "empty rename", "give the tool a name of letters, digits, '_' and '-'")
		case !validName(full):
			add(path, fmt.Sprintf("%q would be exposed as %q, which is not a valid tool name (at most %d characters of [A-Za-z0-9_-])", nw, full, spec.MaxMCPNameLen),
				fmt.Sprintf("use at most %d such characters", max(spec.MaxMCPNameLen-len(prefix), 0)))
		case targets[nw] != "":
			add(path, fmt.Sprintf("%q and %q are both renamed to %q", targets[nw], old, nw), "give each a distinct name")
		case !c.Tools.Admits(old):
			add(path, fmt.Sprintf("tool %q is renamed but hidden by tools.allow/deny", old), "remove the rename or expose the tool")
		}
		if targets[nw] == "" {
			targets[nw] = old
		}
	}
	if c.Timeout < 0 || c.ConnectTimeout < 0 {
		add(".timeout", "negative timeout", "use a positive duration such as 30s")
	}
	if len(ps) == 0 {
		return nil
	}
	return &ConfigError{Key: c.Key(), Problems: ps}
}

// Equal reports whether a and b describe the same upstream (every field,
// including secret references; the secrets' values are compared by the
// Manager).
func (c *Config) Equal(o *Config) bool {
	if c.Tenant != o.Tenant || c.Tool != o.Tool || c.Transport != o.Transport || c.URL != o.URL ||
		c.ProtocolVersion != o.ProtocolVersion || c.Dir != o.Dir || c.Limits != o.Limits ||
		c.Timeout != o.Timeout || c.ConnectTimeout != o.ConnectTimeout ||
		!equalStrings(c.Command, o.Command) || !equalStrings(c.InheritEnv, o.InheritEnv) ||
		!equalFilter(&c.Tools.Filter, &o.Tools.Filter) || c.Resources.Expose != o.Resources.Expose ||
		!equalFilter(&c.Resources.Filter, &o.Resources.Filter) || len(c.Tools.Rename) != len(o.Tools.Rename) ||
		len(c.Env) != len(o.Env) || (c.Auth == nil) != (o.Auth == nil) {
		return false
	}
	if c.Auth != nil && *c.Auth != *o.Auth {
		return false
	}
	for k, v := range c.Tools.Rename {
		if w, ok := o.Tools.Rename[k]; !ok || w != v {
			return false
		}
	}
	for i := range c.Env {
		a, b := c.Env[i], o.Env[i]
		if a.Name != b.Name || a.Value != b.Value || (a.SecretRef == nil) != (b.SecretRef == nil) ||
			(a.SecretRef != nil && *a.SecretRef != *b.SecretRef) {
			return false
		}
	}
	return true
}

// sameSession reports whether c and o differ only in what an Upstream reads
// per call or per list (filters, renames, timeout), so the session or
// process can be kept while the exposed lists are rebuilt.
func (c *Config) sameSession(o *Config) bool {
	x, y := *c, *o
	x.Tools, y.Tools = ToolFilter{}, ToolFilter{}
	// Resources.Expose stays: it decides which notifications a session
	// subscribes to.
	x.Resources.Filter, y.Resources.Filter = Filter{}, Filter{}
	x.Timeout, y.Timeout = 0, 0
	return x.Equal(&y)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalFilter(a, b *Filter) bool {
	return equalStrings(a.Allow, b.Allow) && equalStrings(a.Deny, b.Deny)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// reservedHeader reports whether h frames the HTTP request or carries MCP
// transport state, so a credential there would break or spoof the exchange.
func reservedHeader(h string) bool {
	switch l := strings.ToLower(h); {
	case strings.HasPrefix(l, "mcp-"), l == "host", l == "content-length", l == "content-type", l == "transfer-encoding",
		l == "connection", l == "accept", l == "last-event-id", l == "te", l == "upgrade", l == "trailer", l == "expect":
		return true
	}
	return false
}

// isToken reports whether s is an HTTP header name (RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// errNotStarted is returned by calls before Start.
var errNotStarted = errors.New("upstream not started")
