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
}

type flagDef struct {
	name, env, usage string
	str              *string
	dur              *time.Duration
	boolean          *bool
	def              string
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
		{name: "version", boolean: &c.ShowVersion, usage: "print the version and exit"},
	}
}

// ParseFlags reads args and the environment into a Config. Flags win over
// environment variables, which win over defaults.
func ParseFlags(args []string, getenv func(string) string, stderr io.Writer) (*Config, error) {
	c := &Config{}
	fs := flag.NewFlagSet("stoad", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defs := c.defs()
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
	} {
		*e.value = strings.ToLower(*e.value)
		if !slices.Contains(e.values, *e.value) {
			return nil, fmt.Errorf("%s %q (or %s): want %s%s", e.flag, *e.value, e.env, strings.Join(e.values, ", "), closest(*e.value, e.values))
		}
	}
	return c, nil
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
Signals: SIGTERM/SIGINT shut down gracefully; SIGHUP re-reads --specs.
`)
}
