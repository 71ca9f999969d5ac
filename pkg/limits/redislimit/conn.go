package redislimit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Conn says how to reach Redis: one node, or the primary behind Sentinel
// (see docs/limits.md for why Redis Cluster is not supported).
type Conn struct {
	// Addr is host:port of the Redis server (default 127.0.0.1:6379).
	Addr string
	// SentinelMaster, when set, makes Addr a Sentinel and names the
	// master set to follow across failovers.
	SentinelMaster string
	// MoreAddrs are further Sentinels to ask (with SentinelMaster), tried
	// when Addr does not answer.
	MoreAddrs []string
	// Username and Password authenticate (ACL user, or requirepass alone).
	Username, Password string
	// DB is the database number (SELECT).
	DB int
	// TLS, when set, encrypts the connection.
	TLS *tls.Config
	// DialTimeout bounds connecting (default 1s).
	DialTimeout time.Duration
}

// client opens a connection. rueidis dials at once, so this fails when
// Redis is unreachable; the callers retry with backoff. The client-side
// cache is off (nothing here is cacheable), and rueidis' own retries are
// off: the limiter has its own answer to a failed call (the failure mode)
// and must not hold a request while a command is replayed.
func (c Conn) client() (rueidis.Client, error) {
	addr := c.Addr
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	dial := c.DialTimeout
	if dial <= 0 {
		dial = time.Second
	}
	opt := rueidis.ClientOption{
		InitAddress:      append([]string{addr}, c.MoreAddrs...),
		Username:         c.Username,
		Password:         c.Password,
		SelectDB:         c.DB,
		TLSConfig:        c.TLS,
		ClientName:       "stoad",
		Dialer:           net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second},
		ConnWriteTimeout: dial,
		DisableCache:     true,
		DisableRetry:     true,
	}
	if c.SentinelMaster == "" {
		// Not left to guessing: a cluster node is refused in check, with
		// a reason, rather than half-working across slots.
		opt.ForceSingleClient = true
	} else {
		opt.Sentinel = rueidis.SentinelOption{MasterSet: c.SentinelMaster, Username: c.Username, Password: c.Password, TLSConfig: c.TLS}
	}
	cl, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("connect to redis %s: %w (is redis-server running and reachable?)", addr, err)
	}
	if err := check(cl); err != nil {
		cl.Close()
		return nil, fmt.Errorf("connect to redis %s: %w", addr, err)
	}
	return cl, nil
}

// check refuses servers the script cannot run on correctly: Redis Cluster
// (one request's keys live in different slots, and a script may only touch
// one slot) and Redis before 5 (scripts could not read TIME and still
// write).
func check(cl rueidis.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := cl.Do(ctx, cl.B().Info().Build()).ToString()
	if err != nil {
		return err
	}
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			if major, _, _ := strings.Cut(v, "."); len(major) == 1 && major < "5" {
				return fmt.Errorf("redis %s is too old: shared limits need Redis 5 or later", v)
			}
		}
		if line == "cluster_enabled:1" {
			return errors.New("it is a Redis Cluster node: shared limits need one Redis node (or Sentinel), since all of a request's keys must be updated by one script")
		}
	}
	return nil
}
