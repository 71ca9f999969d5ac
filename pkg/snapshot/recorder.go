package snapshot

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is what a revision decides about snapshots.
type Config struct {
	Policy Policy
	// Redactor returns the redactor for a tool (the Gateway's extra
	// headers and fields plus the tool's own upstream credential).
	Redactor func(tenant, tool string) *Redactor
}

// RecorderOptions tune a Recorder.
type RecorderOptions struct {
	Log *slog.Logger
	// Queue bounds captures waiting to be stored; default 64.
	Queue int
	// PerSecond caps captures accepted per second across all tenants (a
	// failing upstream under load would otherwise turn every request
	// into a write); default 20.
	PerSecond int64
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Recorder accepts captures from the request path and stores them,
// redacted, in the background.
type Recorder struct {
	store *Store
	opts  RecorderOptions
	log   *slog.Logger
	queue chan *Capture
	cfg   atomic.Pointer[Config]

	sec, inSec atomic.Int64 // the current second and captures accepted in it

	gmu    sync.Mutex
	groups map[GroupKey]*group

	// Stored counts snapshots written, Dropped captures skipped (rate or
	// queue bound), Repeats failures counted into an existing snapshot.
	Stored, Dropped, Repeats atomic.Int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
	idle   chan struct{} // signalled whenever the queue drains (tests)
}

// NewRecorder returns a recorder storing into st; Start runs it.
func NewRecorder(st *Store, opts RecorderOptions) *Recorder {
	if opts.Queue <= 0 {
		opts.Queue = 64
	}
	if opts.PerSecond <= 0 {
		opts.PerSecond = 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{store: st, opts: opts, log: opts.Log, queue: make(chan *Capture, opts.Queue), idle: make(chan struct{}, 1),
		groups: map[GroupKey]*group{}}
	r.cfg.Store(&Config{Policy: DefaultPolicy, Redactor: func(string, string) *Redactor { return NewRedactor(nil, nil, nil) }})
	return r
}

// SetConfig installs a revision's config.
func (r *Recorder) SetConfig(c *Config) { r.cfg.Store(c) }

// Config returns the live config.
func (r *Recorder) Config() *Config { return r.cfg.Load() }

// CaptureBodyLimit is how many bytes of each body a caller should copy:
// the policy's maximum plus a margin that lets the redactor recognise a
// secret cut by the limit.
func (r *Recorder) CaptureBodyLimit() int { return r.cfg.Load().Policy.MaxBodyBytes + 512 }

// Want reports whether a capture now would be accepted (rate and queue
// room), so callers skip copying when it would not. It counts against
// the rate.
func (r *Recorder) Want() bool {
	now := r.opts.Now().Unix()
	if s := r.sec.Load(); s != now && r.sec.CompareAndSwap(s, now) {
		r.inSec.Store(0)
	}
	if r.inSec.Add(1) > r.opts.PerSecond || len(r.queue) == cap(r.queue) {
		r.Dropped.Add(1)
		return false
	}
	return true
}

// Grouping of repeats (see GroupKey).
const (
	// GroupWindow: a failure joins its group when the group's last
	// failure is at most this old.
	GroupWindow = 5 * time.Minute
	// GroupSpan: a group older than this is closed and the next failure
	// starts a new snapshot, with a fresh sample of the exchange.
	GroupSpan = time.Hour
)

// group is the open snapshot of one GroupKey.
type group struct {
	tenant      string
	id          int64 // stored snapshot number; 0 until stored
	claimed     bool  // a capture of the group is being stored
	first, last time.Time
	pending     int64 // repeats not yet added to the stored snapshot
}

func (g *group) open(at time.Time) bool {
	return at.Sub(g.last) <= GroupWindow && at.Sub(g.first) <= GroupSpan
}

// Repeat counts a failure of key at time at into the open snapshot of
// that key, if there is one, and reports whether it did: the caller then
// captures nothing. It is cheap (no copy, no I/O) and not subject to the
// capture rate, so counts are exact.
func (r *Recorder) Repeat(key GroupKey, at time.Time) bool {
	r.gmu.Lock()
	defer r.gmu.Unlock()
	g := r.groups[key]
	if g == nil || !g.open(at) {
		return false
	}
	g.pending++
	if at.After(g.last) {
		g.last = at
	}
	r.Repeats.Add(1)
	return true
}

// Capture hands c over without blocking; it reports false (and counts a
// drop) when the queue is full. An accepted capture opens the group of
// its key (see Repeat).
func (r *Recorder) Capture(c *Capture) bool {
	select {
	case r.queue <- c:
	default:
		r.Dropped.Add(1)
		return false
	}
	k := c.Key()
	r.gmu.Lock()
	if g := r.groups[k]; g == nil || !g.open(c.Start) {
		r.groups[k] = &group{tenant: c.Tenant, first: c.Start, last: c.Start}
	}
	r.gmu.Unlock()
	return true
}

// claim decides, at store time, whether c starts its group's snapshot
// (true: store it) or is a repeat that raced the first capture (counted
// into the group instead). The group pointer is returned for storing.
func (r *Recorder) claim(c *Capture) (*group, bool) {
	k := c.Key()
	r.gmu.Lock()
	defer r.gmu.Unlock()
	g := r.groups[k]
	if g == nil || !g.open(c.Start) {
		g = &group{tenant: c.Tenant, first: c.Start, last: c.Start}
		r.groups[k] = g
	}
	if g.claimed {
		g.pending++
		if c.Start.After(g.last) {
			g.last = c.Start
		}
		r.Repeats.Add(1)
		return g, false
	}
	g.claimed = true
	return g, true
}

// flushRepeats adds the repeats counted since the last flush to their
// stored snapshots, and forgets groups that closed.
func (r *Recorder) flushRepeats(now time.Time) {
	type bump struct {
		g    *group
		id   int64
		n    int64
		last time.Time
	}
	var bumps []bump
	r.gmu.Lock()
	for k, g := range r.groups {
		if g.id != 0 && g.pending > 0 {
			bumps = append(bumps, bump{g, g.id, g.pending, g.last})
			g.pending = 0
		}
		if g.id != 0 && !g.open(now) {
			delete(r.groups, k)
		}
	}
	r.gmu.Unlock()
	for _, b := range bumps {
		found, err := r.store.addRepeats(b.g.tenant, b.id, b.n, b.last)
		if err != nil {
			r.log.Warn("count repeated failures", "snapshot", b.id, "err", err)
			continue
		}
		if !found {
			// Trimmed away: the next failure starts a new snapshot.
			r.gmu.Lock()
			for k, g := range r.groups {
				if g == b.g {
					delete(r.groups, k)
				}
			}
			r.gmu.Unlock()
		}
	}
}

// Start stores captures in the background until Stop; it also prunes
// snapshots past their age every ten minutes.
func (r *Recorder) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.run(ctx)
	}()
}

// Stop stores what is queued and returns.
func (r *Recorder) Stop() {
	if r.cancel != nil {
		r.cancel()
		r.wg.Wait()
	}
}

func (r *Recorder) run(ctx context.Context) {
	prune := time.NewTicker(10 * time.Minute)
	defer prune.Stop()
	repeats := time.NewTicker(time.Second)
	defer repeats.Stop()
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case c := <-r.queue:
					r.storeBatch(c)
				default:
					r.flushRepeats(r.opts.Now())
					return
				}
			}
		case c := <-r.queue:
			r.storeBatch(c)
		case <-repeats.C:
			r.flushRepeats(r.opts.Now())
		case <-prune.C:
			if n, err := r.store.Prune(r.cfg.Load().Policy, r.opts.Now()); err != nil {
				r.log.Warn("prune snapshots", "err", err)
			} else if n > 0 {
				r.log.Debug("pruned snapshots", "count", n)
			}
		}
	}
}

// storeBatch redacts first and whatever else is queued (up to 32) and
// stores them in one transaction.
func (r *Recorder) storeBatch(first *Capture) {
	cfg := r.cfg.Load()
	batch := []*Capture{first}
	for len(batch) < 32 {
		select {
		case c := <-r.queue:
			batch = append(batch, c)
			continue
		default:
		}
		break
	}
	snaps := make([]*Snapshot, 0, len(batch))
	groups := make([]*group, 0, len(batch))
	for _, c := range batch {
		g, first := r.claim(c)
		if !first {
			continue
		}
		red := cfg.Redactor(c.Tenant, c.Tool)
		snaps = append(snaps, seal(build(c, red, cfg.Policy.MaxBodyBytes), red))
		groups = append(groups, g)
	}
	// A batch of only repeats stores nothing: flushRepeats counts them.
	if len(snaps) == 0 {
		r.signalIdle()
		return
	}
	if err := r.store.put(snaps, cfg.Policy, r.opts.Now()); err != nil {
		r.log.Warn("store error snapshots", "count", len(snaps), "err", err)
		r.gmu.Lock()
		for _, g := range groups {
			g.claimed = false // the next failure of the group tries again
		}
		r.gmu.Unlock()
	} else {
		r.Stored.Add(int64(len(snaps)))
		r.gmu.Lock()
		for i, s := range snaps {
			groups[i].id, _ = ParseID(s.ID)
		}
		r.gmu.Unlock()
		for _, s := range snaps {
			r.log.Debug("error snapshot stored", "snapshot", s.ID, "tenant", s.Tenant, "tool", s.Tool, "status", s.Response.Status, "reason", s.Reason)
		}
	}
	r.signalIdle()
}

func (r *Recorder) signalIdle() {
	if len(r.queue) == 0 {
		select {
		case r.idle <- struct{}{}:
		default:
		}
	}
}

// seal is the last line of defence: if the encoded snapshot still
// contains a literal secret or pattern (in a field the redactor does not
// visit), every string field is scrubbed.
func seal(s *Snapshot, red *Redactor) *Snapshot {
	b, _ := json.Marshal(s)
	if red.Scrub(string(b)) == string(b) {
		return s
	}
	scrub := func(p *string) { *p = red.Scrub(*p) }
	for _, p := range []*string{&s.Tool, &s.Operation, &s.Consumer, &s.RequestID, &s.Upstream, &s.Error,
		&s.Request.URL, &s.Request.Target, &s.Request.Body, &s.Response.Body} {
		scrub(p)
	}
	for _, hs := range [][]Header{s.Request.Headers, s.Response.Headers} {
		for i := range hs {
			if v := red.Scrub(hs[i].Value); v != hs[i].Value {
				hs[i].Value, hs[i].Redacted = v, true
			}
			scrub(&hs[i].Name)
		}
	}
	if !strings.Contains(strings.Join(s.Redactions, ","), "scrubbed") {
		s.Redactions = append(s.Redactions, "scrubbed after encoding")
	}
	return s
}
