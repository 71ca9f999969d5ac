package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// State is an upstream's health.
type State string

const (
	// StateStarting: the first session is being established.
	StateStarting State = "starting"
	// StateReady: calls go upstream.
	StateReady State = "ready"
	// StateDown: the upstream is unreachable, its process exited, or too
	// many calls timed out in a row; calls fail at once while it reconnects
	// (restarts) with backoff.
	StateDown State = "down"
	// StateStopped: Stop was called.
	StateStopped State = "stopped"
)

// Status reports an upstream's health for `stoa` status views and metrics.
type Status struct {
	Tenant    string
	Tool      string
	Transport Transport
	State     State
	// Since is when State was entered.
	Since time.Time
	// Protocol is the negotiated protocol version; Session reports whether
	// the upstream issued an Mcp-Session-Id.
	Protocol string
	Session  bool
	// Server is the upstream's serverInfo.name.
	Server string
	// LastError is the last failure (connect, call transport error, exit),
	// with detail meant for operators; LastErrorAt is when it happened.
	LastError   string
	LastErrorAt time.Time
	// Tools and Resources count the exposed entries.
	Tools     int
	Resources int
	// Restarts counts sessions (streamable-http) or processes (stdio)
	// started after the first.
	Restarts int
	// Reinitializations counts sessions re-created because the upstream
	// forgot one.
	Reinitializations int
	// PID is the stdio child's process id, 0 otherwise.
	PID int
	// Problems are naming and listing issues (sanitized names, collisions,
	// renames of unknown tools), each saying how to fix it.
	Problems []string
}

// Result is an upstream's CallToolResult.
type Result struct {
	// Raw is the result object exactly as the upstream sent it (content,
	// structuredContent, isError, _meta, ...).
	Raw json.RawMessage
	// IsError is the result's isError.
	IsError bool
}

// Upstream is one federated MCP server. Its methods are safe for concurrent
// use.
type Upstream struct {
	opts Options
	log  *slog.Logger
	t    transport
	key  string

	cfg  atomic.Pointer[Config]
	view atomic.Pointer[view]
	// ready is the fast-path health check of Call; gen identifies the
	// session a call ran on, so a late failure of an old session cannot
	// mark a new one down.
	ready          atomic.Bool
	gen            atomic.Uint64
	consecFailures atomic.Int32

	mu        sync.Mutex
	state     State
	since     time.Time
	hs        handshake
	lastErr   string
	lastCause error
	lastErrAt time.Time
	restarts  int
	reinits   int
	onChange  func()
	raw       rawLists
	started   bool

	kick    chan kickMsg
	refresh chan struct{}
	first   chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

type kickMsg struct {
	gen uint64
	err error
}

// rawLists are the upstream's lists before filtering.
type rawLists struct {
	tools     []wireTool
	resources []wireResource
	truncated bool
}

// New builds an upstream from a valid configuration. Nothing is contacted
// or started before Start.
func New(cfg Config, opts Options) (*Upstream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u := &Upstream{
		opts:    opts,
		key:     cfg.Key(),
		state:   StateStarting,
		since:   time.Now(),
		kick:    make(chan kickMsg, 1),
		refresh: make(chan struct{}, 1),
		first:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	u.log = logger(opts.Logger).With("tenant", cfg.Tenant, "tool", cfg.Tool, "transport", string(cfg.Transport))
	c := cfg
	u.cfg.Store(&c)
	u.view.Store(emptyView)
	own := cfg // the transport's copy: only session fields are read from it
	hk := hooks{
		notify: u.notified,
		down:   func(err error) { u.markDown(u.gen.Load(), err) },
		resync: u.requestRefresh,
		reinit: func() { u.mu.Lock(); u.reinits++; u.mu.Unlock() },
		log:    u.log,
	}
	switch cfg.Transport {
	case TransportHTTP:
		u.t = newHTTPTransport(&own, &u.opts, hk)
	case TransportStdio:
		u.t = newStdioTransport(&own, &u.opts, hk)
	}
	return u, nil
}

// Config returns the upstream's configuration.
func (u *Upstream) Config() Config { return *u.cfg.Load() }

// OnChange sets fn to be called (on its own goroutine, never concurrently
// with itself for one upstream... at most once per change) whenever the
// exposed tools or resources change: after a list_changed notification, a
// reconnect that found different lists, or a filter change. It may fire
// during Start. The daemon rebuilds the tenant's catalog in it.
func (u *Upstream) OnChange(fn func()) {
	u.mu.Lock()
	u.onChange = fn
	u.mu.Unlock()
}

// Start connects (or starts the process) and waits until the first attempt
// finished or ctx is done. An upstream that is down at Start is not an
// error: it keeps retrying in the background (Status says why), its tools
// appear when it comes up (OnChange), and until then it has none.
func (u *Upstream) Start(ctx context.Context) error {
	u.mu.Lock()
	if u.started {
		u.mu.Unlock()
		return errors.New("start mcp upstream " + u.key + ": already started")
	}
	u.started = true
	runCtx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	u.mu.Unlock()
	go u.refresher(runCtx)
	go u.run(runCtx)
	select {
	case <-u.first:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop ends the session (DELETE for a legacy HTTP session) or the process
// (close stdin, SIGTERM, SIGKILL to its process group) and waits for the
// background work to end, at most until ctx is done.
func (u *Upstream) Stop(ctx context.Context) error {
	u.mu.Lock()
	if !u.started || u.state == StateStopped {
		u.state = StateStopped
		u.mu.Unlock()
		return nil
	}
	u.state, u.since = StateStopped, time.Now()
	cancel := u.cancel
	u.mu.Unlock()
	u.ready.Store(false)
	cancel()
	u.t.close(ctx)
	select {
	case <-u.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop mcp upstream %s: %w", u.key, ctx.Err())
	}
}

// run is the supervisor: connect, serve until the session breaks, back off,
// reconnect.
func (u *Upstream) run(ctx context.Context) {
	defer close(u.done)
	initial, maxWait, stable := u.opts.backoff()
	attempt, attempts := 0, 0
	firstDone := false
	defer func() {
		if !firstDone { // stopped during the first attempt: release Start
			close(u.first)
		}
	}()
	for ctx.Err() == nil {
		select { // drop signals about the previous session
		case <-u.kick:
		default:
		}
		if attempts > 0 {
			u.mu.Lock()
			u.restarts++
			u.mu.Unlock()
		}
		attempts++
		hs, err := u.connect(ctx)
		if ctx.Err() != nil {
			return
		}
		var gen uint64
		if err != nil {
			u.setDown(err)
		} else {
			gen = u.setReady(hs)
		}
		if !firstDone {
			// Start returns once the first attempt's outcome is visible.
			firstDone = true
			close(u.first)
		}
		if err != nil {
			attempt++
		} else {
			upAt := time.Now()
			var down kickMsg
			for down.gen != gen {
				select {
				case <-ctx.Done():
					return
				case down = <-u.kick:
				}
			}
			u.setDown(down.err)
			if time.Since(upAt) >= stable {
				attempt = 0
			}
			attempt++
		}
		d := min(initial<<min(attempt-1, 20), maxWait)
		d = d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1)) // ±25 %
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// connect establishes a session and loads the lists.
func (u *Upstream) connect(ctx context.Context) (handshake, error) {
	cfg := u.cfg.Load()
	cctx, cancel := context.WithTimeout(ctx, cfg.connectTimeout())
	hs, err := u.t.connect(cctx)
	cancel()
	if err != nil {
		return hs, err
	}
	u.mu.Lock()
	u.hs = hs
	u.mu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	if err := u.loadLists(lctx, true, true); err != nil {
		return hs, err
	}
	return hs, nil
}

func (u *Upstream) setReady(hs handshake) uint64 {
	gen := u.gen.Add(1)
	u.consecFailures.Store(0)
	u.mu.Lock()
	u.state, u.since = StateReady, time.Now()
	u.mu.Unlock()
	u.ready.Store(true)
	u.log.Info("mcp upstream ready", "protocol", hs.version, "session", hs.sessionID, "server", hs.serverName,
		"tools", len(u.view.Load().tools), "pid", u.t.pid())
	return gen
}

func (u *Upstream) setDown(err error) {
	u.ready.Store(false)
	u.mu.Lock()
	if u.state != StateStopped {
		if u.state != StateDown {
			u.since = time.Now()
		}
		u.state = StateDown
	}
	u.lastErr, u.lastCause, u.lastErrAt = err.Error(), err, time.Now()
	u.mu.Unlock()
	u.log.Warn("mcp upstream down", "error", err.Error())
}

// markDown reports a broken session gen; ignored if a newer session is up.
func (u *Upstream) markDown(gen uint64, err error) {
	if gen != u.gen.Load() {
		return
	}
	u.ready.Store(false)
	select {
	case u.kick <- kickMsg{gen, err}:
	default:
	}
}

// notified handles an upstream notification.
func (u *Upstream) notified(method string) {
	switch method {
	case "notifications/tools/list_changed", "notifications/resources/list_changed":
		u.requestRefresh()
	}
}

func (u *Upstream) requestRefresh() {
	select {
	case u.refresh <- struct{}{}:
	default: // one is pending: it will see the newest lists
	}
}

// refresher reloads the lists on request, one refresh at a time.
func (u *Upstream) refresher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.refresh:
		}
		if !u.ready.Load() {
			continue // the next connect loads the lists anyway
		}
		lctx, cancel := context.WithTimeout(ctx, u.cfg.Load().timeout())
		err := u.loadLists(lctx, true, true)
		cancel()
		if err != nil && ctx.Err() == nil {
			u.log.Warn("mcp upstream list refresh failed", "error", err.Error())
		}
	}
}

// loadLists fetches the upstream's lists and installs the new view.
func (u *Upstream) loadLists(ctx context.Context, tools, resources bool) error {
	cfg := u.cfg.Load()
	u.mu.Lock()
	raw := u.raw
	hs := u.hs
	u.mu.Unlock()
	limit := u.opts.maxTools()
	if tools {
		list, trunc, err := listAll[wireTool](ctx, u.t, "tools/list", "tools", limit)
		if err != nil {
			return err
		}
		raw.tools, raw.truncated = list, trunc
	}
	if resources && cfg.Resources.Expose && hs.resources {
		list, trunc, err := listAll[wireResource](ctx, u.t, "resources/list", "resources", limit)
		if err != nil {
			return err
		}
		raw.resources, raw.truncated = list, raw.truncated || trunc
	}
	u.mu.Lock()
	u.raw = raw
	u.mu.Unlock()
	u.rebuild()
	return nil
}

// rebuild recomputes the view from the raw lists and the current filters,
// and fires OnChange when it changed.
func (u *Upstream) rebuild() {
	v := u.viewWith(u.cfg.Load())
	old := u.view.Swap(v)
	for _, p := range v.problems {
		if !contains(old.problems, p) {
			u.log.Warn("mcp upstream problem", "problem", p)
		}
	}
	if old.digest != v.digest {
		u.mu.Lock()
		fn := u.onChange
		u.mu.Unlock()
		if fn != nil {
			go fn()
		}
	}
}

// viewWith is what the upstream would expose under cfg (same session,
// other filters or renames), without changing anything.
func (u *Upstream) viewWith(cfg *Config) *view {
	u.mu.Lock()
	raw := u.raw
	u.mu.Unlock()
	return buildView(cfg, append([]wireTool(nil), raw.tools...), append([]wireResource(nil), raw.resources...), raw.truncated, u.opts.maxTools())
}

// reconfigure applies a configuration that differs from the current one
// only in what is read per list or call (filters, renames, timeout).
func (u *Upstream) reconfigure(cfg Config) {
	u.cfg.Store(&cfg)
	u.rebuild()
}

// Tools returns the exposed tools sorted by Name. The slice is shared: do
// not modify it.
func (u *Upstream) Tools() []Tool { return u.view.Load().tools }

// Resources returns the exposed resources sorted by upstream URI (none
// unless Resources.Expose). The slice is shared: do not modify it.
func (u *Upstream) Resources() []Resource { return u.view.Load().resources }

// Tool returns the exposed tool whose upstream name is upstreamName.
func (u *Upstream) Tool(upstreamName string) (*Tool, bool) {
	t, ok := u.view.Load().byUpstream[upstreamName]
	return t, ok
}

// Status reports the upstream's health.
func (u *Upstream) Status() Status {
	cfg := u.cfg.Load()
	v := u.view.Load()
	u.mu.Lock()
	defer u.mu.Unlock()
	return Status{
		Tenant: cfg.Tenant, Tool: cfg.Tool, Transport: cfg.Transport,
		State: u.state, Since: u.since,
		Protocol: u.hs.version, Session: u.hs.sessionID, Server: u.hs.serverName,
		LastError: u.lastErr, LastErrorAt: u.lastErrAt,
		Tools: len(v.tools), Resources: len(v.resources),
		Restarts: u.restarts, Reinitializations: u.reinits,
		PID:      u.t.pid(),
		Problems: append([]string(nil), v.problems...),
	}
}

var errSecretControl = errors.New("secretRef: the secret contains a control character (CR, LF or NUL)")
