package events

import (
	"context"
	"sync"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// feedBatch is how many events one Consume call gets at most.
const feedBatch = 500

// Feed hands Consume the events stored after a cursor, whenever new ones
// arrive. The stored log is the source; the live stream only rings the
// bell, and a poll catches what it drops.
type Feed struct {
	log  *Log
	name string
	// cursor returns the position; consume takes the events after it and
	// persists the new position itself (atomically with its own writes).
	cursor  func() (int64, error)
	consume func(events []api.Event) error

	mu sync.Mutex // one catch-up at a time (the loop and API handlers)
}

// NewFeed returns a feed of l named name (for logs).
func NewFeed(l *Log, name string, cursor func() (int64, error), consume func([]api.Event) error) *Feed {
	return &Feed{log: l, name: name, cursor: cursor, consume: consume}
}

// Run catches up whenever events arrive or kick fires, until ctx ends.
func (f *Feed) Run(ctx context.Context, kick <-chan struct{}) { f.log.Follow(ctx, kick, f.CatchUp) }

// CatchUp feeds everything after the cursor, in batches.
func (f *Feed) CatchUp() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		after, err := f.cursor()
		if err != nil {
			f.log.log.Warn("event feed: read cursor", "feed", f.name, "err", err)
			return
		}
		var evs []api.Event
		ctx := context.Background()
		err = f.log.store.View(ctx, func(tx store.Tx) error {
			var err error
			evs, err = tx.Events().Since(ctx, after, feedBatch)
			return err
		})
		if err != nil {
			f.log.log.Warn("event feed: read events", "feed", f.name, "err", err)
			return
		}
		if len(evs) == 0 {
			return
		}
		if err := f.consume(evs); err != nil {
			f.log.log.Warn("event feed: consume", "feed", f.name, "err", err)
			return
		}
		if len(evs) < feedBatch {
			return
		}
	}
}
