// Package pubsub fans values out to subscribers without ever waiting for
// them: the daemon's event stream and its live statistics both use it.
package pubsub

import "sync"

// Hub delivers every published value to each current subscriber's
// buffered channel. A subscriber that cannot keep up loses values rather
// than slowing the publisher down (it sees the gap in whatever sequence
// the values carry). The zero Hub is ready to use.
type Hub[T any] struct {
	mu     sync.Mutex
	subs   map[chan T]struct{}
	closed bool
}

// Subscribe returns a channel with room for buf values, already holding
// first, and the function that ends the subscription (and closes the
// channel). After Close the channel comes back closed.
func (h *Hub[T]) Subscribe(buf int, first ...T) (<-chan T, func()) {
	ch := make(chan T, max(buf, len(first)))
	for _, v := range first {
		ch <- v
	}
	h.mu.Lock()
	if h.closed {
		close(ch)
	} else {
		if h.subs == nil {
			h.subs = map[chan T]struct{}{}
		}
		h.subs[ch] = struct{}{}
	}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
		h.mu.Unlock()
	}
}

// Publish offers v to every subscriber, dropping it for those whose
// buffer is full, and returns how many subscribers there are.
func (h *Hub[T]) Publish(v T) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- v:
		default: // slow subscriber: it misses v
		}
	}
	return len(h.subs)
}

// Len is the number of subscribers.
func (h *Hub[T]) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// EndAll ends every current subscription (closing its channel); later
// subscriptions work as usual.
func (h *Hub[T]) EndAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.endAll()
}

// Close ends every subscription, and every later one starts closed.
func (h *Hub[T]) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.endAll()
}

func (h *Hub[T]) endAll() {
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
