// Package daemon composes stoad: it opens the store, builds the runtimes
// (which live with their domains: pkg/proxy, pkg/mcp/mcprt,
// pkg/xdp/xdprt, pkg/quota, …), serves the LocalAPI (pkg/localapi) and
// the ops endpoints, and owns every change to the live revision — apply,
// delete, rollback, GitOps — through one transactional pipeline, and the
// process's signals. See docs/architecture.md.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/stoa-gateway/stoa/pkg/keys"
	"github.com/stoa-gateway/stoa/pkg/localapi"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
	"github.com/stoa-gateway/stoa/pkg/store/pgstore"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
	"github.com/stoa-gateway/stoa/pkg/unixsock"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// Daemon is a running stoad.
type Daemon struct {
	cfg     *Config
	log     *slog.Logger
	store   store.Store
	started time.Time

	live    atomic.Pointer[state.Revision]
	applyMu sync.Mutex // serialises changes to the live revision

	events   *events.Log
	runtimes []state.Runtime
	metrics  *prometheus.Registry
	dp       *dataPlane        // nil when runtimes are injected (tests) and on a control plane
	source   configSource      // signed bundles, when not the LocalAPI (source.go)
	services localapi.Services // the LocalAPI routes beyond configuration
	servers  []server
	ready    atomic.Bool

	// shared is set for a store other processes write too (PostgreSQL):
	// the live revision and the event stream then follow the store
	// (follow.go), and follow lists what else reloads on its changes.
	shared bool
	follow followers
	// cp is the control plane's listener, tokens and roles (nil unless
	// --role control-plane); keys its key service.
	cp     *controlPlane
	keys   *keys.Service
	banner io.Writer

	specsMu   sync.Mutex
	specsHash string
	gitops    atomic.Pointer[api.GitOpsStatus] // last sync, for status (gitops.go)

	memMu      sync.Mutex
	memRelease *time.Timer // returns memory to the OS after large changes (apply.go)
}

type server interface {
	Name() string
	Addr() string
	Serve() error
	Shutdown(ctx context.Context) error
}

// Options inject the runtimes stoad serves (DefaultRuntimes, or a test's
// own).
type Options struct {
	Runtimes func(d *Daemon) ([]state.Runtime, error)
	// Banner receives what an operator must read at start (a control
	// plane's certificate fingerprint, the development issuer's login
	// commands); nil: nothing is printed.
	Banner io.Writer
}

// New opens the state and builds the daemon; Run serves it.
func New(cfg *Config, log *slog.Logger, opts Options) (*Daemon, error) {
	st, shared, err := openStore(cfg, log)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, store: st, shared: shared, started: time.Now(), metrics: prometheus.NewRegistry(), banner: opts.Banner}
	d.registerMetrics()
	d.events = events.NewLog(st, log)
	objs, rev, err := store.Load(context.Background(), st)
	if err != nil {
		st.Close()
		return nil, err
	}
	log.Debug("state loaded", "revision", rev, "objects", len(objs))
	// Decoded just now and not yet shared with anything: equal schemas
	// become one value, as for the objects of an apply request.
	spec.ShareSchemas(objs)
	live := state.New(rev, objs)
	live.Digests = plan.DigestAll(objs)
	d.live.Store(live)
	if err := keys.EnsureIdentities(context.Background(), st, live); err != nil {
		st.Close()
		return nil, fmt.Errorf("consumer identities: %w", err)
	}
	if opts.Runtimes != nil {
		rts, err := opts.Runtimes(d)
		if err != nil {
			if d.cp != nil {
				d.cp.ln.Close()
			}
			st.Close()
			return nil, err
		}
		d.runtimes = rts
	}
	if err := d.openSource(); err != nil {
		st.Close()
		return nil, err
	}
	return d, nil
}

// openStore opens the embedded database in the state directory, or with
// --store the PostgreSQL database several stoads share.
func openStore(cfg *Config, log *slog.Logger) (store.Store, bool, error) {
	if cfg.Store == "" {
		log.Debug("opening state", "dir", cfg.StateDir)
		st, err := boltstore.Open(cfg.StateDir)
		return st, false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := pgstore.Open(ctx, cfg.Store, pgstore.Options{Logger: log.With("component", "store")})
	if err != nil {
		return nil, false, fmt.Errorf("--store: %w", err)
	}
	log.Debug("opened the shared state store", "store", st.Location())
	// The state directory still holds what is this process's own (the
	// API listener's certificate).
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		st.Close()
		return nil, false, fmt.Errorf("--state-dir: %w", err)
	}
	return st, true, nil
}

// Live returns the live revision.
func (d *Daemon) Live() *state.Revision { return d.live.Load() }

// Ready reports whether the daemon has loaded its config and serves.
func (d *Daemon) Ready() bool { return d.ready.Load() }

// Run serves until ctx is cancelled or SIGTERM/SIGINT arrives; SIGHUP
// re-reads --specs. It returns after a graceful shutdown.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer d.store.Close()

	// With a shared store, watch before compiling: a revision another
	// stoad commits meanwhile is caught up with right after.
	var changes <-chan store.Change
	if d.shared {
		changes = d.store.Watch(ctx)
		if err := d.events.FollowStore(); err != nil {
			return err
		}
	}
	// Compile the stored revision before accepting anything.
	d.log.Debug("compiling the stored revision", "revision", d.Live().Revision, "runtimes", len(d.runtimes))
	if err := d.swapRuntimes(d.Live()); err != nil {
		return fmt.Errorf("load revision %d: %w", d.Live().Revision, err)
	}
	if len(d.Live().Objects) >= bigApply {
		// Decoding and compiling a large state leaves as much garbage
		// as a large apply.
		d.releaseMemorySoon()
	}
	for _, rt := range d.runtimes {
		if err := rt.Start(ctx); err != nil {
			d.stopRuntimes()
			return fmt.Errorf("start %s: %w", rt.Name(), err)
		}
	}
	d.log.Debug("runtimes started; opening the LocalAPI", "socket", d.cfg.Socket)
	local, err := d.newLocalAPI()
	if err != nil {
		d.stopRuntimes()
		return err
	}
	d.servers = append(d.servers, local)
	if d.cp != nil {
		d.servers = append(d.servers, d.cp.server(d))
	}
	if d.cfg.OpsListen != "" {
		ops, err := newOpsServer(d)
		if err != nil {
			local.Shutdown(context.Background())
			d.stopRuntimes()
			return err
		}
		d.servers = append(d.servers, ops)
	}
	errc := make(chan error, len(d.servers)+1)
	for _, s := range d.servers {
		go func() {
			if err := s.Serve(); err != nil {
				errc <- fmt.Errorf("%s on %s: %w", s.Name(), s.Addr(), err)
			}
		}()
	}
	if changes != nil {
		go d.followStore(ctx, changes)
	}
	if d.cfg.SpecsDir != "" {
		if err := d.syncSpecs(ctx, false); err != nil {
			d.log.Error("gitops: initial apply failed; serving the last good revision", "dir", d.cfg.SpecsDir, "err", err)
		}
		go d.watchSpecs(ctx)
	}
	stopSource := d.startSource(ctx, errc)
	d.ready.Store(true)
	if d.cp != nil {
		d.cp.banner(d.banner)
		args := []any{"version", version.Version, "role", d.cfg.Role, "revision", d.Live().Revision,
			"api", d.cp.url, "socket", d.cfg.Socket, "ops", d.cfg.OpsListen, "state", d.store.Location(), "issuers", d.cp.issuers}
		if d.cp.selfSigned {
			args = append(args, "fingerprint", d.cp.fingerprint.String())
		}
		d.log.Info("stoad ready", args...)
		if d.cp.dev != nil {
			d.log.Warn("DEVELOPMENT ISSUER enabled: it mints cluster-admin tokens; never use --dev-issuer in production",
				"issuer", d.cp.url+devIssuerPath)
		}
	} else {
		d.log.Info("stoad ready", "version", version.Version, "revision", d.Live().Revision,
			"socket", d.cfg.Socket, "listen", d.cfg.Listen, "ops", d.cfg.OpsListen, "state", d.store.Location())
	}

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
				d.log.Info("SIGHUP: re-reading the configuration", "specs", d.cfg.SpecsDir, "bundle", d.cfg.Source.Bundle)
				d.reloadSource()
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
	stopSource()
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

// prepareRuntimes compiles rev in every runtime; it returns one function
// that swaps them all in, or the first error (nothing swapped). The
// runtimes compile at the same time (each reads rev and touches only its
// own state until it swaps); the swaps run in order.
func (d *Daemon) prepareRuntimes(rev *state.Revision, sp *tracing.Span) (func(), error) {
	swaps := make([]func(), len(d.runtimes))
	errs := make([]error, len(d.runtimes))
	var wg sync.WaitGroup
	for i, rt := range d.runtimes {
		wg.Go(func() {
			// A span per runtime under a sampled change's prepare: which
			// runtime took the time, or refused.
			var rsp tracing.Span
			if sp != nil && sp.Recording() {
				rsp = sp.StartChild("prepare "+rt.Name(), tracing.KindInternal)
				rsp.SetString(attrRuntime, rt.Name())
			}
			swap, err := rt.Prepare(rev)
			if err != nil {
				err = fmt.Errorf("%s: %w", rt.Name(), err)
				rsp.SetError("invalid", err.Error())
			}
			rsp.End()
			swaps[i], errs[i] = swap, err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return func() {
		for _, s := range swaps {
			s()
		}
	}, nil
}

func (d *Daemon) swapRuntimes(rev *state.Revision) error {
	swap, err := d.prepareRuntimes(rev, nil)
	if err != nil {
		return err
	}
	swap()
	d.live.Store(rev)
	return nil
}

// localAPIServer is the LocalAPI on its unix socket.
type localAPIServer struct {
	*localapi.Server
	ln   *unixsock.Listener
	addr string
}

func (l localAPIServer) Name() string { return "localapi" }
func (l localAPIServer) Addr() string { return l.addr }
func (l localAPIServer) Serve() error { return l.Server.Serve(l.ln) }

// newLocalAPI opens the LocalAPI socket: peers are known by their kernel
// credentials and admitted when they are root, stoad's user or in
// --socket-group.
func (d *Daemon) newLocalAPI() (localAPIServer, error) {
	ln, err := unixsock.Listen(d.cfg.Socket, d.cfg.SocketGroup, "--socket", d.log)
	if err != nil {
		return localAPIServer{}, err
	}
	srv := localapi.New(localapi.Options{Daemon: d, Services: d.services, Identity: localapi.UnixPeers{},
		Authorizer: localapi.SocketOwners{GID: ln.GID}})
	return localAPIServer{Server: srv, ln: ln, addr: d.cfg.Socket}, nil
}

// Status assembles `stoa status`.
func (d *Daemon) Status() api.Status {
	st := d.Live()
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
	if cp := d.cp; cp != nil {
		s.Role = RoleControlPlane
		s.StateDir = d.store.Location()
		s.Listeners = append(s.Listeners, api.Listener{Name: "api", Address: cp.url})
		if cp.dev != nil {
			s.Listeners = append(s.Listeners, api.Listener{Name: "dev-issuer", Address: cp.url + devIssuerPath})
			s.Warnings = append(s.Warnings, "DEVELOPMENT ISSUER at "+cp.url+devIssuerPath+" mints cluster-admin tokens: not for production (--dev-issuer)")
		}
	} else if d.shared {
		s.StateDir = d.store.Location()
	}
	for _, rt := range d.runtimes {
		c := rt.Status()
		s.Components = append(s.Components, c)
		if addr, ok := c.Data["address"].(string); ok && addr != "" {
			s.Listeners = append(s.Listeners, api.Listener{Name: c.Name, Address: addr})
		}
	}
	d.sourceStatus(&s)
	return s
}

// The rest of localapi.Daemon: history and events, read from the store.

// Revisions lists the newest revisions (at most limit; 0: all).
func (d *Daemon) Revisions(ctx context.Context, limit int) ([]store.Revision, error) {
	return store.ListRevisions(ctx, d.store, limit)
}

// RevisionInfo returns revision id with the references of its changes.
func (d *Daemon) RevisionInfo(ctx context.Context, id int64) (*store.Revision, error) {
	return store.RevisionInfo(ctx, d.store, id)
}

// Revision returns revision id with its changes.
func (d *Daemon) Revision(ctx context.Context, id int64) (*store.Revision, error) {
	return store.RevisionWithChanges(ctx, d.store, id)
}

// Events reads stored events after since, or the last ones.
func (d *Daemon) Events(ctx context.Context, since int64, last int) ([]api.Event, error) {
	return d.events.Read(ctx, since, last)
}

// FollowEvents streams new events.
func (d *Daemon) FollowEvents() (<-chan api.Event, func()) { return d.events.Subscribe() }
