package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/internal/golden"
	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// Every command is unit-tested here against an in-memory stoad
// (clitest.FakeAPI): its flags, each output format and its exit codes.
// commandCases lists the cases per command path; TestEveryCommandIsTested
// fails when a command of the tree has none, or lacks one of the three
// kinds every command needs. The wire path (the real client over a unix
// socket) is tested in contract_test.go.

func TestMain(m *testing.M) {
	// Tables print local times; the golden files are written in UTC.
	time.Local = time.UTC
	// The user's own contexts, logins and keyring stay out of the tests:
	// an empty configuration directory, no selection from the
	// environment, and no D-Bus session (no keyring: token files only).
	cfg, err := os.MkdirTemp("", "stoa-cli-config")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", cfg)
	os.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/stoa-test-bus")
	for _, k := range []string{"STOA_CONTEXT", "STOA_SOCKET", "STOA_TOKEN", "STOA_CONFIG", "STOA_CLIENT_SECRET"} {
		os.Unsetenv(k)
	}
	code := m.Run()
	os.RemoveAll(cfg)
	os.Exit(code)
}

// cmdCase is one command line run against a fake stoad.
type cmdCase struct {
	name string
	// args follow the command path ("stoa keys list" → keys list ARGS).
	args []string
	// setup changes the fake's state or answers before the run.
	setup func(t *testing.T, fa *clitest.FakeAPI)
	// fail makes API calls fail: method name → error.
	fail  map[string]error
	stdin string
	tty   bool // stdin, stdout and stderr are terminals
	env   map[string]string
	// vars returns values for placeholders ($NAME) in args, such as a
	// test server's URL; outputs show the placeholders again. $TMP, a
	// fresh directory, is always defined.
	vars func(t *testing.T) map[string]string

	code          int
	out, notOut   []string // substrings of stdout
	errOut        []string // substrings of stderr
	calls         []string // the API calls in order (Call.String); nil: not checked
	callsAnyOrder bool
	check         func(t *testing.T, r runResult, fa *clitest.FakeAPI)
	// formats runs the line with every -o value (and none) and checks
	// the output contract for the shape: the happy path of a command
	// that prints data.
	formats *shape
	// flagErr marks a case of flag or argument validation: it must exit
	// 1, print nothing on stdout and call nothing.
	flagErr bool
	// noGolden leaves the output out of the golden file (cobra's own
	// scripts and help texts; docs/cli and completions/ hold those).
	noGolden bool
}

func formats(s shape) *shape { return &s }

// runResult is what one run printed.
type runResult struct {
	code        int
	out, errOut string // with dir written $TMP
	calls       []string
	dir         string // what $TMP stands for in the arguments
}

// runCmd runs one command line with fa as the daemon.
func runCmd(t *testing.T, fa *clitest.FakeAPI, c cmdCase, args []string) runResult {
	t.Helper()
	for k, v := range c.env {
		t.Setenv(k, v)
	}
	vars := map[string]string{}
	if c.vars != nil {
		vars = c.vars(t)
	}
	dir := ""
	args = slices.Clone(args)
	for i, a := range args {
		if strings.Contains(a, "$TMP") && dir == "" {
			dir = t.TempDir()
			vars["$TMP"] = dir
		}
		for k, v := range vars {
			args[i] = strings.ReplaceAll(args[i], k, v)
		}
	}
	var out, errOut bytes.Buffer
	io := &IOStreams{In: strings.NewReader(c.stdin), Out: &out, ErrOut: &errOut,
		InTTY: c.tty, OutTTY: c.tty, ErrTTY: c.tty, NoColor: true}
	f := &Factory{IO: io, Now: func() time.Time { return clitest.T0 }, NewClient: func() client.API { return fa },
		TokenStore: fileTokens}
	before := len(fa.Calls())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := execute(ctx, f, args)
	r := runResult{code: code, out: out.String(), errOut: errOut.String(), dir: dir}
	for k, v := range vars {
		r.out, r.errOut = strings.ReplaceAll(r.out, v, k), strings.ReplaceAll(r.errOut, v, k)
	}
	// Outputs never depend on where the checkout lives.
	if wd, err := os.Getwd(); err == nil {
		r.out, r.errOut = strings.ReplaceAll(r.out, wd, "$PWD"), strings.ReplaceAll(r.errOut, wd, "$PWD")
	}
	r.calls = fa.CallStrings()[before:]
	return r
}

// newFake is the daemon of a case: the quickstart objects live at
// revision 3, every other answer canned.
func newFake(t *testing.T, c cmdCase) *clitest.FakeAPI {
	t.Helper()
	fa := clitest.New()
	fa.LiveObjects = quickstartObjects(t)
	for m, err := range c.fail {
		fa.Fail(m, err)
	}
	if c.setup != nil {
		c.setup(t, fa)
	}
	return fa
}

// Errors the fake returns, one per exit code a command maps them to.
var (
	errUnreachable = &client.UnreachableError{Socket: "/run/stoa/fake.sock", Err: syscall.ECONNREFUSED, Problem: client.SocketStale}
	errForbidden   = &client.ForbiddenError{Socket: "/run/stoa/fake.sock", Owner: "root (uid 0)", Group: "stoa (gid 990)", Mode: "srw-rw----"}
	errDenied      = &api.Error{Code: api.CodeForbidden, Message: "uid 1234 may not use this stoad", Hint: "start stoad with --socket-group"}
	errNotFound    = &api.Error{Code: api.CodeNotFound, Message: "not found"}
	errInvalid     = &api.Error{Code: api.CodeInvalid, Message: "invalid request", Hint: "fix the request"}
	errShutdown    = &api.Error{Code: api.CodeUnavailable, Message: "stoad is shutting down"}
	errConflict    = &api.Error{Code: api.CodeConflict, Message: "the live revision changed"}
)

// commandCases holds the unit tests of every command, by command path.
func commandCases() map[string][]cmdCase {
	return map[string][]cmdCase{
		"stoa":                         rootCases(),
		"stoa help":                    helpCases(),
		"stoa completion":              completionCases(),
		"stoa completion bash":         completionShellCases("bash", "# bash completion V2 for stoa"),
		"stoa completion zsh":          completionShellCases("zsh", "#compdef stoa"),
		"stoa completion fish":         completionShellCases("fish", "# fish completion for stoa"),
		"stoa completion powershell":   completionShellCases("powershell", "# powershell completion for stoa"),
		"stoa validate":                validateCases(),
		"stoa diff":                    diffCases(),
		"stoa apply":                   applyCases(),
		"stoa delete":                  deleteCases(),
		"stoa rollback":                rollbackCases(),
		"stoa explain":                 explainCases(),
		"stoa get":                     getCases(),
		"stoa history":                 historyCases(),
		"stoa status":                  statusCases(),
		"stoa events":                  eventsCases(),
		"stoa dashboard":               dashboardCases(),
		"stoa top":                     topCases(),
		"stoa version":                 versionCases(),
		"stoa audit":                   auditCases(),
		"stoa audit verify":            auditVerifyCases(),
		"stoa export":                  exportCases(),
		"stoa import":                  groupCases("import", "openapi"),
		"stoa import openapi":          importOpenAPICases(),
		"stoa keys":                    groupCases("keys", "rotate"),
		"stoa keys create":             keysCreateCases(),
		"stoa keys list":               keysListCases(),
		"stoa keys revoke":             keysRevokeCases(),
		"stoa keys rotate":             keysRotateCases(),
		"stoa mcp":                     mcpCases(),
		"stoa quotas":                  quotasCases(),
		"stoa snapshots":               groupCases("snapshots", "replay"),
		"stoa snapshots list":          snapshotsListCases(),
		"stoa snapshots get":           snapshotsGetCases(),
		"stoa snapshots replay":        snapshotsReplayCases(),
		"stoa webhooks":                groupCases("webhooks", "deliveries"),
		"stoa webhooks deliveries":     webhookDeliveriesCases(),
		"stoa webhooks show":           webhookShowCases(),
		"stoa webhooks redeliver":      webhookRedeliverCases(),
		"stoa webhooks test":           webhookTestCases(),
		"stoa xdp":                     groupCases("xdp", "unblock"),
		"stoa xdp status":              xdpStatusCases(),
		"stoa xdp blocks":              xdpBlocksCases(),
		"stoa xdp block":               xdpBlockCases(),
		"stoa xdp unblock":             xdpUnblockCases(),
		"stoa fleet":                   groupCases("fleet", "join-token"),
		"stoa fleet join-token":        groupCases("fleet join-token", "revoke"),
		"stoa fleet join-token create": joinTokenCreateCases(),
		"stoa fleet join-token list":   joinTokenListCases(),
		"stoa fleet join-token revoke": joinTokenRevokeCases(),
		"stoa fleet dataplane":         groupCases("fleet dataplane", "revoke"),
		"stoa fleet dataplane revoke":  dataPlaneRevokeCases(),
		"stoa bundle":                  groupCases("bundle", "verify"),
		"stoa bundle build":            bundleBuildCases(),
		"stoa bundle sign":             bundleSignCases(),
		"stoa bundle verify":           bundleVerifyCases(),
		"stoa bundle keygen":           bundleKeygenCases(),
		"stoa context":                 groupCases("context", "current"),
		"stoa context add":             contextAddCases(),
		"stoa context use":             contextUseCases(),
		"stoa context list":            contextListCases(),
		"stoa context current":         contextCurrentCases(),
		"stoa context delete":          contextDeleteCases(),
		"stoa login":                   loginCases(),
		"stoa logout":                  logoutCases(),
	}
}

// offlineCommands call no daemon: they need no case of an API error.
var offlineCommands = []string{"stoa", "stoa help", "stoa completion", "stoa completion bash", "stoa completion zsh",
	"stoa completion fish", "stoa completion powershell", "stoa validate", "stoa explain", "stoa import",
	"stoa import openapi", "stoa keys", "stoa bundle", "stoa bundle build", "stoa bundle sign",
	"stoa bundle verify", "stoa bundle keygen", "stoa snapshots", "stoa webhooks", "stoa xdp", "stoa fleet", "stoa fleet join-token", "stoa fleet dataplane",
	// stoa mcp bridges to stoad's MCP endpoint, not to its LocalAPI.
	"stoa mcp",
	// Contexts are local configuration; login talks to the issuer only.
	"stoa context", "stoa context add", "stoa context use", "stoa context list", "stoa context current",
	"stoa context delete", "stoa login", "stoa logout"}

// TestEveryCommandIsTested walks the command tree: every command must have
// unit tests, with at least a happy path in every output format (when it
// prints data), an API error mapped to its exit code (when it calls
// stoad) and a flag or argument it refuses.
func TestEveryCommandIsTested(t *testing.T) {
	cases := commandCases()
	var paths []string
	walk(testRoot(), func(c *cobra.Command) {
		path := c.CommandPath()
		paths = append(paths, path)
		cs, ok := cases[path]
		if !ok {
			t.Errorf("%s has no unit tests: add its cases to commandCases (pkg/cli/commands_test.go)", path)
			return
		}
		// Commands that only group others print help, no data.
		noData := printsNoData(c) || isGroup(c)
		var happy, apiErr, flagErr bool
		for _, tc := range cs {
			happy = happy || tc.formats != nil || (noData && tc.code == ExitOK && !tc.flagErr)
			apiErr = apiErr || len(tc.fail) > 0
			flagErr = flagErr || tc.flagErr
		}
		offline := slices.Contains(offlineCommands, path)
		if !happy {
			t.Errorf("%s: no happy path (a case run in every output format or, for a command printing no data, one exiting 0)", path)
		}
		if !apiErr && !offline {
			t.Errorf("%s: no case where the API fails (fail), with the exit code it maps to", path)
		}
		if !flagErr {
			t.Errorf("%s: no case of flag or argument validation (flagErr)", path)
		}
	})
	for path := range cases {
		if !slices.Contains(paths, path) {
			t.Errorf("commandCases names %q, which is not a command", path)
		}
	}
	for _, path := range offlineCommands {
		if !slices.Contains(paths, path) {
			t.Errorf("offlineCommands names %q, which is not a command", path)
		}
	}
}

// TestCommands runs every case of commandCases and compares what each
// command printed with its golden file (testdata/commands; -update
// rewrites them).
func TestCommands(t *testing.T) {
	cases := commandCases()
	paths := make([]string, 0, len(cases))
	for p := range cases {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			var golden strings.Builder
			ran := 0
			for _, c := range cases[path] {
				t.Run(c.name, func(t *testing.T) {
					ran++
					runCase(t, path, c, &golden)
				})
			}
			if ran == len(cases[path]) && !t.Failed() {
				checkGolden(t, path, golden.String())
			}
		})
	}
}

func runCase(t *testing.T, path string, c cmdCase, golden *strings.Builder) {
	args := append(strings.Fields(path)[1:], c.args...)
	fa := newFake(t, c)
	r := runCmd(t, fa, c, args)
	record := func(label string, r runResult) {
		if c.noGolden {
			return
		}
		fmt.Fprintf(golden, "=== %s: stoa %s\nexit %d\n--- stdout\n%s--- stderr\n%s", c.name, label, r.code, normalize(r.out), normalize(r.errOut))
	}
	record(strings.Join(args, " "), r)
	if r.code != c.code {
		t.Fatalf("stoa %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, c.code, r.out, r.errOut)
	}
	for _, w := range c.out {
		if !strings.Contains(r.out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, r.out)
		}
	}
	for _, w := range c.notOut {
		if strings.Contains(r.out, w) {
			t.Errorf("stdout has %q:\n%s", w, r.out)
		}
	}
	for _, w := range c.errOut {
		if !strings.Contains(r.errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.errOut)
		}
	}
	if c.calls != nil {
		got, want := r.calls, c.calls
		if c.callsAnyOrder {
			got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
		}
		if !slices.Equal(got, want) {
			t.Errorf("API calls:\n  %s\nwant:\n  %s", strings.Join(r.calls, "\n  "), strings.Join(c.calls, "\n  "))
		}
	}
	if c.flagErr {
		if r.code != ExitFailure || r.out != "" || len(r.calls) > 0 || r.errOut == "" {
			t.Errorf("a refused flag or argument must exit 1 with a message on stderr, nothing on stdout and no API call; got exit %d, stdout %q, calls %v",
				r.code, r.out, r.calls)
		}
	}
	if c.check != nil {
		c.check(t, r, fa)
	}
	if c.formats == nil {
		return
	}
	outs := map[string]string{"": r.out}
	for _, format := range OutputFormats {
		a := append(append([]string(nil), args...), "-o", format)
		fa := newFake(t, c)
		r := runCmd(t, fa, c, a)
		record(strings.Join(a, " "), r)
		if r.code != c.code {
			t.Fatalf("-o %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", format, r.code, c.code, r.out, r.errOut)
		}
		if strings.TrimSpace(r.out) == "" {
			t.Fatalf("-o %s: nothing on stdout (stderr: %s)", format, r.errOut)
		}
		outs[format] = r.out
	}
	checkShapes(t, *c.formats, outs)
}

// normalize replaces what depends on the toolchain building the test.
func normalize(s string) string {
	return strings.ReplaceAll(s, version.String("stoa"), "stoa <version>")
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	file := filepath.Join("testdata", "commands", strings.ReplaceAll(path, " ", "_")+".golden")
	golden.Check(t, file, []byte(got))
}

// groupCases are the cases of a command that only groups others: help
// without arguments, an unknown subcommand refused with a did-you-mean.
func groupCases(name, sub string) []cmdCase {
	typo := sub[:len(sub)-1] + "x"
	return []cmdCase{
		{name: "help", out: []string{"Available Commands:", sub}, calls: []string{}},
		{name: "unknown subcommand", args: []string{typo}, code: ExitFailure, flagErr: true,
			errOut: []string{fmt.Sprintf(`unknown command %q for "stoa %s"`, typo, name), fmt.Sprintf("did you mean %q", sub)}},
	}
}

// failAll makes one API method fail with err.
func failAll(method string, err error) map[string]error { return map[string]error{method: err} }
