package xdp

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// blockSet is the authoritative list of timed blocks, shared by the kernel
// limiter (which mirrors it into the "blocks" trie) and the accept-time
// fallback (which reads it directly). Safe for concurrent use.
type blockSet struct {
	mu sync.RWMutex
	t  prefixTable[Block]
}

// put adds or replaces the block for p. p must be canonical.
func (s *blockSet) put(b Block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.set(b.Prefix, b)
}

func (s *blockSet) remove(p netip.Prefix) (Block, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.t.m[p]
	if ok {
		s.t.delete(p)
	}
	return b, ok
}

// blocked reports whether a is inside a block that lasts past now.
func (s *blockSet) blocked(a netip.Addr, now time.Time) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	hit := false
	s.t.matches(a, func(_ netip.Prefix, b Block) bool {
		hit = b.Until.After(now)
		return !hit
	})
	return hit
}

// list returns the blocks lasting past now (active) or not (expired),
// sorted by prefix.
func (s *blockSet) list(now time.Time, active bool) []Block {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Block
	for _, b := range s.t.m {
		if b.Until.After(now) == active {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Block) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

func (s *blockSet) count(now time.Time) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, b := range s.t.m {
		if b.Until.After(now) {
			n++
		}
	}
	return n
}

// effective returns, for every block inside p (p included), the latest
// expiry among it and the blocks covering it. The kernel does a single
// longest-prefix match, so a narrow block that expires early must carry the
// expiry of a wider one that is still in force.
func (s *blockSet) effective(p netip.Prefix) map[netip.Prefix]time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[netip.Prefix]time.Time)
	for q := range s.t.m {
		if !covers(p, q) {
			continue
		}
		var until time.Time
		for r, b := range s.t.m {
			if covers(r, q) && b.Until.After(until) {
				until = b.Until
			}
		}
		out[q] = until
	}
	return out
}

// newBlock validates a block request.
func newBlock(p netip.Prefix, d time.Duration, reason string, now time.Time) (Block, error) {
	cp, err := canonicalPrefix(p)
	if err != nil {
		return Block{}, fmt.Errorf("block: %w", err)
	}
	if d <= 0 {
		return Block{}, fmt.Errorf("block %s: duration %v must be positive", cp, d)
	}
	return Block{Prefix: cp, Until: now.Add(d), Reason: reason}, nil
}
