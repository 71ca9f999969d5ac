package redislimit

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/stoa-gateway/stoa/pkg/limits"
)

// FailMode says what a Limiter decides while Redis cannot be reached.
type FailMode uint8

const (
	// FailOpen enforces each limit's share locally: limit ÷ Peers() per
	// data plane, so the fleet admits about the limit while load is
	// spread evenly.
	FailOpen FailMode = iota
	// FailClosed refuses what the tokens this data plane already holds
	// do not cover, with Decision.Unavailable set (the proxy answers 503).
	FailClosed
)

func (m FailMode) String() string {
	if m == FailClosed {
		return "closed"
	}
	return "open"
}

// Options configure a Limiter. The zero value connects to 127.0.0.1:6379
// and fails open.
type Options struct {
	// Conn says how to reach Redis.
	Conn Conn
	// Prefix starts every Redis key the Limiter writes (default "stoa:").
	// Data planes sharing limits must use the same prefix; gateways
	// sharing one Redis must not.
	Prefix string
	// FailMode is what happens while Redis is unreachable.
	FailMode FailMode
	// Peers returns the number of live data planes, this one included
	// (from config or heartbeats). It sizes leases and, when failing
	// open, each data plane's share of a limit. nil or < 1 means 1.
	Peers func() int
	// LeaseWindow is how much of this data plane's demand on a key one
	// lease covers (default 20ms). Negative: no leases, every request is
	// one script call (exact, and one round trip per request).
	LeaseWindow time.Duration
	// Accuracy bounds the tokens the fleet holds in leases for one key,
	// as a fraction of the key's rate per second (default 0.01): each
	// data plane holds at most max(1, Accuracy × rate/s ÷ Peers()).
	Accuracy float64
	// LeaseTTL is how long tokens may sit unused before they are
	// returned (default 1s). Prefetching also stops for a key whose
	// demand would not spend a lease within half of it.
	LeaseTTL time.Duration
	// Timeout bounds how long a request waits for Redis (default 100ms);
	// a call that takes longer counts as Redis lost.
	Timeout time.Duration
	// Now, when set, is the clock sent to Redis and used locally (tests,
	// or fleets that trust their NTP). nil uses Redis' own clock (TIME),
	// so that data planes with skewed clocks still agree.
	Now func() time.Time
	// OnEvent is told when Redis is lost and when it is back. It runs on
	// the Limiter's own goroutine, one event at a time.
	OnEvent func(Event)
	// MaxKeys bounds the keys this data plane keeps lease state for
	// (default 1<<20); idle ones are dropped after a minute.
	MaxKeys int
}

const (
	defaultPrefix      = "stoa:"
	defaultLeaseWindow = 20 * time.Millisecond
	defaultAccuracy    = 0.01
	defaultLeaseTTL    = time.Second
	defaultTimeout     = 100 * time.Millisecond
	defaultMaxKeys     = 1 << 20
	idleTTL            = time.Minute
	nShards            = 64
	maxStackKeys       = 8
	// maxRounds bounds how often one request goes back to Redis for
	// tokens that concurrent requests keep spending first; after that it
	// is decided by one direct call.
	maxRounds = 3
)

// Limiter is the Redis-backed limits.Checker. It is safe for concurrent
// use. Close it to return unused tokens and stop its goroutines.
type Limiter struct {
	opts     Options
	prefix   string
	window   time.Duration
	ttl      time.Duration
	timeout  time.Duration
	perShard int
	seed     uint64
	base     time.Time

	shards [nShards]shard

	client   atomic.Pointer[rueidis.Client]
	down     atomic.Bool
	fallback *limits.Limiter
	health   health
	refill   refiller
	stats    stats

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// shard is one lock and the leases of the keys that hash to it.
type shard struct {
	mu sync.Mutex
	t  leaseTable
	_  [16]byte // one cache line per shard
}

type stats struct {
	calls, syncCalls, errors, outages atomic.Uint64
}

var _ limits.Checker = (*Limiter)(nil)

// New returns a Limiter and starts its goroutines. It does not wait for
// Redis: if Redis cannot be reached yet, the Limiter starts in its failure
// mode and connects in the background.
func New(opts Options) *Limiter {
	l := &Limiter{
		opts:     opts,
		prefix:   opts.Prefix,
		window:   opts.LeaseWindow,
		ttl:      opts.LeaseTTL,
		timeout:  opts.Timeout,
		seed:     rand.Uint64() | 1,
		base:     time.Now(),
		fallback: limits.New(limits.Options{}),
	}
	if l.prefix == "" {
		l.prefix = defaultPrefix
	}
	if l.window == 0 {
		l.window = defaultLeaseWindow
	}
	if l.opts.Accuracy <= 0 {
		l.opts.Accuracy = defaultAccuracy
	}
	if l.ttl <= 0 {
		l.ttl = defaultLeaseTTL
	}
	if l.timeout <= 0 {
		l.timeout = defaultTimeout
	}
	if l.opts.MaxKeys <= 0 {
		l.opts.MaxKeys = defaultMaxKeys
	}
	l.perShard = max(1, l.opts.MaxKeys/nShards)
	for i := range l.shards {
		l.shards[i].t = newLeaseTable(minLeaseSlots)
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.health.init(l)
	l.refill.init()
	if cl, err := opts.Conn.client(); err == nil {
		l.client.Store(&cl)
		l.health.up(time.Now())
	} else {
		l.lost(err)
	}
	l.fallback.Start(0)
	l.wg.Add(2)
	go l.healthLoop()
	go l.refillLoop()
	return l
}

// Close returns the tokens this data plane holds, stops the Limiter's
// goroutines and closes its connection. The Limiter must not be used
// afterwards.
func (l *Limiter) Close() error {
	l.cancel()
	l.wg.Wait()
	l.returnAll()
	if cl := l.client.Swap(nil); cl != nil {
		(*cl).Close()
	}
	l.fallback.Stop()
	return nil
}

// clock is the local time in nanoseconds: the injected clock's Unix time,
// or monotonic time since New.
func (l *Limiter) clock() int64 {
	if l.opts.Now != nil {
		return l.opts.Now().UnixNano()
	}
	return int64(time.Since(l.base))
}

// redisNow is the clock sent to the script: zero means Redis' own.
func (l *Limiter) redisNow() time.Time {
	if l.opts.Now != nil {
		return l.opts.Now()
	}
	return time.Time{}
}

func (l *Limiter) peers() int {
	if l.opts.Peers == nil {
		return 1
	}
	return max(1, l.opts.Peers())
}

func (l *Limiter) shardOf(k limits.Key) uint32 { return uint32(hash(k, l.seed) % nShards) }

// conn returns the current client, or nil while there is none.
func (l *Limiter) conn() rueidis.Client {
	if p := l.client.Load(); p != nil {
		return *p
	}
	return nil
}
