package redislimit

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

var errNotConnected = errors.New("not connected to redis")

// EventType says what happened to the connection.
type EventType string

// The events a Limiter reports.
const (
	// EventDown: Redis could not be reached; the Limiter now decides by
	// its FailMode.
	EventDown EventType = "redis-down"
	// EventUp: Redis answers again; limits are shared again.
	EventUp EventType = "redis-up"
)

// Event is one change of the connection's state, for logs and the event
// stream.
type Event struct {
	Type EventType `json:"type"`
	At   time.Time `json:"at"`
	// Addr is the Redis address.
	Addr string `json:"addr"`
	// Error is why Redis was lost (EventDown).
	Error string `json:"error,omitempty"`
	// FailMode is how requests are decided while Redis is lost.
	FailMode string `json:"failMode"`
	// Outage is how long Redis was lost (EventUp).
	Outage time.Duration `json:"outage,omitempty"`
}

// Status is the Limiter's state, for `stoa status`.
type Status struct {
	Backend string `json:"backend"`
	Addr    string `json:"addr"`
	// State is "up" (limits shared) or "down" (deciding by FailMode).
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	LastError string    `json:"lastError,omitempty"`
	FailMode  string    `json:"failMode"`
	Peers     int       `json:"peers"`
	// Keys is how many keys this data plane holds lease state for, and
	// Tokens how many tokens it holds unspent.
	Keys   int   `json:"keys"`
	Tokens int64 `json:"tokens"`
	// Calls counts script calls; SyncCalls those a request waited for.
	Calls     uint64 `json:"calls"`
	SyncCalls uint64 `json:"syncCalls"`
	Errors    uint64 `json:"errors"`
	Outages   uint64 `json:"outages"`
}

// health tracks the connection: when it was lost or restored and why, and
// the events not yet delivered.
type health struct {
	l       *Limiter
	mu      sync.Mutex
	since   time.Time
	lastErr string
	pending []Event
	backoff time.Duration
	lastOK  atomic.Int64 // Unix ns of the last successful call
	wake    chan struct{}
}

const (
	minBackoff  = 50 * time.Millisecond
	maxBackoff  = 2 * time.Second
	idleProbe   = time.Second
	probeBudget = time.Second
)

func (h *health) init(l *Limiter) {
	h.l, h.wake, h.backoff = l, make(chan struct{}, 1), minBackoff
}

func (h *health) addr() string {
	if a := h.l.opts.Conn.Addr; a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

func (h *health) ok() { h.lastOK.Store(time.Now().UnixNano()) }

// up records a working connection.
func (h *health) up(now time.Time) {
	h.mu.Lock()
	h.since, h.lastErr, h.backoff = now, "", minBackoff
	h.mu.Unlock()
	h.ok()
}

// retryHint is the Retry-After of a request refused while Redis is lost:
// the next probe, at least a second.
func (h *health) retryHint() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return max(time.Second, h.backoff)
}

// lost marks Redis lost after a failed call; the first failure of an
// outage queues EventDown and wakes the health loop to probe.
func (l *Limiter) lost(err error) {
	if !l.down.CompareAndSwap(false, true) {
		return
	}
	now := time.Now()
	h := &l.health
	h.mu.Lock()
	h.since, h.lastErr = now, err.Error()
	h.pending = append(h.pending, Event{Type: EventDown, At: now, Addr: h.addr(), Error: err.Error(), FailMode: l.opts.FailMode.String()})
	h.mu.Unlock()
	l.stats.outages.Add(1)
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// healthLoop delivers events, probes a lost Redis with backoff until it
// answers, and pings an idle one so that an outage shows in Status before
// a request runs into it.
func (l *Limiter) healthLoop() {
	defer l.wg.Done()
	h := &l.health
	tick := time.NewTicker(idleProbe)
	defer tick.Stop()
	for {
		h.deliver()
		if l.down.Load() {
			err := l.reconnect()
			if err == nil {
				h.mu.Lock()
				now := time.Now()
				outage := now.Sub(h.since)
				h.since, h.lastErr, h.backoff = now, "", minBackoff
				h.pending = append(h.pending, Event{Type: EventUp, At: now, Addr: h.addr(), FailMode: l.opts.FailMode.String(), Outage: outage})
				h.mu.Unlock()
				h.ok()
				l.down.Store(false)
				continue
			}
			h.mu.Lock()
			h.lastErr = err.Error()
			wait := h.backoff
			h.backoff = min(2*h.backoff, maxBackoff)
			h.mu.Unlock()
			// Jitter, so that a fleet does not reconnect in lockstep.
			wait = wait/2 + rand.N(wait/2+1)
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		select {
		case <-l.ctx.Done():
			return
		case <-h.wake:
		case <-tick.C:
			if time.Since(time.Unix(0, h.lastOK.Load())) >= idleProbe {
				if err := l.ping(); err != nil && l.ctx.Err() == nil {
					l.stats.errors.Add(1)
					l.lost(err)
				}
			}
		}
	}
}

// deliver hands the pending events to OnEvent, in order.
func (h *health) deliver() {
	h.mu.Lock()
	ev := h.pending
	h.pending = nil
	h.mu.Unlock()
	if h.l.opts.OnEvent == nil {
		return
	}
	for _, e := range ev {
		h.l.opts.OnEvent(e)
	}
}

// reconnect checks that Redis answers, making a new client when there is
// none. A client whose probe fails is dropped, so that the next attempt
// dials afresh rather than waiting on a connection that may never come
// back (a closed client, a server replaced behind the same name).
func (l *Limiter) reconnect() error {
	if l.conn() == nil {
		cl, err := l.opts.Conn.client()
		if err != nil {
			return err
		}
		if !l.client.CompareAndSwap(nil, &cl) {
			cl.Close()
		}
		return nil
	}
	err := l.ping()
	if err != nil {
		if old := l.client.Swap(nil); old != nil {
			(*old).Close()
		}
	}
	return err
}

func (l *Limiter) ping() error {
	cl := l.conn()
	if cl == nil {
		return errNotConnected
	}
	ctx, cancel := context.WithTimeout(l.ctx, probeBudget)
	defer cancel()
	if err := cl.Do(ctx, cl.B().Ping().Build()).Error(); err != nil {
		return err
	}
	l.health.ok()
	return nil
}

// Status reports the connection's state and the lease state held.
func (l *Limiter) Status() Status {
	h := &l.health
	h.mu.Lock()
	st := Status{Backend: "redis", Addr: h.addr(), Since: h.since, LastError: h.lastErr}
	h.mu.Unlock()
	st.State = "up"
	if l.down.Load() {
		st.State = "down"
	}
	st.FailMode = l.opts.FailMode.String()
	st.Peers = l.peers()
	l.eachLease(func(ls *lease) {
		st.Keys++
		st.Tokens += ls.tokens
	})
	st.Calls = l.stats.calls.Load()
	st.SyncCalls = l.stats.syncCalls.Load()
	st.Errors = l.stats.errors.Load()
	st.Outages = l.stats.outages.Load()
	return st
}
