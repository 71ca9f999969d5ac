package redislimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// CountersOptions configure Counters.
type CountersOptions struct {
	Conn Conn
	// Prefix starts every counter's Redis key (default "stoa:"), followed
	// by "q:" and the caller's key.
	Prefix string
	// Timeout bounds one exchange (default 1s).
	Timeout time.Duration
}

// Counters are counters shared by the data planes of a fleet: quota
// usage (pkg/quota's Shared). Each data plane counts locally and, every
// interval, adds what it counted with one script call that returns the
// fleet's totals.
type Counters struct {
	opts CountersOptions

	mu     sync.Mutex
	client rueidis.Client
}

// NewCounters returns Counters; they connect on first use, and again after
// a failure.
func NewCounters(opts CountersOptions) *Counters {
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	return &Counters{opts: opts}
}

// addScript adds to each counter, gives a new one its lifetime, and
// returns the totals: one atomic step, one round trip for a whole batch.
var addScript = rueidis.NewLuaScript(`
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('INCRBY', KEYS[i], ARGV[2 * i - 1])
  if redis.call('PTTL', KEYS[i]) < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
  end
end
return out
`)

// Add adds adds[i] to counter keys[i] (created to live ttls[i]) and
// returns every counter's total after the adds. With no keys it checks
// that Redis answers.
func (c *Counters) Add(ctx context.Context, keys []string, adds []int64, ttls []time.Duration) ([]int64, error) {
	if len(keys) != len(adds) || len(keys) != len(ttls) {
		return nil, fmt.Errorf("add to shared counters: %d keys, %d adds, %d lifetimes", len(keys), len(adds), len(ttls))
	}
	cl, err := c.conn()
	if err != nil {
		return nil, fmt.Errorf("add to shared counters: %w", err)
	}
	if len(keys) == 0 { // a health check
		ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
		if err := cl.Do(ctx, cl.B().Ping().Build()).Error(); err != nil {
			c.drop(cl)
			return nil, fmt.Errorf("reach shared counters: %w", err)
		}
		return nil, nil
	}
	names := make([]string, len(keys))
	args := make([]string, 0, 2*len(keys))
	for i, k := range keys {
		names[i] = c.opts.Prefix + "q:" + k
		args = append(args, strconv.FormatInt(adds[i], 10), strconv.FormatInt(max(1, ttls[i].Milliseconds()), 10))
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	v, err := addScript.Exec(ctx, cl, names, args).AsIntSlice()
	if err != nil {
		c.drop(cl)
		return nil, fmt.Errorf("add to shared counters: %w", err)
	}
	if len(v) != len(keys) {
		return nil, fmt.Errorf("add to shared counters: %d totals for %d counters", len(v), len(keys))
	}
	return v, nil
}

func (c *Counters) conn() (rueidis.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	cl, err := c.opts.Conn.client()
	if err != nil {
		return nil, err
	}
	c.client = cl
	return cl, nil
}

// drop forgets a client that failed, so that the next exchange dials
// afresh.
func (c *Counters) drop(cl rueidis.Client) {
	c.mu.Lock()
	if c.client == cl {
		c.client = nil
		cl.Close()
	}
	c.mu.Unlock()
}

// Close closes the connection.
func (c *Counters) Close() {
	c.mu.Lock()
	if c.client != nil {
		c.client.Close()
		c.client = nil
	}
	c.mu.Unlock()
}
