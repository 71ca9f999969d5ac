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

	Stored, Dropped atomic.Int64

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
	r := &Recorder{store: st, opts: opts, log: opts.Log, queue: make(chan *Capture, opts.Queue), idle: make(chan struct{}, 1)}
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

// Capture hands c over without blocking; it reports false (and counts a
// drop) when the queue is full.
func (r *Recorder) Capture(c *Capture) bool {
	select {
	case r.queue <- c:
		return true
	default:
		r.Dropped.Add(1)
		return false
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
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case c := <-r.queue:
					r.storeBatch(c)
				default:
					return
				}
			}
		case c := <-r.queue:
			r.storeBatch(c)
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
	for _, c := range batch {
		red := cfg.Redactor(c.Tenant, c.Tool)
		snaps = append(snaps, seal(build(c, red, cfg.Policy.MaxBodyBytes), red))
	}
	if err := r.store.put(snaps, cfg.Policy, r.opts.Now()); err != nil {
		r.log.Warn("store error snapshots", "count", len(snaps), "err", err)
	} else {
		r.Stored.Add(int64(len(snaps)))
		for _, s := range snaps {
			r.log.Debug("error snapshot stored", "snapshot", s.ID, "tenant", s.Tenant, "tool", s.Tool, "status", s.Response.Status, "reason", s.Reason)
		}
	}
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
