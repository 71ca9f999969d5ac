package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/stoa-gateway/stoa/pkg/bundle"
)

// Signed is one revision's bundle with its cosign signature.
type Signed struct {
	Bundle    *bundle.Bundle
	Signature []byte
}

// ErrNoBundle: the source does not hold the revision asked for.
var ErrNoBundle = errors.New("bundle not held")

// Source is where the control plane's handlers find the bundles they
// serve. Revisions only move forward: a rollback is a new revision.
type Source interface {
	// Current returns the newest revision's signed bundle; nil before the
	// first revision.
	Current(ctx context.Context) (*Signed, error)
	// At returns revision rev's bundle, the base of a delta to the
	// current one; an error wrapping ErrNoBundle if it is not held, and
	// the data plane gets the full bundle instead.
	At(ctx context.Context, rev int64) (*bundle.Bundle, error)
	// Wait returns when the current revision is newer than after, or
	// with ctx's error when ctx is done first.
	Wait(ctx context.Context, after int64) error
}

// MemorySource is a Source holding the newest revisions in memory: the
// current one and up to keep-1 before it as delta bases. A data plane
// further behind gets the full bundle. Each held bundle costs its size
// (about 1 KB per tool) plus its decoded objects.
type MemorySource struct {
	mu      sync.Mutex
	keep    int
	ring    []*Signed // oldest first; the last is current
	changed chan struct{}
}

// NewMemorySource returns an empty source keeping keep revisions (at
// least 1; 4 if keep is 0).
func NewMemorySource(keep int) *MemorySource {
	if keep == 0 {
		keep = 4
	}
	return &MemorySource{keep: max(keep, 1), changed: make(chan struct{})}
}

// Publish makes s the current revision. A revision not newer than the
// current one is refused (publishing the current one again is a no-op),
// so that the source never offers data planes a step backwards.
func (m *MemorySource) Publish(s *Signed) error {
	if s == nil || s.Bundle == nil || len(s.Signature) == 0 {
		return errors.New("publish bundle: a signed bundle is required")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.ring); n > 0 {
		cur := m.ring[n-1].Bundle
		if cur.Digest() == s.Bundle.Digest() {
			return nil
		}
		if s.Bundle.Revision() <= cur.Revision() {
			return fmt.Errorf("publish bundle: revision %d is not newer than the current revision %d", s.Bundle.Revision(), cur.Revision())
		}
	}
	m.ring = append(m.ring, s)
	if len(m.ring) > m.keep {
		m.ring[0] = nil
		m.ring = m.ring[1:]
	}
	close(m.changed)
	m.changed = make(chan struct{})
	return nil
}

// Current returns the newest revision.
func (m *MemorySource) Current(context.Context) (*Signed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.ring) == 0 {
		return nil, nil
	}
	return m.ring[len(m.ring)-1], nil
}

// At returns a held revision.
func (m *MemorySource) At(_ context.Context, rev int64) (*bundle.Bundle, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.ring {
		if s.Bundle.Revision() == rev {
			return s.Bundle, nil
		}
	}
	return nil, fmt.Errorf("revision %d: %w", rev, ErrNoBundle)
}

// Wait returns when a revision newer than after is current.
func (m *MemorySource) Wait(ctx context.Context, after int64) error {
	for {
		m.mu.Lock()
		ch := m.changed
		newer := len(m.ring) > 0 && m.ring[len(m.ring)-1].Bundle.Revision() > after
		m.mu.Unlock()
		if newer {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
