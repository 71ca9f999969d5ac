// Package daemon composes stoad: the store, the LocalAPI, the runtimes
// compiled from each revision (proxy, MCP, XDP, …), reloads and signals.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// State is one immutable revision of the live objects (see pkg/state).
type State = state.Revision

// NewState indexes objs as revision rev.
func NewState(rev int64, objs []*spec.Object) *State { return state.New(rev, objs) }

// Runtime is one part of the data plane compiled from a revision. Reloads
// are transactional: every runtime prepares the new revision first; only
// when all succeed are they swapped in, so a bad revision changes nothing.
type Runtime interface {
	Name() string
	// Prepare compiles st without touching what is serving and returns the
	// function that swaps it in. swap must not fail.
	Prepare(st *State) (swap func(), err error)
	// Start begins serving (called once, after the first swap).
	Start(ctx context.Context) error
	// Stop shuts down gracefully within ctx.
	Stop(ctx context.Context) error
	// Status is the runtime's line in `stoa status`.
	Status() api.Component
}

// Daemon is a running stoad.
type Daemon struct {
	cfg     *Config
	log     *slog.Logger
	store   store.Store
	started time.Time

	state   atomic.Pointer[State]
	applyMu sync.Mutex // serialises changes to the live state

	events     *events.Log
	runtimes   []Runtime
	extensions []extension
	metrics    *prometheus.Registry
	dp         *dataPlane // nil when runtimes are injected (tests)
	servers    []server
	ready      atomic.Bool

	specsMu   sync.Mutex
	specsHash string
	gitops    atomic.Pointer[api.GitOpsStatus] // last sync, for status (gitops.go)

	memRelease atomic.Bool // a FreeOSMemory is scheduled (apply.go)
}

type server interface {
	Name() string
	Addr() string
	Serve() error
	Shutdown(ctx context.Context) error
}

// Options inject extra runtimes (proxy, MCP, XDP) built by the caller.
type Options struct {
	Runtimes func(d *Daemon) ([]Runtime, error)
}

// New opens the state and builds the daemon; Run serves it.
func New(cfg *Config, log *slog.Logger, opts Options) (*Daemon, error) {
	log.Debug("opening state", "dir", cfg.StateDir)
	st, err := boltstore.Open(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, store: st, started: time.Now(), metrics: prometheus.NewRegistry()}
	d.registerMetrics()
	d.events = events.NewLog(st, log)
	objs, rev, err := store.Load(context.Background(), st)
	if err != nil {
		st.Close()
		return nil, err
	}
	log.Debug("state loaded", "revision", rev, "objects", len(objs))
	st0 := NewState(rev, objs)
	st0.Digests = plan.DigestAll(objs)
	d.state.Store(st0)
	if err := d.ensureConsumerIdentities(st0); err != nil {
		st.Close()
		return nil, fmt.Errorf("consumer identities: %w", err)
	}
	if opts.Runtimes != nil {
		rts, err := opts.Runtimes(d)
		if err != nil {
			st.Close()
			return nil, err
		}
		d.runtimes = rts
	}
	return d, nil
}

// Config returns the process configuration.
func (d *Daemon) Config() *Config { return d.cfg }

// Logger returns the daemon's logger.
func (d *Daemon) Logger() *slog.Logger { return d.log }

// Store returns the state store.
func (d *Daemon) Store() store.Store { return d.store }

// Metrics is the Prometheus registry served on /metrics; runtimes add
// their collectors to it.
func (d *Daemon) Metrics() *prometheus.Registry { return d.metrics }

// State returns the live revision.
func (d *Daemon) State() *State { return d.state.Load() }

// Emit records an event and pushes it to followers.
func (d *Daemon) Emit(typ, tenant, msg string, data map[string]any) {
	d.events.Emit(typ, tenant, msg, data)
}

// Run serves until ctx is cancelled or SIGTERM/SIGINT arrives; SIGHUP
// re-reads --specs. It returns after a graceful shutdown.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer d.store.Close()

	// Compile the stored revision before accepting anything.
	d.log.Debug("compiling the stored revision", "revision", d.State().Revision, "runtimes", len(d.runtimes))
	if err := d.swapRuntimes(d.State()); err != nil {
		return fmt.Errorf("load revision %d: %w", d.State().Revision, err)
	}
	for _, rt := range d.runtimes {
		if err := rt.Start(ctx); err != nil {
			d.stopRuntimes()
			return fmt.Errorf("start %s: %w", rt.Name(), err)
		}
	}
	d.log.Debug("runtimes started; opening the LocalAPI", "socket", d.cfg.Socket)
	local, err := newLocalAPI(d)
	if err != nil {
		d.stopRuntimes()
		return err
	}
	d.servers = append(d.servers, local)
	if d.cfg.OpsListen != "" {
		ops, err := newOpsServer(d)
		if err != nil {
			local.Shutdown(context.Background())
			d.stopRuntimes()
			return err
		}
		d.servers = append(d.servers, ops)
	}
	errc := make(chan error, len(d.servers))
	for _, s := range d.servers {
		go func() {
			if err := s.Serve(); err != nil {
				errc <- fmt.Errorf("%s on %s: %w", s.Name(), s.Addr(), err)
			}
		}()
	}
	if d.cfg.SpecsDir != "" {
		if err := d.syncSpecs(ctx, false); err != nil {
			d.log.Error("gitops: initial apply failed; serving the last good revision", "dir", d.cfg.SpecsDir, "err", err)
		}
		go d.watchSpecs(ctx)
	}
	d.ready.Store(true)
	d.log.Info("stoad ready", "version", version.Version, "revision", d.State().Revision,
		"socket", d.cfg.Socket, "listen", d.cfg.Listen, "ops", d.cfg.OpsListen, "state", d.store.Location())

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errc:
			runErr = err
			break loop
		case s := <-sigs:
			if s == syscall.SIGHUP {
				d.log.Info("SIGHUP: re-reading specs", "dir", d.cfg.SpecsDir)
				if d.cfg.SpecsDir != "" {
					if err := d.syncSpecs(ctx, true); err != nil {
						d.log.Error("gitops: apply failed", "err", err)
					}
				}
				continue
			}
			d.log.Info("shutting down", "signal", s.String())
			break loop
		}
	}
	d.ready.Store(false)
	// End event streams first: a follower (stoa events -f, the dashboard)
	// would otherwise hold the LocalAPI's graceful shutdown open.
	d.events.Close()
	shutCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	for i := len(d.servers) - 1; i >= 0; i-- {
		if err := d.servers[i].Shutdown(shutCtx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Warn("shutdown", "server", d.servers[i].Name(), "err", err)
		}
	}
	d.stopRuntimes()
	d.log.Info("stopped")
	return runErr
}

func (d *Daemon) stopRuntimes() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := len(d.runtimes) - 1; i >= 0; i-- {
		if err := d.runtimes[i].Stop(ctx); err != nil {
			d.log.Warn("stop runtime", "runtime", d.runtimes[i].Name(), "err", err)
		}
	}
}

// prepareRuntimes compiles st in every runtime; it returns one function
// that swaps them all in, or the first error (nothing swapped).
func (d *Daemon) prepareRuntimes(st *State) (func(), error) {
	swaps := make([]func(), 0, len(d.runtimes))
	for _, rt := range d.runtimes {
		swap, err := rt.Prepare(st)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rt.Name(), err)
		}
		swaps = append(swaps, swap)
	}
	return func() {
		for _, s := range swaps {
			s()
		}
	}, nil
}

func (d *Daemon) swapRuntimes(st *State) error {
	swap, err := d.prepareRuntimes(st)
	if err != nil {
		return err
	}
	swap()
	d.state.Store(st)
	return nil
}

// Ready reports whether the daemon has loaded its config and serves.
func (d *Daemon) Ready() bool { return d.ready.Load() }

// Status assembles `stoa status`.
func (d *Daemon) Status() api.Status {
	st := d.State()
	counts := map[string]int{}
	for _, o := range st.Objects {
		counts[string(o.Kind)]++
	}
	s := api.Status{
		Version:   version.Version,
		Commit:    version.Commit,
		PID:       os.Getpid(),
		StartedAt: d.started.UTC(),
		Uptime:    time.Since(d.started).Round(time.Second).String(),
		Revision:  st.Revision,
		Objects:   counts,
		StateDir:  d.cfg.StateDir,
		SpecsDir:  d.cfg.SpecsDir,
		Listeners: []api.Listener{{Name: "localapi", Address: d.cfg.Socket}},
	}
	if d.cfg.SpecsDir != "" {
		s.GitOps = &api.GitOpsStatus{Dir: d.cfg.SpecsDir}
		if g := d.gitops.Load(); g != nil {
			s.GitOps = g
		}
	}
	if d.cfg.OpsListen != "" {
		s.Listeners = append(s.Listeners, api.Listener{Name: "ops", Address: d.cfg.OpsListen})
	}
	for _, rt := range d.runtimes {
		c := rt.Status()
		s.Components = append(s.Components, c)
		if addr, ok := c.Data["address"].(string); ok && addr != "" {
			s.Listeners = append(s.Listeners, api.Listener{Name: c.Name, Address: addr})
		}
	}
	return s
}
