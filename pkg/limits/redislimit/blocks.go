package redislimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// Block is one escalation decision shared across the fleet: traffic from
// Prefix is dropped until Until.
type Block struct {
	Prefix netip.Prefix `json:"prefix"`
	Until  time.Time    `json:"until"`
	// Reason says why, for logs and `stoa get blocks` (at most 200 bytes).
	Reason string `json:"reason,omitempty"`
	// Origin names the data plane that decided it.
	Origin string `json:"origin,omitempty"`
}

// maxReason bounds Block.Reason: blocks travel to every data plane.
const maxReason = 200

// check validates b for publishing at now.
func (b Block) check(now time.Time) error {
	switch {
	case !b.Prefix.IsValid():
		return errors.New("publish block: no source prefix (want an address or CIDR such as 192.0.2.7/32)")
	case b.Prefix != b.Prefix.Masked():
		return fmt.Errorf("publish block: prefix %s has host bits set (did you mean %s?)", b.Prefix, b.Prefix.Masked())
	case !b.Until.After(now):
		return fmt.Errorf("publish block %s: until %s is not in the future", b.Prefix, b.Until.Format(time.RFC3339))
	case len(b.Reason) > maxReason:
		return fmt.Errorf("publish block %s: reason is %d bytes, at most %d", b.Prefix, len(b.Reason), maxReason)
	}
	return nil
}

// BlocksOptions configure Blocks.
type BlocksOptions struct {
	Conn Conn
	// Prefix starts the Redis names used (default "stoa:"): the channel
	// <prefix>blocks and the hash <prefix>blocks:active.
	Prefix string
	// Origin names this data plane. Subscribe does not hand back the
	// blocks it published itself (it applied them already).
	Origin string
	// OnError is told when a subscription breaks, a message cannot be
	// read, or a reconnection fails; Subscribe keeps retrying meanwhile.
	OnError func(error)
}

// Blocks shares block decisions between data planes: Publish on the data
// plane whose escalator decided, Subscribe on every one (the daemon hands
// the blocks to its XDP block list). Messages go over Redis pub/sub; the
// blocks in force are also kept in a hash, so that a data plane that
// (re)connects — and missed messages meanwhile — starts from them.
//
// Anyone who can write to Redis can block traffic on every data plane:
// protect Redis like the control plane (ACL user, TLS, private network).
type Blocks struct {
	opts    BlocksOptions
	channel string
	active  string

	mu     sync.Mutex
	client rueidis.Client
}

// NewBlocks returns Blocks; it connects on first use.
func NewBlocks(opts BlocksOptions) *Blocks {
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	return &Blocks{opts: opts, channel: opts.Prefix + "blocks", active: opts.Prefix + "blocks:active"}
}

// conn returns the client, connecting if there is none.
func (b *Blocks) conn() (rueidis.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client != nil {
		return b.client, nil
	}
	cl, err := b.opts.Conn.client()
	if err != nil {
		return nil, err
	}
	b.client = cl
	return cl, nil
}

// drop forgets a client that failed, so that the next use dials afresh.
func (b *Blocks) drop(cl rueidis.Client) {
	b.mu.Lock()
	if b.client == cl {
		b.client = nil
		cl.Close()
	}
	b.mu.Unlock()
}

// Close closes the connection. Subscribe calls return once their context
// is done.
func (b *Blocks) Close() {
	b.mu.Lock()
	if b.client != nil {
		b.client.Close()
		b.client = nil
	}
	b.mu.Unlock()
}

// publishScript records a block unless a longer one for the same prefix is
// in force, keeps the hash alive as long as its longest block, and
// announces the block. Atomic, so that two data planes blocking the same
// source at once keep the longer block.
var publishScript = rueidis.NewLuaScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local u = cjson.decode(cur).until_ms
  if u and u >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = tonumber(ARGV[3]) - tonumber(ARGV[4])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
redis.call('PUBLISH', KEYS[2], ARGV[2])
return 1
`)

// wireBlock is a Block as stored and published: until_ms lets the script
// compare blocks without parsing times.
type wireBlock struct {
	Block
	UntilMS int64 `json:"until_ms"`
}

// Publish shares b with every data plane. It reports whether b was
// recorded: false when a block of the same prefix lasting at least as long
// is already in force.
func (b *Blocks) Publish(ctx context.Context, blk Block) (bool, error) {
	now := time.Now()
	if err := blk.check(now); err != nil {
		return false, err
	}
	if blk.Origin == "" {
		blk.Origin = b.opts.Origin
	}
	msg, err := json.Marshal(wireBlock{Block: blk, UntilMS: blk.Until.UnixMilli()})
	if err != nil {
		return false, err
	}
	cl, err := b.conn()
	if err != nil {
		return false, fmt.Errorf("publish block %s: %w", blk.Prefix, err)
	}
	n, err := publishScript.Exec(ctx, cl, []string{b.active, b.channel},
		[]string{blk.Prefix.String(), string(msg), fmt.Sprint(blk.Until.UnixMilli()), fmt.Sprint(now.UnixMilli())}).AsInt64()
	if err != nil {
		b.drop(cl)
		return false, fmt.Errorf("publish block %s: %w", blk.Prefix, err)
	}
	return n == 1, nil
}

// Active returns the blocks in force, and deletes the expired ones.
func (b *Blocks) Active(ctx context.Context) ([]Block, error) {
	cl, err := b.conn()
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	m, err := cl.Do(ctx, cl.B().Hgetall().Key(b.active).Build()).AsStrMap()
	if err != nil {
		b.drop(cl)
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	now := time.Now()
	var out []Block
	var expired []string
	for field, v := range m {
		blk, err := decodeBlock([]byte(v))
		switch {
		case err != nil:
			b.report(fmt.Errorf("list blocks: entry %q: %w", field, err))
		case !blk.Until.After(now):
			expired = append(expired, field)
		default:
			out = append(out, blk)
		}
	}
	if len(expired) > 0 {
		cl.Do(ctx, cl.B().Hdel().Key(b.active).Field(expired...).Build())
	}
	return out, nil
}

// Subscribe hands fn every block published by another data plane, until
// ctx is done: first the blocks in force, then each new one as it comes.
// It reconnects by itself (with backoff) and, after each reconnection,
// hands fn the blocks in force again, so that none published meanwhile is
// missed; fn must therefore accept a block it has seen. fn runs on
// Subscribe's goroutine, one block at a time. Subscribe returns ctx's
// error.
func (b *Blocks) Subscribe(ctx context.Context, fn func(Block)) error {
	backoff := minBackoff
	for {
		err := b.subscribeOnce(ctx, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			b.report(fmt.Errorf("subscribe to blocks: %w", err))
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, maxBackoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (b *Blocks) subscribeOnce(ctx context.Context, fn func(Block)) error {
	cl, err := b.conn()
	if err != nil {
		return err
	}
	deliver := func(blk Block) {
		if blk.Origin == "" || blk.Origin != b.opts.Origin {
			fn(blk)
		}
	}
	ready := make(chan struct{})
	var once sync.Once
	msgs := make(chan Block, 256)
	err = cl.Dedicated(func(dc rueidis.DedicatedClient) error {
		broken := dc.SetPubSubHooks(rueidis.PubSubHooks{
			OnMessage: func(m rueidis.PubSubMessage) {
				blk, err := decodeBlock([]byte(m.Message))
				if err != nil {
					b.report(fmt.Errorf("block message: %w", err))
					return
				}
				select { // a slow fn holds the connection back, not memory
				case msgs <- blk:
				case <-ctx.Done():
				}
			},
			OnSubscription: func(s rueidis.PubSubSubscription) {
				if s.Kind == "subscribe" {
					once.Do(func() { close(ready) })
				}
			},
		})
		if err := dc.Do(ctx, dc.B().Subscribe().Channel(b.channel).Build()).Error(); err != nil {
			return err
		}
		select {
		case <-ready:
		case err := <-broken:
			return orEnded(err)
		case <-ctx.Done():
			return ctx.Err()
		}
		// Subscribed first, then read the blocks in force: a block
		// published in between arrives twice rather than not at all.
		active, err := b.Active(ctx)
		if err != nil {
			return err
		}
		for _, blk := range active {
			deliver(blk)
		}
		for {
			select {
			case blk := <-msgs:
				deliver(blk)
			case err := <-broken:
				return orEnded(err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
	if err != nil && ctx.Err() == nil {
		b.drop(cl)
	}
	return err
}

func orEnded(err error) error {
	if err == nil {
		return errors.New("subscription ended")
	}
	return err
}

func (b *Blocks) report(err error) {
	if b.opts.OnError != nil {
		b.opts.OnError(err)
	}
}

// decodeBlock reads a published block, refusing what no data plane could
// have published (the channel is writable by anyone with Redis access).
func decodeBlock(p []byte) (Block, error) {
	var w wireBlock
	if err := json.Unmarshal(p, &w); err != nil {
		return Block{}, err
	}
	blk := w.Block
	switch {
	case !blk.Prefix.IsValid() || blk.Prefix != blk.Prefix.Masked():
		return Block{}, fmt.Errorf("invalid prefix %s", blk.Prefix)
	case blk.Until.IsZero():
		return Block{}, errors.New("no until")
	case len(blk.Reason) > maxReason:
		return Block{}, errors.New("reason too long")
	}
	return blk, nil
}
