package quota

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"
)

// Shared is a counter store the data planes of a fleet share (Redis:
// redislimit.Counters). Add adds adds[i] to counter keys[i] — creating it,
// when new, to live ttls[i] — and returns every counter's total after the
// adds, in one atomic step. With no keys, Add only checks that the store
// answers.
type Shared interface {
	Add(ctx context.Context, keys []string, adds []int64, ttls []time.Duration) ([]int64, error)
}

// SharedOptions configure RunShared.
type SharedOptions struct {
	// Every is the exchange interval (default 100ms): a quota is exact
	// to within the calls the fleet admits in one interval.
	Every time.Duration
	// Units makes a counter exchange early once this process has counted
	// that many calls on it since the last exchange (default 100).
	Units int64
	// Peers returns the number of live data planes (nil: 1). While the
	// store is unreachable each is assumed to spend as fast as this one.
	Peers func() int
	// FailClosed refuses calls under a quota (Verdict Unavailable) while
	// the store is unreachable, instead of sharing what was left.
	FailClosed bool
	// OnChange is told when the store becomes unreachable (err != nil)
	// and reachable again (err == nil).
	OnChange func(err error)
}

// fleet is RunShared's state as the request path sees it.
type fleet struct {
	down   atomic.Bool
	closed bool
	units  int64
	peerFn func() int
	wake   chan struct{}
}

func (f *fleet) peers() int {
	if f.peerFn == nil {
		return 1
	}
	return max(1, f.peerFn())
}

func (f *fleet) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// activeRounds is how many exchanges a window is kept in sync after its
// last local call: a subscription busy here learns the others' counts
// every interval; one idle here costs nothing.
const activeRounds = 600

// RunShared makes the quotas fleet-wide until ctx is done: every
// opts.Every (or sooner, when a counter has opts.Units new calls) it adds
// this process's new calls to the shared counters and learns what the
// other data planes counted. Call it after Load: counts restored from the
// store are taken as already shared (they were, up to the last interval
// before a crash). It returns ctx's error.
func (q *Quotas) RunShared(ctx context.Context, s Shared, opts SharedOptions) error {
	if opts.Every <= 0 {
		opts.Every = 100 * time.Millisecond
	}
	if opts.Units <= 0 {
		opts.Units = 100
	}
	f := &fleet{closed: opts.FailClosed, units: opts.Units, peerFn: opts.Peers, wake: make(chan struct{}, 1)}
	for _, u := range q.usages() {
		for _, w := range []*window{&u.day, &u.month} {
			w.sent.Store(w.n.Load())
		}
	}
	q.fleet.Store(f)
	defer q.fleet.Store(nil)
	t := time.NewTicker(opts.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-f.wake:
		}
		err := q.SyncShared(ctx, s, time.Now())
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if (err != nil) != f.down.Load() {
			f.down.Store(err != nil)
			if opts.OnChange != nil {
				opts.OnChange(err)
			}
		}
	}
}

// Sharing reports whether RunShared is running: calls counted from then
// on are added to the shared counters.
func (q *Quotas) Sharing() bool { return q.fleet.Load() != nil }

// usages lists every subscription's counters.
func (q *Quotas) usages() map[string]*Usage {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := make(map[string]*Usage, len(q.usage))
	for k, u := range q.usage {
		m[k] = u
	}
	return m
}

// syncBatch bounds the counters of one call to the store.
const syncBatch = 500

// SyncShared is one exchange with the shared store (RunShared's step):
// for each counter of the current day and month that this process
// touched lately, it adds the calls not yet sent and records the others'
// total as the window's base.
func (q *Quotas) SyncShared(ctx context.Context, s Shared, now time.Time) error {
	p := periodsAt(now)
	type item struct {
		w        *window
		idx, add int64
	}
	var (
		items []item
		keys  []string
		adds  []int64
		ttls  []time.Duration
		calls int
	)
	flush := func() error {
		if len(keys) == 0 && calls > 0 {
			return nil
		}
		// With nothing to send, the call still checks that the store
		// answers: an outage shows before the next call needs it.
		calls++
		totals, err := s.Add(ctx, keys, adds, ttls)
		if err != nil {
			return err
		}
		for i, it := range items {
			if i >= len(totals) {
				break
			}
			w := it.w
			w.mu.Lock()
			if w.idx.Load() == it.idx { // not rolled over meanwhile
				sent := w.sent.Add(it.add)
				w.base.Store(totals[i] - sent)
			}
			w.mu.Unlock()
		}
		items, keys, adds, ttls = items[:0], keys[:0], adds[:0], ttls[:0]
		return nil
	}
	for key, u := range q.usages() {
		for _, per := range [...]struct {
			w    *window
			name string
			idx  int64
			end  int64
		}{{&u.day, PeriodDay, p.day, p.dayEnd}, {&u.month, PeriodMonth, p.month, p.monthEnd}} {
			w := per.w
			if w.idx.Load() < per.idx {
				w.roll(per.idx) // a new period: learn its count before the first call
			}
			if w.idx.Load() != per.idx {
				continue
			}
			add := w.n.Load() - w.sent.Load()
			if add != 0 {
				w.active = activeRounds
			} else if w.active == 0 {
				continue
			} else {
				w.active--
			}
			items = append(items, item{w: w, idx: per.idx, add: add})
			keys = append(keys, key+":"+per.name+":"+strconv.FormatInt(per.idx, 10))
			adds = append(adds, add)
			// The total outlives its period by a day: a data plane whose
			// clock lags still finds it.
			ttls = append(ttls, time.Duration(per.end-now.UnixNano())+24*time.Hour)
			if len(keys) == syncBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}
