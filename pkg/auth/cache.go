package auth

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// cacheWays is the associativity of the verified-token cache.
const cacheWays = 8

// tokenCache maps the SHA-256 of a verified token to its Principal until
// the entry's deadline: min(token exp, insertion + TTL).
//
// It is a set-associative table of atomic pointers: a token's hash picks a
// set of cacheWays slots, a lookup reads at most those slots without taking
// any lock (so one hot token read from every core does not bounce a lock's
// cache line), and an insertion, which follows a signature verification and
// is therefore rare, takes a striped lock and replaces an empty, expired or
// not recently used slot of the set (CLOCK within the set). The table never
// grows, so the cache is bounded by construction.
type tokenCache struct {
	slots []atomic.Pointer[cacheEntry]
	mask  uint64 // number of sets - 1
	locks [64]sync.Mutex
}

type cacheEntry struct {
	key [32]byte
	p   *Principal
	// exp is the Unix nanosecond from which the entry must not be served.
	exp int64
	ref atomic.Bool
}

func newTokenCache(size int) *tokenCache {
	sets := 1
	for sets*cacheWays < size {
		sets <<= 1
	}
	return &tokenCache{slots: make([]atomic.Pointer[cacheEntry], sets*cacheWays), mask: uint64(sets - 1)}
}

func (c *tokenCache) set(key *[32]byte) uint64 {
	return binary.LittleEndian.Uint64(key[:8]) & c.mask
}

// get returns the cached principal for key, or nil if absent or past its
// deadline at now (Unix nanoseconds). It takes no lock and does not
// allocate.
func (c *tokenCache) get(key *[32]byte, now int64) *Principal {
	base := c.set(key) * cacheWays
	for i := range uint64(cacheWays) {
		e := c.slots[base+i].Load()
		if e == nil || e.key != *key {
			continue
		}
		if now >= e.exp {
			return nil
		}
		if !e.ref.Load() {
			e.ref.Store(true)
		}
		return e.p
	}
	return nil
}

// put stores p under key until exp (Unix nanoseconds).
func (c *tokenCache) put(key *[32]byte, p *Principal, exp, now int64) {
	if exp <= now {
		return
	}
	set := c.set(key)
	base := set * cacheWays
	mu := &c.locks[set%uint64(len(c.locks))]
	mu.Lock()
	defer mu.Unlock()
	victim := -1
	for i := range cacheWays {
		e := c.slots[base+uint64(i)].Load()
		if e != nil && e.key == *key {
			victim = i // replace the same token's entry
			break
		}
		if victim < 0 && (e == nil || now >= e.exp) {
			victim = i
		}
	}
	if victim < 0 {
		// CLOCK within the set: the first entry not used since the last
		// sweep goes; clear the marks of the used ones on the way.
		for i := range cacheWays {
			e := c.slots[base+uint64(i)].Load()
			if !e.ref.Load() {
				victim = i
				break
			}
			e.ref.Store(false)
		}
		if victim < 0 {
			victim = int(key[8] % cacheWays) // all were hot: any one
		}
	}
	c.slots[base+uint64(victim)].Store(&cacheEntry{key: *key, p: p, exp: exp})
}

// len counts occupied slots (live or expired but not yet replaced).
func (c *tokenCache) len() int {
	n := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			n++
		}
	}
	return n
}
