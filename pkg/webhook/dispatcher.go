// Package webhook delivers lifecycle events to the URLs of Webhook specs:
// HMAC-signed POSTs from a durable outbox in the store, at least once, with
// exponential backoff for a bounded number of attempts, through an SSRF
// guard that checks the address actually connected to (see
// docs/webhooks.md).
package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// Hook is one compiled Webhook spec.
type Hook struct {
	Tenant, Name string
	URL          string
	Events       []string
	Secret       []byte
	AllowPrivate bool
	Timeout      time.Duration
	MaxAttempts  int
	Disabled     bool
}

// Key is "tenant/name".
func (h *Hook) Key() string { return h.Tenant + "/" + h.Name }

// Event is what gets delivered. Its JSON form is the request body:
// {"id","type","time","tenant","data"}.
type Event struct {
	ID     string    `json:"id"`
	Type   string    `json:"type"`
	Time   time.Time `json:"time"`
	Tenant string    `json:"tenant"`
	Data   any       `json:"data"`
}

// TestEventType is the type of the events `stoa webhooks test` sends.
const TestEventType = "webhook.test"

// Options configure a Dispatcher.
type Options struct {
	Store store.Store
	Log   *slog.Logger
	// Owner names this dispatcher in the outbox's claims (dispatchers of
	// replicas sharing a store claim each delivery before attempting it);
	// default a random name.
	Owner string
	// AllowPrivate lets every webhook reach non-public addresses (the
	// daemon-wide switch; Hook.AllowPrivate is the per-webhook one).
	AllowPrivate bool
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Backoff is the wait after failed attempt n (1-based); default
	// DefaultBackoff plus up to 10% jitter.
	Backoff func(attempt int) time.Duration
	// Workers bounds concurrent attempts; default 4.
	Workers int
	// Keep is how many deliveries the log keeps; default 10000.
	Keep int
}

// DefaultBackoff waits 1s, 4s, 16s, … (×4 per attempt), at most an hour.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Second
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 4
	}
	return min(d, time.Hour)
}

// Dispatcher owns the outbox and delivers from it.
type Dispatcher struct {
	opts          Options
	log           *slog.Logger
	hooks         atomic.Pointer[map[string]*Hook]
	guarded, open *http.Client

	lease atomic.Int64 // claimLease of the live hooks

	mu       sync.Mutex
	sched    map[int64]time.Time // pending delivery → next attempt
	inflight map[int64]bool
	waiters  map[int64][]chan Delivery
	wake     chan struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the outbox (creating its buckets) and loads the pending
// deliveries; Start delivers them.
func New(opts Options) (*Dispatcher, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Backoff == nil {
		opts.Backoff = func(n int) time.Duration {
			d := DefaultBackoff(n)
			return d + time.Duration(mrand.Int64N(int64(d)/10+1))
		}
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Keep <= 0 {
		opts.Keep = 10000
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Owner == "" {
		var b [6]byte
		_, _ = rand.Read(b[:]) // never fails (crashes instead)
		opts.Owner = "dispatcher-" + hex.EncodeToString(b[:])
	}
	d := &Dispatcher{
		opts: opts, log: opts.Log,
		sched: map[int64]time.Time{}, inflight: map[int64]bool{}, waiters: map[int64][]chan Delivery{},
		wake: make(chan struct{}, 1),
	}
	d.guarded = newClient(true)
	d.open = newClient(false)
	empty := map[string]*Hook{}
	d.hooks.Store(&empty)
	ctx := context.Background()
	err := opts.Store.View(ctx, func(tx store.Tx) error {
		due, err := tx.Outbox().Pending(ctx)
		for _, p := range due {
			d.sched[p.ID] = p.NextAttemptAt
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open webhook outbox: %w", err)
	}
	d.lease.Store(int64(claimLease(nil)))
	return d, nil
}

// claimLease is how long a claim on a delivery lasts: longer than any
// attempt to the hooks can take, so a live dispatcher never loses a claim
// mid-attempt, while one that died releases its deliveries a minute after
// its slowest attempt would have ended.
func claimLease(hooks []*Hook) time.Duration {
	longest := 10 * time.Second // the default attempt timeout
	for _, h := range hooks {
		longest = max(longest, h.Timeout)
	}
	return longest + time.Minute
}

func newClient(guarded bool) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would connect on our behalf, past the guard
		DialContext:           dialer(guarded),
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		// Redirects are not followed: a receiver could point us anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// SetHooks makes hooks the live webhooks (one revision's worth).
func (d *Dispatcher) SetHooks(hooks []*Hook) {
	m := make(map[string]*Hook, len(hooks))
	for _, h := range hooks {
		m[h.Key()] = h
	}
	d.hooks.Store(&m)
	d.lease.Store(int64(claimLease(hooks)))
	d.poke()
}

// Hook returns the live webhook tenant/name, or nil.
func (d *Dispatcher) Hook(tenant, name string) *Hook { return (*d.hooks.Load())[tenant+"/"+name] }

func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start delivers in the background until Stop.
func (d *Dispatcher) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.run(ctx)
	}()
}

// Stop ends delivery; attempts in flight are abandoned (and retried at the
// next start, so a delivery may arrive twice: at least once).
func (d *Dispatcher) Stop() {
	if d.cancel != nil {
		d.cancel()
		d.wg.Wait()
	}
}

// Pending is the number of deliveries waiting for an attempt.
func (d *Dispatcher) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.sched)
}

func (d *Dispatcher) run(ctx context.Context) {
	sem := make(chan struct{}, d.opts.Workers)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := d.dispatchDue(ctx, sem)
		wait := 30 * time.Second
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(d.opts.Now()), 10*time.Millisecond))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// dispatchDue starts an attempt for every due delivery and returns the
// earliest future attempt time (zero if none).
func (d *Dispatcher) dispatchDue(ctx context.Context, sem chan struct{}) time.Time {
	now := d.opts.Now()
	var (
		due  []int64
		next time.Time
	)
	d.mu.Lock()
	for n, at := range d.sched {
		if d.inflight[n] {
			continue
		}
		if !at.After(now) {
			due = append(due, n)
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	slices.Sort(due)
	for _, n := range due {
		d.inflight[n] = true
	}
	d.mu.Unlock()
	for i, n := range due {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			d.mu.Lock()
			for _, m := range due[i:] {
				delete(d.inflight, m)
			}
			d.mu.Unlock()
			return next
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer func() { <-sem }()
			d.attempt(ctx, n)
			d.mu.Lock()
			delete(d.inflight, n)
			d.mu.Unlock()
			d.poke()
		}()
	}
	return next
}

// attempt claims delivery n, makes one attempt and records its outcome.
func (d *Dispatcher) attempt(ctx context.Context, n int64) {
	del, err := d.claim(n)
	if err != nil {
		// Gone, finished, or another dispatcher's now: not ours to attempt.
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			d.log.Error("claim webhook delivery", "delivery", formatID(n), "err", err)
		}
		d.unschedule(n)
		return
	}
	h := d.Hook(del.Tenant, del.Webhook)
	now := d.opts.Now().UTC()
	switch {
	case h == nil:
		del.State, del.LastError, del.CompletedAt = StateFailed, "webhook "+del.Tenant+"/"+del.Webhook+" no longer exists", now
		d.finish(n, &del)
		return
	case h.Disabled:
		// Held, not attempted: re-checked every 30s until re-enabled.
		d.mu.Lock()
		d.sched[n] = now.Add(30 * time.Second)
		d.mu.Unlock()
		return
	}
	res, err := d.post(ctx, h, &del, now)
	if ctx.Err() != nil {
		return // shutting down: not an attempt; retried at the next start
	}
	status := res.status
	del.Attempts++
	del.LastAttemptAt, del.LastStatus, del.LastDuration, del.LastResponse, del.LastError = now, status, res.dur, res.excerpt, ""
	var refused *RefusedError
	maxAttempts := h.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 8
	}
	switch {
	case err == nil && status >= 200 && status < 300:
		del.State, del.CompletedAt, del.NextAttemptAt = StateSucceeded, d.opts.Now().UTC(), time.Time{}
	case errors.As(err, &refused):
		// A policy refusal does not get better by retrying.
		del.State, del.LastError, del.CompletedAt, del.NextAttemptAt = StateFailed, refused.Error(), d.opts.Now().UTC(), time.Time{}
	default:
		if err != nil {
			del.LastError = err.Error()
		} else {
			del.LastError = "receiver answered HTTP " + strconv.Itoa(status)
		}
		if del.Attempts >= maxAttempts {
			del.State, del.CompletedAt, del.NextAttemptAt = StateFailed, d.opts.Now().UTC(), time.Time{}
			break
		}
		wait := d.opts.Backoff(del.Attempts)
		if res.retryAfter > wait {
			wait = min(res.retryAfter, time.Hour)
		}
		del.NextAttemptAt = d.opts.Now().UTC().Add(wait)
	}
	d.finish(n, &del)
}

// result is the outcome of one attempt.
type result struct {
	status     int
	excerpt    string // printable start of the answer
	dur        time.Duration
	retryAfter time.Duration // the receiver's Retry-After (seconds form) on 429 and 503
}

// post sends one attempt.
func (d *Dispatcher) post(ctx context.Context, h *Hook, del *Delivery, now time.Time) (result, error) {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(del.Body))
	if err != nil {
		return result{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "stoa-webhooks/1")
	req.Header.Set(HeaderEvent, del.EventType)
	req.Header.Set(HeaderDelivery, del.ID)
	req.Header.Set(HeaderSignature, Sign(h.Secret, now, del.Body))
	client := d.guarded
	if h.AllowPrivate || d.opts.AllowPrivate {
		client = d.open
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return result{dur: time.Since(start)}, unwrapURLError(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	res := result{status: resp.StatusCode, excerpt: printable(b), dur: time.Since(start)}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if sec, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && sec > 0 {
			res.retryAfter = time.Duration(sec) * time.Second
		}
	}
	return res, nil
}

// unwrapURLError drops net/url's "Post "<url>":" prefix (the URL may hold
// a token in its query) but keeps the cause, including a *RefusedError.
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

func printable(b []byte) string {
	out := make([]rune, 0, len(b))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r == utf8.RuneError || (r < 0x20 && r != ' ') {
			r = '.'
		}
		out = append(out, r)
	}
	return string(out)
}

// ReloadPending schedules what the outbox holds pending that this
// dispatcher has not scheduled — deliveries another replica sharing the
// store queued — and moves a scheduled attempt later when the store has
// a later one (another replica attempted it and backed off). Deliveries
// finished elsewhere stay scheduled until their claim fails, which
// unschedules them.
func (d *Dispatcher) ReloadPending() error {
	var due []store.DueDelivery
	ctx := context.Background()
	err := d.opts.Store.View(ctx, func(tx store.Tx) error {
		var err error
		due, err = tx.Outbox().Pending(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("reload webhook outbox: %w", err)
	}
	d.mu.Lock()
	for _, p := range due {
		if at, ok := d.sched[p.ID]; !ok || (!d.inflight[p.ID] && p.NextAttemptAt.After(at)) {
			d.sched[p.ID] = p.NextAttemptAt
		}
	}
	d.mu.Unlock()
	d.poke()
	return nil
}

func (d *Dispatcher) unschedule(n int64) {
	d.mu.Lock()
	delete(d.sched, n)
	d.mu.Unlock()
}

// claim takes delivery n for this dispatcher.
func (d *Dispatcher) claim(n int64) (Delivery, error) {
	var del Delivery
	ctx := context.Background()
	err := d.opts.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		del, err = tx.Outbox().Claim(ctx, n, d.opts.Owner, time.Duration(d.lease.Load()))
		return err
	})
	return del, err
}

// finish stores del after an attempt (releasing the claim) and wakes
// waiters.
func (d *Dispatcher) finish(n int64, del *Delivery) {
	ctx := context.Background()
	err := d.opts.Store.Update(ctx, func(tx store.Tx) error {
		if del.State == StatePending {
			return tx.Outbox().Retry(ctx, d.opts.Owner, *del)
		}
		return tx.Outbox().Ack(ctx, d.opts.Owner, *del)
	})
	if err != nil {
		d.log.Error("store webhook delivery", "delivery", del.ID, "err", err)
		return
	}
	if del.State == StatePending {
		d.log.Info("webhook delivery failed; will retry", "delivery", del.ID, "webhook", del.Tenant+"/"+del.Webhook,
			"attempt", del.Attempts, "status", del.LastStatus, "err", del.LastError, "next", del.NextAttemptAt)
	} else {
		d.log.Info("webhook delivery "+del.State, "delivery", del.ID, "webhook", del.Tenant+"/"+del.Webhook,
			"attempts", del.Attempts, "status", del.LastStatus, "err", del.LastError)
	}
	d.mu.Lock()
	if del.State == StatePending {
		d.sched[n] = del.NextAttemptAt
	} else {
		delete(d.sched, n)
	}
	ws := d.waiters[n]
	delete(d.waiters, n)
	d.mu.Unlock()
	out := *del
	out.Body = nil
	for _, ch := range ws {
		ch <- out
	}
}
