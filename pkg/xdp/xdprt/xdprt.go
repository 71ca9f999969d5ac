// Package xdprt drives the XDP limiter (pkg/xdp) as one of stoad's
// runtimes: the Gateway spec's xdp block compiled per revision,
// escalation of repeat L7 offenders into kernel blocks, operators' blocks,
// and an event for every block and unblock.
package xdprt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/limits"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/xdp"
)

// Runtime drives the XDP limiter (pkg/xdp) from the Gateway spec's xdp
// block: Prepare compiles and checks the block, swap applies it (the maps
// change in place), Stop detaches. Where XDP cannot run, the Limiter's
// userspace fallback enforces the same config on the proxy's listener
// (WrapListener). It also owns escalation: the proxy reports every 429 to
// OnReject, an Escalator counts them per source, and repeat offenders are
// blocked in the kernel for the cool-down. Every block and unblock becomes
// an xdp.block / xdp.unblock event.
type Runtime struct {
	listen string      // the proxy's --listen: its port is protected by default
	store  store.Store // where runtime blocks outlive a restart; nil: nowhere
	l      *xdp.Limiter
	log    *slog.Logger

	mu       sync.Mutex
	plan     *xdpPlan // the live revision's; nil before the first swap
	applyErr string   // why the last swap could not apply its plan

	esc    atomic.Pointer[escalator]
	escPol escalation // the Escalator's policy; guarded by mu

	opMu   sync.Mutex // one attributed block change at a time
	pendMu sync.Mutex
	pend   *blockOrigin // who is changing which block, for onBlockChange

	events *eventQueue
}

// xdpPlan is a Gateway xdp block compiled for the Limiter.
type xdpPlan struct {
	enabled   bool
	cfg       xdp.Config
	perSource spec.Rate // as written, for status
	esc       escalation
}

// escalation is the L7 → kernel escalation policy; after 0 means off.
// Rejections are counted, and blocks made, per v4Bits / v6Bits prefix of
// the source (32 and 64 by default).
type escalation struct {
	after          int
	within, block  time.Duration
	v4Bits, v6Bits int
}

func (e escalation) String() string {
	return fmt.Sprintf("after %d rejections within %s, block for %s, per IPv4 /%d and IPv6 /%d", e.after, e.within, e.block, e.v4Bits, e.v6Bits)
}

// prefix is the block, and the counting key, that src falls in. Zero
// lengths mean the spec's defaults, never /0.
func (e escalation) prefix(src netip.Addr) netip.Prefix {
	src = src.Unmap()
	v4, v6 := (&spec.Escalation{IPv4PrefixLength: e.v4Bits, IPv6PrefixLength: e.v6Bits}).PrefixLengths()
	bits := v6
	if src.Is4() {
		bits = v4
	}
	p, _ := src.Prefix(bits)
	return p
}

// escalator is the live Escalator with the policy it was built from.
type escalator struct {
	*limits.Escalator
	pol escalation
}

// Options configure a Runtime.
type Options struct {
	// Listen is the proxy's listen address: its port is the one protected
	// when spec.xdp.ports names none.
	Listen  string
	Events  *events.Log
	Metrics prometheus.Registerer
	Log     *slog.Logger
	// Store keeps the runtime blocks (operators' and escalations') so
	// that a restart neither lifts nor lengthens them. Nil keeps them in
	// memory only.
	Store store.Store
}

// New builds the runtime and registers the limiter's collector.
func New(o Options) *Runtime {
	log := o.Log.With("component", "xdp")
	r := &Runtime{listen: o.Listen, store: o.Store, l: xdp.New(log), log: log, events: newEventQueue(o.Events)}
	r.l.OnBlockChange(r.onBlockChange)
	o.Metrics.MustRegister(r.l.Collector())
	return r
}

func (r *Runtime) Name() string { return "xdp" }

// WrapListener limits the proxy's listener at accept time while XDP is
// off; while XDP is attached it passes connections straight on.
func (r *Runtime) WrapListener(ln net.Listener) net.Listener { return r.l.Wrap(ln) }

// OnReject is the proxy's OnReject: one 429 for src, counted for its
// escalation prefix (its /64, by default, for IPv6).
func (r *Runtime) OnReject(src netip.Addr) {
	if e := r.esc.Load(); e != nil {
		e.Reject(e.pol.prefix(src).Addr())
	}
}

// Prepare compiles the Gateway's xdp block and checks, without changing
// anything, that the Limiter can apply it; the swap applies it.
func (r *Runtime) Prepare(st *state.Revision) (func(), error) {
	p, err := r.compile(st.Gateway())
	if err != nil {
		return nil, err
	}
	if err := r.l.Check(p.cfg); err != nil {
		return nil, err
	}
	return func() { r.swap(p) }, nil
}

func (r *Runtime) swap(p *xdpPlan) {
	err := r.l.Apply(p.cfg)
	// ErrUnsupported with nothing attached: the fallback enforces p.cfg
	// and Status says why. Any other failure — Check caught what it could;
	// what is left is, say, a driver refusing native mode — leaves the
	// previous config in force.
	failed := err != nil && !(errors.Is(err, xdp.ErrUnsupported) && r.l.Status().Fallback)
	r.mu.Lock()
	defer r.mu.Unlock()
	if failed {
		r.applyErr = err.Error()
		r.log.Error("xdp: could not apply the new config; the previous one stays in force", "err", err)
		r.events.push("xdp.error", "xdp: the previous config stays in force: "+err.Error(), map[string]any{"error": err.Error()})
		return
	}
	r.plan = p
	r.applyErr = ""
	if p.esc != r.escPol {
		r.escPol = p.esc
		if p.esc.after <= 0 {
			r.esc.Store(nil)
		} else {
			pol := p.esc
			r.esc.Store(&escalator{pol: pol, Escalator: limits.NewEscalator(limits.EscalatorOptions{
				After: pol.after, Within: pol.within, Block: pol.block,
				OnEscalate: func(src netip.Addr, n int) { r.escalate(src, n, pol) },
			})})
		}
	}
}

// compile turns the Gateway's xdp block into a Limiter config.
func (r *Runtime) compile(gw *spec.GatewaySpec) (*xdpPlan, error) {
	p := &xdpPlan{}
	if gw == nil || gw.XDP == nil || !gw.XDP.Enabled {
		return p, nil // xdp.Config{}: nothing attached, the fallback limits nothing
	}
	x := gw.XDP
	p.enabled = true
	// The Gateway is defaulted: interfaces, mode, count and the burst are set.
	p.cfg = xdp.Config{Interfaces: x.Interfaces, Mode: xdp.Mode(x.Mode), Count: xdp.Count(x.Count)}
	if !x.PerSource.IsZero() {
		p.cfg.Rate = x.PerSource.PerSecond()
		burst := x.PerSource.EffectiveBurst()
		if burst < 1 || int64(burst) > math.MaxUint32 {
			return nil, fmt.Errorf("spec.xdp.perSource.burst %d must be 1 to %d", burst, uint32(math.MaxUint32))
		}
		p.cfg.Burst = uint32(burst)
		p.perSource = x.PerSource.Rate
	}
	for _, port := range x.Ports {
		if port < 1 || port > 65535 {
			return nil, fmt.Errorf("spec.xdp.ports: invalid port %d", port)
		}
		p.cfg.Ports = append(p.cfg.Ports, uint16(port))
	}
	if len(p.cfg.Ports) == 0 {
		port, err := listenPort(r.listen)
		if err != nil {
			return nil, err
		}
		p.cfg.Ports = []uint16{port}
	}
	for _, c := range x.Deny {
		pfx, err := ParseSource(c)
		if err != nil {
			return nil, fmt.Errorf("spec.xdp.deny: %w", err)
		}
		p.cfg.Deny = append(p.cfg.Deny, pfx)
	}
	if e := x.Escalation; e != nil && e.After > 0 {
		within, block := e.Within.D(), e.Block.D()
		if within <= 0 {
			return nil, fmt.Errorf("spec.xdp.escalation.within %q must be a positive duration", e.Within)
		}
		if block <= 0 {
			return nil, fmt.Errorf("spec.xdp.escalation.block %q must be a positive duration", e.Block)
		}
		v4, v6 := e.PrefixLengths()
		if v4 < 16 || v4 > 32 || v6 < 32 || v6 > 128 {
			return nil, fmt.Errorf("spec.xdp.escalation: prefix lengths /%d (IPv4) and /%d (IPv6) must be 16 to 32 and 32 to 128", v4, v6)
		}
		p.esc = escalation{after: e.After, within: within, block: block, v4Bits: v4, v6Bits: v6}
	}
	if err := p.cfg.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// listenPort is the port of the proxy's --listen address, the default
// protected port.
func listenPort(listen string) (uint16, error) {
	_, ps, err := net.SplitHostPort(listen)
	if err == nil {
		var n uint64
		if n, err = strconv.ParseUint(ps, 10, 16); err == nil && n != 0 {
			return uint16(n), nil
		}
	}
	return 0, fmt.Errorf("spec.xdp.ports: --listen %q has no fixed port to protect; list the ports in spec.xdp.ports", listen)
}

// ParseSource parses a CIDR, or a single address as its /32 or /128.
func ParseSource(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (198.51.100.0/24, 2001:db8::/48) or an address", s)
}

// CanonicalSource is the Limiter's spelling of p: masked, IPv4-mapped
// prefixes as IPv4.
func CanonicalSource(p netip.Prefix) netip.Prefix {
	a := p.Addr().WithZone("")
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return netip.PrefixFrom(a, p.Bits()).Masked()
}

// Start puts back the runtime blocks of the last run (the revision's XDP
// config is applied already; the proxy starts listening after this).
func (r *Runtime) Start(ctx context.Context) error {
	r.restoreBlocks(ctx)
	return nil
}

// Stop detaches the program (the kernel would on exit anyway) and flushes
// the block events.
func (r *Runtime) Stop(context.Context) error {
	err := r.l.Close()
	r.events.close()
	return err
}

// escalate blocks src's escalation prefix in the kernel for the cool-down,
// unless a block at least as long already covers it (an operator's longer
// block is never shortened).
func (r *Runtime) escalate(src netip.Addr, n int, pol escalation) {
	pfx := pol.prefix(src)
	until := time.Now().Add(pol.block)
	for _, b := range r.l.Blocks() {
		if b.Prefix.Bits() <= pfx.Bits() && b.Prefix.Contains(pfx.Addr()) && !b.Until.Before(until) {
			return
		}
	}
	reason := fmt.Sprintf("escalated: %d rejections in %s", n, pol.within)
	_, err := r.attributed(blockOrigin{prefix: pfx, added: true, by: "escalation", actor: "stoad",
		extra: map[string]any{"rejections": n, "within": pol.within.String()}},
		func() error { return r.l.Block(pfx, pol.block, reason) })
	if err != nil {
		r.log.Error("xdp: escalation block failed", "source", src, "err", err)
	}
}

// blockOrigin says who is adding or removing the block on prefix, for the
// event onBlockChange emits.
type blockOrigin struct {
	prefix netip.Prefix
	added  bool
	by     string // escalation, operator, restore
	actor  string
	extra  map[string]any
}

// attributed runs fn (a Limiter.Block or Unblock, which call onBlockChange
// on this goroutine) with o as the origin of the change it makes, and
// reports whether onBlockChange saw the change.
func (r *Runtime) attributed(o blockOrigin, fn func() error) (bool, error) {
	o.prefix = CanonicalSource(o.prefix)
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.pendMu.Lock()
	r.pend = &o
	r.pendMu.Unlock()
	err := fn()
	r.pendMu.Lock()
	seen := r.pend == nil
	r.pend = nil
	r.pendMu.Unlock()
	return seen, err
}

// onBlockChange turns every block added or removed into an event.
func (r *Runtime) onBlockChange(b xdp.Block, added bool) {
	r.pendMu.Lock()
	o := r.pend
	if o != nil && o.prefix == b.Prefix && o.added == added {
		r.pend = nil
	} else {
		o = nil
	}
	r.pendMu.Unlock()

	data := map[string]any{"source": b.Prefix.String(), "until": b.Until.UTC().Format(time.RFC3339Nano), "reason": b.Reason}
	switch {
	case o != nil:
		data["by"], data["actor"] = o.by, o.actor
		for k, v := range o.extra {
			data[k] = v
		}
	case added:
		data["by"], data["actor"] = "unknown", "stoad"
	default:
		data["by"], data["actor"] = "expiry", "stoad"
	}
	r.events.do(func() { r.recordBlock(b, added) })
	if added {
		msg := fmt.Sprintf("blocked %s until %s", b.Prefix, b.Until.Local().Format(time.DateTime))
		if b.Reason != "" {
			msg += " (" + b.Reason + ")"
		}
		r.events.push("xdp.block", msg, data)
		return
	}
	msg := fmt.Sprintf("unblocked %s", b.Prefix)
	if o != nil {
		msg += " by " + o.actor
	} else {
		msg += " (cool-down over)"
	}
	r.events.push("xdp.unblock", msg, data)
	if e := r.esc.Load(); e != nil && e.pol.prefix(b.Prefix.Addr()) == b.Prefix {
		// An escalation-sized block ended: count its rejections afresh,
		// whatever ended it.
		e.Forget(b.Prefix.Addr())
	}
}

// eventQueue runs the side effects of block changes — their events and
// their records in the store — in order on its own goroutine, so that a
// block made on a request's goroutine never waits for the store.
type eventQueue struct {
	log    *events.Log
	mu     sync.Mutex
	ch     chan func()
	closed bool
	done   chan struct{}
}

func newEventQueue(l *events.Log) *eventQueue {
	q := &eventQueue{log: l, ch: make(chan func(), 1024), done: make(chan struct{})}
	go func() {
		defer close(q.done)
		for fn := range q.ch {
			fn()
		}
	}()
	return q
}

// push queues an event; it waits when 1024 are queued rather than lose
// one (the audit trail is built from them).
func (q *eventQueue) push(typ, msg string, data map[string]any) {
	q.do(func() { q.log.Emit(typ, "", msg, data) })
}

// do queues fn behind everything queued before.
func (q *eventQueue) do(fn func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.ch <- fn
}

// close runs what is queued and stops.
func (q *eventQueue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	<-q.done
}
