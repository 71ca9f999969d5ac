// Package limitsrt is stoad's rate-limit runtime: it holds the limiter the
// proxy and MCP check every call against, and follows the Gateway's
// limits.backend from revision to revision. With the local backend that
// is the process' own sharded GCRA (pkg/limits); with redis it is
// pkg/limits/redislimit's Limiter, and the runtime also makes quotas
// fleet-wide (redislimit.Counters through quota.Admission.Share), shares
// the XDP blocks this data plane decides and applies the others'
// (redislimit.Blocks), and counts the live data planes (redislimit.Peers)
// that the failure modes divide limits by.
package limitsrt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/limits/redislimit"
	"github.com/stoa-gateway/stoa/pkg/quota"
	"github.com/stoa-gateway/stoa/pkg/secret"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/xdp"
)

// QuotaSharer makes quotas fleet-wide (*quota.Admission).
type QuotaSharer interface {
	Share(s quota.Shared, o quota.SharedOptions) (stop func())
}

// BlockSharer is the XDP runtime (*xdprt.Runtime): it hands over the
// blocks it decides and applies the fleet's.
type BlockSharer interface {
	ShareBlocks(fn func(xdp.Block))
	BlockFromFleet(prefix netip.Prefix, until time.Time, reason, origin string) error
}

// Options configure a Runtime.
type Options struct {
	// Local is the process' own limiter: the local backend, and swept
	// by this runtime.
	Local  *limits.Limiter
	Events *events.Log
	Log    *slog.Logger
	// Quotas and Blocks, when set, are shared with the fleet while the
	// backend is redis.
	Quotas QuotaSharer
	Blocks BlockSharer
	// Origin names this data plane to the others (blocks it shares,
	// heartbeats); default host name plus a random suffix, unique per
	// process.
	Origin string
}

// Runtime is the "limits" runtime. Checker is the limiter to hand to the
// proxy: it stays the same object while the backend behind it changes.
type Runtime struct {
	o       Options
	sw      Switch
	sweeper *limits.Sweeper
	log     *slog.Logger

	mu     sync.Mutex
	cur    *backend // nil: the local backend
	closed sync.WaitGroup

	// Counts of backends already closed, so that the exported counters
	// do not go back when a reload replaces the backend.
	base                struct{ calls, syncCalls, errors, outages uint64 }
	published, received atomic.Uint64
	publishErrors       atomic.Uint64
}

// New returns the runtime, serving the local backend until a revision
// says otherwise.
func New(o Options) *Runtime {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Origin == "" {
		o.Origin = defaultOrigin()
	}
	r := &Runtime{o: o, sweeper: limits.NewSweeper(o.Local), log: o.Log.With("component", "limits")}
	r.sw.set(o.Local)
	return r
}

func defaultOrigin() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "stoad"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return h + "-" + hex.EncodeToString(b[:])
}

// Checker is the limiter the proxy and MCP check calls against.
func (r *Runtime) Checker() limits.Checker { return &r.sw }

// Origin is this data plane's name in the fleet.
func (r *Runtime) Origin() string { return r.o.Origin }

// Switch is a limits.Checker whose backend can be replaced while calls
// go through it: one atomic load per call.
type Switch struct {
	p atomic.Pointer[holder]
}

type holder struct{ c limits.Checker }

func (s *Switch) set(c limits.Checker) { s.p.Store(&holder{c: c}) }

// AllowAll implements limits.Checker with the current backend.
func (s *Switch) AllowAll(keys []limits.Key, lims []limits.Limit) limits.Decision {
	return s.p.Load().c.AllowAll(keys, lims)
}

func (r *Runtime) Name() string { return "limits" }

// config is a revision's backend, compiled: comparable, so that a reload
// that leaves it alone keeps the live backend (and its leases).
type config struct {
	redis bool
	// What the backend is built from; key identifies it (secrets and
	// CA contents included, never printed).
	key      string
	addr     string
	conn     redislimit.Conn
	opts     redislimit.Options
	failMode redislimit.FailMode
	prefix   string
}

// Prepare compiles the Gateway's limits.backend and spec.redis: the
// password is read and the CA file loaded here, so that a revision
// naming an unreadable secret is refused, and nothing is dialled (a dry
// run must not connect).
func (r *Runtime) Prepare(rev *state.Revision) (func(), error) {
	cfg, err := compile(rev.Gateway())
	if err != nil {
		return nil, err
	}
	return func() { r.swap(cfg) }, nil
}

func compile(gw *spec.GatewaySpec) (config, error) {
	if gw.LimitsBackend() != "redis" || gw.Redis == nil {
		return config{key: "local"}, nil
	}
	rc := gw.Redis
	c := config{redis: true, prefix: rc.Prefix}
	conn := redislimit.Conn{Addr: rc.Address, DB: rc.DB, Username: rc.Username, DialTimeout: rc.DialTimeout.D()}
	if s := rc.Sentinel; s != nil && len(s.Addresses) > 0 {
		conn.Addr, conn.MoreAddrs, conn.SentinelMaster = s.Addresses[0], s.Addresses[1:], s.Master
	}
	var pw, ca string
	if rc.Password != nil {
		v, err := secret.Read(rc.Password.SecretRef)
		if err != nil {
			return config{}, fmt.Errorf("read spec.redis.password: %w (set it in stoad's environment or file, then apply again)", err)
		}
		conn.Password = v
		pw = v
	}
	if rc.TLS {
		host, _, err := net.SplitHostPort(conn.Addr)
		if err != nil {
			host = conn.Addr
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
		if rc.CAFile != "" {
			b, err := os.ReadFile(rc.CAFile)
			if err != nil {
				return config{}, fmt.Errorf("read spec.redis.caFile: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				return config{}, fmt.Errorf("read spec.redis.caFile %s: no PEM certificate in it (want the CA that signs Redis' certificate)", rc.CAFile)
			}
			tc.RootCAs = pool
			ca = string(b)
		}
		conn.TLS = tc
	}
	c.conn, c.addr = conn, conn.Addr
	c.failMode = redislimit.FailOpen
	if rc.FailMode == "closed" {
		c.failMode = redislimit.FailClosed
	}
	lw := rc.LeaseWindow.D()
	if !rc.LeaseWindow.IsZero() && lw == 0 {
		lw = -1 // written 0s: no leases, every request asks Redis
	}
	c.opts = redislimit.Options{Conn: conn, Prefix: rc.Prefix, FailMode: c.failMode, LeaseWindow: lw,
		Accuracy: rc.Accuracy, LeaseTTL: rc.LeaseTTL.D(), Timeout: rc.Timeout.D()}
	c.key = fmt.Sprintf("redis\x00%s\x00%s\x00%q\x00%d\x00%s\x00%s\x00%v\x00%s\x00%s\x00%s\x00%v\x00%s\x00%s\x00%s\x00%s",
		conn.Addr, conn.SentinelMaster, conn.MoreAddrs, conn.DB, conn.Username, pw, rc.TLS, ca, rc.Prefix, rc.FailMode,
		rc.Accuracy, rc.LeaseWindow, rc.LeaseTTL, rc.Timeout, rc.DialTimeout)
	return c, nil
}

// backend is the redis backend's parts and goroutines.
type backend struct {
	cfg      config
	lim      *redislimit.Limiter
	counters *redislimit.Counters
	blocks   *redislimit.Blocks
	peers    *redislimit.Peers
	outbox   chan xdp.Block

	stopQuota func()
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// swap puts cfg's backend behind the Checker, unless it is the live one.
// The old backend's quota exchange stops first (one at a time), the rest
// of it is closed in the background: its unspent tokens go back to Redis.
func (r *Runtime) swap(cfg config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur
	if (old == nil && !cfg.redis) || (old != nil && old.cfg.key == cfg.key) {
		return
	}
	if old != nil {
		if old.stopQuota != nil {
			old.stopQuota()
		}
		if r.o.Blocks != nil {
			r.o.Blocks.ShareBlocks(nil)
		}
	}
	var nb *backend
	if cfg.redis {
		// redislimit.New dials once (bounded by dialTimeout) and, when
		// Redis is not there, starts in its failure mode and keeps
		// trying: stoad serves either way.
		nb = r.start(cfg)
		r.sw.set(nb.lim)
	} else {
		r.sw.set(r.o.Local)
	}
	r.cur = nb
	if old != nil {
		st := old.lim.Status()
		r.base.calls += st.Calls
		r.base.syncCalls += st.SyncCalls
		r.base.errors += st.Errors
		r.base.outages += st.Outages
		r.closed.Add(1)
		go func() {
			defer r.closed.Done()
			old.close()
		}()
	}
	switch {
	case nb != nil && old == nil:
		r.emit("limits.backend", fmt.Sprintf("rate limits and quotas are shared through redis %s (fail %s)", cfg.addr, cfg.failMode),
			map[string]any{"backend": "redis", "addr": cfg.addr, "failMode": cfg.failMode.String(), "origin": r.o.Origin})
	case nb != nil:
		r.emit("limits.backend", fmt.Sprintf("shared limits now go through redis %s (fail %s)", cfg.addr, cfg.failMode),
			map[string]any{"backend": "redis", "addr": cfg.addr, "failMode": cfg.failMode.String(), "origin": r.o.Origin})
	default:
		r.emit("limits.backend", "rate limits and quotas are counted by this stoad alone (local backend)",
			map[string]any{"backend": "local"})
	}
}

func (r *Runtime) emit(typ, msg string, data map[string]any) {
	r.log.Info(msg, "event", typ)
	if r.o.Events != nil {
		r.o.Events.Emit(typ, "", msg, data)
	}
}

// start builds and starts a redis backend.
func (r *Runtime) start(cfg config) *backend {
	b := &backend{cfg: cfg, outbox: make(chan xdp.Block, 256)}
	b.peers = redislimit.NewPeers(redislimit.PeersOptions{Conn: cfg.conn, Prefix: cfg.prefix, ID: r.o.Origin})
	opts := cfg.opts
	opts.Peers = b.peers.Count
	opts.OnEvent = func(e redislimit.Event) { r.redisEvent(cfg, b, e) }
	b.lim = redislimit.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		_ = b.peers.Run(ctx)
	}()
	if r.o.Quotas != nil {
		b.counters = redislimit.NewCounters(redislimit.CountersOptions{Conn: cfg.conn, Prefix: cfg.prefix})
		b.stopQuota = r.o.Quotas.Share(b.counters, quota.SharedOptions{Peers: b.peers.Count,
			FailClosed: cfg.failMode == redislimit.FailClosed,
			OnChange:   func(err error) { r.quotaEvent(cfg, err) }})
	}
	if r.o.Blocks != nil {
		b.blocks = redislimit.NewBlocks(redislimit.BlocksOptions{Conn: cfg.conn, Prefix: cfg.prefix, Origin: r.o.Origin,
			OnError: func(err error) { r.log.Warn("shared blocks", "err", err) }})
		b.wg.Add(2)
		go func() {
			defer b.wg.Done()
			_ = b.blocks.Subscribe(ctx, func(blk redislimit.Block) {
				r.received.Add(1)
				if err := r.o.Blocks.BlockFromFleet(blk.Prefix, blk.Until, blk.Reason, blk.Origin); err != nil {
					r.log.Warn("apply a block shared by another data plane", "source", blk.Prefix, "origin", blk.Origin, "err", err)
				}
			})
		}()
		go func() {
			defer b.wg.Done()
			r.publish(ctx, b)
		}()
		r.o.Blocks.ShareBlocks(func(blk xdp.Block) {
			select {
			case b.outbox <- blk:
			default:
				r.publishErrors.Add(1)
				r.log.Warn("a block was not shared with the fleet: too many waiting to be published", "source", blk.Prefix)
			}
		})
	}
	return b
}

// publish sends the blocks this data plane decides to the fleet. A block
// that cannot be published (Redis lost) is retried until it has ended.
func (r *Runtime) publish(ctx context.Context, b *backend) {
	for {
		select {
		case <-ctx.Done():
			return
		case blk := <-b.outbox:
			reason := blk.Reason
			if len(reason) > 200 {
				reason = reason[:200]
			}
			for ctx.Err() == nil && time.Now().Before(blk.Until) {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := b.blocks.Publish(pctx, redislimit.Block{Prefix: blk.Prefix, Until: blk.Until, Reason: reason})
				cancel()
				if err == nil {
					r.published.Add(1)
					break
				}
				r.publishErrors.Add(1)
				r.log.Warn("share a block with the fleet", "source", blk.Prefix, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}
}

// close stops a backend's goroutines and returns its tokens.
func (b *backend) close() {
	b.cancel()
	b.wg.Wait()
	_ = b.lim.Close()
	b.peers.Close()
	if b.counters != nil {
		b.counters.Close()
	}
	if b.blocks != nil {
		b.blocks.Close()
	}
}

func (r *Runtime) redisEvent(cfg config, b *backend, e redislimit.Event) {
	data := map[string]any{"addr": e.Addr, "failMode": e.FailMode, "origin": r.o.Origin}
	switch e.Type {
	case redislimit.EventDown:
		data["error"] = e.Error
		msg := fmt.Sprintf("shared limits: redis %s unreachable (%s); ", e.Addr, e.Error)
		if cfg.failMode == redislimit.FailClosed {
			msg += "failing closed: calls not covered by tokens already held get 503"
		} else {
			n := b.peers.Count()
			msg += fmt.Sprintf("failing open: each of %d data planes enforces 1/%d of every limit", n, n)
		}
		r.emit("limits.redis-down", msg, data)
	case redislimit.EventUp:
		data["outage"] = e.Outage.String()
		r.emit("limits.redis-up", fmt.Sprintf("shared limits: redis %s is back after %s; limits are shared again", e.Addr, e.Outage.Round(time.Millisecond)), data)
	}
}

func (r *Runtime) quotaEvent(cfg config, err error) {
	if err != nil {
		how := "each data plane spends what was left of a quota as if the others spent as fast"
		if cfg.failMode == redislimit.FailClosed {
			how = "calls under a quota get 503 (fail closed)"
		}
		r.emit("quota.shared-down", fmt.Sprintf("shared quotas: redis %s unreachable (%v); %s", cfg.addr, err, how),
			map[string]any{"addr": cfg.addr, "error": err.Error(), "failMode": cfg.failMode.String()})
		return
	}
	r.emit("quota.shared-up", fmt.Sprintf("shared quotas: redis %s is back; quotas are counted fleet-wide again", cfg.addr),
		map[string]any{"addr": cfg.addr})
}

// Start sweeps the local limiter's idle keys.
func (r *Runtime) Start(ctx context.Context) error { return r.sweeper.Start(ctx) }

// Stop closes the redis backend (its tokens go back) and stops sweeping.
func (r *Runtime) Stop(ctx context.Context) error {
	r.mu.Lock()
	b := r.cur
	r.cur = nil
	r.sw.set(r.o.Local)
	r.mu.Unlock()
	if b != nil {
		if b.stopQuota != nil {
			b.stopQuota()
		}
		if r.o.Blocks != nil {
			r.o.Blocks.ShareBlocks(nil)
		}
		b.close()
	}
	r.closed.Wait()
	return r.sweeper.Stop(ctx)
}

// Status is the runtime's line in `stoa status`.
func (r *Runtime) Status() api.Component {
	r.mu.Lock()
	b := r.cur
	r.mu.Unlock()
	if b == nil {
		c := r.sweeper.Status()
		c.Detail = "local: " + c.Detail
		c.Data = map[string]any{"backend": "local"}
		return c
	}
	st := b.lim.Status()
	c := api.Component{Name: "limits", State: "ok", Data: map[string]any{"backend": "redis", "redis": st, "origin": r.o.Origin,
		"blocksPublished": r.published.Load(), "blocksReceived": r.received.Load()}}
	if st.State == "down" {
		c.State = "degraded"
		c.Detail = fmt.Sprintf("redis %s UNREACHABLE since %s (%s); ", st.Addr, st.Since.Local().Format(time.DateTime), st.LastError)
		if b.cfg.failMode == redislimit.FailClosed {
			c.Detail += "failing closed: calls not covered by held tokens get 503"
		} else {
			c.Detail += fmt.Sprintf("failing open: this data plane enforces 1/%d of every limit", st.Peers)
		}
		return c
	}
	c.Detail = fmt.Sprintf("redis %s (fail %s), %d data plane%s, %d keys leased, %d tokens held", st.Addr, st.FailMode,
		st.Peers, plural(st.Peers), st.Keys, st.Tokens)
	return c
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
