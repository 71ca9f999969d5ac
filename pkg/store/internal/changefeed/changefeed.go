// Package changefeed fans the changes a store commits out to its
// watchers (store.Store.Watch): every store implementation publishes
// into a Hub, and each watcher gets its own channel.
package changefeed

import (
	"context"
	"sync"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// backlog is how many changes a watcher may fall behind before the
// newest are merged into one (it then learns "at least up to here").
const backlog = 256

// Hub is the set of watchers of one store.
type Hub struct {
	mu     sync.Mutex
	subs   map[*sub]struct{}
	closed bool
}

type sub struct {
	mu      sync.Mutex
	pending []store.Change
	wake    chan struct{} // cap 1: something is pending
}

// New returns an empty hub.
func New() *Hub { return &Hub{subs: map[*sub]struct{}{}} }

// Publish queues c for every watcher; it never blocks.
func (h *Hub) Publish(c store.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.mu.Lock()
		if n := len(s.pending); n >= backlog {
			s.pending[n-1] = s.pending[n-1].Merge(c)
		} else {
			s.pending = append(s.pending, c)
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Subscribe returns a channel of every change published from now on,
// closed when ctx is done or the hub closes.
func (h *Hub) Subscribe(ctx context.Context) <-chan store.Change {
	out := make(chan store.Change)
	s := &sub{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(out)
		return out
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go func() {
		defer close(out)
		defer h.drop(s)
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-s.wake:
				if !ok {
					return
				}
			}
			for {
				s.mu.Lock()
				if len(s.pending) == 0 {
					s.mu.Unlock()
					break
				}
				c := s.pending[0]
				s.pending = s.pending[1:]
				s.mu.Unlock()
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

func (h *Hub) drop(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// Close ends every watcher's channel (after what is already queued is
// dropped: the store is going away).
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s := range h.subs {
		close(s.wake)
		delete(h.subs, s)
	}
}
