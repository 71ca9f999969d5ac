package daemon

import (
	"context"
	"log/slog"
	"sync"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// eventHub persists events and fans them out to followers. A follower that
// cannot keep up loses events rather than slowing the daemon down; it sees
// the gap in the sequence numbers.
type eventHub struct {
	store store.Store
	log   *slog.Logger

	mu     sync.Mutex
	subs   map[chan api.Event]struct{}
	closed bool
}

func newEventHub(st store.Store, log *slog.Logger) *eventHub {
	return &eventHub{store: st, log: log, subs: map[chan api.Event]struct{}{}}
}

func (h *eventHub) emit(e api.Event) {
	stored, err := store.AppendEvent(context.Background(), h.store, e)
	if err != nil {
		h.log.Warn("store event", "type", e.Type, "err", err)
		stored = e
	}
	h.publish(stored)
}

// publish pushes an event that is already stored to followers.
func (h *eventHub) publish(stored api.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- stored:
		default: // slow follower: drop
		}
	}
}

// subscribe returns a channel of new events and a cancel function.
func (h *eventHub) subscribe() (<-chan api.Event, func()) {
	ch := make(chan api.Event, 256)
	h.mu.Lock()
	if h.closed {
		close(ch)
	} else {
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

func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
