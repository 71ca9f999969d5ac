// Package cli is the stoa command tree (cobra). Every command follows one
// shape: an options struct holding parsed flags and injected dependencies,
// a constructor that binds flags, and a run function testable without cobra.
package cli

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/login"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// Factory carries what every command needs: streams, global flags, the
// clock and a lazily built API client.
type Factory struct {
	IO          *IOStreams
	Socket      string // --socket (else $STOA_SOCKET)
	ContextName string // --context (else $STOA_CONTEXT, current-context)
	Output      string // -o
	Now         func() time.Time

	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string

	// NewClient builds the client commands call stoad through, once flags
	// are parsed. Nil means the client of the selected context: the
	// LocalAPI over a unix socket, or a control plane over HTTPS; tests
	// put an in-memory fake here (pkg/cli/clitest).
	NewClient func() client.API
	// TokenStore returns the store of logins kept under dir (stoa's
	// configuration directory); nil means the OS keyring with a file
	// fallback. Tests keep tokens in files only.
	TokenStore func(dir string) *login.Store
	// OpenBrowser opens a login URL; nil means the desktop's browser
	// (the URL is printed when there is none).
	OpenBrowser func(url string) error

	client    client.API
	resolved  bool
	target    target
	targetErr error
}

// Client returns the API client, built on first use.
func (f *Factory) Client() client.API {
	if f.client == nil {
		if f.NewClient != nil {
			f.client = f.NewClient()
		} else {
			f.client = f.newClient()
		}
	}
	return f.client
}

// Main runs the CLI with the process's arguments and returns the exit code.
func Main() int {
	// stoa lives for one command: collect garbage less often (four times
	// the live heap instead of twice); large applies run noticeably faster.
	// Commands that load specs collect later still (collectLate).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
		lateGC = os.Getenv("GOMEMLIMIT") == ""
	}
	// STOA_CPUPROFILE=FILE writes a CPU profile of the command (for
	// `go tool pprof`; docs/performance.md): the CLI's own share of an
	// apply is measured in the real binary, not guessed from a benchmark.
	if p := os.Getenv("STOA_CPUPROFILE"); p != "" {
		if stop, err := startCPUProfile(p); err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v\n", err)
		} else {
			defer stop()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], SystemStreams())
}

// lateGC lets commands that load specs call collectLate: set by Main
// (not in tests, which run many commands in one process) unless GOGC or
// GOMEMLIMIT in the environment decide.
var lateGC bool

var lateGCOnce sync.Once

// collectLateOnce is collectLate when lateGC allows it, once per process.
func collectLateOnce() {
	if lateGC {
		lateGCOnce.Do(collectLate)
	}
}

// collectLate turns garbage collection off until the heap first reaches
// lateGCHeap, and from then on collects at four times the live heap (the
// pacing of every stoa command). validate, diff, apply, delete -f and
// bundle build load specs and exit: loading 10,000 Tools allocates
// ~130 MB, and collecting any of it cost a no-op apply a fifth of its CPU
// while returning nothing the command needed. (Commands that run for long,
// such as get --watch or top, never call it.) Larger jobs are bounded all
// the same: the limit makes the runtime collect, and the first collection
// switches back to the usual pacing (without the limit, so that a live
// heap above it does not collect all the time).
func collectLate() {
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(lateGCHeap)
	// The sentinel is unreachable at once: its cleanup runs after the
	// first collection, whatever started it.
	runtime.AddCleanup(new([64]byte), func(struct{}) {
		debug.SetMemoryLimit(math.MaxInt64)
		debug.SetGCPercent(400) // last: TestCollectLate waits for it
	}, struct{}{})
}

// lateGCHeap is the heap at which stoa starts collecting garbage.
const lateGCHeap = 512 << 20

// startCPUProfile starts writing a CPU profile to path and returns what
// ends it.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// Run executes one stoa invocation.
func Run(ctx context.Context, args []string, io *IOStreams) int {
	return execute(ctx, &Factory{IO: io, Now: time.Now}, args)
}

// execute runs one command line with f's dependencies and returns the exit
// code.
func execute(ctx context.Context, f *Factory, args []string) int {
	root := NewRootCmd(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	printError(f.IO.ErrOut, err)
	return exitCode(err)
}

// NewRootCmd builds the whole command tree (fresh for every invocation, so
// tests never share flag state).
func NewRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "stoa",
		Short: "stoa — declarative API and AI-agent gateway",
		Long: `stoa validates, diffs and applies declarative specs (stoa.io/v1alpha1) to stoad,
which serves them as an HTTP reverse proxy and as MCP tools for AI agents.

Exit codes: 0 ok, 1 error, 2 diff found changes, 3 specs invalid,
4 not authorized, 5 stoad or the control plane unreachable.

Commands talk to the context chosen by --context, $STOA_CONTEXT or
"stoa context use": the local stoad over its unix socket (local), or a
remote control plane over HTTPS (log in with: stoa login).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version prints the client's line alone, as stoad --version
		// does (scripts and release checks read it); `stoa version` also
		// asks the daemon.
		Version: version.String("stoa"),
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return checkOutputFlag(cmd, f.Output)
		},
	}
	// The streams are set before cobra's completion command is added: it
	// keeps the writer it finds then.
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.PersistentFlags().StringVar(&f.Socket, "socket", "", "stoad LocalAPI socket: talk to the local daemon there (env STOA_SOCKET)")
	root.PersistentFlags().StringVar(&f.ContextName, "context", "", "the context to talk to: local or a control plane (env STOA_CONTEXT; see: stoa context list)")
	_ = root.RegisterFlagCompletionFunc("context", f.completeContexts)
	root.PersistentFlags().VarP(newEnum(&f.Output, "", OutputFormats...), "output", "o",
		"output format: table, wide, yaml, json (one document) or ndjson (one JSON value per line)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(OutputFormats, cobra.ShellCompDirectiveNoFileComp))
	root.AddGroup(
		&cobra.Group{ID: "config", Title: "Declarative configuration:"},
		&cobra.Group{ID: "inspect", Title: "Inspecting the gateway:"},
	)
	// Every command of the tree, in one place. Help sorts them by name
	// within their group.
	group := func(id string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = id
			root.AddCommand(c)
		}
	}
	group("config",
		newValidateCmd(f), newDiffCmd(f), newApplyCmd(f), newDeleteCmd(f), newRollbackCmd(f), newExplainCmd(f))
	group("inspect",
		newGetCmd(f), newHistoryCmd(f), newStatusCmd(f), newEventsCmd(f), newTopCmd(f), newDashboardCmd(f))
	root.AddCommand(
		newVersionCmd(f),
		newExportCmd(f),
		newImportCmd(f),
		newKeysCmd(f),
		newQuotasCmd(f),
		newWebhooksCmd(f),
		newSnapshotsCmd(f),
		newAuditCmd(f),
		newXDPCmd(f),
		newFleetCmd(f),
		newMCPCmd(f),
		newBundleCmd(f),
		newContextCmd(f),
		newLoginCmd(f),
		newLogoutCmd(f),
	)
	root.SetHelpCommand(newHelpCmd())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			noOutput(c)
		}
	}
	guardGroups(root)
	return root
}
