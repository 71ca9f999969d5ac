package federation

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Manager holds the upstreams of the live configuration, keyed by
// (tenant, tool), and reconciles them against the next configuration the
// way the proxy's pools survive reloads: an upstream whose configuration
// (and secrets) did not change keeps its session or process; one whose
// filters, renames or timeout changed keeps it too and only rebuilds its
// lists; anything else gets a new upstream, started before the old one
// stops.
type Manager struct {
	opts Options

	mu        sync.Mutex
	upstreams map[string]*managed
	onChange  func(tenant, tool string)
}

type managed struct {
	u       *Upstream
	secrets [32]byte // digest of the resolved secrets the session uses
}

// NewManager returns an empty manager.
func NewManager(opts Options) *Manager {
	return &Manager{opts: opts, upstreams: map[string]*managed{}}
}

// OnChange sets fn, called with the Tool whose exposed tools or resources
// changed (see Upstream.OnChange): the daemon rebuilds that tenant's
// catalog and notifies that tenant's subscribed clients only.
func (m *Manager) OnChange(fn func(tenant, tool string)) {
	m.mu.Lock()
	m.onChange = fn
	m.mu.Unlock()
}

func (m *Manager) changed(tenant, tool string) {
	m.mu.Lock()
	fn := m.onChange
	m.mu.Unlock()
	if fn != nil {
		fn(tenant, tool)
	}
}

// Get returns the upstream of tenant's Tool tool.
func (m *Manager) Get(tenant, tool string) (*Upstream, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mu, ok := m.upstreams[tenant+"/"+tool]
	if !ok {
		return nil, false
	}
	return mu.u, true
}

// Upstreams returns every upstream, sorted by tenant/tool.
func (m *Manager) Upstreams() []*Upstream {
	m.mu.Lock()
	keys := make([]string, 0, len(m.upstreams))
	for k := range m.upstreams {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*Upstream, len(keys))
	for i, k := range keys {
		out[i] = m.upstreams[k].u
	}
	m.mu.Unlock()
	return out
}

// Pending is a prepared reconciliation: new upstreams are started, nothing
// live has changed yet. Commit or Discard it.
type Pending struct {
	m       *Manager
	next    map[string]*managed
	started []*Upstream // new in this revision
	reconf  map[string]Config
	stop    []*Upstream // replaced or removed at Commit
	done    bool

	mu       sync.Mutex
	previews map[string]*view // what reconfigured upstreams will expose
}

// Prepare validates cfgs and starts the upstreams that are new or changed
// (each Start waits for its first attempt, bounded by ctx; an upstream that
// is down is not an error). An invalid configuration or a duplicate key
// aborts: every upstream started here is stopped and the error lists every
// problem.
func (m *Manager) Prepare(ctx context.Context, cfgs []Config) (*Pending, error) {
	var errs []error
	seen := map[string]bool{}
	for i := range cfgs {
		c := &cfgs[i]
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[c.Key()] {
			errs = append(errs, fmt.Errorf("validate mcp upstream %s: defined twice", c.Key()))
		}
		seen[c.Key()] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m.mu.Lock()
	live := make(map[string]*managed, len(m.upstreams))
	for k, v := range m.upstreams {
		live[k] = v
	}
	m.mu.Unlock()
	p := &Pending{m: m, next: map[string]*managed{}, reconf: map[string]Config{}}
	type toStart struct {
		key string
		u   *Upstream
	}
	var starts []toStart
	for i := range cfgs {
		c := cfgs[i]
		key := c.Key()
		digest, err := m.secretDigest(&c)
		if err != nil {
			// An unreadable secret is the upstream's problem, not the
			// revision's: the new upstream reports it in its Status.
			digest = [32]byte{1}
		}
		if old, ok := live[key]; ok && old.secrets == digest {
			cur := old.u.cfg.Load()
			switch {
			case cur.Equal(&c):
				p.next[key] = old
				continue
			case cur.sameSession(&c):
				p.next[key] = old
				p.reconf[key] = c
				continue
			}
		}
		u, err := New(c, m.opts)
		if err != nil {
			p.Discard()
			return nil, err
		}
		tenant, tool := c.Tenant, c.Tool
		u.OnChange(func() { m.changed(tenant, tool) })
		p.next[key] = &managed{u: u, secrets: digest}
		starts = append(starts, toStart{key, u})
		p.started = append(p.started, u)
	}
	// Start the new upstreams concurrently: a reload with ten slow
	// upstreams waits for the slowest, not the sum.
	var wg sync.WaitGroup
	startErrs := make([]error, len(starts))
	for i, s := range starts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			startErrs[i] = s.u.Start(ctx)
		}()
	}
	wg.Wait()
	for i, err := range startErrs {
		// Still starting when ctx ended: not a reason to refuse the
		// revision; the upstream's tools appear when it is up (OnChange).
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			startErrs[i] = nil
		}
	}
	if err := errors.Join(startErrs...); err != nil {
		p.Discard()
		return nil, fmt.Errorf("start mcp upstreams: %w", err)
	}
	for key, old := range live {
		if nw, ok := p.next[key]; !ok || nw != old {
			p.stop = append(p.stop, old.u)
		}
	}
	return p, nil
}

// Upstream returns the upstream that serves tenant's Tool tool once p is
// committed (a new one, or the live one kept).
func (p *Pending) Upstream(tenant, tool string) (*Upstream, bool) {
	mu, ok := p.next[tenant+"/"+tool]
	if !ok {
		return nil, false
	}
	return mu.u, true
}

// Tools returns what tenant's Tool tool will expose once p is committed:
// for an upstream kept with new filters or renames, its current lists seen
// through the new configuration (Commit applies the same), so a catalog
// built before Commit already has the new names.
func (p *Pending) Tools(tenant, tool string) []Tool {
	if v := p.preview(tenant + "/" + tool); v != nil {
		return v.tools
	}
	return nil
}

// Resources is Tools for resources.
func (p *Pending) Resources(tenant, tool string) []Resource {
	if v := p.preview(tenant + "/" + tool); v != nil {
		return v.resources
	}
	return nil
}

func (p *Pending) preview(key string) *view {
	mu, ok := p.next[key]
	if !ok {
		return nil
	}
	c, reconf := p.reconf[key]
	if !reconf {
		return mu.u.view.Load()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if v := p.previews[key]; v != nil {
		return v
	}
	if p.previews == nil {
		p.previews = map[string]*view{}
	}
	v := mu.u.viewWith(&c)
	p.previews[key] = v
	return v
}

// Commit installs the prepared set and stops the upstreams it replaced or
// removed (their sessions end, their processes stop), bounded by ctx.
func (p *Pending) Commit(ctx context.Context) {
	if retire := p.Swap(); retire != nil {
		retire(ctx)
	}
}

// Swap installs the prepared set like Commit, but leaves the upstreams it
// replaced or removed running and returns the function that stops them
// (nil when there are none, or when p was already committed or discarded).
// A reload calls it in its swap, which must be quick, and retires the old
// upstreams in the background: a stdio server gets seconds to exit.
func (p *Pending) Swap() (retire func(ctx context.Context)) {
	if p.done {
		return nil
	}
	p.done = true
	p.m.mu.Lock()
	p.m.upstreams = p.next
	p.m.mu.Unlock()
	for key, c := range p.reconf {
		p.next[key].u.reconfigure(c)
	}
	if len(p.stop) == 0 {
		return nil
	}
	stop := p.stop
	return func(ctx context.Context) { stopAll(ctx, stop) }
}

// Discard stops the upstreams Prepare started; the live set is untouched.
func (p *Pending) Discard() {
	if p.done {
		return
	}
	p.done = true
	stopAll(context.Background(), p.started)
}

// Reconcile is Prepare followed by Commit.
func (m *Manager) Reconcile(ctx context.Context, cfgs []Config) error {
	p, err := m.Prepare(ctx, cfgs)
	if err != nil {
		return err
	}
	p.Commit(ctx)
	return nil
}

// Stop stops every upstream.
func (m *Manager) Stop(ctx context.Context) {
	m.mu.Lock()
	all := make([]*Upstream, 0, len(m.upstreams))
	for _, v := range m.upstreams {
		all = append(all, v.u)
	}
	m.upstreams = map[string]*managed{}
	m.mu.Unlock()
	stopAll(ctx, all)
}

func stopAll(ctx context.Context, us []*Upstream) {
	var wg sync.WaitGroup
	for _, u := range us {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.Stop(ctx)
		}()
	}
	wg.Wait()
}

// secretDigest hashes the secrets a configuration's session uses, so a
// rotated secret (same secretRef, new value) renews the session.
func (m *Manager) secretDigest(c *Config) ([32]byte, error) {
	h := sha256.New()
	if c.Auth != nil {
		v, err := m.opts.readSecret(c.Auth.SecretRef)
		if err != nil {
			return [32]byte{}, err
		}
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	for _, e := range c.Env {
		if e.SecretRef != nil {
			v, err := m.opts.readSecret(*e.SecretRef)
			if err != nil {
				return [32]byte{}, err
			}
			h.Write([]byte(e.Name + "=" + v))
			h.Write([]byte{0})
		}
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d, nil
}
