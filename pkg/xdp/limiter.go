package xdp

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Limiter owns the XDP program: it loads it on first use, attaches it to the
// configured interfaces, keeps its maps in step with the config and the
// blocks, and detaches it on Close. While XDP is off (no interfaces, no
// privileges, no kernel support, not Linux) its userspace fallback enforces
// the same config on listeners wrapped with Wrap. Safe for concurrent use.
type Limiter struct {
	log *slog.Logger

	mu      sync.Mutex
	k       *kernel                // nil until loaded
	links   map[string]*attachment // by interface name
	mapped  settings               // what the maps hold
	applied settings               // the last config accepted
	reason  string                 // why XDP is off
	closed  bool

	blocks   *blockSet
	fallback *AcceptLimiter
	fbOn     atomic.Bool

	notifyMu sync.Mutex
	onBlock  func(Block, bool)

	sweepEvery time.Duration
	sweepStop  chan struct{}
	sweepDone  chan struct{}
}

// New returns a Limiter with nothing attached; the first Apply attaches.
// Until then the fallback is in force with an empty config (limiting
// nothing). A nil log discards.
func New(log *slog.Logger) *Limiter {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l := &Limiter{
		log:        log,
		links:      make(map[string]*attachment),
		blocks:     &blockSet{},
		fallback:   NewAcceptLimiter(Config{}),
		reason:     "XDP off: not configured yet",
		sweepEvery: time.Second,
	}
	l.fallback.blocks = l.blocks
	l.fallback.gate = l.fbOn.Load
	l.fbOn.Store(true)
	return l
}

// OnBlockChange registers fn to hear of every block added (Block) and
// removed (Unblock, expiry). fn runs on the caller's or the sweeper's
// goroutine, never under the Limiter's lock, so it may call the Limiter; it
// should not block for long.
func (l *Limiter) OnBlockChange(fn func(b Block, added bool)) {
	l.notifyMu.Lock()
	defer l.notifyMu.Unlock()
	l.onBlock = fn
}

func (l *Limiter) notify(b Block, added bool) {
	l.notifyMu.Lock()
	fn := l.onBlock
	l.notifyMu.Unlock()
	if fn != nil {
		fn(b, added)
	}
}

// Wrap returns ln limited by the userspace fallback while the fallback is in
// force; while XDP is attached, the wrapper passes connections straight on.
func (l *Limiter) Wrap(ln net.Listener) net.Listener { return l.fallback.Wrap(ln) }

// Fallback returns the userspace limiter that is in force while XDP is off.
func (l *Limiter) Fallback() *AcceptLimiter { return l.fallback }

// Apply makes cfg the limiter's config. The first call with interfaces loads
// and attaches the program; later calls update the maps in place, adding new
// entries before removing old ones so that no packet sees less protection
// than either config gives, and attach or detach only the interfaces that
// changed. On error the previous config stays fully in force, except that an
// error matching ErrUnsupported (XDP cannot run here) leaves the fallback
// enforcing cfg, with Status().Reason saying why.
func (l *Limiter) Apply(cfg Config) error {
	s, err := cfg.settings()
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("apply xdp config: limiter is closed")
	}

	if l.k == nil && len(s.ifaces) > 0 {
		if err := l.loadLocked(); err != nil {
			l.fallbackLocked(cfg, s, err)
			return err
		}
	}
	if l.k != nil {
		if err := l.updateLocked(s); err != nil {
			if errors.Is(err, ErrUnsupported) && len(l.links) == 0 {
				l.fallbackLocked(cfg, s, err)
			}
			return err
		}
	}
	l.applied = s
	_ = l.fallback.Update(cfg)
	if len(s.ifaces) == 0 {
		l.reason = "XDP off: no interfaces configured"
		l.fbOn.Store(true)
		return nil
	}
	l.reason = ""
	l.fbOn.Store(false)
	return nil
}

func (l *Limiter) fallbackLocked(cfg Config, s settings, err error) {
	l.applied = s
	_ = l.fallback.Update(cfg)
	l.reason = err.Error()
	l.fbOn.Store(true)
	l.log.Warn("xdp: off, limiting at accept time instead", "reason", l.reason)
}

// loadLocked loads the program and writes the current blocks into it.
func (l *Limiter) loadLocked() error {
	if reason := missingCapabilities(); reason != "" {
		return &unsupportedError{reason: reason}
	}
	k, err := loadKernel()
	if err != nil {
		return classifyLoadError(err)
	}
	for _, b := range l.blocks.list(time.Now(), true) {
		if err := k.putBlock(b.Prefix, b.Until); err != nil {
			k.close()
			return fmt.Errorf("load xdp program: %w", err)
		}
	}
	l.k = k
	l.mapped = settings{}
	return nil
}

// updateLocked moves the kernel from l.mapped to s: interfaces first (so a
// failed attach changes nothing), then new map entries, then the config
// value, and only then does it remove what s no longer has.
func (l *Limiter) updateLocked(s settings) (err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	// Interfaces to attach, or to re-attach in an explicitly changed mode.
	var detachLater []*attachment
	for _, name := range s.ifaces {
		old := l.links[name]
		if old != nil && (s.mode == ModeAuto || s.mode == old.mode) {
			continue
		}
		if old != nil {
			// The kernel keeps one XDP mode per interface: changing it
			// means a moment unprotected on this interface.
			if err := old.detach(); err != nil {
				return err
			}
			delete(l.links, name)
			undo = append(undo, func() { l.reattach(old) })
		}
		a, err := attach(l.k.program(), name, s.mode, l.log.Warn)
		if err != nil {
			return err
		}
		l.links[name] = a
		undo = append(undo, func() { _ = a.detach(); delete(l.links, name) })
		l.log.Info("xdp: attached", "interface", name, "mode", a.mode)
	}
	for name, a := range l.links {
		if !slices.Contains(s.ifaces, name) {
			detachLater = append(detachLater, a)
		}
	}

	addPorts, delPorts := diffSorted(l.mapped.ports, s.ports, cmp.Compare[uint16])
	for _, p := range addPorts {
		if err := l.k.putPort(p); err != nil {
			return fmt.Errorf("apply xdp config: %w", err)
		}
		undo = append(undo, func() { _ = l.k.deletePort(p) })
	}
	addDeny, delDeny := diffSorted(l.mapped.deny, s.deny, comparePrefix)
	for _, p := range addDeny {
		if err := l.k.putDeny(p); err != nil {
			return fmt.Errorf("apply xdp config: %w", err)
		}
		undo = append(undo, func() { _ = l.k.deleteDeny(p) })
	}
	prev := l.mapped
	if err := l.k.writeConfig(s, 0); err != nil {
		return fmt.Errorf("apply xdp config: %w", err)
	}
	undo = append(undo, func() { _ = l.k.writeConfig(prev, 0) })

	// Committed: from here on, failures are logged, not returned.
	for _, p := range delPorts {
		if err := l.k.deletePort(p); err != nil {
			l.log.Error("xdp: apply config", "err", err)
		}
	}
	for _, p := range delDeny {
		if err := l.k.deleteDeny(p); err != nil {
			l.log.Error("xdp: apply config", "err", err)
		}
	}
	for _, a := range detachLater {
		if err := a.detach(); err != nil {
			l.log.Error("xdp: apply config", "err", err)
		}
		delete(l.links, a.name)
		l.log.Info("xdp: detached", "interface", a.name)
	}
	l.mapped = s
	return nil
}

// reattach restores an attachment that a failed mode change removed.
func (l *Limiter) reattach(old *attachment) {
	a, err := attach(l.k.program(), old.name, old.mode, l.log.Warn)
	if err != nil {
		l.log.Error("xdp: restore attachment after failed apply", "interface", old.name, "err", err)
		return
	}
	l.links[old.name] = a
}

// Status reports what the limiter is doing.
func (l *Limiter) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{
		Enabled:  len(l.applied.ifaces) > 0,
		Reason:   l.reason,
		Fallback: l.fbOn.Load(),
		Blocks:   l.blocks.count(time.Now()),
	}
	for _, name := range l.applied.ifaces {
		if a := l.links[name]; a != nil {
			st.Interfaces = append(st.Interfaces, IfaceStatus{Name: name, Mode: a.mode})
		}
	}
	st.Attached = st.Enabled && len(st.Interfaces) == len(l.applied.ifaces)
	for i, ifs := range st.Interfaces {
		if i == 0 {
			st.Mode = ifs.Mode
		} else if ifs.Mode != st.Mode {
			st.Mode = ModeMixed
		}
	}
	if l.k != nil {
		var err error
		if st.Counters, err = l.k.counters(); err != nil {
			l.log.Warn("xdp: status", "err", err)
		}
		src, err := l.k.sources()
		if err != nil {
			l.log.Warn("xdp: status", "err", err)
		}
		st.TrackedSources = len(src)
	} else {
		st.TrackedSources = l.fallback.trackedSources()
	}
	return st
}

// TopSources returns up to n sources with the most drops (then the most
// tokens used): from the kernel's table while XDP is loaded, from the
// fallback's otherwise.
func (l *Limiter) TopSources(n int) []SourceStat {
	l.mu.Lock()
	k := l.k
	var src []SourceStat
	if k != nil {
		var err error
		if src, err = k.sources(); err != nil {
			l.log.Warn("xdp: top sources", "err", err)
		}
	}
	l.mu.Unlock()
	if k == nil {
		return l.fallback.TopSources(n)
	}
	sortSources(src)
	return src[:min(n, len(src))]
}

// Close detaches the program from every interface and frees it. Blocks and
// the fallback stay usable; Apply fails afterwards.
func (l *Limiter) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	stop, done := l.sweepStop, l.sweepDone
	if stop != nil {
		close(stop)
	}
	var errs []error
	for name, a := range l.links {
		errs = append(errs, a.detach())
		delete(l.links, name)
	}
	if l.k != nil {
		errs = append(errs, l.k.close())
		l.k = nil
	}
	l.reason = "XDP off: closed"
	l.mu.Unlock()
	if done != nil {
		<-done
	}
	return errors.Join(errs...)
}

// classifyLoadError turns a failure to load the program into ErrUnsupported
// with a reason a human can act on: the config was already validated, so a
// load failure means this system cannot run it.
func classifyLoadError(err error) error {
	if isPermission(err) {
		return &unsupportedError{reason: fmt.Sprintf("need CAP_BPF and CAP_NET_ADMIN (running as uid %d)", os.Geteuid()), err: err}
	}
	return &unsupportedError{reason: "kernel cannot run the XDP program", err: err}
}

func isPermission(err error) bool { return errors.Is(err, os.ErrPermission) }

func sortSources(s []SourceStat) {
	slices.SortFunc(s, func(a, b SourceStat) int {
		if c := cmp.Compare(b.Dropped, a.Dropped); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Passed, a.Passed); c != 0 {
			return c
		}
		return a.Addr.Compare(b.Addr)
	})
}
