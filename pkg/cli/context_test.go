package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
	"github.com/stoa-gateway/stoa/pkg/cliconfig"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/login"
)

// fileTokens keeps logins in token files only, never in the keyring of
// the machine running the tests.
func fileTokens(dir string) *login.Store { return &login.Store{Dir: dir} }

const devPin = "SHA256:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

// sampleConfig has a current remote context, a pinned one and another
// local daemon's socket.
const sampleConfig = `current-context: prod
contexts:
  - name: prod
    server: https://cp.example.com:7443
    issuer: https://idp.example.com/realms/acme
  - name: dev
    server: https://127.0.0.1:7443
    issuer: https://127.0.0.1:8443
    fingerprint: ` + devPin + `
  - name: other
    server: unix:///run/stoa/other.sock
`

// withConfig gives a case its own configuration directory
// ($XDG_CONFIG_HOME, shown as $CFG) holding config when it is not empty,
// and tokens for the named contexts. $SOCK is the local default socket.
func withConfig(config string, tokens ...string) func(t *testing.T) map[string]string {
	return func(t *testing.T) map[string]string {
		dir := t.TempDir()
		t.Setenv("XDG_CONFIG_HOME", dir)
		if config != "" {
			writeFile(t, filepath.Join(dir, "stoa", "config.yaml"), config)
		}
		st := fileTokens(filepath.Join(dir, "stoa"))
		for _, name := range tokens {
			if _, err := st.Save(name, &login.Token{AccessToken: "tok-" + name, Issuer: "https://idp.example.com/realms/acme",
				ClientID: login.DefaultClientID, TokenURL: "https://idp.example.com/realms/acme/token", Flow: login.FlowBrowser}); err != nil {
				t.Fatal(err)
			}
		}
		return map[string]string{"$CFG": dir, "$SOCK": client.ResolveSocket("")}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// savedConfig reads the configuration a case's command left.
func savedConfig(t *testing.T) *cliconfig.Config {
	t.Helper()
	cfg, err := cliconfig.Load(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "stoa", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func tokenFile(name string) string {
	return filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "stoa", "tokens", name+".json")
}

func contextAddCases() []cmdCase {
	return []cmdCase{
		{name: "adds and uses", vars: withConfig(sampleConfig),
			args:   []string{"staging", "--server", "https://cp2.example.com", "--issuer", "https://idp.example.com/realms/acme", "--client-id", "stoa-cli", "--scope", "openid", "--scope", "groups", "--use"},
			errOut: []string{`added context "staging" (https://cp2.example.com) in $CFG/stoa/config.yaml`, `switched to context "staging"`, "log in with: stoa login --context staging"},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				cfg := savedConfig(t)
				x, err := cfg.Get("staging")
				if err != nil || cfg.Current() != "staging" || x.Issuer != "https://idp.example.com/realms/acme" || !slices.Equal(x.Scopes, []string{"openid", "groups"}) {
					t.Errorf("saved: %+v current %s err %v", x, cfg.Current(), err)
				}
				if names := cfg.Names(); !slices.Equal(names, []string{"local", "prod", "dev", "other", "staging"}) {
					t.Errorf("contexts %v: the others must stay, in order", names)
				}
				fi, err := os.Stat(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "stoa", "config.yaml"))
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("config.yaml: %v, mode %v; want 0600", err, fi.Mode())
				}
			}},
		{name: "first context, pinned", vars: withConfig(""),
			args:   []string{"dev", "--server", "https://127.0.0.1:7443", "--fingerprint", strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(devPin, "SHA256:"), ":", ""))},
			errOut: []string{`added context "dev"`, `note: context "dev" has no issuer`},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				cfg := savedConfig(t)
				if x, err := cfg.Get("dev"); err != nil || x.Fingerprint != devPin || cfg.Current() != "local" {
					t.Errorf("saved %+v (%v), current %s: want the pin normalised, local still current", x, err, cfg.Current())
				}
			}},
		{name: "another local daemon", vars: withConfig(""), args: []string{"lab", "--server", "unix:///run/stoa/lab.sock"},
			errOut: []string{`added context "lab" (unix:///run/stoa/lab.sock)`}},
		{name: "replaces with --overwrite", vars: withConfig(sampleConfig, "prod"),
			args:   []string{"prod", "--server", "https://cp.example.com:7443", "--issuer", "https://idp.example.com/realms/acme", "--fingerprint", devPin, "--overwrite"},
			errOut: []string{`replaced context "prod"`},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				if x, _ := savedConfig(t).Get("prod"); x.Fingerprint != devPin {
					t.Errorf("not replaced: %+v", x)
				}
				if _, err := os.Stat(tokenFile("prod")); err != nil {
					t.Errorf("the login must survive a replacement with the same identity: %v", err)
				}
			}},
		{name: "warns when the environment overrides", vars: withConfig(sampleConfig), env: map[string]string{"STOA_CONTEXT": "dev"},
			args: []string{"qa", "--server", "https://qa.example.com", "--use"}, errOut: []string{"warning: $STOA_CONTEXT=dev overrides the current context in this shell"}},
		{name: "exists", vars: withConfig(sampleConfig), args: []string{"prod", "--server", "https://x.example.com"}, code: ExitFailure, flagErr: true,
			errOut: []string{`context "prod" already exists`, "hint: replace it with --overwrite"},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				if x, _ := savedConfig(t).Get("prod"); x.Server != "https://cp.example.com:7443" {
					t.Errorf("a refused add changed the file: %+v", x)
				}
			}},
		{name: "plain http", vars: withConfig(""), args: []string{"x", "--server", "http://cp.example.com"}, code: ExitFailure, flagErr: true,
			errOut: []string{"uses plain http", "tokens would travel unencrypted"}},
		{name: "local is built in", vars: withConfig(""), args: []string{"local", "--server", "https://cp.example.com"}, code: ExitFailure, flagErr: true,
			errOut: []string{`"local" is the built-in context`}},
		{name: "bad fingerprint", vars: withConfig(""), args: []string{"x", "--server", "https://cp.example.com", "--fingerprint", "AB:CD"}, code: ExitFailure, flagErr: true,
			errOut: []string{"want 64 hex digits"}},
		{name: "missing server", vars: withConfig(""), args: []string{"x"}, code: ExitFailure, flagErr: true, errOut: []string{"--server is required"}},
		{name: "missing name", vars: withConfig(""), args: []string{"--server", "https://cp.example.com"}, code: ExitFailure, flagErr: true,
			errOut: []string{"accepts 1 arg(s), received 0"}},
		{name: "-o refused", vars: withConfig(""), args: []string{"x", "--server", "https://cp.example.com", "-o", "json"}, code: ExitFailure, flagErr: true,
			errOut: []string{"prints no data"}},
		{name: "broken configuration", vars: withConfig("contexts:\n  - name: prod\n    sever: https://x\n"), args: []string{"x", "--server", "https://cp.example.com"},
			code: ExitFailure, errOut: []string{"$CFG/stoa/config.yaml:3:5", "sever"}},
	}
}

func contextUseCases() []cmdCase {
	return []cmdCase{
		{name: "switches", vars: withConfig(sampleConfig), args: []string{"dev"}, errOut: []string{`switched to context "dev" (https://127.0.0.1:7443)`},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				if c := savedConfig(t).Current(); c != "dev" {
					t.Errorf("current %s, want dev", c)
				}
			}},
		{name: "back to local", vars: withConfig(sampleConfig), args: []string{"local"}, errOut: []string{`switched to context "local" (the local stoad's socket)`},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				if cfg := savedConfig(t); cfg.CurrentContext != "" {
					t.Errorf("current-context %q, want none stored", cfg.CurrentContext)
				}
			}},
		{name: "warns about STOA_SOCKET", vars: withConfig(sampleConfig), env: map[string]string{"STOA_SOCKET": "/tmp/x.sock"}, args: []string{"dev"},
			errOut: []string{"warning: $STOA_SOCKET=/tmp/x.sock selects the local stoad in this shell"}},
		{name: "unknown", vars: withConfig(sampleConfig), args: []string{"prd"}, code: ExitFailure, flagErr: true,
			errOut: []string{`no such context "prd" (contexts: local, prod, dev, other`}},
		{name: "missing name", vars: withConfig(sampleConfig), code: ExitFailure, flagErr: true, errOut: []string{"accepts 1 arg(s), received 0"}},
		{name: "-o refused", vars: withConfig(sampleConfig), args: []string{"dev", "-o", "yaml"}, code: ExitFailure, flagErr: true, errOut: []string{"prints no data"}},
	}
}

func contextListCases() []cmdCase {
	return []cmdCase{
		{name: "lists", vars: withConfig(sampleConfig), formats: formats(shapeList),
			out: []string{"CURRENT  NAME   SERVER", "local  unix://$SOCK", "*        prod   https://cp.example.com:7443", "other  unix:///run/stoa/other.sock"}},
		{name: "wide", vars: withConfig(sampleConfig), args: []string{"-o", "wide"}, out: []string{"FINGERPRINT", devPin, "stoa-cli"}},
		{name: "json", vars: withConfig(sampleConfig), args: []string{"-o", "json"}, check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
			var l List[ContextItem]
			if err := json.Unmarshal([]byte(r.out), &l); err != nil || l.Kind != "ContextList" || len(l.Items) != 4 || l.Metadata["current"] != "prod" {
				t.Fatalf("%v\n%s", err, r.out)
			}
			for _, it := range l.Items {
				if it.Current != (it.Name == "prod") {
					t.Errorf("%s: current %v", it.Name, it.Current)
				}
			}
		}},
		{name: "--context marks its choice", vars: withConfig(sampleConfig), args: []string{"--context", "dev"}, out: []string{"*        dev"},
			errOut: []string{"(--context selects dev)"}},
		{name: "STOA_SOCKET selects local", vars: withConfig(sampleConfig), env: map[string]string{"STOA_SOCKET": "/tmp/x.sock"},
			out: []string{"*        local  unix:///tmp/x.sock"}, errOut: []string{"($STOA_SOCKET selects local)"}},
		{name: "no configuration", vars: withConfig(""), out: []string{"*        local"}, notOut: []string{"prod"}},
		{name: "broken configuration", vars: withConfig("current-context: nope\n"), code: ExitFailure,
			errOut: []string{`current-context "nope" names no context`, "stoa context use NAME"}},
		{name: "stray argument", vars: withConfig(""), args: []string{"prod"}, code: ExitFailure, flagErr: true},
	}
}

func contextCurrentCases() []cmdCase {
	return []cmdCase{
		{name: "current", vars: withConfig(sampleConfig), formats: formats(shapeObject), out: []string{"prod\n"}},
		{name: "wide", vars: withConfig(sampleConfig), args: []string{"-o", "wide"}, out: []string{"prod  https://cp.example.com:7443  current-context"}},
		{name: "from the environment", vars: withConfig(sampleConfig), env: map[string]string{"STOA_CONTEXT": "dev"}, args: []string{"-o", "json"},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				var c CurrentContext
				if err := json.Unmarshal([]byte(r.out), &c); err != nil || c.Name != "dev" || c.Source != "$STOA_CONTEXT" || c.Fingerprint != devPin || c.Endpoint != "https://127.0.0.1:7443" {
					t.Errorf("%+v %v", c, err)
				}
			}},
		{name: "--socket means local", vars: withConfig(sampleConfig), args: []string{"--socket", "/tmp/s.sock", "-o", "wide"}, out: []string{"local  /tmp/s.sock  --socket"}},
		{name: "another local daemon", vars: withConfig(sampleConfig), args: []string{"--context", "other", "-o", "wide"},
			out: []string{"other  /run/stoa/other.sock  --context"}},
		{name: "unknown name in the environment", vars: withConfig(sampleConfig), env: map[string]string{"STOA_CONTEXT": "nope"}, code: ExitFailure,
			errOut: []string{`select context (from $STOA_CONTEXT): no such context "nope"`}},
		{name: "--socket with a remote --context", vars: withConfig(sampleConfig), args: []string{"--context", "prod", "--socket", "/tmp/s.sock"},
			code: ExitFailure, flagErr: true, errOut: []string{"--socket names the local daemon, --context prod a control plane: drop one"}},
		{name: "stray argument", vars: withConfig(sampleConfig), args: []string{"prod"}, code: ExitFailure, flagErr: true},
	}
}

func contextDeleteCases() []cmdCase {
	return []cmdCase{
		{name: "the current one, with its login", vars: withConfig(sampleConfig, "prod"), args: []string{"prod"},
			errOut: []string{`deleted context "prod"`, "the current context is local now", "removed its token from $CFG/stoa/tokens/prod.json"},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				cfg := savedConfig(t)
				if _, err := cfg.Get("prod"); err == nil || cfg.Current() != "local" {
					t.Errorf("prod still there or still current (%s)", cfg.Current())
				}
				if _, err := os.Stat(tokenFile("prod")); !os.IsNotExist(err) {
					t.Errorf("token file left: %v", err)
				}
			}},
		{name: "another", vars: withConfig(sampleConfig, "prod"), args: []string{"dev"}, errOut: []string{`deleted context "dev"`},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				if strings.Contains(r.errOut, "current context is") || strings.Contains(r.errOut, "removed") {
					t.Errorf("stderr: %s", r.errOut)
				}
				if _, err := os.Stat(tokenFile("prod")); err != nil {
					t.Errorf("another context's token went too: %v", err)
				}
			}},
		{name: "local", vars: withConfig(sampleConfig), args: []string{"local"}, code: ExitFailure, flagErr: true, errOut: []string{"local is built in"}},
		{name: "unknown", vars: withConfig(sampleConfig), args: []string{"prd"}, code: ExitFailure, flagErr: true, errOut: []string{`no such context "prd"`}},
		{name: "missing name", vars: withConfig(sampleConfig), code: ExitFailure, flagErr: true},
	}
}

func logoutCases() []cmdCase {
	return []cmdCase{
		{name: "removes the token", vars: withConfig(sampleConfig, "prod"),
			errOut: []string{`logged out of context "prod": removed its token from $CFG/stoa/tokens/prod.json`},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				if _, err := os.Stat(tokenFile("prod")); !os.IsNotExist(err) {
					t.Errorf("token file left: %v", err)
				}
			}},
		{name: "not logged in", vars: withConfig(sampleConfig), args: []string{"--context", "dev"}, errOut: []string{`not logged in to context "dev": no token to remove`}},
		{name: "local", vars: withConfig(sampleConfig), args: []string{"--context", "local"}, code: ExitFailure, flagErr: true,
			errOut: []string{"context local talks to a local stoad", "nothing to log in to"}},
		{name: "stray argument", vars: withConfig(sampleConfig), args: []string{"prod"}, code: ExitFailure, flagErr: true},
	}
}

// TestNoHomeMeansLocal: a bare environment (no HOME, no XDG_CONFIG_HOME:
// a service, cron) has no configuration, and commands talk to the local
// stoad as they always did.
func TestNoHomeMeansLocal(t *testing.T) {
	t.Setenv("HOME", "") // os.UserHomeDir fails
	env := map[string]string{}
	f := &Factory{IO: &IOStreams{}, Getenv: func(k string) string { return env[k] }}
	tg, err := f.resolveTarget()
	if err != nil || tg.remote() || tg.ctx.Name != cliconfig.LocalContext || tg.socket != client.ResolveSocket("") {
		t.Fatalf("%+v %v", tg, err)
	}
	env["STOA_CONTEXT"] = "prod"
	f = &Factory{IO: &IOStreams{}, Getenv: func(k string) string { return env[k] }}
	if _, err := f.resolveTarget(); err == nil {
		t.Fatal("a context named without a configuration directory must be an error")
	}
}

// TestContextCompletion: context names complete for --context and for
// the commands that take one, with where each points.
func TestContextCompletion(t *testing.T) {
	for _, args := range [][]string{
		{"__complete", "context", "use", ""},
		{"__complete", "context", "delete", ""},
		{"__complete", "get", "tools", "--context", ""},
	} {
		c := cmdCase{vars: withConfig(sampleConfig)}
		r := runCmd(t, newFake(t, c), c, args)
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		for _, want := range []string{"local\tthe local stoad's socket", "prod\thttps://cp.example.com:7443", "other\tunix:///run/stoa/other.sock"} {
			if !slices.Contains(lines, want) {
				t.Errorf("%v: no %q in:\n%s", args, want, r.out)
			}
		}
	}
}
