package redislimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// PeersOptions configure Peers.
type PeersOptions struct {
	Conn Conn
	// Prefix starts the Redis key (default "stoa:"): the sorted set
	// <prefix>peers.
	Prefix string
	// ID names this data plane; unique in the fleet.
	ID string
	// Every is the heartbeat interval (default 1s). A data plane that
	// has not beaten for 3 intervals no longer counts.
	Every time.Duration
}

// Peers counts the live data planes sharing one Redis, for
// Options.Peers: each beats into a sorted set (member: its ID, score:
// Redis' clock) and counts the members that beat lately, in one script
// call per interval. While Redis cannot be reached, Count keeps the last
// count — the fleet the failure modes divide limits by.
type Peers struct {
	opts  PeersOptions
	key   string
	count atomic.Int64

	mu     sync.Mutex
	client rueidis.Client
}

// NewPeers returns Peers counting 1 (this data plane) until the first
// beat.
func NewPeers(opts PeersOptions) *Peers {
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if opts.Every <= 0 {
		opts.Every = time.Second
	}
	p := &Peers{opts: opts, key: opts.Prefix + "peers"}
	p.count.Store(1)
	return p
}

// beatScript records a beat at Redis' time, drops members silent for
// ARGV[2] ms and returns how many are left. Redis' clock, not the data
// planes': their clocks may disagree.
var beatScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])
`)

// Count is the number of live data planes, this one included (at least 1).
func (p *Peers) Count() int { return int(max(1, p.count.Load())) }

// Beat is one heartbeat: it records this data plane and updates Count.
func (p *Peers) Beat(ctx context.Context) error {
	cl, err := p.conn()
	if err != nil {
		return fmt.Errorf("count data planes: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Every)
	defer cancel()
	ttl := strconv.FormatInt((3 * p.opts.Every).Milliseconds(), 10)
	n, err := beatScript.Exec(ctx, cl, []string{p.key}, []string{p.opts.ID, ttl}).AsInt64()
	if err != nil {
		p.drop(cl)
		return fmt.Errorf("count data planes: %w", err)
	}
	p.count.Store(n)
	return nil
}

// Run beats every interval until ctx is done, then removes this data
// plane from the set (a data plane that stops is not counted for three
// intervals more), and returns ctx's error.
func (p *Peers) Run(ctx context.Context) error {
	t := time.NewTicker(p.opts.Every)
	defer t.Stop()
	for {
		_ = p.Beat(ctx) // an outage keeps the last count; the limiter reports it
		select {
		case <-ctx.Done():
			p.leave()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (p *Peers) leave() {
	cl, err := p.conn()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.Every)
	defer cancel()
	cl.Do(ctx, cl.B().Zrem().Key(p.key).Member(p.opts.ID).Build())
}

func (p *Peers) conn() (rueidis.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	cl, err := p.opts.Conn.client()
	if err != nil {
		return nil, err
	}
	p.client = cl
	return cl, nil
}

func (p *Peers) drop(cl rueidis.Client) {
	p.mu.Lock()
	if p.client == cl {
		p.client = nil
		cl.Close()
	}
	p.mu.Unlock()
}

// Close closes the connection.
func (p *Peers) Close() {
	p.mu.Lock()
	if p.client != nil {
		p.client.Close()
		p.client = nil
	}
	p.mu.Unlock()
}
